"""Stage 7: each persona asks each QA pair's question in its own words; the answer stays as it was.

Only the question is rewritten: a small generator that paraphrases an answer too often changes a
name or a number, and the fact must stay intact.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..parsing import (
    ParseError,
    ask_with_repair,
    check_usable,
    clean_line,
    content_words,
    finish_question,
    is_number,
    leaked_example_names,
    normalize,
    proper_names,
    strip_code_fences,
    support,
)
from ..prompts import PromptTemplate
from . import StageResult
from .step5_qa import QUESTION_SUPPORT, QAPair

STAGE = "diversify"
MAX_NEW_TOKENS = 48
_PREFIX = re.compile(
    r"^(?:rewritten question|rewritten|rewrite|new question|question|q|改写后的问题|改写|问题|问)\s*[:：]\s*", re.I
)


@dataclass(frozen=True)
class Rewrite:
    pair_index: int
    role: str
    question: str


def build_prompts(pairs: list[QAPair], roles_by_doc: dict[str, list[str]], template: PromptTemplate):
    """One prompt per (pair, role of the pair's document); returns ``(chats, index)``."""
    chats, index = [], []
    for pi, p in enumerate(pairs):
        for role in roles_by_doc.get(p.fact.doc_name, []):
            chats.append(template.render(role=role, question=p.question, answer=p.answer, theme=p.fact.theme,
                                         doc_theme=p.fact.doc_theme))
            index.append((pi, role))
    return chats, index


def parse_rewrite(reply: str, original: str, role: str = "", source: str | None = None, min_support: float = 0.0,
                  example_names: set[str] | frozenset = frozenset()) -> str:
    """The rewritten question. Raises :class:`ParseError` if it is missing, a copy of the original,
    shares too few content words with it to still ask the same thing, or adds content of its own
    (a small generator "rewrites" by inventing a new story, or a number)."""
    line = ""
    for ln in strip_code_fences(reply).splitlines():
        ln = _PREFIX.sub("", clean_line(ln)).strip().strip('"“”')
        if ln:
            line = ln
            break
    # Keep only the first question if the model went on talking.
    m = re.match(r"^(.*?[?？])", line)
    if m:
        line = m.group(1)
    q = finish_question(line)
    if len(q) < 8:
        raise ParseError("no question found")
    check_usable(q)
    if normalize(q) == normalize(original):
        raise ParseError("the question was not rewritten")
    orig, new = content_words(original), content_words(q)
    if orig and len(new & orig) / len(orig) < 0.3:
        raise ParseError("the rewritten question lost the meaning of the original")
    added = new - orig - content_words(role)
    if any(is_number(w) for w in added):
        raise ParseError("the rewritten question adds a number")
    if len(added) > max(3, len(orig) // 2):
        raise ParseError("the rewritten question adds things the original did not ask")
    if source is not None and support(q, f"{source} {original} {role}") < min_support:
        raise ParseError("the rewritten question asks about things the text does not mention")
    if source is not None and leaked_example_names(q, set(example_names), f"{source} {original} {role}"):
        raise ParseError("the rewrite copies the example instead of the question")
    return q


def run(llm, pairs: list[QAPair], roles_by_doc: dict[str, list[str]], template: PromptTemplate,
        *, max_repairs: int = 1, chunk_text: dict[str, str] | None = None,
        grounding_threshold: float = 0.0) -> StageResult[list[Rewrite]]:
    """Rewrites in pair order, then role order. Counters: ``parse_failures``, ``rewrites``.

    With ``chunk_text`` and a grounding threshold, a rewrite must also be about the source chunk.
    """
    chats, index = build_prompts(pairs, roles_by_doc, template)
    q_support = min(QUESTION_SUPPORT, grounding_threshold)
    names = proper_names(template.example_text) if grounding_threshold > 0 else set()

    def parse(reply: str, k: int) -> str:
        p = pairs[index[k][0]]
        source = f"{chunk_text[p.fact.chunk_id]} {p.fact.doc_theme}" if chunk_text is not None else None
        return parse_rewrite(reply, p.question, index[k][1], source, q_support, names)

    parsed, failures = ask_with_repair(llm, STAGE, chats, parse, template.repair_message, max_repairs)
    rewrites = [Rewrite(pi, role, q) for (pi, role), q in zip(index, parsed) if q]
    return StageResult(rewrites, Counter(parse_failures=failures, rewrites=len(rewrites)))
