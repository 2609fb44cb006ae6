"""Stage 5: ``qa_amount_per_fact`` question/answer pairs per fact, checked against the source chunk.

The model may answer SKIP for a line that is not a fact. A pair whose answer is not supported by
the chunk (see :func:`~data_processor.parsing.support`) is caught by the grounding filter: a small
generator invents names and numbers, and training on them would teach falsehoods. Such a pair is
dropped, or (``answer_with_fact``) kept with the fact sentence itself as its answer: its question
is about the fact (the parser checks that), and the fact is supported by the chunk.

Anchoring lives here too (:func:`anchor_questions`): a generated question that names nothing of its
document gets the document's title. The pipeline applies it to a wave's QA pairs and their persona
rewrites just before the rows are written, after the rewrites were made from the plain question.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from ..parsing import (
    ANCHOR_SEPARATOR,
    anchor_words,
    ParseError,
    ask_with_repair,
    check_usable,
    clean_line,
    content_words,
    extract_json,
    finish_question,
    is_repetitive,
    leaked_example_names,
    proper_names,
    strip_code_fences,
    support,
)
from ..prompts import PromptTemplate
from . import StageResult
from .step2_chunk import Chunk
from .step4_facts import Fact

STAGE = "qa"
MAX_NEW_TOKENS = 96
SKIP = "SKIP"
_NOT_A_FACT = re.compile(r"\bnot a fact\b|不是事实", re.I)
#: with the grounding filter on, at least this share of a question's content words must be in the
#: chunk (or the document's title); lower than for answers, since questions add words like "year"
QUESTION_SUPPORT = 0.5
_Q = re.compile(r"^\s*(?:\*\*)?(?:q|question|问题|问)\s*\d*\s*(?:\*\*)?\s*[:：.]\s*(?:\*\*)?\s*", re.I)
_A = re.compile(r"^\s*(?:\*\*)?(?:a|answer|答案|答)\s*\d*\s*(?:\*\*)?\s*[:：.]\s*(?:\*\*)?\s*", re.I)


@dataclass(frozen=True)
class QAPair:
    fact: Fact
    variant: int
    question: str
    answer: str


def build_prompts(facts: list[Fact], amount: int, template: PromptTemplate, angles: list[str]) -> tuple[list[list[dict]], list[tuple[int, int]]]:
    """``amount`` prompts per fact (variant 0 plain, later ones with an extra "angle" instruction).

    Returns ``(chats, index)`` where ``index[k] = (fact_position, variant)``.
    """
    chats, index = [], []
    for fi, fact in enumerate(facts):
        for v in range(amount):
            angle = "" if v == 0 or not angles else angles[(v - 1) % len(angles)]
            chats.append(template.render(fact=fact.text, theme=fact.theme, doc_theme=fact.doc_theme, angle=angle))
            index.append((fi, v))
    return chats, index


def parse_qa(reply: str, fact: str | None = None, source: str | None = None, min_support: float = 0.0,
             example_names: set[str] | frozenset = frozenset()) -> tuple[str, str] | str:
    """``(question, answer)`` from a ``Q:/A:`` or JSON reply, or :data:`SKIP`.

    Raises :class:`ParseError` for replies without both parts, (with ``fact``) a question that
    shares no content word with the fact, or (with ``source``) a question with less than
    ``min_support`` of its content words in the source text (a question about invented things) or
    with names from the prompt's worked example that the source lacks. An answer that says the
    fact "is not a fact" counts as :data:`SKIP`.
    """
    body = strip_code_fences(reply)
    if re.match(r"^\W*skip\b", body, re.I):
        return SKIP
    q = a = ""
    try:
        obj = extract_json(body, dict)
        lower = {str(k).lower(): v for k, v in obj.items()}
        q = str(lower.get("question") or lower.get("q") or "")
        a = str(lower.get("answer") or lower.get("a") or "")
    except ParseError:
        lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
        for i, ln in enumerate(lines):
            if not q and (_Q.match(ln) or (ln.rstrip().endswith(("?", "？")) and not _A.match(ln))):
                q = _Q.sub("", ln)
                rest = lines[i + 1 :]
                if rest:
                    a = _A.sub("", rest[0])
                break
            if not q and _A.match(ln) and ln.rstrip().endswith(("?", "？")):  # "A: question?" then "A: answer"
                q = _A.sub("", ln)
                if i + 1 < len(lines):
                    a = _A.sub("", lines[i + 1])
                break
    q, a = finish_question(clean_line(q)), clean_line(a)
    if not q or len(q) < 8:
        raise ParseError("no question found")
    if not a:
        raise ParseError("no answer found after the question")
    check_usable(q)
    check_usable(a)
    if a.upper() == SKIP or _NOT_A_FACT.search(a):
        return SKIP
    if a.rstrip("?？") == q.rstrip("?？"):
        raise ParseError("the answer repeats the question")
    if is_repetitive(q):
        raise ParseError("the question repeats itself")
    if fact is not None and content_words(fact) and not (content_words(q) & content_words(fact)):
        raise ParseError("the question is not about the fact")
    if source is not None and support(q, source) < min_support:
        raise ParseError("the question asks about things the text does not mention")
    if source is not None and leaked_example_names(f"{q} {a}", set(example_names), source):
        raise ParseError("the reply copies the example instead of using the fact")
    return q, a


def anchor_question(question: str, title: str, anchors: set[str]) -> str:
    """``question``, prefixed with the document's title when it names nothing specific to the document.

    Asked closed-book, "When did the festival start?" has no answer, and training on it teaches the
    model to answer *any* festival question with this document's date: the forgetting the control set
    measures. Naming the document keeps the new fact tied to its subject. ``anchors``: see
    :func:`~data_processor.parsing.anchor_words`.
    """
    if not title or content_words(question) & anchors or content_words(title) <= content_words(question):
        return question
    return f"{title}{ANCHOR_SEPARATOR}{question}"


def anchor_questions(pairs: list[QAPair], rewrites: list, chunks: list[Chunk],
                     titles: dict[str, str]) -> tuple[list[QAPair], list]:
    """A wave's QA pairs and persona rewrites (``Rewrite`` of step 7, whose ``pair_index`` points into
    ``pairs``) with :func:`anchor_question` applied to every question: the title is the document's
    (``titles``: document name -> title), the anchors are the words of the fact's chunk (``chunks``)."""
    anchors = {c.chunk_id: anchor_words(c.text) for c in chunks}

    def anchored(question: str, fact: Fact) -> str:
        return anchor_question(question, titles[fact.doc_name], anchors[fact.chunk_id])

    pairs = [replace(p, question=anchored(p.question, p.fact)) for p in pairs]
    return pairs, [replace(r, question=anchored(r.question, pairs[r.pair_index].fact)) for r in rewrites]


def run(
    llm,
    facts: list[Fact],
    chunk_text: dict[str, str],
    template: PromptTemplate,
    angles: list[str],
    *,
    amount: int = 1,
    max_repairs: int = 1,
    grounding_threshold: float = 0.0,
    answer_with_fact: bool = False,
) -> StageResult[list[QAPair]]:
    """QA pairs for ``facts``, in fact order, then variant order.

    Counters: ``parse_failures``, ``skipped`` (SKIP replies), ``grounding_dropped``,
    ``answers_from_fact`` and ``pairs``.
    """
    chats, index = build_prompts(facts, amount, template, angles)
    q_support = min(QUESTION_SUPPORT, grounding_threshold)
    names = proper_names(template.example_text) if grounding_threshold > 0 else set()

    def parse(reply: str, k: int):
        fact = facts[index[k][0]]
        return parse_qa(reply, fact.text, f"{chunk_text[fact.chunk_id]} {fact.doc_theme}", q_support, names)

    parsed, failures = ask_with_repair(llm, STAGE, chats, parse, template.repair_message, max_repairs)
    pairs: list[QAPair] = []
    counts = Counter(parse_failures=failures)
    for (fi, v), res in zip(index, parsed):
        if res is None:
            continue
        if res == SKIP:
            counts["skipped"] += 1
            continue
        q, a = res
        fact = facts[fi]
        # A looping answer ("a game of the X, which is a game of the X, ...") can be made only of the
        # chunk's words: the grounding check passes it, so it is judged on its own.
        if grounding_threshold > 0 and (
                support(a, chunk_text[fact.chunk_id]) < grounding_threshold or is_repetitive(a)):
            if not answer_with_fact or support(fact.text, chunk_text[fact.chunk_id]) < grounding_threshold:
                counts["grounding_dropped"] += 1
                continue
            a = fact.text
            counts["answers_from_fact"] += 1
        pairs.append(QAPair(fact, v, q, a))
    counts["pairs"] = len(pairs)
    return StageResult(pairs, counts)
