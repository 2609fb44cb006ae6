"""Why- and how-questions made by rule: a fact's cause, purpose or means clause removed and asked about.

Other people ask why and how as often as what ("Why was the Rhine regulated?", answered by "... in order to
counteract the constant flooding ..."); the span questions of rules.py never do, so a model trained on them
meets these wordings for the first time at test time. A sentence that states a reason, a purpose or a means
with an explicit connective is turned into such a question by dropping that clause and inverting the clause it
explains, with the inversion helpers of rules.py:

* reason (because, because of, due to, owing to, as a result of, since + a clause) and result (", so" + a
  clause): "Why will the lake silt up?", "What will cause the lake to silt up?";
* purpose (in order to, so as to, so that, and "to <verb>" after a clause that is complete without it):
  "Why was the Rhine regulated?", "For what purpose was the Rhine regulated?";
* means (by + -ing): "How does the theory formalize this intuition?", "By what means does ...?";
* "X was caused by Y": "What caused X?"; "X led to Y": "What led to Y?".

Matching is on the safe side, since a malformed question teaches a wrong wording: a clause is asked about only
when the clause it explains has a plain subject (no comma, not a pronoun) followed within a few words by its
verb, and nothing else between that verb and the connective; "to" only after a clause that needs no infinitive
("wants to play", "began to flow", "was able to", "the first to" give nothing); "since" only before a clause
and never after a perfect tense ("has lived there since she retired" is about time). A connective inside
quotes, brackets or capitalised (a title) is not one. English only.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .parsing import CJK_CHAR, STOP_EN
from .rules import (AUX, HAVE_DO, MODALS, MONTHS, NO_SUBJECT_START, ask_question, clause_after, find_spans, finish_question,
                    is_main_verb, is_verb, past_lemma, present_lemma)

REASON, PURPOSE, MEANS, RESULT, CAUSED_BY, LED_TO = "reason", "purpose", "means", "result", "caused_by", "led_to"

# Longest first at a position ("because of" before "because", "in order to" before "to").
_CONNECTIVE = re.compile(
    r"\b(?P<reason>because of|because|due to|owing to|as a result of|since)\b"
    r"|\b(?P<purpose>in order to|so as to|so that|to)\b"
    r"|\b(?P<means>by)\s+(?=\w+ing\b)"
    r"|(?P<result>,\s+so)\s+(?!that\b|as\b|far\b|much\b|many\b|long\b|called\b|-)"
    r"|\b(?P<caused_by>(?:is|are|was|were)\s+caused\s+by)\b"
    r"|\b(?P<led_to>led\s+to)\b", re.I)
_PRONOUN_SUBJECT = frozenset("it its he his she her they them their this that these those which who whom whose we "
                             "i you one".split())
_DO = frozenset(("do", "does", "did"))
# Verbs whose infinitive complement is not a purpose ("wants to play", "began to flow", "was forced to leave",
# "asked her to leave", "is said to be", "used to flow"), by lemma.
_CATENATIVE = frozenset("""want wish hope begin start continue try attempt need decide agree refuse fail manage plan
intend expect seem appear tend learn promise offer choose prefer like love hate ask tell allow permit force order
persuade encourage help enable require cause lead get go come happen claim pretend prove say know think believe
consider report suppose mean make set schedule elect appoint invite urge oblige compel teach train warn remind advise
deserve afford dare threaten vow swear struggle strive hesitate neglect forget remember regret cease proceed arrange
prepare wait long seek aim vote volunteer opt determine resolve use have be do dream bother rush hasten""".split())
# Words before "to" that take it as a complement, not a purpose: "able to", "the first to", "an attempt to".
_NOT_BEFORE_PURPOSE = frozenset("""able unable likely unlikely willing unwilling eager ready due about sure certain
enough free happy glad sorry keen reluctant inclined bound set supposed first last only next second third fourth
fifth attempt attempts effort efforts decision decisions plan plans right rights ability chance opportunity way ways
need desire wish permission order orders request bid failure refusal promise tendency power capacity licence license
authority freedom""".split())
_MONTHS = frozenset(m.lower() for m in MONTHS)
# Objects after a "to <verb>" that is also a noun, so "to guide the souls" is a purpose and "went to school" not.
_OBJECT_START = frozenset("""the a an this that these those his her its their our my your it them him us some any
every each all both one two three four five six how what whether""".split())
_WORDINGS = {REASON: ("Why", "caused"), RESULT: ("Why", "caused"), PURPOSE: ("Why", "For what purpose"),
             MEANS: ("How", "By what means")}


@dataclass(frozen=True)
class Clause:
    """A clause split for inversion: ``subject verb rest`` and an adverbial ``tail`` moved to its end."""
    subject: str
    verb: str  # the finite verb or auxiliary, lower case
    rest: str
    tail: str = ""


def _masked(sentence: str) -> str:
    """``sentence`` with quoted and bracketed text blanked out (same length), so a connective in a title or an
    aside is not matched."""
    out = list(sentence)
    for m in re.finditer(r'"[^"]*"|“[^”]*”|\([^)]*\)|\[[^\]]*\]', sentence):
        out[m.start():m.end()] = "_" * (m.end() - m.start())
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _lemmas(word: str) -> dict:
    from lemminflect import getAllLemmas

    return getAllLemmas(word.lower())


def _verb_lemma(word: str) -> str:
    w = word.lower()
    return past_lemma(w) or present_lemma(w) or next(iter(_lemmas(w).get("VERB", ())), w)


def _is_base_verb(word: str) -> bool:
    return word.isalpha() and word.islower() and word in _lemmas(word).get("VERB", ())


def _participle(word: str) -> bool:
    from lemminflect import getInflection

    w = word.lower()
    if w == "been":
        return True
    return any(w in getInflection(lemma, tag="VBN") for lemma in _lemmas(w).get("VERB", ()))


# Words after a verb that is also a plural noun ("sinks because", "falls into", "sails twice") that make it the verb.
_AFTER_VERB = frozenset("""into onto through across up down out away back off because since so twice once always often
never also still""".split())
# Adverbs that hedge the verb's phrase ("arranged partly to stop"): dropped when the clause they end is asked.
_HEDGES = frozenset("partly mainly largely chiefly primarily mostly only also probably possibly".split())


@functools.lru_cache(maxsize=4096)
def _present_base(word: str) -> str | None:
    """The base form of a third-person present verb, also of one that is a plural noun too ("sinks" -> "sink"),
    which :func:`~data_processor.rules.present_lemma` leaves out."""
    from lemminflect import getInflection

    return present_lemma(word) or next((lemma for lemma in _lemmas(word).get("VERB", ())
                                        if word in getInflection(lemma, tag="VBZ")), None)


def _verb_at(tokens: list[tuple[int, int, str]], idx: int) -> bool:
    """Whether ``tokens[idx]`` is the clause's finite verb: an auxiliary or modal, a verb
    :func:`~data_processor.rules.is_main_verb` takes, or a present verb that is also a plural noun where the word
    after it ("the ferry sails twice", "the water falls into"), an -ly adverb before it, or the end of a clause
    of three words ("The lantern sinks" before a connective) makes it a verb."""
    word = tokens[idx][2].lower().strip(",.;:")
    previous = tokens[idx - 1][2].lower()
    if previous in ("a", "an", "the", "its", "their", "his", "her"):
        return False
    if word in MODALS or word in _DO or is_main_verb(tokens, idx):
        return True
    following = tokens[idx + 1][2].lower().strip(",.;:") if idx + 1 < len(tokens) else ""
    subject = [t[2].lower() for t in tokens[:idx]]
    return (word.endswith("s") and _present_base(word) is not None and "and" not in subject
            and ((following in _AFTER_VERB and len(subject) <= 3)
                 or (not following and len(subject) == 2 and subject[0] in ("the", "a", "an"))  # "The lantern sinks"
                 or (previous.endswith("ly") and previous not in ("only", "early") and len(subject) <= 4)))


def _split_adverbial(text: str) -> tuple[str, str] | None:
    """``(adverbial, clause)`` for a clause with a fronted adverbial ("In August 2022 the company recalled ...",
    "Each year, the islanders set ..."), ``("", text)`` for a clause that starts with its subject, ``None``
    for one that starts with a subordinate clause or a fronted phrase whose end is not clear."""
    first = text.split(" ", 1)[0].lower().strip(",")
    if first not in NO_SUBJECT_START:
        return "", text
    comma = text.find(", ")
    if 0 < comma and len(text[:comma].split()) <= 6:
        head = text[:comma]
        if not any(is_verb(w.lower()) for w in re.findall(r"[A-Za-z]+", head)) and first not in (
                "if", "when", "whenever", "although", "though", "because", "while", "after", "before", "since", "as",
                "once", "unless", "until"):
            return head, text[comma + 2:]
        return None
    spans = find_spans(text)
    first_span = spans[0] if spans else None
    if first_span and first_span.kind in ("date", "year") and not text[len(first):first_span.start].strip():
        return text[:first_span.end], text[first_span.end:].lstrip(" ,")
    return None


def _own_phrase(rest: str) -> str | None:
    """What follows a clause's verb up to the connective, when it is all the verb's own: ``rest`` itself, or
    its part before a comma when what the comma sets off has no verb ("was called for, with an upper canal
    near Diepoldsau, in order to ..."); ``None`` when another clause starts in it."""
    own = clause_after(" " + rest + " ").strip()
    if own == rest:
        return rest
    aside = rest[len(own):]
    if own and aside.startswith(", ") and not re.match(r",\s+(?:and|but|or)\b", aside) and not any(
            is_verb(w.lower()) or w.lower() in ("which", "who", "whose", "where", "that", "while")
            or (w.lower().endswith(("ing", "ed")) and _lemmas(w.lower()).get("VERB"))
            for w in re.findall(r"[A-Za-z]+", aside)):
        return own
    return None


def _as_asked(subject: str, known_names: set[str] | None) -> str:
    """The subject as a question writes it after its auxiliary: a leading stop word or, given the source's
    ``known_names`` (lower case), a capitalised common word in lower case ("Wool" -> "wool"; "Drennick" stays
    when the source writes it capitalised mid-sentence)."""
    words = subject.split()
    first = words[0]
    if first.lower() in STOP_EN or (known_names is not None and first[:1].isupper() and not first.isupper()
                                    and first.lower() not in known_names
                                    and not (len(words) > 1 and words[1][:1].isupper())):
        return subject[:1].lower() + subject[1:]
    return subject


def split_clause(text: str, known_names: set[str] | None = None) -> Clause | None:
    """``text`` (one clause, connective removed) as subject, finite verb and rest, or ``None`` when it has none
    of the shapes asked about: a subject without a comma or a leading pronoun, its verb within its first eight
    words (a modal, do/does/did, a form of be or have, or a past or present verb), and no other clause after it."""
    text = text.strip().rstrip(",;: ")
    parts = _split_adverbial(text)
    if parts is None:
        return None
    tail, text = parts
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]
    for idx, (ts, te, tok) in enumerate(tokens[:8]):
        word = tok.lower().strip(",.;:")
        if idx == 0 or not _verb_at(tokens, idx):
            if tok.endswith((",", ";", ":")) or tok.startswith(("(", '"', "“")):
                return None  # not a plain subject noun phrase
            continue
        subject, rest = text[:ts].strip(), _own_phrase(text[te:].strip())
        if subject.split()[0].lower() in _PRONOUN_SUBJECT or rest is None:
            return None  # a bare pronoun says nothing closed-book; a second clause would be asked about too
        words = [w.lower().strip(",.;:") for w in rest.split()]
        if any(w in AUX or w in HAVE_DO or w in MODALS or (_present_base(w) and nxt.endswith("ing"))
               for w, nxt in zip(words, words[1:] + [""])):
            return None  # a second finite verb ("a dial built for one latitude needs adjusting"): split wrongly
        if words and words[0] in ("by", "for") and word not in AUX and _participle(word):
            return None  # "a dial built for one latitude": a participle, not the verb
        if word in AUX and words and words[0] in ("a", "an", "the") and any(_participle(w) for w in words[1:]):
            return None  # "is a milky sap collected by cutting": the clause asked about is the participle's
        while words and words[-1] in _HEDGES:
            words.pop()
            rest = rest.rsplit(None, 1)[0] if " " in rest else ""
        if word not in AUX and word not in MODALS and word not in _DO and word not in HAVE_DO and not rest \
                and _participle(word):
            return None  # "A hoop made because ...": a participle, not a verb
        if tail:
            tail = tail[:1].lower() + tail[1:] if tail.split()[0].lower() in STOP_EN or tail.split()[0].lower() in \
                NO_SUBJECT_START else tail
        return Clause(_as_asked(subject, known_names), word, rest, tail)
    return None


def _rest(c: Clause) -> str:
    return f"{c.rest} {c.tail}".strip()


def inverted(c: Clause, wh: str) -> str:
    """``wh`` + the clause inverted: "Why was the Rhine regulated?", "How does the theory formalize ...?"."""
    subj, rest = c.subject, c.rest.split()
    if c.verb in MODALS or c.verb in _DO or (c.verb in HAVE_DO and rest and _participle(rest[0])):
        return finish_question(f"{wh} {c.verb} {subj} {_rest(c)}")  # an auxiliary moves as it is
    if c.verb not in AUX and c.verb not in HAVE_DO and not present_lemma(c.verb) and not past_lemma(c.verb):
        return finish_question(f"{wh} does {subj} {_present_base(c.verb)} {_rest(c)}")  # "sinks", also a noun
    return ask_question(wh, c.verb, c.subject, _rest(c))


def what_caused(c: Clause) -> str | None:
    """"What caused <subject> to <verb> ...?" in the clause's tense ("What will cause the lake to silt up?"),
    or ``None`` where the clause has none that wording keeps (a negation, a modal other than will/would)."""
    subj, words = c.subject, c.rest.split()
    if any(w.lower() in ("not", "never", "n't") for w in words):
        return None
    to = "to"
    *head, last = subj.split()
    if head and (last.endswith("ly") or last in ("only", "also", "still", "often", "always")):
        subj, to = " ".join(head), f"to {last}"  # "a source quickly attracts" -> "a source to quickly attract"
    rest = _rest(c)
    if c.verb in AUX:
        cause = "caused" if c.verb in ("was", "were") else "causes"
        return finish_question(f"What {cause} {subj} {to} be {rest}")
    if c.verb in ("will", "would"):
        return finish_question(f"What {c.verb} cause {subj} {to} {rest}")
    if c.verb in MODALS:
        return None
    if c.verb in _DO:
        return finish_question(f"What {'caused' if c.verb == 'did' else 'causes'} {subj} {to} {rest}")
    if c.verb in HAVE_DO:
        if words and words[0] == "been":
            return finish_question(f"What {c.verb} caused {subj} {to} be {' '.join(words[1:])} {c.tail}")
        if words and _participle(words[0]):
            return None
        return finish_question(f"What {'caused' if c.verb == 'had' else 'causes'} {subj} {to} have {rest}")
    if base := present_lemma(c.verb) or (None if past_lemma(c.verb) else _present_base(c.verb)):
        return finish_question(f"What causes {subj} {to} {base} {rest}")
    if base := past_lemma(c.verb):
        return finish_question(f"What caused {subj} {to} {base} {rest}")
    return None


def _clause_verb(text: str) -> bool:
    """Whether ``text`` (what follows "since", "so that", ", so") starts a clause: a finite verb in its first
    eight words, after at least one word of subject."""
    words = [w.lower().strip(",.;:") for w in text.split()[:8]]
    return any(is_verb(w) or w in MODALS for w in words[1:])


def _purpose_to(c: Clause, main: str, after: str, fronted: bool) -> bool:
    """Whether "to" + ``after`` is a purpose clause of clause ``c``: "was regulated to counteract", "used the time
    to write", "To reach the island, visitors take ..."; not "wants to play", "began to flow", "was able to
    go", "asked her to leave", "the first to reach", "moved to Velmar", "went to school in". ``main`` is the
    clause before "to" as written."""
    words = after.split()
    if not words or not _is_base_verb(words[0].strip(",.;:")) or words[0] == "be":
        return False
    if "NOUN" in _lemmas(words[0]) and (len(words) < 2 or words[1].lower() not in _OBJECT_START):
        return False  # "went to school in": the noun, not the verb
    if fronted:
        return True
    before = (c.rest.split() or [c.verb])[-1].lower().strip(",")
    if before in _NOT_BEFORE_PURPOSE or _verb_lemma(before) in _CATENATIVE:
        return False  # "wants to", "began to", "was forced to", "is able to", "has to", "an attempt to"
    if (c.verb not in AUX and c.verb not in MODALS and c.verb not in _DO and _verb_lemma(c.verb) != "use"
            and _verb_lemma(c.verb) in _CATENATIVE):
        return False  # "asked her to leave", "helped the town to grow"
    for w in (w.lower().strip(",") for w in main.split()):
        if w in ("first", "last", "only", "next") or (w.endswith("est") and w not in _lemmas(w).get("ADJ", (w,))):
            return False  # "the first woman to reach", "the largest city to host": the infinitive belongs to the noun
    return True


def _main_before(sentence: str, start: int) -> str:
    """The clause that ends at ``start``: after the last "; " or ", and"/", but" that follows a verb."""
    head = sentence[:start]
    cut = 0
    for m in re.finditer(r";\s+|,\s+(?:and|but)\s+", head):
        if any(is_verb(w.lower()) for w in re.findall(r"[A-Za-z]+", head[cut:m.start()])):
            cut = m.end()
    return head[cut:]


def _asked(kind: str, c: Clause, per_clause: int) -> list[str]:
    first, second = _WORDINGS[kind]
    out = [inverted(c, first)]
    if per_clause > 1:
        out.append(what_caused(c) if second == "caused" else inverted(c, second))
    return [q for q in out if q]


def cause_questions(sentence: str, per_clause: int = 1, known_names: set[str] | None = None) -> list[tuple[str, str]]:
    """``(question, clause)`` pairs for each cause, purpose or means clause of ``sentence`` (see the module
    docstring): up to ``per_clause`` wordings that ask about the clause without it, and the clause asked about
    (the connective and what it introduces; for "X led to Y", X). Empty for a sentence with none, for Chinese
    text, and wherever the clause it explains cannot be inverted. ``known_names`` (lower-cased words the source
    writes capitalised mid-sentence) tell a name from a capitalised first word, as for
    :func:`~data_processor.rules.find_spans`.

    >>> cause_questions("The Rhine was regulated to counteract the constant flooding.", 2)
    [('Why was the Rhine regulated?', 'to counteract the constant flooding'), \
('For what purpose was the Rhine regulated?', 'to counteract the constant flooding')]
    """
    if per_clause <= 0 or CJK_CHAR.search(sentence):
        return []
    sentence = sentence.strip()
    masked = _masked(sentence)
    out: list[tuple[str, str]] = []
    for m in _CONNECTIVE.finditer(masked):
        kind = m.lastgroup
        start, end = m.start(kind), m.end(kind)
        if masked[start].isupper() and start > 0:
            continue  # "Because of Winn-Dixie": part of a title
        for question in _questions(sentence, kind, start, end, per_clause, known_names):
            out.append(question)
    seen: set[str] = set()
    return [(q, span) for q, span in out if not (q.lower() in seen or seen.add(q.lower()))]


def _questions(sentence: str, kind: str, start: int, end: int, per_clause: int,
               known_names: set[str] | None) -> list[tuple[str, str]]:
    after = sentence[end:].strip()
    connective = sentence[start:end].lower()
    if kind == CAUSED_BY:
        subject = sentence[:start].strip()
        if (not subject or "," in subject or len(subject.split()) > 8 or subject.split()[0].lower() in
                _PRONOUN_SUBJECT or subject.split()[0].lower() in NO_SUBJECT_START or not after):
            return []
        subj, past = _as_asked(subject, known_names), connective.split()[0] in ("was", "were")
        qs = [finish_question(f"What {'caused' if past else 'causes'} {subj}"),
              finish_question(f"What {'was' if past else 'is'} the cause of {subj}")]
        return [(q, after.rstrip(".")) for q in qs[:per_clause]]
    if kind == LED_TO:
        c = split_clause(_main_before(sentence, end), known_names)
        result = clause_after(after).strip().rstrip(".")
        if not c or c.verb != "led" or c.rest != "to" or c.tail or len(result.split()) < 2 or not result[:1].islower():
            return []
        return [(finish_question(f"What led to {result}"), sentence[:start].strip())]
    if kind == RESULT:
        cause = sentence[:start].strip()
        c = split_clause(clause_after(after), known_names)
        if not c or not _clause_verb(after) or not any(is_verb(w.lower()) or _present_base(w.lower())
                                                      for w in re.findall(r"[A-Za-z]+", cause)):
            return []
        return [(q, cause) for q in _asked(REASON, c, per_clause)]
    clause_text = clause_after(sentence[end:]).strip().rstrip(".")
    fronted = not sentence[:start].strip()
    if fronted:  # fronted: "Because the salt dissolves, a lantern glows ..."
        comma = sentence.find(", ", end)
        if comma < 0:
            return []
        clause_text, main = sentence[end:comma].strip(), sentence[comma + 2:]
        main = clause_after(main)
    else:
        main = _main_before(sentence, start)
    c = split_clause(main, known_names)
    if not c:
        return []
    if kind == REASON and connective == "since":
        if not _clause_verb(clause_text) or clause_text.split()[0].lower() in _MONTHS | {"then"} or \
                clause_text[:1].isdigit() or c.verb in HAVE_DO or re.search(r"\bever\s*$", sentence[:start]):
            return []
    if kind == REASON and connective == "due to" and clause_text.split() and _is_base_verb(clause_text.split()[0]) \
            and not {"NOUN", "ADJ"} & set(_lemmas(clause_text.split()[0])):
        return []  # "is due to appear in 2026": scheduled, not caused
    if kind == PURPOSE and connective == "to" and not _purpose_to(c, main, clause_text, fronted):
        return []
    if kind == PURPOSE and connective == "so that" and not _clause_verb(clause_text):
        return []
    if kind in (REASON, PURPOSE, MEANS) and c.verb in AUX and not c.rest:
        return []  # "X is due to Y": nothing left to ask "why" of
    if kind == MEANS and not _lemmas(clause_text.split()[0]).get("VERB"):
        return []
    return [(q, f"{connective} {clause_text}") for q in _asked(kind, c, per_clause)]
