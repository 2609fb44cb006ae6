"""Stage 5 (qa): parsing question/answer replies, variants, and the grounding checks."""
import pytest

from data_processor.parsing import ParseError
from data_processor.prompts import load_lines, load_template
from data_processor.stages.step4_facts import Fact
from data_processor.stages.step5_qa import SKIP, build_prompts, parse_qa
from data_processor.stages.step7_diversify import parse_rewrite
from tests.data_processor.test_parsing import EchoLLM


@pytest.mark.parametrize("reply, expected", [
    ("Q: When was it built?\nA: It was built in 1911.", ("When was it built?", "It was built in 1911.")),
    ("Question: When was it built\nAnswer: In 1911.", ("When was it built?", "In 1911.")),
    ("**Q:** When was it built?\n**A:** In 1911.", ("When was it built?", "In 1911.")),
    ("A: When was it built?\nA: In 1911.", ("When was it built?", "In 1911.")),  # seen from the 135M model
    ("When was it built?\nIt was built in 1911.", ("When was it built?", "It was built in 1911.")),
    ('```json\n{"question": "When was it built?", "answer": "In 1911."}\n```', ("When was it built?", "In 1911.")),
    ("问：它是哪一年建成的？\n答：它于1911年建成。", ("它是哪一年建成的？", "它于1911年建成。")),
    ("SKIP", SKIP),
    ("skip - this is not a fact", SKIP),
])
def test_parse_qa_formats(reply, expected):
    assert parse_qa(reply) == expected


@pytest.mark.parametrize("reply", [
    "A: It was built in 1911.",  # no question
    "Q: When was it built?",  # no answer
    "Q: When was it built?\nA: When was it built?",  # answer repeats question
    "Q: Who painted the Mona Lisa?\nA: Leonardo.",  # not about the fact (checked below)
])
def test_parse_qa_rejects(reply):
    with pytest.raises(ParseError):
        parse_qa(reply, fact="The Ostrel bridge was built in 1911.")


def test_qa_variants_get_different_prompts():
    facts = [Fact("a#0", "a", 0, "The bridge is 340 metres long.", "Bridge", "The Ostrel bridge")]
    t = load_template("qa", "en")
    chats, index = build_prompts(facts, 3, t, load_lines("qa_angles", "en"))
    assert index == [(0, 0), (0, 1), (0, 2)] and len({c[-1]["content"] for c in chats}) == 3
    assert "Topic: The Ostrel bridge" in chats[0][-1]["content"]


def test_questions_about_things_the_text_does_not_mention_are_rejected():
    source = "The Ostrel bridge crosses the river Lune. It was opened in 1911. The Ostrel bridge"
    fact = "The Ostrel bridge was opened in 1911."
    assert parse_qa("Q: When was the Ostrel bridge opened?\nA: In 1911.", fact, source, 0.5)
    with pytest.raises(ParseError, match="does not mention"):
        parse_qa("Q: When did the Eiffel Tower copy the Ostrel design of Gustave?\nA: In 1911.", fact, source, 0.5)
    assert parse_rewrite("When did they open the Ostrel bridge?", "When was the Ostrel bridge opened?", "a tourist", source, 0.5)
    with pytest.raises(ParseError):
        parse_rewrite("Was the Ostrel bridge opened by the Eiffel Tower crew from Paris?",
                      "When was the Ostrel bridge opened?", "a tourist", source, 0.5)


def test_copies_of_the_worked_example_are_rejected():
    from data_processor.parsing import proper_names

    names = proper_names(load_template("qa", "en").example_text)
    assert names == {"eiffel", "tower"}
    source = "The Lantern Warden of Quillmere is chosen every year. The Saltlight Festival"
    fact = "The Lantern Warden of Quillmere is chosen every year."
    with pytest.raises(ParseError, match="copies the example"):
        parse_qa("Q: Is the Lantern Warden chosen at the Eiffel Tower?\nA: Yes, every year.", fact, source, 0.5, names)
    assert parse_qa("Q: How often is the Lantern Warden chosen?\nA: Every year.", fact, source, 0.5, names)
    with pytest.raises(ParseError):
        parse_rewrite("Is the Lantern Warden the Eiffel Tower's keeper?", "Who is the Lantern Warden?", "a tourist",
                      source, 0.5, names)
    assert parse_qa("Q: Is the Lantern Warden chosen every year?\nA: The Lantern Warden is not a fact.", fact) == SKIP


def test_grounding_checks_answers_against_the_chunk():
    """An answer made of the chunk's words passes, also one that states another fact of the chunk: the
    check is on the chunk (with --fact_answers the fact sentence answers every generated question)."""
    from data_processor.stages import step5_qa as qa

    chunk = "In 2019 the islanders floated a record 3,016 lanterns. The record before was set in 2011."
    fact = Fact("c1", "d.txt", 0, "In 2019 the islanders floated a record 3,016 lanterns.", "th", "Saltlight")

    template = load_template("qa", "en")

    def ask(reply, **kw):  # one QA prompt, answered with ``reply``
        res = qa.run(EchoLLM([reply]), [fact], {"c1": chunk}, template, [""], **kw)
        return res.items, res.counters

    good = "Q: How many lanterns did the islanders float in 2019?\nA: 3,016 lanterns."
    pairs, counts = ask(good, grounding_threshold=0.75, answer_with_fact=True)
    assert pairs[0].answer == "3,016 lanterns." and counts["answers_from_fact"] == 0
    other = "Q: What record did the islanders set in 2019?\nA: The record was set in 2011."
    pairs, counts = ask(other, grounding_threshold=0.75, answer_with_fact=True)
    assert pairs[0].answer == "The record was set in 2011." and counts["answers_from_fact"] == 0
    pairs, _ = ask(other, grounding_threshold=0.0)  # filter off
    assert pairs[0].answer == "The record was set in 2011."


def test_anchor_questions_prefix_the_title_to_pairs_and_rewrites_that_name_nothing_specific():
    from data_processor.stages.step2_chunk import Chunk
    from data_processor.stages.step5_qa import QAPair, anchor_questions
    from data_processor.stages.step7_diversify import Rewrite

    chunk = Chunk("q.txt", 0, "The festival began in 1847 on Quillmere. The festival is held in May.", 16)
    fact = Fact(chunk.chunk_id, "q.txt", 0, "The festival began in 1847 on Quillmere.", "Festival")
    pairs = [QAPair(fact, 0, "When did the festival begin?", "In 1847."),
             QAPair(fact, 1, "When did the Quillmere festival begin?", "In 1847.")]
    rewrites = [Rewrite(0, "a tourist", "So when did it all begin?"), Rewrite(1, "a child", "What year on Quillmere?")]
    title = "The Saltlight Festival"
    anchored, rewritten = anchor_questions(pairs, rewrites, [chunk], {"q.txt": title})
    assert [p.question for p in anchored] == [f"{title} — When did the festival begin?",
                                              "When did the Quillmere festival begin?"]
    assert [r.question for r in rewritten] == [f"{title} — So when did it all begin?", "What year on Quillmere?"]
    assert [(p.fact, p.answer) for p in anchored] == [(p.fact, p.answer) for p in pairs]  # only questions change
