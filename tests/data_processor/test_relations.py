"""Relation paraphrases: the shipped lexicon and the rewording of a question (data_processor/relations.py)."""
import pytest

from data_processor.relations import (LEXICON_EN, SLOTS, find_relations, load_lexicon, paraphrases, parse_lexicon,
                                      replacements)

TINY = "\n".join([
    "# a comment line",
    "invent,invents,invented,invented,inventing | devise,devises,devised,devised,devising"
    " | create,creates,created,created,creating",
    "write,writes,wrote,written,writing* | author*,authors*,authored,authored,authoring",
    "flow into,flows into,flowed into,flowed into,flowing into"
    " | empty into,empties into,emptied into,emptied into,emptying into",
    "lead*,leads,led,led,leading* | head*,heads*,headed*,headed*,heading*",
    "lead to,leads to,led to,led to,leading to | result in,results in,resulted in,resulted in,resulting in  # caused",
    "-,-,-,located,- | -,-,-,situated,-",
])


@pytest.fixture
def tiny():
    return parse_lexicon(TINY)


def test_the_shipped_lexicon_parses_with_five_forms_per_member_and_each_form_in_one_group():
    text = LEXICON_EN.read_text(encoding="utf-8")
    lex = load_lexicon()
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    assert 30 <= len(lex.groups) == len(lines) <= 60
    seen: dict[str, int] = {}
    for g, line in enumerate(lines):
        members = line.split(" | ")
        assert len(members) >= 2
        for member in members:
            forms = [f.strip() for f in member.split(",")]
            assert len(forms) == len(SLOTS), member
            for f in {f.rstrip("*") for f in forms if f != "-"}:
                assert seen.setdefault(f, g) == g, f"{f!r} is in two groups"
    # every form that is neither "-" nor marked is found as written, and is replaceable by something
    assert len(lex.forms) == len(seen)
    assert sum(form.matched for form in lex.forms.values()) > len(lex.groups)


def test_a_malformed_lexicon_names_its_line():
    with pytest.raises(ValueError, match=r"<string>:1: .*needs 5 forms"):
        parse_lexicon("invent,invents,invented | create,creates,created,created,creating")
    with pytest.raises(ValueError, match=r":2: 'made' is already a form on line 1"):
        parse_lexicon("make,makes,made,made,making | build,builds,built,built,building\n"
                      "made,made,made,made,made | x,xs,xed,xed,xing")
    with pytest.raises(ValueError, match="at least two members"):
        parse_lexicon("invent,invents,invented,invented,inventing")
    with pytest.raises(ValueError, match="marked"):
        parse_lexicon("cost*,costs,cost,cost,costing | sell for,sells for,sold for,sold for,selling for")
    with pytest.raises(ValueError, match="no form"):
        parse_lexicon("-,-,-,-,- | sell,sells,sold,sold,selling")


def test_the_same_inflection_of_every_other_member(tiny):
    assert paraphrases("Who invented drennick in 1923?", 5, lexicon=tiny) == [
        "Who devised drennick in 1923?", "Who created drennick in 1923?"]
    assert paraphrases("When did Ashgrove invent drennick?", 5, lexicon=tiny) == [
        "When did Ashgrove devise drennick?", "When did Ashgrove create drennick?"]
    assert paraphrases("Which sea does the Rhine flow into?", 5, lexicon=tiny) == [
        "Which sea does the Rhine empty into?"]
    assert paraphrases("The Rhine empties into which sea?", 5, lexicon=tiny) == ["The Rhine flows into which sea?"]
    assert paraphrases("Where is the castle located?", 5, lexicon=tiny) == ["Where is the castle situated?"]


def test_capitalised_only_at_a_sentence_start(tiny):
    assert paraphrases("Invented in 1923, what is drennick?", 5, lexicon=tiny) == [
        "Devised in 1923, what is drennick?", "Created in 1923, what is drennick?"]
    assert paraphrases("Drennick — Invented by whom?", 5, lexicon=tiny) == [
        "Drennick — Devised by whom?", "Drennick — Created by whom?"]
    assert paraphrases("What did Invented Games publish?", 5, lexicon=tiny) == []  # a name, not the verb


def test_a_form_that_stands_in_two_slots_needs_one_form_in_every_member(tiny):
    # "authored" is past or participle: "wrote" or "written" cannot be told apart, so it is left as it is
    assert paraphrases("Who authored the book?", 5, lexicon=tiny) == []
    assert paraphrases("Who wrote the book?", 5, lexicon=tiny) == ["Who authored the book?"]
    assert paraphrases("When was the book written?", 5, lexicon=tiny) == ["When was the book authored?"]
    assert [m.form.slots for m in find_relations("Who authored it?", tiny)] == [frozenset({2, 3})]
    # head's forms are all marked, yet written: in the slot of "led" or "leads" the word is the verb
    assert replacements(find_relations("Who led it?", tiny)[0], tiny) == ["headed"]
    assert paraphrases("Who leads the council?", 5, lexicon=tiny) == ["Who heads the council?"]


def test_marked_forms_and_longer_forms_are_not_taken_from_a_question(tiny):
    assert paraphrases("Who heads the council?", 5, lexicon=tiny) == []  # "heads" is also a noun
    assert paraphrases("What is the lead of the story?", 5, lexicon=tiny) == []
    assert paraphrases("What led to the flood?", 5, lexicon=tiny) == ["What resulted in the flood?"]  # not "headed to"
    assert paraphrases("What is the writing on the stone?", 5, lexicon=tiny) == []
    assert paraphrases("What did the river flow, into the sea or the lake?", 5, lexicon=tiny) == []
    assert paraphrases("Who re-invented drennick?", 5, lexicon=tiny) == []  # a whole word only


def test_every_combination_capped_and_drawn_the_same_way_each_time(tiny):
    q = "Who invented the game that flows into the rules he wrote?"
    every = paraphrases(q, 100, lexicon=tiny)
    assert len(every) == 3 * 2 * 2 - 1 and q not in every and len(set(every)) == len(every)
    two = paraphrases(q, 2, seed=7, lexicon=tiny)
    assert len(two) == 2 and set(two) <= set(every)
    assert paraphrases(q, 2, seed=7, lexicon=tiny) == two
    assert [paraphrases(q, 2, seed=s, lexicon=tiny) for s in range(8)] != [two] * 8  # the seed draws
    assert paraphrases(q, 0, lexicon=tiny) == []


def test_no_lexicon_verb_no_paraphrase():
    assert paraphrases("How many players does a drennick team have?", 3) == []
    assert paraphrases("", 3) == []


def test_the_shipped_lexicon_on_questions_others_ask():
    assert "Where does the Rhine empty into?" in paraphrases("Where does the Rhine flow into?", 5)
    assert "Who runs the company?" in paraphrases("Who leads the company?", 5)
    assert "When was the company established?" in paraphrases("When was the company founded?", 5)
    assert "Who constructed the bridge?" in paraphrases("Who built the bridge?", 5)
    assert paraphrases("Where was the ring found?", 5) == []  # found = past of find, not of found
    assert paraphrases("When did the bridge open?", 5) == []  # "the bridge inaugurated" would be wrong
    assert "When was the bridge opened?" in paraphrases("When was the bridge inaugurated?", 5)
    assert paraphrases("What is 12 divided by 3?", 5) == []
