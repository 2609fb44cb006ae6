"""Relation paraphrases: a question asked again with another verb for the same relation.

A document says "flows into the North Sea"; someone else asks "Where does the Rhine empty into?". The rule-made
questions (data_processor/rules.py) keep the document's verb, and the small model fails a question that names
the relation with another. A small shipped lexicon (``lexicon/relations_en.txt``; its header gives the format)
lists verbs that name the same relation, each with its five forms written out, so a question's "invented" is
replaced by "devised" and "created" without guessing any morphology.

What counts as a match is kept simple and on the safe side:

* a form matches whole words, lower case, or capitalised at the start of the question or of a sentence in it
  (a capitalised word elsewhere is a name: "Price", "Lead Belly");
* at each word the longest form wins, so "led to" (caused) is never read as "led" (headed);
* a form marked ``*`` (also a noun, another verb's form, or another sense) is never taken from a question;
* a form is replaced by another member's form only when that member has one form for every slot the question's
  word may stand in ("invented", past or participle, becomes "created"; not "wrote"/"written").

Pure functions; the collector calls them from the rule-rows stage (``--relation_paraphrases``).
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
from dataclasses import dataclass
from pathlib import Path

LEXICON_EN = Path(__file__).resolve().parent / "lexicon" / "relations_en.txt"
SLOTS = ("base", "3sg", "past", "participle", "ing")
#: matches per question whose replacements are combined (the others stay as they are): 4 matches of a group of
#: 4 members are 255 combinations, enough to draw from
MAX_MATCHES = 4
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
_SENTENCE_END = (".", "?", "!", ":", ";", "—", "–")


@dataclass(frozen=True)
class Form:
    group: int
    member: int
    slots: frozenset[int]  # the SLOTS this form stands in for its member
    matched: bool  # False for a form marked "*": only ever written


@dataclass(frozen=True)
class Lexicon:
    groups: tuple[tuple[tuple[str | None, ...], ...], ...]  # group -> member -> form per slot (None: "-")
    forms: dict[tuple[str, ...], Form]  # a form's words -> where it stands
    longest: int  # the most words of a form


def parse_lexicon(text: str, source: str = "<string>") -> Lexicon:
    """Parse the lexicon format (see the header of ``lexicon/relations_en.txt``).

    Raises ``ValueError`` naming the line for a member without five forms, a group of one member, a form
    marked ``*`` in one slot and not in another, or a form that stands in two members (it could not be told
    which to replace it with)."""
    groups: list[tuple[tuple[str | None, ...], ...]] = []
    forms: dict[tuple[str, ...], Form] = {}
    where: dict[tuple[str, ...], int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        members = [m.strip() for m in line.split(" | ")]
        if len(members) < 2:
            raise ValueError(f"{source}:{lineno}: a group needs at least two members separated by ' | '")
        g = len(groups)
        group: list[tuple[str | None, ...]] = []
        for m, member in enumerate(members):
            fields = [f.strip() for f in member.split(",")]
            if len(fields) != len(SLOTS) or not all(fields):
                raise ValueError(f"{source}:{lineno}: {member!r} needs {len(SLOTS)} forms ({', '.join(SLOTS)}; "
                                 "'-' for none)")
            written: list[str | None] = []
            marks: dict[tuple[str, ...], bool] = {}
            slots: dict[tuple[str, ...], set[int]] = {}
            for s, f in enumerate(fields):
                if f == "-":
                    written.append(None)
                    continue
                plain = f.rstrip("*").strip()
                words = tuple(plain.lower().split())
                if not words or any(not _WORD.fullmatch(w) for w in words):
                    raise ValueError(f"{source}:{lineno}: {f!r} is not a form (words of letters)")
                if marks.setdefault(words, f.endswith("*")) != f.endswith("*"):
                    raise ValueError(f"{source}:{lineno}: {plain!r} is marked '*' in one slot and not in another")
                slots.setdefault(words, set()).add(s)
                written.append(" ".join(words))
            if not slots:
                raise ValueError(f"{source}:{lineno}: {member!r} has no form")
            for words, ss in slots.items():
                if words in forms:
                    raise ValueError(f"{source}:{lineno}: {' '.join(words)!r} is already a form on line {where[words]}")
                forms[words] = Form(g, m, frozenset(ss), not marks[words])
                where[words] = lineno
            group.append(tuple(written))
        groups.append(tuple(group))
    return Lexicon(tuple(groups), forms, max((len(w) for w in forms), default=0))


@functools.cache
def load_lexicon(path: str | Path = LEXICON_EN) -> Lexicon:
    """The lexicon in ``path`` (default: the shipped English one), parsed once per process."""
    path = Path(path)
    return parse_lexicon(path.read_text(encoding="utf-8"), str(path))


@dataclass(frozen=True)
class Match:
    start: int
    end: int  # character span of the form in the question
    form: Form
    capitalised: bool


def _starts_sentence(question: str, start: int) -> bool:
    before = question[:start].rstrip().rstrip("\"'“‘(")
    return not before or before.endswith(_SENTENCE_END)


def find_relations(question: str, lexicon: Lexicon | None = None) -> list[Match]:
    """The lexicon forms ``question`` uses as verbs (see the module docstring), in order, not overlapping;
    a form marked ``*`` is skipped over, not matched."""
    lex = lexicon or load_lexicon()
    tokens = list(_WORD.finditer(question))
    found: list[Match] = []
    i = 0
    while i < len(tokens):
        step = 1
        for k in range(min(lex.longest, len(tokens) - i), 0, -1):
            span = tokens[i:i + k]
            if any(not question[a.end():b.start()].isspace() for a, b in zip(span, span[1:])):
                continue  # words of a form stand side by side ("flows into", not "flows, into")
            words = [t.group() for t in span]
            first = words[0]
            capitalised = first[:1].isupper() and first[1:] == first[1:].lower() and first != first.lower()
            if capitalised and not _starts_sentence(question, span[0].start()):
                continue
            if any(w != w.lower() for w in words[1:]):
                continue
            key = tuple(w.lower() for w in words)
            form = lex.forms.get(key)
            if form is None:
                continue
            if form.matched:
                found.append(Match(span[0].start(), span[-1].end(), form, capitalised))
            step = k
            break
        i += step
    return found


def replacements(match: Match, lexicon: Lexicon | None = None) -> list[str]:
    """What the matched form may become: each other member's form, where that member has one form for every
    slot the matched form stands in (in lexicon order)."""
    lex = lexicon or load_lexicon()
    out = []
    for m, member in enumerate(lex.groups[match.form.group]):
        if m == match.form.member:
            continue
        written = {member[s] for s in match.form.slots}
        if len(written) == 1 and None not in written:
            out.append(written.pop())
    return out


def paraphrases(question: str, n: int, seed: int = 0, lexicon: Lexicon | None = None) -> list[str]:
    """Up to ``n`` wordings of ``question`` with its relation verbs replaced by other members of their groups
    (:func:`find_relations`, :func:`replacements`; the first :data:`MAX_MATCHES` that have any), every
    combination of kept and replaced verbs but the question itself. When there are more than ``n``, ``n`` are
    drawn, seeded by ``seed`` and the question, so a question gets the same ones in every run; they keep their
    order of enumeration. None for ``n <= 0`` or a question with no replaceable verb."""
    if n <= 0:
        return []
    lex = lexicon or load_lexicon()
    options = [(m, alts) for m in find_relations(question, lex) if (alts := replacements(m, lex))][:MAX_MATCHES]
    if not options:
        return []
    texts: list[str] = []
    for choice in itertools.product(*[[None, *alts] for _, alts in options]):
        parts, pos = [], 0
        for (m, _), alt in zip(options, choice):
            if alt is not None:
                parts += [question[pos:m.start], alt[:1].upper() + alt[1:] if m.capitalised else alt]
                pos = m.end
        text = "".join(parts) + question[pos:]
        if text != question and text not in texts:
            texts.append(text)
    if len(texts) > n:
        rng = random.Random(int(hashlib.sha256(f"{seed}\x1f{question}".encode()).hexdigest()[:16], 16))
        texts = [texts[i] for i in sorted(rng.sample(range(len(texts)), n))]
    return texts
