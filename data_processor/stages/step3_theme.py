"""Stage 3: one short theme (topic) per chunk; it steers the facts, QA and roles prompts."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import PurePosixPath

from ..parsing import ParseError, ask_with_repair, check_usable, first_line
from ..prompts import PromptTemplate
from . import StageResult
from .step2_chunk import Chunk

STAGE = "theme"
MAX_NEW_TOKENS = 32
MAX_WORDS = 12
_PREFIX = re.compile(r"^(?:the\s+)?(?:topic|theme|主题)(?:\s+of\s+this\s+text)?\s*(?:is|[:：])\s*", re.I)


def build_prompts(chunks: list[Chunk], template: PromptTemplate) -> list[list[dict]]:
    return [template.render(text=c.text) for c in chunks]


def parse_theme(reply: str) -> str:
    """The first line without a "Topic:" prefix, cut to :data:`MAX_WORDS` words (or 40 CJK characters)."""
    line = _PREFIX.sub("", first_line(reply)).strip(" .。")
    if not line:
        raise ParseError("the reply was empty")
    check_usable(line)
    words = line.split()
    if len(words) > MAX_WORDS:
        line = " ".join(words[:MAX_WORDS])
    return line[:80] if len(words) > 1 else line[:40]


def fallback_theme(doc_name: str) -> str:
    """A theme from the file name (``saltlight_festival.txt`` -> ``saltlight festival``)."""
    return re.sub(r"[_\-.]+", " ", PurePosixPath(doc_name).stem).strip() or doc_name


def run(llm, chunks: list[Chunk], template: PromptTemplate, max_repairs: int = 1) -> StageResult[list[str]]:
    """Themes for ``chunks`` (the file name stands in where the model's reply was unusable).

    Counters: ``parse_failures``, ``from_file_name``.
    """
    themes, failures = ask_with_repair(
        llm, STAGE, build_prompts(chunks, template), lambda reply, _i: parse_theme(reply),
        template.repair_message, max_repairs,
    )
    out = [t if t else fallback_theme(c.doc_name) for t, c in zip(themes, chunks)]
    return StageResult(out, Counter(parse_failures=failures, from_file_name=sum(1 for t in themes if not t)))
