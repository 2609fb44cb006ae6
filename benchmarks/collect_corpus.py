"""A larger collection corpus built at run time from the sample documents, with no copies committed.

    docs = build_corpus(["examples/docs", "examples/test_corpus/docs"], 12, Path("out/corpus"))

The sample folders hold 8 short fictional documents. A collection benchmark needs more (every stage's
batches should fill), so each source document is written again under another name with its fictional
names changed: copy 0 is the document itself, copy k >= 1 replaces every name (a word written capitalised
mid-sentence and never in lower case, :func:`data_processor.parsing.anchor_words`) by a per-copy variant
(its vowels rotated k places, "Quillmere" -> "Qaollmiri"). The text keeps its shape and length, but no
prompt repeats another document's, so the reply cache and the model see new text in every copy. All
documents are written as .txt (a .docx source as its text).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

_VOWELS = "aeiou"
_SUFFIXES = ["an", "or", "el", "is", "ur", "en"]  # copies beyond the 4 vowel rotations
_LETTERS = re.compile(r"[^\W\d_]+", re.UNICODE)


def name_variant(word: str, copy: int) -> str:
    """``word`` for copy ``copy`` (>= 1): vowels after the first letter rotated, case kept; a suffix from copy 5 on."""
    if copy < 1:
        return word
    shift = (copy - 1) % 4 + 1
    out = [word[0]]
    for ch in word[1:]:
        low = ch.lower()
        if low in _VOWELS:
            new = _VOWELS[(_VOWELS.index(low) + shift) % 5]
            out.append(new.upper() if ch.isupper() else new)
        else:
            out.append(ch)
    variant = "".join(out)
    rounds = (copy - 1) // 4
    if rounds:
        suffix = _SUFFIXES[(rounds - 1) % len(_SUFFIXES)] * ((rounds - 1) // len(_SUFFIXES) + 1)
        variant += suffix.upper() if word.isupper() else suffix
    return variant


def common_word_test(tokenizer) -> Callable[[str], bool]:
    """A word the tokenizer knows whole (one token after a space) is an ordinary word ("Cup", "Royal",
    "November"), not an invented name; those stay as they are."""
    def is_common(word: str) -> bool:
        return len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1
    return is_common


def names_to_change(text: str, is_common: Callable[[str], bool] | None = None) -> set[str]:
    """Lower-cased name words of ``text`` a copy renames (at least 3 letters, no digits, not common)."""
    from data_processor.parsing import anchor_words

    names = {w for w in anchor_words(text) if len(w) >= 3 and w.isalpha()}
    if is_common is not None:
        names = {w for w in names if not is_common(w.capitalize())}
    return names


def rename(text: str, names: set[str], copy: int) -> str:
    """``text`` with each capitalised occurrence of ``names`` replaced by its variant for ``copy``."""
    def swap(m: re.Match) -> str:
        word = m.group(0)
        return name_variant(word, copy) if word[0].isupper() and word.lower() in names else word
    return _LETTERS.sub(swap, text)


def build_corpus(sources: list[str | Path], num_docs: int, dest: Path, *,
                 is_common: Callable[[str], bool] | None = None) -> list[dict]:
    """Write ``num_docs`` distinct documents into ``dest`` (emptied first); return one record per document.

    Documents are taken in rounds: every source (sorted by name, folders in the given order) as copy 0,
    then every source as copy 1, and so on. A record gives ``name``, ``source``, ``copy``, ``words`` and
    ``renamed`` (how many name words the copy changed).
    Raises:
        ValueError: no readable document in ``sources``.
    """
    import shutil

    from data_processor.stages.step1_read import load_documents

    docs = []
    for src in sources:
        found, _ = load_documents(str(src), "auto", 1, 0)
        docs += sorted(found, key=lambda d: d.name)
    if not docs:
        raise ValueError(f"no readable documents in {', '.join(map(str, sources))}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    records, used = [], set()
    for i in range(num_docs):
        doc, copy = docs[i % len(docs)], i // len(docs)
        stem = Path(doc.name).stem.replace("/", "_")
        names = names_to_change(doc.text, is_common) if copy else set()
        text = rename(doc.text, names, copy) if copy else doc.text
        if copy:  # the file name carries the renamed names too (titles fall back to it)
            stem = "_".join(name_variant(p, copy).lower() if p in names else p for p in stem.split("_")) + f"_c{copy}"
        name = f"{stem}.txt"
        while name in used:  # two sources with one stem in different folders
            name = f"{Path(name).stem}_{len(used)}.txt"
        used.add(name)
        (dest / name).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        records.append({"name": name, "source": str(doc.path), "copy": copy, "words": len(text.split()),
                        "renamed": len(names)})
    return records
