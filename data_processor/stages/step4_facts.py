"""Stage 4: the discrete, self-contained facts of each chunk, informed by its theme.

Small generators often copy a whole paragraph onto one line; every reply is therefore split into
sentences, and each sentence that the chunk supports becomes one fact. They also stop early: with
``add_uncovered_sentences`` the chunk's own sentences that no generated fact covers are added, so
every fact of the document is asked about (coverage is what makes fact-based QA work).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..parsing import ParseError, ask_with_repair, clean_line, parse_lines, proper_names, support, unique_usable
from ..prompts import PromptTemplate
from ..rules import resolve_pronoun
from . import StageResult
from .step2_chunk import Chunk, sentence_spans

STAGE = "facts"
MIN_WORDS, MAX_WORDS = 4, 80  # CJK: characters / 2
_META = ("here are", "facts:", "the facts", "sure", "以下是", "事实如下")
_END = re.compile(r"[.!?。！？…\"'”’)）]$")
COVERED = 0.6  # a chunk sentence counts as covered when this share of its words is in the facts


@dataclass(frozen=True)
class Fact:
    chunk_id: str
    doc_name: str
    index: int  # position among the chunk's facts
    text: str
    theme: str  # the chunk's
    doc_theme: str = ""


def build_prompts(chunks: list[Chunk], themes: list[str], doc_themes: list[str], template: PromptTemplate) -> list[list[dict]]:
    return [template.render(text=c.text, theme=t, doc_theme=d) for c, t, d in zip(chunks, themes, doc_themes)]


def _size(text: str) -> int:
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    return len(text.split()) + cjk // 2


def split_facts(items: list[str]) -> list[str]:
    """Split items into sentences; drop meta lines, headings, fragments and duplicates."""

    def sentences():
        for item in items:
            for s, e, _ in sentence_spans(item):
                sent = clean_line(item[s:e])
                if not sent or any(sent.lower().startswith(m) for m in _META) or sent.endswith((":", "：")):
                    continue
                size = _size(sent)
                if MIN_WORDS <= size <= MAX_WORDS and (size >= 8 or _END.search(sent)):  # short and open: a heading
                    yield sent

    return unique_usable(sentences())


def parse_facts(reply: str) -> list[str]:
    """Facts from a one-per-line or JSON-list reply. Raises :class:`ParseError` if there are none."""
    facts = split_facts(parse_lines(reply))
    if not facts:
        raise ParseError("no fact sentences found")
    return facts


def uncovered_sentences(chunk_text: str, facts: list[str]) -> list[str]:
    """The chunk's sentences whose content the ``facts`` do not already state."""
    joined = " ".join(facts)
    return [s for s in split_facts([chunk_text]) if support(s, joined) < COVERED]


def self_contained(facts: list[str], chunk_text: str, entity: str) -> list[str]:
    """``facts`` with leading pronouns resolved against the chunk sentences before each fact's own."""
    sentences = [chunk_text[s:e].strip() for s, e, _ in sentence_spans(chunk_text)]
    names = proper_names(chunk_text)
    out = []
    for fact in facts:
        at = max(range(len(sentences)), key=lambda i: support(fact, sentences[i]), default=0)
        out.append(resolve_pronoun(fact, sentences[:at], entity, names))
    return out


def run(
    llm,
    chunks: list[Chunk],
    themes: list[str],
    doc_themes: list[str],
    template: PromptTemplate,
    *,
    max_repairs: int = 1,
    max_facts: int = 12,
    grounding_threshold: float = 0.0,
    add_uncovered_sentences: bool = True,
    entities: dict[str, str] | None = None,
) -> StageResult[list[list[Fact]]]:
    """Facts per chunk. Counters: ``parse_failures``, ``ungrounded`` (generated facts the chunk does not
    support, dropped), ``from_sentences`` (the chunk's own sentences added), ``facts``.

    Args:
        max_facts: keep at most this many facts per chunk (generated ones first).
        grounding_threshold: drop generated facts with less than this share of content words in
            the chunk (see :func:`~data_processor.parsing.support`).
        add_uncovered_sentences: add the chunk's sentences that no generated fact covers.
        entities: document name -> what the document is about; given, a fact's leading pronoun is
            replaced by what it refers to (:func:`~data_processor.rules.resolve_pronoun`). Counter
            ``pronouns_resolved``.
    """
    stats = Counter()
    parsed, stats["parse_failures"] = ask_with_repair(
        llm, STAGE, build_prompts(chunks, themes, doc_themes, template), lambda reply, _i: parse_facts(reply),
        template.repair_message, max_repairs,
    )
    result: list[list[Fact]] = []
    for chunk, theme, doc_theme, facts in zip(chunks, themes, doc_themes, parsed):
        facts = facts or []
        kept = [f for f in facts if support(f, chunk.text) >= grounding_threshold]
        stats["ungrounded"] += len(facts) - len(kept)
        if add_uncovered_sentences:
            extra = uncovered_sentences(chunk.text, kept)[: max(0, max_facts - len(kept))]
            stats["from_sentences"] += len(extra)
            kept += extra
        kept = kept[:max_facts]
        if entities is not None:
            resolved = self_contained(kept, chunk.text, entities.get(chunk.doc_name, ""))
            stats["pronouns_resolved"] += sum(a != b for a, b in zip(kept, resolved))
            kept = resolved
        result.append([Fact(chunk.chunk_id, chunk.doc_name, i, f, theme, doc_theme) for i, f in enumerate(kept)])
        stats["facts"] += len(result[-1])
    return StageResult(result, stats)
