"""Stage 6: ``personas_per_document`` personas per document, generated once and reused for its facts."""
from __future__ import annotations

import hashlib
import re
from collections import Counter

from ..parsing import ParseError, ask_with_repair, normalize, parse_lines, unique_usable
from ..prompts import PromptTemplate
from . import StageResult

STAGE = "roles"
MAX_NEW_TOKENS = 64
_LEAD = re.compile(r"^(?:role|persona|person|角色)\s*\d*\s*[:：]\s*", re.I)


def parse_roles(reply: str) -> list[str]:
    """Personas, one per line (or a JSON list); each 1-12 words. Raises :class:`ParseError` if none."""
    stripped = (_LEAD.sub("", item).strip(" .。") for item in parse_lines(reply))
    roles = unique_usable(r for r in stripped if r and len(r.split()) <= 12 and len(r) <= 80 and not r.endswith(":"))
    if not roles:
        raise ParseError("no personas found")
    return roles


def fill_roles(roles: list[str], n: int, fallback: list[str], doc_name: str) -> tuple[list[str], int]:
    """Exactly ``n`` distinct roles: the generated ones first, then fallback personas picked in a
    stable per-document order. Returns ``(roles, how_many_from_fallback)``."""
    out = list(roles[:n])
    seen = {normalize(r) for r in out}
    start = int(hashlib.sha256(doc_name.encode()).hexdigest(), 16) % max(1, len(fallback))
    used = 0
    for k in range(len(fallback)):
        if len(out) >= n:
            break
        cand = fallback[(start + k) % len(fallback)]
        if normalize(cand) not in seen:
            out.append(cand)
            seen.add(normalize(cand))
            used += 1
    return out, used


def run(
    llm,
    doc_themes: dict[str, str],
    template: PromptTemplate,
    fallback: list[str],
    *,
    amount: int,
    max_repairs: int = 1,
) -> StageResult[dict[str, list[str]]]:
    """Roles per document name. Counters: ``parse_failures``, ``fallback`` (stock personas used)."""
    counts = Counter()
    if amount <= 0 or not doc_themes:
        return StageResult({d: [] for d in doc_themes}, counts)
    names = list(doc_themes)
    chats = [template.render(theme=doc_themes[d], n=str(amount)) for d in names]
    parsed, counts["parse_failures"] = ask_with_repair(
        llm, STAGE, chats, lambda reply, _i: parse_roles(reply), template.repair_message, max_repairs
    )
    result = {}
    for d, roles in zip(names, parsed):
        result[d], used = fill_roles(roles or [], amount, fallback, d)
        counts["fallback"] += used
    return StageResult(result, counts)
