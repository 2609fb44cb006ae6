"""Stage 2: split a document into chunks of at most ``chunk_size`` model tokens, with overlap.

Chunks break at sentence ends (and prefer paragraph ends); only a sentence longer than a whole
chunk is cut mid-sentence, at a token boundary. Chunks are slices of the original text, so no
whitespace or character is lost or invented. A chunk of a paged document (PDF, PPTX) is named by the
page or slide where it starts (``report.pdf#p12``), so each row traces back to its page.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A sentence ends at . ! ? (then whitespace) or at a CJK full stop (no space needed), or a line break
# that starts a new paragraph. Closing quotes/brackets stay with their sentence.
_SENT_END = re.compile(r"(?:[.!?][\"'”’)\]]*(?=\s)|[。！？；][」』”’）]*|\n\s*\n)")
_ABBREV = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|No|vs|etc|Inc|Ltd|Co|Corp|Gen|Col|Lt|Sgt|Rev|Fig|Eq|approx|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e)|\b[A-Z])\.$"
)


class TokenCounter(Protocol):
    """How chunking measures text: the model's tokenizer, or words for tests and the API backend."""

    def count(self, texts: list[str]) -> list[int]: ...

    def boundaries(self, text: str) -> list[int]:
        """Character offsets where each token ends (ascending, the last one ``len(text)``)."""
        ...


class WordCounter:
    """Counts words (each CJK character is a word); no model needed."""

    _TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")

    def count(self, texts: list[str]) -> list[int]:
        return [len(self._TOKEN.findall(t)) for t in texts]

    def boundaries(self, text: str) -> list[int]:
        ends = [m.end() for m in self._TOKEN.finditer(text)]
        return ends[:-1] + [len(text)] if ends else [len(text)]


class HFTokenCounter:
    """Counts tokens with a (fast) transformers tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in enc]

    def boundaries(self, text: str) -> list[int]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ends = sorted({end for _, end in enc["offset_mapping"] if end > 0})
        return ends[:-1] + [len(text)] if ends else [len(text)]


@dataclass(frozen=True)
class Chunk:
    doc_name: str
    index: int
    text: str
    n_tokens: int
    label: str = ""  # where it starts in a paged document: "p12", "p12.2" (the 2nd chunk starting there), "s3"

    @property
    def chunk_id(self) -> str:
        return f"{self.doc_name}#{self.label or self.index}"


def page_labels(starts: list[int], pages: Sequence[tuple[int, str]]) -> list[str]:
    """The label of the page each offset of ``starts`` lies on (``pages``: ascending ``(offset, label)`` of
    each page's first character); the n-th label of one page (n >= 2) gets ``.n``, so labels are unique."""
    offsets = [o for o, _ in pages]
    seen: dict[str, int] = {}
    labels = []
    for s in starts:
        page = pages[max(bisect_right(offsets, s) - 1, 0)][1]
        seen[page] = seen.get(page, 0) + 1
        labels.append(page if seen[page] == 1 else f"{page}.{seen[page]}")
    return labels


def sentence_spans(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, ends_paragraph)`` for each sentence; the spans tile ``text`` exactly."""
    spans: list[tuple[int, int, bool]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        end = m.end()
        if m.group(0).strip() == "" or "\n" in m.group(0):  # paragraph break
            if end > start:
                spans.append((start, end, True))
                start = end
            continue
        if _ABBREV.search(text[max(start, end - 8) : end]):  # "Dr." or "J." is not a sentence end
            continue
        # Swallow the whitespace after the sentence; a blank line there ends the paragraph too.
        ws = re.match(r"\s*", text[end:]).group(0)
        para = "\n" in ws and ws.count("\n") >= 2
        spans.append((start, end + len(ws), para))
        start = end + len(ws)
    if start < len(text):
        spans.append((start, len(text), True))
    return [s for s in spans if s[1] > s[0]]


def _hard_split(text: str, start: int, end: int, max_tokens: int, counter: TokenCounter) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` at token boundaries into pieces of at most ``max_tokens`` tokens."""
    ends = counter.boundaries(text[start:end])
    pieces, piece_start = [], 0
    for k in range(max_tokens - 1, len(ends), max_tokens):
        pieces.append((start + piece_start, start + ends[k]))
        piece_start = ends[k]
    if start + piece_start < end:
        pieces.append((start + piece_start, end))
    return pieces


def chunk_text(
    text: str, counter: TokenCounter, chunk_size: int = 512, overlap: int = 64, doc_name: str = "",
    pages: Sequence[tuple[int, str]] = (),
) -> list[Chunk]:
    """Split ``text`` into chunks.

    Args:
        text: the document.
        counter: measures tokens (the model's tokenizer via :class:`HFTokenCounter`).
        chunk_size: the most tokens a chunk may have (measured per sentence, so a chunk's exact
            token count can differ by a token or two where sentences meet).
        overlap: up to this many tokens of whole sentences at the end of a chunk are repeated at the
            start of the next, so a fact that straddles a cut is still seen whole once.
        doc_name: recorded in each :class:`Chunk`.
        pages: for a paged document, ``(offset, label)`` where each page starts (``Document.pages``);
            each chunk is then labelled by the page of its first character (see :func:`page_labels`).
    Raises:
        ValueError: ``chunk_size < 1``, ``overlap < 0`` or ``overlap >= chunk_size``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if overlap < 0 or overlap >= chunk_size:
        raise ValueError(f"overlap must be in [0, chunk_size), got {overlap} with chunk_size {chunk_size}")
    units: list[tuple[int, int, bool]] = []
    sents = sentence_spans(text)
    for (s, e, para), n in zip(sents, counter.count([text[s:e] for s, e, _ in sents])):
        if n <= chunk_size:
            units.append((s, e, para))
            continue
        pieces = _hard_split(text, s, e, chunk_size, counter)
        units.extend((ps, pe, para and k == len(pieces) - 1) for k, (ps, pe) in enumerate(pieces))
    counts = counter.count([text[s:e] for s, e, _ in units])
    # Blank units (whitespace between paragraphs) cost nothing and never start a chunk.
    chunks: list[Chunk] = []
    starts: list[int] = []  # offset of each chunk's first character
    i = 0
    while i < len(units):
        while i < len(units) and not text[units[i][0] : units[i][1]].strip():
            i += 1
        if i >= len(units):
            break
        total, j = 0, i
        while j < len(units) and total + counts[j] <= chunk_size:
            total += counts[j]
            j += 1
        j = max(j, i + 1)  # a unit is never larger than chunk_size, but be safe
        # Prefer ending at a paragraph end if one lies in the second half of the chunk.
        if j < len(units) and not units[j - 1][2]:
            acc, para_end = 0, None
            for k in range(i, j - 1):
                acc += counts[k]
                if units[k][2] and acc >= total / 2:
                    para_end = k + 1
            if para_end is not None:
                j = para_end
        raw = text[units[i][0] : units[j - 1][1]]
        body = raw.strip()
        if body:
            chunks.append(Chunk(doc_name, len(chunks), body, sum(counts[i:j])))
            starts.append(units[i][0] + len(raw) - len(raw.lstrip()))
        if j >= len(units):
            break
        # Next chunk: back up over whole sentences worth at most `overlap` tokens, always moving on.
        nxt, acc = j, 0
        while overlap and nxt - 1 > i and acc + counts[nxt - 1] <= overlap:
            nxt -= 1
            acc += counts[nxt]
        i = nxt
    if pages:
        chunks = [replace(c, label=label) for c, label in zip(chunks, page_labels(starts, pages))]
    return chunks
