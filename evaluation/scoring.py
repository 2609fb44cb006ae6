"""Pure answer-scoring functions for closed-book knowledge evaluation.

Three scores per question, all computed on SQuAD-style normalised text:

* ``exact``: the normalised prediction equals the normalised *primary* answer;
* ``contains`` (the headline metric): any answer or alias occurs in the normalised prediction as a
  whole-word sequence. Chat models answer in sentences ("The festival began in 1847."), so exact match
  undercounts them badly; matching on word boundaries keeps "3" from matching "13" or "1934";
* ``f1``: SQuAD token F1, the best over all answers (partial credit for "Aldous" vs "Aldous Brannock").

Normalisation differs from SQuAD's in one deliberate way: hyphens, slashes, dashes and unit/currency
signs (° € $ £) become spaces instead of vanishing, so "ice-harps" and "ice harps" normalise alike and
"€1,190" still contains the word "1190"; a possessive 's is dropped with its apostrophe so
"Brannock's" contains "Brannock"; other punctuation is dropped so "3,016" and "3016" match.

Chinese, Japanese and Korean text is written without spaces between words, so matching words would
never find "北京" in "北京是中国的首都". As Chinese reading-comprehension benchmarks do (CMRC 2018,
DuReader), every CJK character is a token of its own, so F1 is character-level and an answer is
contained when its characters occur in a row; full-width punctuation is dropped. Runs of other
characters stay whole words, so mixed answers work ("2019年" is the tokens "2019" and "年", and does not
match "12019年"), and Latin-script text scores exactly as before.
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_POSSESSIVE = re.compile(r"['\u2019]s\b")
_SPLITTERS = "-/\u2010\u2011\u2012\u2013\u2014\u2015\u00b0\u20ac$\u00a3"
_DROP = "".join(ch for ch in string.punctuation if ch not in _SPLITTERS) + "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"
_DROP_TABLE = str.maketrans({ch: None for ch in _DROP} | {ch: " " for ch in _SPLITTERS})
# CJK scripts (kana, ideographs, Hangul): one token per character. Their punctuation (ideographic
# comma and full stop, corner and angle brackets, full-width forms NFKC leaves alone) becomes a space.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_PUNCT = re.compile("[\u3000-\u303f\ufe10-\ufe1f\ufe30-\ufe4f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40"
                        "\uff5b-\uff65\u30fb]")
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def normalize_answer(text: str) -> str:
    """Lower-case, unify unicode forms, drop possessive 's and punctuation (hyphens/dashes/slashes become spaces),
    drop the articles a/an/the and collapse whitespace.

    >>> normalize_answer("The  Ice-Harps!")
    'ice harps'
    """
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _POSSESSIVE.sub("", text)  # "Brannock's lantern" names Brannock
    text = _CJK_PUNCT.sub(" ", text.translate(_DROP_TABLE))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """The normalised text as tokens: each CJK character alone, every other run of non-space characters
    a word. For text without CJK characters this is ``normalize_answer(text).split()``.

    >>> tokens("He was born in 2019年, in 北京.")
    ['he', 'was', 'born', 'in', '2019', '年', 'in', '北', '京']
    """
    return _TOKEN.findall(normalize_answer(text))


def exact_match(prediction: str, primary: str) -> bool:
    """Same tokens in prediction and primary answer (False when the answer normalises to '')."""
    gold = tokens(primary)
    return bool(gold) and tokens(prediction) == gold


def contains_match(prediction: str, answers: list[str]) -> bool:
    """True when any answer/alias occurs in the prediction as a run of whole tokens (see :func:`tokens`):
    whole words in Latin script, consecutive characters in CJK.

    Answers that normalise to the empty string are ignored, so a QA row with an answer like "!" can
    never match everything.
    """
    pred = tokens(prediction)
    for ans in answers:
        gold = tokens(ans)
        if gold and any(pred[i: i + len(gold)] == gold for i in range(len(pred) - len(gold) + 1)):
            return True
    return False


def token_f1(prediction: str, answer: str) -> float:
    """SQuAD token-overlap F1 between one prediction and one answer.

    Edge cases follow the SQuAD v2 script: if either side has no tokens, F1 is 1.0 when both are empty
    and 0.0 otherwise.
    """
    pred_toks = tokens(prediction)
    gold_toks = tokens(answer)
    if not pred_toks or not gold_toks:
        return float(pred_toks == gold_toks)
    common = Counter(pred_toks) & Counter(gold_toks)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_toks)
    recall = overlap / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, answers: list[str]) -> float:
    """Highest :func:`token_f1` of the prediction against any answer (0.0 when there are none)."""
    return max((token_f1(prediction, a) for a in answers), default=0.0)


@dataclass(frozen=True)
class QuestionScore:
    """Scores of one prediction. ``judge`` is None unless an LLM judge was run."""

    exact: bool
    contains: bool
    f1: float
    judge: bool | None = None

    def to_dict(self) -> dict:
        return {"exact": self.exact, "contains": self.contains, "f1": round(self.f1, 4), "judge": self.judge}


#: The metric used for headline numbers, flips and deltas (see module docstring for why).
HEADLINE_METRIC = "contains"
METRICS = ("contains", "exact", "f1")


def score_prediction(prediction: str, answers: list[str]) -> QuestionScore:
    """Score one prediction against ``answers`` (primary first, then aliases).

    Raises:
        ValueError: if ``answers`` is empty (a question without an answer cannot be scored).
    """
    if not answers:
        raise ValueError("a QA row needs at least one answer")
    return QuestionScore(
        exact=exact_match(prediction, answers[0]),
        contains=contains_match(prediction, answers),
        f1=best_f1(prediction, answers),
    )


def aggregate(scores: list[QuestionScore]) -> dict[str, float | int | None]:
    """Mean of each metric over ``scores`` (``judge`` only over judged questions; None if none were)."""
    n = len(scores)
    out: dict[str, float | int | None] = {"n": n}
    for m in METRICS:
        out[m] = round(sum(float(getattr(s, m)) for s in scores) / n, 4) if n else 0.0
    judged = [s.judge for s in scores if s.judge is not None]
    out["judge"] = round(sum(judged) / len(judged), 4) if judged else None
    return out
