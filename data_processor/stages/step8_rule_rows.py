"""Stage 8 (no LLM): fill-in-the-blank rows made from each fact sentence.

For every fact, the names and numbers it states are blanked one at a time, and the row asks the model
to complete the sentence; the answer is the whole fact. This is the generator-independent half of
the training data: a 135M generator writes vague or off-topic questions for many facts ("What is the
record for the islanders?"), but a blanked name or number is always a question about exactly that
fact, keyed by the fact's own context words, which is what a closed-book question later supplies.
Recalling a span from the rest of its sentence is the knowledge-augmentation idea of Allen-Zhu & Li
(Physics of LMs 3.1) in its cheapest form; the QA rows teach the question-answer format.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..parsing import _STOP_EN
from . import StageResult
from .step4_facts import Fact

STAGE = "cloze"
BLANK = "____"
#: prompt wordings, rotated per fact so the model does not learn one fixed frame
TEMPLATES = (
    'Fill in the blank in this statement about {title}: "{text}"',
    'Complete the sentence about {title}: "{text}"',
    'What belongs in the blank? ({title}) "{text}"',
)
# A number: 1923, 3,016, 4.5, 22nd. Not part of a word (e.g. "R2D2").
_NUMBER = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:st|nd|rd|th)?(?!\w)")
# A run of capitalised words, allowing short joiners inside ("University of Velmar", "Leonardo da Vinci").
_NAME_RUN = re.compile(
    r"(?<![\w'-])[A-Z][\w'-]*(?:\s+(?:(?:of|the|de|da|van|von|and|du|del|la|le)\s+)*[A-Z][\w'-]*)*")
# A lower-case term the text introduces by name: "which she called ice-harps", "a dish known as ..."
_INTRODUCED = re.compile(r"\b(?:called|named|known as)\s+(?:(?:the|a|an)\s+)?(?!(?:the|a|an)\b)([a-z][\w-]+)")
# ordinary words that are capitalised only because they start the sentence
_LEADING = _STOP_EN | frozenset("while since because although though however".split())


@dataclass(frozen=True)
class ClozeItem:
    fact: Fact
    question: str  # the prompt with the blank
    span: str  # what was blanked


def blank_spans(sentence: str, known_names: set[str] | None = None) -> list[tuple[int, int]]:
    """Character spans of the names and numbers in ``sentence`` worth blanking, in order, not overlapping.

    Sentence-initial capitals are dropped when they are ordinary words ("The", "In", "Each");
    a name run starting with one keeps the rest ("The IDF World Championship" -> "IDF World Championship").
    A lone capitalised first word is kept only if it is one of ``known_names`` (lower-cased words seen
    capitalised mid-sentence in the source, see :func:`~data_processor.parsing.proper_names`):
    "Quillmere is ..." yes, "Musicians play ..." no.
    """
    spans: list[tuple[int, int]] = []
    for m in _NAME_RUN.finditer(sentence):
        start, text = m.start(), m.group(0)
        words = text.split()
        while words and words[0].lower() in _LEADING:
            start += len(words[0])
            start += len(sentence[start:]) - len(sentence[start:].lstrip())
            words = words[1:]
        if not words:
            continue
        at_start = not sentence[:start].strip()
        if at_start and len(words) == 1 and words[0].lower() not in (known_names or ()):
            continue
        spans.append((start, m.end()))
    spans += [m.span() for m in _NUMBER.finditer(sentence)]
    spans += [m.span(1) for m in _INTRODUCED.finditer(sentence)]
    spans.sort()
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s < out[-1][1]:
            continue
        # a blank that hides most of the sentence leaves nothing to recall it from
        if (e - s) > 0.5 * len(sentence):
            continue
        out.append((s, e))
    return out


def document_title(first_text: str, doc_name: str) -> str:
    """The document's heading (its first line when that is short and not a sentence), else its file name."""
    line = next((ln.strip() for ln in first_text.splitlines() if ln.strip()), "")
    if line and len(line.split()) <= 14 and not line.endswith((".", "。")):
        return line
    stem = doc_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[_-]+", " ", stem).strip() or doc_name


def run(facts: list[Fact], per_fact: int, titles: dict[str, str] | None = None,
        names: dict[str, set[str]] | None = None) -> StageResult[list[ClozeItem]]:
    """:func:`build_items` as a stage. Counters: ``rows``."""
    items = build_items(facts, per_fact, titles, names)
    return StageResult(items, Counter(rows=len(items)))


def build_items(facts: list[Fact], per_fact: int, titles: dict[str, str] | None = None,
                names: dict[str, set[str]] | None = None) -> list[ClozeItem]:
    """Up to ``per_fact`` fill-in-the-blank items per fact (the first spans in reading order).

    ``titles`` maps a document name to the title the prompt names (default: the document's theme);
    ``names`` maps a chunk id to its known names (see :func:`blank_spans`)."""
    items: list[ClozeItem] = []
    if per_fact <= 0:
        return items
    for k, fact in enumerate(facts):
        title = (titles or {}).get(fact.doc_name) or fact.doc_theme or fact.theme or fact.doc_name
        for j, (s, e) in enumerate(blank_spans(fact.text, (names or {}).get(fact.chunk_id))[:per_fact]):
            text = fact.text[:s] + BLANK + fact.text[e:]
            template = TEMPLATES[(k + j) % len(TEMPLATES)]
            items.append(ClozeItem(fact, template.format(title=title.strip(), text=text), fact.text[s:e]))
    return items
