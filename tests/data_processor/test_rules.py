"""Rule-made questions and self-contained facts (data_processor/rules.py): pure text functions."""
import pytest

from data_processor.rules import (
    alternative_phrase,
    echo_question,
    find_spans,
    fronted_question,
    keyword_questions,
    questions_for,
    resolve_pronoun,
    title_entity,
    wh_phrase,
)


def kinds(sentence, known=None):
    return [(s.kind, s.text(sentence)) for s in find_spans(sentence, known)]


@pytest.mark.parametrize("sentence, expected", [
    ("Drennick was invented in 1923 by Bartholomew Ashgrove, a schoolteacher in the market town of Lyndmoor.",
     [("year", "1923"), ("person", "Bartholomew Ashgrove"), ("thing", "Lyndmoor")]),
    ("The Emberlark went on sale on 14 March 2021 and cost 1,190 euros.",
     [("thing", "Emberlark"), ("date", "14 March 2021"), ("money", "1,190 euros")]),
    ("A drennick team has seven players: one keeper, called the warden, and six runners.",
     [("number", "seven"), ("term", "warden"), ("number", "six")]),
    ("She was born in 1902-1979 and weighed 4.5 kilos in her 22nd year.",
     [("year", "1902"), ("year", "1979"), ("number", "4.5"), ("ordinal", "22nd")]),
    ("Each village has one, and the five-minute break is short.", []),  # a pronoun; part of a compound
    ("Nothing here has a name or a number in it at all.", []),
])
def test_spans_and_their_kinds(sentence, expected):
    assert kinds(sentence) == expected


def test_a_capitalised_first_word_is_a_span_only_when_it_is_a_known_name():
    s = "Drennick is a team sport played with a wooden hoop."
    assert kinds(s) == [] and kinds(s, {"drennick"}) == [("thing", "Drennick")]


@pytest.mark.parametrize("sentence, span_text, phrase", [
    ("Drennick was invented in 1923 by someone.", "1923", "in what year"),
    ("The bridge opened on 3 May 1902 at noon.", "3 May 1902", "on what date"),
    ("A team has seven players on the field.", "seven", "how many players"),
    ("The trip sank fourteen fishing boats last year.", "fourteen", "how many fishing boats"),
    ("It was invented by Bartholomew Ashgrove, a teacher.", "Bartholomew Ashgrove", "by whom"),
    ("Its headquarters are in the city of Castelbrook now.", "Castelbrook", "which city"),
    ("She studied the Skarrow Glacier for years.", "Skarrow Glacier", "which glacier"),
    ("She received the Halloran Medal of the Royal Society in 1951.", "Halloran Medal of the Royal Society",
     "which medal"),
    ("The Pro model costs 1,190 euros today.", "1,190 euros", "how much"),
])
def test_the_wh_phrase_fits_the_span_and_its_context(sentence, span_text, phrase):
    span = next(s for s in find_spans(sentence) if s.text(sentence) == span_text)
    assert wh_phrase(sentence, span)[2] == phrase


@pytest.mark.parametrize("sentence, span_text, fronted", [
    ("Drennick was invented in 1923 by Bartholomew Ashgrove, a schoolteacher in Lyndmoor.", "1923",
     "In what year was Drennick invented by Bartholomew Ashgrove?"),
    ("A drennick team has seven players: one keeper and six runners.", "seven",
     "How many players does a drennick team have?"),
    ("In 1931 Ilsabet Norrgaard-Quint joined the Velmarian Polar Survey.", "1931",
     "In what year did Ilsabet Norrgaard-Quint join the Velmarian Polar Survey?"),
    ("Drennick is a team sport played with a wooden hoop.", "Drennick", "What is a team sport played with a wooden hoop?"),
    ("The International Drennick Federation (IDF) was founded in 1958 and has its headquarters in Castelbrook.",
     "1958", "In what year was the International Drennick Federation (IDF) founded?"),
    # the base form comes from a lexicon, not from cutting "-ed" ("receiv", "announc")
    ("In 1951 Ilsabet Norrgaard-Quint received the Halloran Medal.", "1951",
     "In what year did Ilsabet Norrgaard-Quint receive the Halloran Medal?"),
    ("In 2024, Vantrellis announced a fourth model.", "2024", "In what year did Vantrellis announce a fourth model?"),
    ("Ilsabet Norrgaard-Quint died in Velmar on 22 November 1979.", "Velmar",
     "Where did Ilsabet Norrgaard-Quint die on 22 November 1979?"),
    # "named" introduces a name here; it is not the verb ("Who did a fisherman nam?")
    ("A fisherman named Aldous Brannock, who had lost two brothers, carved a lantern.", "Aldous Brannock", None),
    # a present-tense verb is inverted with "does"; a hedge before the span goes with it
    ("The drennick team consists of seven players.", "seven", "How many players does the drennick team consist of?"),
    ("A regulation hoop weighs about 620 grams.", "620", "How many grams does a regulation hoop weigh?"),
    ("Each year the island council chooses a Lantern Warden.", "Lantern Warden", None),  # no plain subject
    ("A loaded wagon carried about 30 tonnes and needed two days.", "30", "How many tonnes did a loaded wagon carry?"),
    ("The rebuilt bridge reopened to traffic in 1999.", "1999", "In what year did the rebuilt bridge reopen to traffic?"),
])
def test_fronted_questions_invert_subject_and_verb(sentence, span_text, fronted):
    span = next(s for s in find_spans(sentence, {"drennick"}) if s.text(sentence) == span_text)
    assert fronted_question(sentence, span) == fronted


def test_no_fronting_when_the_span_is_in_another_clause():
    s = "The festival began in 1847, the year after the Great Gale of 1846 sank fourteen fishing boats."
    span = next(x for x in find_spans(s) if x.text(s) == "1846")
    assert fronted_question(s, span) is None
    assert echo_question(s, span) == ("The festival began in 1847, the year after the Great Gale of what year sank "
                                      "fourteen fishing boats?")


def test_questions_never_contain_their_answer_and_are_not_repeated():
    s = "The hoop is made of ash wood, has a diameter of 46 centimetres and must weigh between 600 and 650 grams."
    pairs = questions_for(s)
    assert pairs and len({q for q, _ in pairs}) == len(pairs)
    for q, answer in pairs:
        assert answer not in q and q.endswith("?") and q[0].isupper()
    assert questions_for(s, max_spans=1) == [p for p in pairs if p[1] == "46"]


def test_a_second_phrasing_asks_for_the_same_span():
    s = "Drennick was invented in 1923 by Bartholomew Ashgrove, a schoolteacher in Lyndmoor."
    one, two = questions_for(s, max_spans=1), questions_for(s, max_spans=1, phrasings=2)
    assert set(one) < set(two) and {span for _, span in two} == {"1923"}
    assert "When was Drennick invented by Bartholomew Ashgrove?" in [q for q, _ in two]
    assert alternative_phrase("how many players") == "what number of players"
    assert alternative_phrase("which glacier") == "what glacier" and alternative_phrase("what") is None


BRANNOCK = ("A fisherman named Aldous Brannock, who had lost two brothers in the storm, carved a lantern out of a "
            "block of rock salt and floated it into Gullwick Bay to guide the souls of the drowned home.")


def test_keyword_questions_ask_for_the_span_with_half_of_the_other_content_words():
    span = next(s for s in find_spans(BRANNOCK) if s.text(BRANNOCK) == "Gullwick Bay")
    questions = keyword_questions(BRANNOCK, span, 3)
    assert len(questions) == len(set(questions)) == 3
    cues = "fisherman Aldous Brannock lost two brothers storm carved lantern block rock salt floated guide souls drowned home"
    for q in questions:
        head, _, words = q.rstrip("?").partition(": ")
        assert head == "Which bay" and "Gullwick" not in q
        words = words.split()
        assert len(words) == 8 and set(words) <= set(cues.split())
        assert words == sorted(words, key=cues.split().index)  # in the sentence's order
    assert keyword_questions(BRANNOCK, span, 3) == questions  # the same subsets in every collection
    assert keyword_questions(BRANNOCK, span, 1, phrase="what bay")[0].startswith("What bay: ")


def test_keyword_questions_need_enough_cues():
    s = "The oven costs 749 euros."
    span = find_spans(s)[-1]
    assert span.text(s) == "749 euros" and keyword_questions(s, span, 2) == []  # "oven costs": too few cues to sample


def test_questions_for_adds_keyword_questions_per_span():
    plain, more = questions_for(BRANNOCK, max_spans=4), questions_for(BRANNOCK, max_spans=4, keywords=2)
    added = [p for p in more if p not in plain]
    assert set(plain) < set(more) and all(": " in q for q, _ in added)
    spans = {span for _, span in plain}
    assert len(added) == 2 * len(spans) and {span for _, span in added} == spans


@pytest.mark.parametrize("title, entity", [
    ("Drennick: the hoop-and-stick game of Lyndmoor", "Drennick"),
    ("Odile Faverant-Rusk and the music of bells", "Odile Faverant-Rusk"),
    ("The Saltlight Festival of Quillmere", "The Saltlight Festival of Quillmere"),
    ("a plain lower-case heading", "a plain lower-case heading"),
])
def test_title_entity(title, entity):
    assert title_entity(title) == entity


def test_resolve_pronoun_makes_a_fact_self_contained():
    doc = ["Drennick is a team sport.", "The International Drennick Federation (IDF) was founded in 1958."]
    known = {"drennick", "idf"}
    assert resolve_pronoun("It was invented in 1923.", doc[:1], "Drennick", known) == "Drennick was invented in 1923."
    assert resolve_pronoun("It now counts 31 member nations.", doc, "Drennick", known) == (
        "The International Drennick Federation now counts 31 member nations.")
    assert resolve_pronoun("Its field is a hexagon.", doc[:1], "Drennick", known) == "Drennick's field is a hexagon."
    person = "Ilsabet Norrgaard-Quint"
    bio = ["Ilsabet Norrgaard-Quint was a glaciologist."]
    assert resolve_pronoun("In 1931 she joined the Survey.", bio, person, set()) == (
        "In 1931 Ilsabet Norrgaard-Quint joined the Survey.")
    assert resolve_pronoun("Her supervisor was Anselm Grieve.", bio, person, set()) == (
        "Ilsabet Norrgaard-Quint's supervisor was Anselm Grieve.")
    assert resolve_pronoun("They gave it to her in 1902.", bio, person, set()) == "They gave it to her in 1902."  # too late
    # "it" is never a person: with a person as the topic and no thing before, it stays
    assert resolve_pronoun("It was first played in 1911.", bio, person, set()) == "It was first played in 1911."
    assert resolve_pronoun("No pronoun here.", bio, person, set()) == "No pronoun here."
