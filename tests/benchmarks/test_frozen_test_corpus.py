"""The writing rules of the frozen test corpus v2 (examples/test_corpus_v2/README.md), checked on the shipped files.

A question that copies four words of its document can be answered by pattern completion rather than by
knowing the fact, and a question that names every entity tests one hop only; these tests keep a later
edit from quietly breaking either rule.
"""
from __future__ import annotations

import json
import re

import pytest

from benchmarks.knowledge import CORPORA
from benchmarks.knowledge_misses import WHY_HOW
from evaluation.runner import load_qa_file
from evaluation.scoring import normalize_answer
from utils.recipe import REPO_ROOT

DOCS_DIR, QA_FILE, CONTROL_FILE = (REPO_ROOT / p for p in CORPORA["test2"])


def four_grams(text: str) -> set[tuple[str, ...]]:
    """The 4-word sequences of ``text`` under two tokenisations, so neither an apostrophe ("mill's" as
    "mill s" or as "mill") nor an article lets a copied phrase slip through."""
    out = set()
    for words in (re.findall(r"\w+", text.lower()), normalize_answer(text).split()):
        out |= {tuple(words[i:i + 4]) for i in range(len(words) - 3)}
    return out


def occurs(needle: str, haystack: str) -> bool:
    """``needle`` is a run of whole words of ``haystack`` after answer normalisation (evaluation/scoring.py)."""
    n = normalize_answer(needle)
    return bool(n) and f" {n} " in f" {normalize_answer(haystack)} "


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in QA_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(DOCS_DIR.iterdir()) if p.suffix == ".txt"}


def test_the_checks_catch_a_copied_phrase_and_a_missing_answer():
    doc = "The mill's owners feared being tied to a long contract."
    assert four_grams("What had the mill's owners feared?") & four_grams(doc)  # "the mill s owners"
    assert four_grams("Who was tied to the long contract?") & four_grams(doc)  # "tied to long contract" without articles
    assert not four_grams("Why did the paper company hesitate?") & four_grams(doc)
    assert occurs("long contract", doc) and not occurs("short contract", doc) and not occurs("con", doc)
    assert WHY_HOW.search("How was the deadlock broken?") and not WHY_HOW.search("How many rafts were there?")


def test_documents_and_questions_are_enough_and_loadable(rows, docs):
    assert len(docs) >= 4
    assert all(450 <= len(text.split()) <= 550 for text in docs.values()), {n: len(t.split()) for n, t in docs.items()}
    assert len(rows) >= 40 and len({r["question"] for r in rows}) == len(rows)
    assert {r["doc"] for r in rows} == set(docs), "every question's doc exists and every document is asked about"
    assert min(sum(r["doc"] == name for r in rows) for name in docs) >= 10
    assert len(load_qa_file(str(QA_FILE))) == len(rows)  # the evaluation reads it, extra fields and all
    assert CONTROL_FILE.is_file()


def copied_phrases(rows: list[dict], docs: dict[str, str]) -> dict[str, list[tuple[str, ...]]]:
    """``question -> the 4-word runs it shares with its document``, for the questions that share any."""
    copied = {r["question"]: sorted(four_grams(r["question"]) & four_grams(docs[r["doc"]])) for r in rows}
    return {q: grams for q, grams in copied.items() if grams}


def test_no_question_copies_four_words_of_its_document(rows, docs):
    assert not copied_phrases(rows, docs)


def test_every_answer_is_stated_in_the_document_and_not_in_the_question(rows, docs):
    for r in rows:
        doc = docs[r["doc"]]
        assert r["answers"] and all(isinstance(a, str) and a.strip() for a in r["answers"]), r["question"]
        assert any(occurs(a, doc) for a in r["answers"]), r["question"]
        assert r["evidence"] in doc, f"evidence is not a verbatim quote of {r['doc']}: {r['evidence']!r}"
        assert any(occurs(a, r["evidence"]) for a in r["answers"]), f"evidence does not state: {r['question']}"
        assert not any(occurs(a, r["question"]) for a in r["answers"]), f"question gives its answer: {r['question']}"


def test_a_third_are_descriptive_and_a_fifth_ask_why_or_how(rows):
    assert all(isinstance(r["descriptive"], bool) for r in rows)
    assert 3 * sum(r["descriptive"] for r in rows) >= len(rows)
    assert 5 * sum(bool(WHY_HOW.search(r["question"])) for r in rows) >= len(rows)


def test_it_shares_no_question_with_the_first_test_corpus(rows):
    first = REPO_ROOT / CORPORA["test"][1]
    earlier = {json.loads(line)["question"].lower() for line in first.read_text(encoding="utf-8").splitlines()}
    assert not earlier & {r["question"].lower() for r in rows}
    assert not {p.name for p in (REPO_ROOT / CORPORA["test"][0]).iterdir()} & {p.name for p in DOCS_DIR.iterdir()}
