"""data_processor/statements.py: a chunk's facts as plain text, in document order and seeded shuffles."""
import pytest

from data_processor.statements import in_document_order, statement_texts

TITLE = "The Saltlight Festival of Quillmere"
FACTS = [
    "Quillmere is a small granite island in the Ostrand Sea.",
    "The Saltlight Festival began in 1847.",
    "Aldous Brannock floated the first salt lantern into Gullwick Bay.",
    "In 2019 the islanders floated 3,016 lanterns.",
]


def _body(text):
    title, blank, body = text.split("\n", 2)
    assert title == TITLE and blank == ""
    return body


def test_first_text_is_the_title_line_a_blank_line_and_the_facts_in_the_given_order():
    (text,) = statement_texts(FACTS, TITLE, 1, seed=42, key="q.txt#0")
    assert text == TITLE + "\n\n" + " ".join(FACTS)


def test_later_texts_are_distinct_shuffles_of_the_same_sentences():
    texts = statement_texts(FACTS, TITLE, 5, seed=42, key="q.txt#0")
    assert len(texts) == len(set(texts)) == 5
    assert texts[0] == TITLE + "\n\n" + " ".join(FACTS)
    for text in texts[1:]:
        body = _body(text)
        assert all(body.count(f) == 1 for f in FACTS) and len(body) == len(" ".join(FACTS))


def test_the_shuffles_are_reproducible_and_drawn_from_the_seed_and_the_chunk():
    a = statement_texts(FACTS, TITLE, 4, seed=42, key="q.txt#0")
    assert statement_texts(FACTS, TITLE, 4, seed=42, key="q.txt#0") == a
    assert statement_texts(FACTS, TITLE, 4, seed=7, key="q.txt#0")[1:] != a[1:]
    assert statement_texts(FACTS, TITLE, 4, seed=42, key="q.txt#1")[1:] != a[1:]
    assert statement_texts(FACTS, TITLE, 2, seed=42, key="q.txt#0") == a[:2]  # more texts extend, not reshuffle


def test_fewer_texts_when_the_facts_have_fewer_orders():
    assert statement_texts(FACTS[:1], TITLE, 3, seed=42) == [TITLE + "\n\n" + FACTS[0]]
    two = statement_texts(FACTS[:2], TITLE, 5, seed=42)
    assert two == [TITLE + "\n\n" + " ".join(FACTS[:2]), TITLE + "\n\n" + " ".join(FACTS[1::-1])]
    assert statement_texts([FACTS[0], FACTS[0]], TITLE, 3, seed=42) == [TITLE + "\n\n" + FACTS[0] + " " + FACTS[0]]


@pytest.mark.parametrize("facts, n", [(FACTS, 0), (FACTS, -1), ([], 3)])
def test_nothing_for_no_facts_or_no_rows(facts, n):
    assert statement_texts(facts, TITLE, n, seed=42) == []


def test_cjk_sentences_are_joined_without_a_space():
    facts = ["制墨的手艺是在1763年由陈伯衡带到村里的。", "做一块好墨要经过三十二道工序。"]
    assert statement_texts(facts, "徽墨村", 1, seed=1) == ["徽墨村\n\n" + "".join(facts)]


def test_in_document_order_follows_the_chunk_sentences_they_restate():
    source = TITLE + "\n\n" + " ".join(FACTS)
    # step4_facts: the generated facts (reworded, in any order), then the chunk's uncovered sentences
    generated_first = [FACTS[2], "The festival of saltlights began in 1847.", FACTS[0], FACTS[3]]
    assert in_document_order(generated_first, source) == [
        FACTS[0], "The festival of saltlights began in 1847.", FACTS[2], FACTS[3]]
    assert in_document_order(FACTS[::-1], "") == FACTS[::-1]  # no source: the given order
