"""The stages' pure parts: prompt templates and the parsers of each stage's replies."""
import pytest

from data_processor.chunking import Chunk
from data_processor.diversify import parse_rewrite
from data_processor.facts import Fact, parse_facts, split_facts, uncovered_sentences
from data_processor.parsing import ParseError
from data_processor.prompts import LANGUAGES, load_lines, load_template, parse_template
from data_processor.qa import SKIP, build_prompts, parse_qa
from data_processor.roles import fill_roles, parse_roles
from data_processor.theme import fallback_theme, parse_theme

from .test_parsing import EchoLLM

STAGES = ("theme", "facts", "qa", "roles", "diversify")
VALUES = dict(text="T.", theme="th", doc_theme="dt", fact="F.", angle="", n="2", role="r", question="Q?", answer="A.")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", STAGES)
def test_every_template_loads_and_renders(stage, language):
    t = load_template(stage, language)
    chat = t.render(**VALUES)
    assert chat[-1]["role"] == "user" and all(m["content"] for m in chat)
    assert "$" not in "".join(m["content"] for m in chat)
    assert "$error" not in t.repair_message("bad")
    assert load_lines("qa_angles", language) and len(load_lines("roles_fallback", language)) >= 5


def test_template_format_and_custom_prompt_dir(tmp_path):
    t = parse_template("comment\n### system\nS $x\n### user\nU {json} $y\n### repair\nR $error")
    assert t.render(x="1", y="2") == [{"role": "system", "content": "S 1"}, {"role": "user", "content": "U {json} 2"}]
    assert t.repair_message("oops") == "R oops"
    with pytest.raises(KeyError, match=r"\$y"):
        t.render(x="1")
    with pytest.raises(ValueError):
        parse_template("### assistant\nonly an answer")
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "theme.txt").write_text("### user\nMine: $text")
    assert load_template("theme", "en", tmp_path).render(text="x")[0]["content"] == "Mine: x"
    assert load_template("facts", "en", tmp_path).source.endswith("prompts/en/facts.txt")  # falls back
    with pytest.raises(FileNotFoundError):
        load_template("theme", "fr")


@pytest.mark.parametrize("reply, expected", [
    ("Drennick: The Hoop-and-Stick Game", "Drennick: The Hoop-and-Stick Game"),
    ("Topic: The Saltlight Festival.", "The Saltlight Festival"),
    ("The topic of this text is glaciers", "glaciers"),
    ('"Quillmere"\nmore text', "Quillmere"),
    ("one two three four five six seven eight nine ten eleven twelve thirteen", "one two three four five six seven eight nine ten eleven twelve"),
])
def test_parse_theme(reply, expected):
    assert parse_theme(reply) == expected


@pytest.mark.parametrize("reply", ["", "  \n", "{{{ ]]", "I'm sorry, I cannot help with that."])
def test_parse_theme_rejects(reply):
    with pytest.raises(ParseError):
        parse_theme(reply)


def test_fallback_theme():
    assert fallback_theme("dir/saltlight_festival-2023.txt") == "saltlight festival 2023"


def test_parse_facts_splits_copied_paragraphs_and_drops_noise():
    reply = ("Here are the facts:\n- Drennick: the hoop-and-stick game\n"
             "- The hoop is made of ash wood. It weighs 600 grams.\n- The hoop is made of ash wood.\n- Too short.\n"
             '["ignored because lines won"')
    assert parse_facts(reply) == ["The hoop is made of ash wood.", "It weighs 600 grams."]
    assert parse_facts('["The IDF was founded in 1958.", "It has 31 member nations."]') == [
        "The IDF was founded in 1958.", "It has 31 member nations."]
    with pytest.raises(ParseError):
        parse_facts("Sure!\n\n")


def test_uncovered_sentences_fill_what_the_generator_skipped():
    chunk = "The IDF was founded in 1958. Its headquarters are in Castelbrook. It has 31 member nations."
    assert uncovered_sentences(chunk, ["The IDF was founded in 1958.", "The IDF has 31 member nations."]) == [
        "Its headquarters are in Castelbrook."]
    assert split_facts(["北京是中华人民共和国的首都。上海是中国最大的城市。"]) == ["北京是中华人民共和国的首都。", "上海是中国最大的城市。"]


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


def test_parse_roles_and_fill():
    assert parse_roles("1. a tourist\n2. A historian.\n- a tourist\nRole: a student") == ["a tourist", "A historian", "a student"]
    with pytest.raises(ParseError):
        parse_roles("I'm sorry, I can't.")
    roles, used = fill_roles(["a tourist"], 3, ["a tourist", "a teacher", "a pilot"], "doc.txt")
    assert len(roles) == 3 and roles[0] == "a tourist" and len(set(roles)) == 3 and used == 2
    assert fill_roles([], 2, ["x", "y", "z"], "doc.txt") == fill_roles([], 2, ["x", "y", "z"], "doc.txt")


@pytest.mark.parametrize("reply, ok", [
    ("When did they finish the Ostrel bridge?", True),
    ("Rewritten question: When did they open the Ostrel bridge", True),
    ("When was the Ostrel bridge opened?", False),  # a copy
    ("Who won the 1987 football cup?", False),  # lost the meaning
    ("When was the Ostrel bridge opened, in 1850?", False),  # adds a number
    ("The Ostrel bridge: a former NFL quarterback who was killed in a botched game, opened?", False),  # invents
    ("", False),
])
def test_parse_rewrite(reply, ok):
    original = "When was the Ostrel bridge opened?"
    if ok:
        assert parse_rewrite(reply, original, "a tourist").endswith("?")
    else:
        with pytest.raises(ParseError):
            parse_rewrite(reply, original, "a tourist")


def test_chunk_dataclass_id():
    assert Chunk("a/b.txt", 3, "t", 1).chunk_id == "a/b.txt#3"


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


def test_an_answer_that_states_another_fact_is_replaced_by_its_own_fact():
    """Chunk-grounded but wrong for this fact: with --answer_states_fact, kept with the fact sentence as
    the answer (or dropped)."""
    from data_processor import qa

    chunk = "In 2019 the islanders floated a record 3,016 lanterns. The record before was set in 2011."
    fact = Fact("c1", "d.txt", 0, "In 2019 the islanders floated a record 3,016 lanterns.", "th", "Saltlight")

    template = load_template("qa", "en")

    def ask(reply, **kw):  # one QA prompt, answered with ``reply``
        return qa.run(EchoLLM([reply]), [fact], {"c1": chunk}, template, [""], **kw)

    good = "Q: How many lanterns did the islanders float in 2019?\nA: 3,016 lanterns."
    pairs, counts = ask(good, grounding_threshold=0.75, answer_with_fact=True)
    assert pairs[0].answer == "3,016 lanterns." and counts["answers_from_fact"] == 0
    other = "Q: What record did the islanders set in 2019?\nA: The record was set in 2011."
    strict = dict(grounding_threshold=0.75, answer_states_fact=True)
    pairs, counts = ask(other, answer_with_fact=True, **strict)
    assert pairs[0].answer == fact.text and counts["answers_from_fact"] == 1
    pairs, counts = ask(other, **strict)
    assert pairs == [] and counts["grounding_dropped"] == 1
    # default: chunk-level grounding only, which this answer passes
    pairs, counts = ask(other, grounding_threshold=0.75, answer_with_fact=True)
    assert pairs[0].answer == "The record was set in 2011." and counts["answers_from_fact"] == 0
    pairs, _ = ask(other, grounding_threshold=0.0)  # filter off
    assert pairs[0].answer == "The record was set in 2011."
