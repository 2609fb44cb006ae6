"""evaluation/scoring.py on hand-made cases: one group of tests per function and parameter."""
from __future__ import annotations

import pytest

from evaluation.scoring import (
    HEADLINE_METRIC,
    QuestionScore,
    aggregate,
    best_f1,
    contains_match,
    exact_match,
    normalize_answer,
    score_prediction,
    tokens,
    token_f1,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Paris", "paris"),
        ("  The   Grey Petrel. ", "grey petrel"),  # article, punctuation, extra spaces
        ("An apple a day", "apple day"),  # all three articles go
        ("Theodore", "theodore"),  # articles only as whole words
        ("ice-harps", "ice harps"),  # hyphen splits instead of gluing the words
        ("ice\u2013harps", "ice harps"),  # en dash too
        ("3,016", "3016"),  # thousands separator dropped
        ("€1,190", "1190"),  # currency sign splits off
        ("260°C", "260 c"),
        ("\u201cQuoted\u201d", "quoted"),  # curly quotes
        ("ＰＡＲＩＳ", "paris"),  # full-width letters (NFKC)
        ("Brannock's lantern", "brannock lantern"),  # possessive goes with its apostrophe
        ("rock 'n' roll", "rock n roll"),
        ("", ""),
        ("?!.", ""),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_normalize_answer_none_is_empty():
    assert normalize_answer(None) == ""


class TestExactMatch:
    def test_equal_after_normalisation(self):
        assert exact_match("The Gullveig.", "Gullveig")

    def test_extra_words_are_not_exact(self):
        assert not exact_match("It was the Gullveig.", "Gullveig")

    def test_only_primary_answer_counts(self):
        # exact match is defined on the primary answer; aliases only help contains/F1
        assert not exact_match("Brannock", "Aldous Brannock")

    def test_empty_gold_never_matches(self):
        assert not exact_match("", "!!")


class TestContainsMatch:
    def test_alias_in_sentence(self):
        assert contains_match("The festival began with Brannock's lantern.", ["Aldous Brannock", "Brannock"])
        assert contains_match("It was started by Brannock in 1847.", ["Aldous Brannock", "Brannock"])

    def test_whole_words_only(self):
        assert not contains_match("There were 13 boats.", ["3"])
        assert not contains_match("It happened in 1934.", ["3", "193"])
        assert contains_match("Three points, i.e. 3.", ["3"])

    def test_multiword_alias_needs_contiguous_words(self):
        assert contains_match("It is the Marrowgate Herons club", ["Marrowgate Herons"])
        assert not contains_match("Marrowgate has Herons", ["Marrowgate Herons"])

    def test_normalisation_applies_to_both_sides(self):
        assert contains_match("They floated 3016 lanterns", ["3,016"])
        assert contains_match("She used ice harps.", ["ice-harps"])
        assert contains_match("It costs €1,190.", ["1190 euros", "1,190"])

    def test_case_insensitive(self):
        assert contains_match("PORT EBBERING", ["Port Ebbering"])

    def test_empty_prediction(self):
        assert not contains_match("", ["Paris"])

    def test_answer_that_normalises_to_nothing_is_ignored(self):
        assert not contains_match("anything at all", ["?", "the"])

    def test_no_answers(self):
        assert not contains_match("Paris", [])


class TestTokenF1:
    def test_identical(self):
        assert token_f1("Aldous Brannock", "aldous brannock") == 1.0

    def test_partial_overlap(self):
        # pred 3 tokens, gold 2 tokens, overlap 1: P=1/3, R=1/2 -> F1 = 0.4
        assert token_f1("Aldous the fisherman Smith", "Aldous Brannock") == pytest.approx(
            2 * (1 / 3) * (1 / 2) / ((1 / 3) + (1 / 2)))

    def test_no_overlap(self):
        assert token_f1("Paris", "London") == 0.0

    def test_repeated_tokens_count_once_per_occurrence(self):
        # Counter intersection: "paris paris" vs "paris" overlaps once -> P=1/2, R=1 -> 2/3
        assert token_f1("Paris Paris", "Paris") == pytest.approx(2 / 3)

    def test_empty_prediction_scores_zero(self):
        assert token_f1("", "Paris") == 0.0

    def test_both_empty_scores_one(self):
        assert token_f1("the", "!") == 1.0

    def test_best_f1_takes_the_best_alias(self):
        assert best_f1("Brannock", ["Aldous Brannock", "Brannock"]) == 1.0
        assert best_f1("Brannock", ["Aldous Brannock"]) == pytest.approx(2 / 3)
        assert best_f1("x", []) == 0.0


class TestScorePrediction:
    def test_all_three_scores(self):
        s = score_prediction("Port Ebbering.", ["Port Ebbering", "Ebbering"])
        assert (s.exact, s.contains, s.f1) == (True, True, 1.0)
        s = score_prediction("Most live in Ebbering town", ["Port Ebbering", "Ebbering"])
        assert (s.exact, s.contains) == (False, True)
        assert 0 < s.f1 < 1

    def test_wrong_and_empty_predictions(self):
        for pred in ("London", ""):
            s = score_prediction(pred, ["Paris"])
            assert (s.exact, s.contains, s.f1) == (False, False, 0.0)
        assert s.judge is None

    def test_requires_an_answer(self):
        with pytest.raises(ValueError):
            score_prediction("x", [])


def test_aggregate_means_and_judge():
    scores = [QuestionScore(True, True, 1.0), QuestionScore(False, True, 0.5, judge=True),
              QuestionScore(False, False, 0.0, judge=False), QuestionScore(False, False, 0.0)]
    agg = aggregate(scores)
    assert agg == {"n": 4, "contains": 0.5, "exact": 0.25, "f1": 0.375, "judge": 0.5}
    assert aggregate([])["n"] == 0 and aggregate([])["judge"] is None
    assert HEADLINE_METRIC in agg


# -- Chinese, Japanese, Korean: character tokens (CMRC 2018 / DuReader style) ---------------------------
@pytest.mark.parametrize("prediction, answers, expected", [
    ("北京是中国的首都。", ["北京"], True),
    ("中国的首都是北京", ["北京"], True),
    ("首都是上海", ["北京"], False),
    ("他在2019年出生。", ["2019年"], True),
    ("他在12019年出生。", ["2019年"], False),  # a digit run is one token: no match inside "12019"
    ("这部手机是iPhone 15。", ["iPhone 15"], True),
    ("《红楼梦》的作者是曹雪芹。", ["曹雪芹"], True),
    ("答案：北　京！", ["北京"], True),  # full-width punctuation and the ideographic space are dropped
    ("東京は日本の首都です", ["東京"], True),
])
def test_contains_match_cjk(prediction, answers, expected):
    assert contains_match(prediction, answers) is expected


def test_cjk_f1_is_character_level_and_exact_match_ignores_punctuation():
    assert token_f1("北京是中国的首都", "北京") == pytest.approx(2 * (2 / 8) * 1 / (2 / 8 + 1))
    assert token_f1("北京", "北京") == 1.0 and token_f1("上海", "北京") == 0.0
    assert exact_match("北京。", "北京") and not exact_match("北京市", "北京")
    assert tokens("2019年，北京") == ["2019", "年", "北", "京"]
