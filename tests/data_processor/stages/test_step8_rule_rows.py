"""Generator-independent training rows: fill-in-the-blank items, question anchoring, loop detection."""
import pytest

from data_processor.aliases import bridges
from data_processor.parsing import anchor_words, is_repetitive, proper_names
from data_processor.stages.step4_facts import Fact
from data_processor.stages.step5_qa import anchor_question
from data_processor.stages.step8_rule_rows import (BLANK, RuleItem, alias_items, blank_spans, cause_items, cloze_items,
                                                   document_entity, document_title, paraphrase_items, run,
                                                   statement_items, substituted)

SOURCE = (
    "The Saltlight Festival of Quillmere\n\n"
    "Quillmere is a small granite island in the Ostrand Sea. The festival began in 1847, when a fisherman "
    "named Aldous Brannock floated a salt lantern into Gullwick Bay. Musicians play the vessling, a fiddle. "
    "In 2019 the islanders floated 3,016 lanterns, which they called saltlights. The IDF World Championship "
    "is held every four years, and the winner receives a trophy known as the Ashgrove Kettle."
)


def spans(sentence, known=None):
    return [sentence[s:e] for s, e in blank_spans(sentence, known)]


@pytest.mark.parametrize("sentence, expected", [
    ("The festival began in 1847, when a fisherman named Aldous Brannock floated a lantern into Gullwick Bay.",
     ["1847", "Aldous Brannock", "Gullwick Bay"]),
    ("In 2019 the islanders floated 3,016 lanterns in a single night.", ["2019", "3,016"]),
    ("The IDF World Championship is held every four years, and the winner receives a trophy known as the "
     "Ashgrove Kettle.", ["IDF World Championship", "four", "Ashgrove Kettle"]),
    ("During the expedition she lowered microphones, which she called ice-harps, into crevasses.", ["ice-harps"]),
    ("She studied at the University of Velmar until 1927.", ["University of Velmar", "1927"]),
    ("She was born in 1902-1979 and weighed 4.5 kilos.", ["1902", "1979", "4.5"]),
    ("Nothing here has a name or a number in it at all.", []),
    ("制墨的手艺是在1763年由一位名叫陈伯衡的老人带到村里的。", ["1763"]),
    ('做一块好墨要经过三十二道工序，最关键的一步叫"捶墨"。', ["三十二", "捶墨"]),
    ("人们把三百六十盏红灯笼挂在桥栏上。", ["三百六十"]),
])
def test_blank_spans_find_names_and_numbers(sentence, expected):
    assert spans(sentence) == expected


def test_a_capitalised_first_word_is_blanked_only_when_it_is_a_known_name():
    known = proper_names(SOURCE)
    assert spans("Quillmere is a small granite island in the Ostrand Sea.", known) == ["Quillmere", "Ostrand Sea"]
    assert spans("Musicians play the vessling, a local fiddle.", known) == []


def test_a_blank_never_hides_most_of_the_sentence():
    assert spans("Aldous Brannock Went Home.") == []


def test_cloze_items_blank_one_span_each_and_answer_with_the_whole_fact():
    fact = Fact("q.txt#0", "q.txt", 0, "In 2019 the islanders floated 3,016 lanterns in a single night.", "theme", "Doc")
    items = cloze_items([fact], 3, titles={"q.txt": "The Saltlight Festival"})
    assert [i.span for i in items] == ["2019", "3,016"]
    for item in items:
        assert item.question.count(BLANK) == 1 and item.span not in item.question
        assert "The Saltlight Festival" in item.question
        assert item.fact == item.answer == fact.text and item.kind == "cloze"
    assert cloze_items([fact], 1)[0].span == "2019"
    assert "Doc" in cloze_items([fact], 1)[0].question  # no title given: the document's theme
    assert cloze_items([fact], 0) == []


def test_chinese_facts_get_chinese_cloze_prompts():
    fact = Fact("m.txt#0", "m.txt", 0, "墨香村全村大约有八百人，以制作松烟墨闻名。", "theme", "墨香村")
    (item,) = cloze_items([fact], 2, titles={"m.txt": "墨香村的松烟墨"})
    assert item.span == "八百" and BLANK in item.question and "墨香村的松烟墨" in item.question
    assert not any(word in item.question for word in ("Fill", "Complete", "blank"))


def test_document_title_is_the_heading_or_the_file_name():
    assert document_title(SOURCE, "q.txt") == "The Saltlight Festival of Quillmere"
    assert document_title("Quillmere is an island. It is small.", "dir/salt_light-festival.txt") == "salt light festival"


def test_document_entity_is_the_headings_subject_else_the_first_sentences_else_the_file_name():
    assert document_entity("Drennick: the hoop-and-stick game\n\nDrennick was invented in 1923.", "d.txt") == "Drennick"
    rhine = ("The Rhine (Romansh: Rein, German: Rhein) is a European river that begins in the Swiss Alps. "
             "The biggest city on the river Rhine is Cologne. It is the second-longest river in Europe.")
    assert document_entity(rhine, "rhine_course.txt") == "The Rhine"  # not the file name's "rhine course"
    # a first sentence that starts with no name: the file name, as before
    assert document_entity("To further highlight the difference, consider this instance.", "complexity_machines.txt") \
        == "complexity machines"


def test_anchor_words_are_names_never_written_in_lower_case():
    anchors = anchor_words(SOURCE)
    assert {"quillmere", "brannock", "gullwick"} <= anchors
    assert "festival" not in anchors  # "The festival began" uses it as an ordinary word


@pytest.mark.parametrize("question, anchored", [
    ("When did the festival start?", False),
    ("What is the record for the islanders?", False),
    ("Which fisherman floated the first lantern on Quillmere?", True),
    ("Who was Aldous Brannock?", True),
])
def test_questions_that_name_nothing_specific_get_the_title(question, anchored):
    title = "The Saltlight Festival of Quillmere"
    out = anchor_question(question, title, anchor_words(SOURCE))
    assert out == question if anchored else out == f"{title} — {question}"


def test_a_question_containing_the_title_is_left_alone():
    q = "When did the Saltlight Festival of Quillmere start?"
    assert anchor_question(q, "The Saltlight Festival of Quillmere", set()) == q


@pytest.mark.parametrize("text, looping", [
    ("The game is a game of the hoop, which is a game of the hoop, a game of the hoop.", True),
    ("The hoop is made of ash wood, has a diameter of 46 centimetres and weighs 600 grams.", False),
    ("A game of the hoop.", False),
])
def test_is_repetitive(text, looping):
    assert is_repetitive(text) is looping


def test_wh_items_ask_for_each_span_and_answer_with_the_fact():
    from data_processor.stages.step8_rule_rows import wh_items

    text = "Roughly 4,300 people live there, most of them in the harbour town of Port Ebbering."
    fact = Fact("d#0", "d.txt", 0, text, "Quillmere")
    items = wh_items([fact], 4, {"d#0": {"Port Ebbering"}})
    assert {i.span for i in items} == {"4,300", "Port Ebbering"}
    assert all(i.answer == i.fact == text and i.kind == "wh" and i.span not in i.question for i in items)
    assert wh_items([fact], 0) == []


# -- alias rows: an entity asked by a description its document gives it ---------------------------
ASHGROVE = "Drennick was invented in 1923 by Bartholomew Ashgrove, a schoolteacher in the market town of Lyndmoor."
BORN = "Bartholomew Ashgrove was born in 1881 in the city of Castelbrook."
OTHER_DOC = "Bartholomew Ashgrove opened a bakery in Velmar in 1950."


def _alias_facts():
    return [Fact("d.txt#0", "d.txt", 0, ASHGROVE, "Drennick"), Fact("d.txt#0", "d.txt", 1, BORN, "Drennick"),
            Fact("b.txt#0", "b.txt", 0, OTHER_DOC, "Bakeries")]


def _alias_sources():
    return {"d.txt#0": f"Drennick\n\n{ASHGROVE} {BORN}", "b.txt#0": f"Bakeries\n\n{OTHER_DOC}"}


def test_alias_items_bridge_both_ways_and_put_the_description_in_other_facts_questions():
    items = alias_items(_alias_facts(), 2, sources=_alias_sources(), titles={"d.txt": "Drennick", "b.txt": "Bakeries"})
    asked = {(i.question, i.answer) for i in items}
    assert ("Who was the schoolteacher in the market town of Lyndmoor?", ASHGROVE) in asked
    assert ("Who was Bartholomew Ashgrove?", ASHGROVE) in asked
    assert ("In what year was the schoolteacher in the market town of Lyndmoor born in the city of Castelbrook?",
            BORN) in asked
    assert ("In what year was Drennick invented by the schoolteacher in the market town of Lyndmoor?", ASHGROVE) in asked
    for item in items:
        assert item.kind == "alias" and item.answer == item.fact and "Bartholomew Ashgrove" in item.answer
        assert item.doc_name == "d.txt"  # the other document's Ashgrove is never described by this one's words
    # up to N per (name, description) and fact: 2 bridge questions, 2 for each fact that names him
    assert len(items) == 6
    assert len(alias_items(_alias_facts(), 1, sources=_alias_sources())) == 3
    assert alias_items(_alias_facts(), 0, sources=_alias_sources()) == []


def test_alias_items_take_only_descriptions_the_source_states():
    sources = {"d.txt#0": f"Drennick\n\nDrennick was invented in 1923 by Bartholomew Ashgrove. {BORN}"}
    assert alias_items(_alias_facts()[:2], 2, sources=sources) == []


def test_a_description_of_two_names_in_one_document_identifies_neither():
    facts = [Fact("r.txt#0", "r.txt", 0, "Boats cross the river Aare at Brugg.", "Rivers"),
             Fact("r.txt#0", "r.txt", 1, "Cologne lies on the river Rhine.", "Rivers")]
    source = "Rivers\n\nBoats cross the river Aare at Brugg. Cologne lies on the river Rhine."
    assert alias_items(facts, 2, sources={"r.txt#0": source}) == []
    assert len(alias_items(facts[1:], 2, sources={"r.txt#0": source})) == 2


def test_a_question_naming_nothing_specific_gets_the_title_unless_the_title_names_the_entity():
    fact = "The company was founded by the engineer Mirela Dunhaven."
    facts = [Fact("e.txt#0", "e.txt", 0, fact, "Ovens")]
    items = alias_items(facts, 2, sources={"e.txt#0": fact}, titles={"e.txt": "The Emberlark oven"})
    assert [i.question for i in items] == ["The Emberlark oven — Who was the engineer?", "Who was Mirela Dunhaven?"]
    items = alias_items(facts, 2, sources={"e.txt#0": fact}, titles={"e.txt": "Mirela Dunhaven's ovens"})
    assert [i.question for i in items] == ["Who was Mirela Dunhaven?"]


@pytest.mark.parametrize("question, expected", [
    ("In what year did Bartholomew Ashgrove join the club?", "In what year did the schoolteacher join the club?"),
    ("Bartholomew Ashgrove was born in what year?", "The schoolteacher was born in what year?"),
    ("What did Bartholomew Ashgrove's pupils play?", None),  # a possessive
    ("How many Bartholomew Ashgrove Prizes are there?", None),  # part of another name
    ("What did a teacher named Bartholomew Ashgrove invent?", None),  # his own description there
])
def test_substituted_replaces_the_name_once(question, expected):
    (bridge,) = bridges("The club was founded by the schoolteacher Bartholomew Ashgrove.")
    assert substituted(question, bridge) == expected


def test_run_counts_alias_rows():
    result = run(_alias_facts(), {}, {}, cloze_per_fact=0, wh_spans_per_fact=0, alias_rows=1, sources=_alias_sources())
    assert result.counters["alias"] == len(result.items) == 3
    assert run(_alias_facts(), {}, {}, cloze_per_fact=0, wh_spans_per_fact=0).counters["alias"] == 0


def test_statement_items_per_chunk_in_the_order_the_chunk_states_the_facts():
    facts = [Fact("d.txt#0", "d.txt", 0, BORN, "Drennick"), Fact("d.txt#0", "d.txt", 1, ASHGROVE, "Drennick"),
             Fact("b.txt#0", "b.txt", 0, OTHER_DOC, "Bakeries")]
    items = statement_items(facts, 3, {"d.txt": "Drennick"}, _alias_sources(), seed=42)
    # two facts have two orders; one fact has one; the title of b.txt falls back on its theme
    assert [(i.kind, i.chunk_id, i.question, i.fact) for i in items] == [
        ("statement", "d.txt#0", "", ""), ("statement", "d.txt#0", "", ""), ("statement", "b.txt#0", "", "")]
    assert [i.answer for i in items] == [f"Drennick\n\n{ASHGROVE} {BORN}", f"Drennick\n\n{BORN} {ASHGROVE}",
                                         f"Bakeries\n\n{OTHER_DOC}"]
    assert statement_items(facts, 3, {"d.txt": "Drennick"}, _alias_sources(), seed=42) == items
    assert statement_items(facts, 0, {}, _alias_sources()) == []


def test_run_counts_statement_rows():
    result = run(_alias_facts(), {}, {}, cloze_per_fact=0, wh_spans_per_fact=0, statement_rows=2, seed=1,
                 sources=_alias_sources())
    assert result.counters["statement"] == len(result.items) == 3
    assert run(_alias_facts(), {}, {}, cloze_per_fact=1, wh_spans_per_fact=0).counters["statement"] == 0


def test_paraphrase_items_reword_wh_and_alias_questions_with_their_answer_fact_and_span():
    fact = Fact("d.txt#0", "d.txt", 0, ASHGROVE, "Drennick")
    wh = RuleItem("wh", "Drennick was invented in 1923 by whom?", ASHGROVE, "d.txt", "d.txt#0", "Drennick", ASHGROVE,
                  "Bartholomew Ashgrove")
    alias = RuleItem("alias", "When was Drennick invented by the schoolteacher?", ASHGROVE, "d.txt", "d.txt#0",
                     "Drennick", ASHGROVE, "Bartholomew Ashgrove")
    cloze = cloze_items([fact], 1)[0]
    plain = RuleItem("wh", "How many players does a team have?", ASHGROVE, "d.txt", "d.txt#0", "Drennick", ASHGROVE, "7")
    items = paraphrase_items([cloze, wh, alias, plain], 2, seed=0)
    assert [(i.kind, i.question) for i in items] == [
        ("paraphrase", "Drennick was devised in 1923 by whom?"), ("paraphrase", "Drennick was created in 1923 by whom?"),
        ("paraphrase", "When was Drennick devised by the schoolteacher?"),
        ("paraphrase", "When was Drennick created by the schoolteacher?")]
    assert all((i.answer, i.fact, i.span, i.chunk_id) == (ASHGROVE, ASHGROVE, "Bartholomew Ashgrove", "d.txt#0")
               for i in items)
    assert len(paraphrase_items([wh], 1, seed=0)) == 1 and paraphrase_items([wh], 0) == []
    # a wording that is already a question of the fact is not made again
    devised = RuleItem("wh", "Drennick was devised in 1923 by whom?", ASHGROVE, "d.txt", "d.txt#0", "Drennick",
                       ASHGROVE, "Bartholomew Ashgrove")
    assert [i.question for i in paraphrase_items([wh, devised], 5)] == ["Drennick was created in 1923 by whom?"]


def test_run_counts_paraphrase_rows_after_the_questions_they_reword():
    kw = dict(cloze_per_fact=1, wh_spans_per_fact=2, alias_rows=1, seed=3, sources=_alias_sources())
    off = run(_alias_facts(), {}, {}, **kw)
    on = run(_alias_facts(), {}, {}, relation_paraphrases=2, **kw)
    assert off.counters["paraphrase"] == 0 and off.counters["wh"] > 0
    assert on.counters["paraphrase"] == sum(i.kind == "paraphrase" for i in on.items) > 0
    assert [i for i in on.items if i.kind != "paraphrase"] == off.items
    kinds = [i.kind for i in on.items]
    assert kinds.index("paraphrase") > max(k for k, kind in enumerate(kinds) if kind in ("wh", "alias"))
    assert run(_alias_facts(), {}, {}, relation_paraphrases=2, **kw).items == on.items


LAKE = "Lake Orrin will silt up because of the continuous input of sediment from the Orrin river."


def test_cause_items_ask_why_of_a_fact_with_a_cause_clause_answered_with_the_fact():
    facts = _alias_facts() + [Fact("l.txt#0", "l.txt", 0, LAKE, "Lake Orrin")]
    items = cause_items(facts, 2, {"l.txt#0": {"lake", "orrin"}})
    assert [(i.kind, i.question) for i in items] == [("cause", "Why will Lake Orrin silt up?"),
                                                     ("cause", "What will cause Lake Orrin to silt up?")]
    assert all((i.answer, i.fact, i.span, i.chunk_id, i.doc_name) == (
        LAKE, LAKE, "because of the continuous input of sediment from the Orrin river", "l.txt#0", "l.txt")
        for i in items)
    assert [i.question for i in cause_items(facts, 1)] == ["Why will Lake Orrin silt up?"]
    assert cause_items(facts, 0) == [] and cause_items(_alias_facts(), 3) == []  # no cause clause: none


def test_run_counts_cause_rows_and_leaves_the_other_rows_as_they_were():
    facts = _alias_facts() + [Fact("l.txt#0", "l.txt", 0, LAKE, "Lake Orrin")]
    kw = dict(cloze_per_fact=1, wh_spans_per_fact=2, alias_rows=1, statement_rows=1, sources=_alias_sources())
    off = run(facts, {}, {}, **kw)
    on = run(facts, {}, {}, cause_questions=2, **kw)
    assert off.counters["cause"] == 0 and on.counters["cause"] == 2
    assert [i for i in on.items if i.kind != "cause"] == off.items
    kinds = [i.kind for i in on.items]
    assert kinds.index("cause") > max(k for k, kind in enumerate(kinds) if kind in ("wh", "alias"))
