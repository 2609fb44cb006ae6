"""Stage 8 (no LLM): training rows made by rule from each fact.

This is the generator-independent half of the training data. A 135M generator writes vague or
off-topic questions for many facts ("What is the record for the islanders?"); rows made by rule
are always about exactly their fact, keyed by the fact's own words, which is what a closed-book
question later supplies. Two kinds, each answered with the fact sentence:

* ``cloze``: a name or number of the fact blanked out; the answer is the whole fact. Recalling a span
  from the rest of its sentence is the knowledge-augmentation idea of Allen-Zhu & Li (Physics of LMs
  3.1) in its cheapest form.
* ``wh``: questions asking for each name, number or date of the fact (data_processor/rules.py: the
  echo form and, where the sentence allows, the fronted form, and optionally keyword questions),
  including the reverse question for a subject; the answer is the whole fact. Many phrasings per fact
  are what make a fact extractable by a question worded differently from the training data.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..parsing import CJK_CHAR
from ..rules import find_spans, questions_for
from . import StageResult
from .step4_facts import Fact

STAGE = "rule_rows"
BLANK = "____"
#: prompt wordings, rotated per fact so the model does not learn one fixed frame
TEMPLATES = (
    'Fill in the blank in this statement about {title}: "{text}"',
    'Complete the sentence about {title}: "{text}"',
    'What belongs in the blank? ({title}) "{text}"',
)
# The same prompts for Chinese text, so a zh row is asked in the language it is answered in.
TEMPLATES_ZH = ('填空（关于{title}）：“{text}”', '补全这句关于{title}的话：“{text}”', '横线处应该填什么？（{title}）“{text}”')


def _templates(text: str) -> tuple[str, ...]:
    return TEMPLATES_ZH if CJK_CHAR.search(text) else TEMPLATES


@dataclass(frozen=True)
class RuleItem:
    kind: str  # cloze | wh
    question: str
    answer: str
    doc_name: str
    chunk_id: str
    theme: str
    fact: str  # the fact the row is about
    span: str  # what was blanked or asked for


def _item(kind: str, question: str, fact: Fact, span: str) -> RuleItem:
    return RuleItem(kind, question, fact.text, fact.doc_name, fact.chunk_id, fact.theme, fact.text, span)


def blank_spans(sentence: str, known_names: set[str] | None = None) -> list[tuple[int, int]]:
    """Character spans of the names, numbers and dates in ``sentence`` worth blanking (see
    :func:`data_processor.rules.find_spans`), in order, not overlapping."""
    return [(s.start, s.end) for s in find_spans(sentence, known_names)]


def document_title(first_text: str, doc_name: str) -> str:
    """The document's heading (its first line when that is short and not a sentence), else its file name."""
    line = next((ln.strip().lstrip("#").strip() for ln in first_text.splitlines() if ln.strip()), "")
    if line and len(line.split()) <= 14 and not line.endswith((".", "。")):
        return line
    stem = doc_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[_-]+", " ", stem).strip() or doc_name


def cloze_items(facts: list[Fact], per_fact: int, titles: dict[str, str] | None = None,
                names: dict[str, set[str]] | None = None) -> list[RuleItem]:
    """Up to ``per_fact`` fill-in-the-blank items per fact (the first spans in reading order).

    ``titles`` maps a document name to the title the prompt names (default: the document's theme);
    ``names`` maps a chunk id to its known names (see :func:`data_processor.rules.find_spans`)."""
    items: list[RuleItem] = []
    if per_fact <= 0:
        return items
    for k, fact in enumerate(facts):
        title = (titles or {}).get(fact.doc_name) or fact.doc_theme or fact.theme or fact.doc_name
        for j, (s, e) in enumerate(blank_spans(fact.text, (names or {}).get(fact.chunk_id))[:per_fact]):
            text = fact.text[:s] + BLANK + fact.text[e:]
            templates = _templates(fact.text)
            template = templates[(k + j) % len(templates)]
            items.append(_item("cloze", template.format(title=title.strip(), text=text), fact, fact.text[s:e]))
    return items


def wh_items(facts: list[Fact], max_spans: int, names: dict[str, set[str]] | None = None,
             phrasings: int = 1, keywords: int = 0) -> list[RuleItem]:
    """Questions for up to ``max_spans`` spans per fact (see :func:`data_processor.rules.questions_for`),
    answered with the whole fact; ``keywords`` adds that many keyword questions per span."""
    if max_spans <= 0:
        return []
    return [_item("wh", q, f, span)
            for f in facts
            for q, span in questions_for(f.text, (names or {}).get(f.chunk_id), max_spans, phrasings, keywords)]


def run(facts: list[Fact], titles: dict[str, str], names: dict[str, set[str]], *,
        cloze_per_fact: int, wh_spans_per_fact: int, wh_phrasings: int = 1,
        wh_keywords: int = 0) -> StageResult[list[RuleItem]]:
    """Every rule-made row of a wave. Counters: ``cloze`` and ``wh`` (rows of each kind)."""
    items = (cloze_items(facts, cloze_per_fact, titles, names)
             + wh_items(facts, wh_spans_per_fact, names, wh_phrasings, wh_keywords))
    counters = Counter(cloze=0, wh=0)
    counters.update(item.kind for item in items)
    return StageResult(items, counters)
