"""Statement rows: a chunk's facts restated as plain text, in document order and in shuffled orders.

Knowledge augmentation as in Allen-Zhu & Li (Physics of LMs 3.1): a fact is extractable by a question
later when the model was trained on it in more than one form, and permuting the sentences of a
biography was one of the augmentations that made it so. The texts are trained in one mix with the QA
rows (documents and QA pairs together, as in Jiang et al., arXiv 2402.12847), as plain text: no chat
template, every token trained (finetuning/data.py). With ``--resolve_pronouns`` the facts are
self-contained sentences that name their subject in full, so a sentence moved away from its
neighbours still says whom it is about.

Pure functions; the collector calls them from the rule-rows stage (data_processor/stages/step8_rule_rows.py).
"""
from __future__ import annotations

import hashlib
import random

from .parsing import CJK_CHAR, support
from .stages.step2_chunk import sentence_spans

#: shuffles tried per text asked for: a chunk of 2-3 facts has fewer distinct orders than a large N asks
TRIES_PER_TEXT = 20


def in_document_order(facts: list[str], source: str) -> list[str]:
    """``facts`` sorted by where the ``source`` chunk says them: by the chunk sentence that supports each
    best (:func:`~data_processor.parsing.support`; ties keep the given order). The generated facts come
    before the chunk's own uncovered sentences (step4_facts), not in the order the chunk states them."""
    sentences = [source[s:e] for s, e, _ in sentence_spans(source)]
    if not sentences:
        return list(facts)

    def position(fact: str) -> int:
        return max(range(len(sentences)), key=lambda i: (support(fact, sentences[i]), -i))

    return sorted(facts, key=position)  # sorted is stable: equal positions keep their order


def _text(title: str, sentences: list[str]) -> str:
    joiner = "" if any(CJK_CHAR.search(s) for s in sentences) else " "
    return f"{title.strip()}\n\n" + joiner.join(s.strip() for s in sentences)


def statement_texts(facts: list[str], title: str, n: int, seed: int, key: str = "") -> list[str]:
    """Up to ``n`` distinct texts stating ``facts``: the title line, a blank line, then the fact sentences
    joined by a space (by nothing in CJK text). Text 1 keeps the given order (document order); texts 2..n
    are shuffles drawn from ``seed`` and ``key`` (the chunk id), so a chunk gets the same texts in every run
    and whatever else is collected with it. Fewer texts when the facts have fewer distinct orders (one
    fact: one text); none for no facts or ``n <= 0``."""
    if n <= 0 or not facts:
        return []
    texts = [_text(title, list(facts))]
    rng = random.Random(int(hashlib.sha256(f"{seed}\x1f{key}".encode()).hexdigest()[:16], 16))
    order = list(facts)
    for _ in range(TRIES_PER_TEXT * n):
        if len(texts) >= n:
            break
        rng.shuffle(order)
        text = _text(title, order)
        if text not in texts:
            texts.append(text)
    return texts
