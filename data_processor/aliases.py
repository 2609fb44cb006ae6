"""Descriptions a sentence gives a named entity ("Bartholomew Ashgrove, a schoolteacher in the market town
of Lyndmoor"), found by rule; English only. Pure functions.

A question written by someone else often names an entity by a description instead of its name ("the
schoolteacher who invented the game"). Closed-book, that is a two-hop question unless a training row
states the bridge between the description and the name (the reversal curse, Berglund et al. 2309.12288;
deductive closure training, 2401.08574). These rules find the bridges a sentence states; stage 8
(data_processor/stages/step8_rule_rows.py) turns them into rows.

Precision comes before recall: a wrong bridge teaches a wrong fact. A description is a noun phrase with
an article or a possessive ("a schoolteacher in ...", "the company's chief engineer", "Ilsabet
Norrgaard-Quint's supervisor"); one with a verb of its own, a pronoun ("their star player": whose?),
a demonstrative, a relational head ("a member of": the definite form would claim uniqueness) or more
than :data:`MAX_WORDS` words that cannot be shortened is not taken.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .parsing import CJK_CHAR, STOP_EN
from .rules import NAME_RUN, PLACE_PREPS, THING_HEADS, find_spans, past_lemma, person_like, present_lemma

MAX_WORDS = 12  # the longest description taken (articles included); a longer question reads unlike a person's
_DETS = ("a", "an", "the")
_PRONOUNS = frozenset("he she it they him her them his hers its their theirs this that these those we us our "
                      "you your i me my one".split())
_PREPS = frozenset("of in on at for from with by to into onto over under near about across along between "
                   "through during after before since until within without around among per via like than "
                   "behind beside beyond".split())
_RELATIVES = frozenset("who whom whose which that where when while because although though if whereas so".split())
_COPULAS = ("is", "was", "are", "were")
_AUXILIARIES = frozenset("has have had does do did be been being can could will would should must may might "
                         "shall".split())
# adverbs that end a noun phrase's head ("a glaciologist best remembered for ...")
_ADVERBS = frozenset("best most well also now still often later once widely mostly chiefly mainly perhaps "
                     "then already always never".split())
# heads whose definite form claims a uniqueness the sentence does not ("a member of" -> "the member of"),
# or that do not identify anything ("a success")
_NOT_IDENTIFYING = frozenset("member members part one ones example kind type sort form piece success failure hit "
                             "favourite favorite friend fan resident citizen student pupil child son daughter "
                             "brother sister variant version number lot".split())
_ORDINALS = frozenset("first second third fourth fifth sixth seventh eighth ninth tenth last next".split())
# heads that make a description a person's ("Tromhavn, the daughter of ...": not the town's)
_PERSON_HEADS = frozenset("daughter son wife husband widow widower mother father brother sister child grandson "
                          "granddaughter niece nephew cousin woman man girl boy person lady gentleman".split())
# endings of a role noun that makes a person-like name a person's ("a schoolteacher named Morwenna Tully")
_PERSON_SUFFIXES = ("er", "or", "ist", "ian", "man", "woman", "ess")
# a name's head noun that reads well in "the <head> that ..." ("the glacier that flows ...")
_RELATIVE_HEADS = THING_HEADS - frozenset("works kitchenworks pits line islands isle".split())


@dataclass(frozen=True)
class Bridge:
    """One description of one name, as a sentence states it.

    ``start``/``end`` delimit the part of the sentence that states it (the name, the description and
    what joins them), which must be found in the source (see :func:`stated_in`). ``kind`` is the
    pattern: appositive, title, named, copular, reverse, heading, relative. ``person``: the name is a
    person's (asked with "who")."""

    name: str
    description: str
    start: int
    end: int
    kind: str
    person: bool

    @property
    def definite(self) -> str:
        return definite(self.description)


def definite(description: str) -> str:
    """The description as it names one thing: "a schoolteacher in ..." -> "the schoolteacher in ..."."""
    first, _, rest = description.partition(" ")
    if first.lower() in ("a", "an", "the"):
        return f"the {rest}"
    return description


@functools.lru_cache(maxsize=8192)
def word_classes(word: str) -> frozenset[str]:
    """The word classes lemminflect's lexicon gives ``word`` ({"NOUN", "VERB"} for "engineer"; empty for a word
    it lacks, such as "glaciologist")."""
    from lemminflect import getAllLemmas

    return frozenset(getAllLemmas(word.lower()))


def _nounish(word: str) -> bool:
    """A word that can end a noun phrase: a noun, a name, a number, or a word the lexicon lacks
    ("glaciologist")."""
    w = word.strip("'\"")
    if not w or w.lower() in STOP_EN | _PRONOUNS | _PREPS | _ADVERBS:
        return False
    if w[:1].isupper() or any(ch.isdigit() for ch in w):
        return True
    pos = word_classes(w)
    return not pos or "NOUN" in pos


def _finite(word: str, following: str) -> bool:
    """Whether ``word`` is a finite verb (so the words around it are a clause, not a noun phrase):
    a form of be/have, a present-tense verb, a past tense that is no participle ("wrote"), or a regular
    past followed by an object ("founded the club") rather than a preposition ("founded in 2009")."""
    w = word.lower()
    if w in _COPULAS or w in _AUXILIARIES:
        return True
    if present_lemma(w):
        return True
    lemma = past_lemma(w)
    if lemma is None:
        return False
    from lemminflect import getInflection

    if w not in getInflection(lemma, tag="VBN"):
        return True
    nxt = following.lower()
    return bool(nxt) and (nxt in _DETS or nxt in _PRONOUNS or following[:1].isupper())


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]


def noun_phrase(text: str, shorten: bool) -> str | None:
    """The description at the start of ``text`` (which starts with an article or a possessive), cut at
    its clause boundary (a comma, semicolon, colon, parenthesis, dash, relative pronoun or "and"/"but"
    before a verb); ``None`` when it is no usable noun phrase.

    Over :data:`MAX_WORDS` words, an indefinite description (``shorten``) keeps its longest beginning
    that ends before a preposition other than "of", a participle, an adverb or "and" (a shorter
    indefinite description stays true: "a team sport played with a wooden hoop"); any other is dropped,
    because cutting "the largest city on the river" can make it false.
    """
    tokens = _words(text)
    kept: list[str] = []
    for i, (_, _, tok) in enumerate(tokens):
        word = tok.rstrip(".,;:!?)\"")
        low = word.lower()
        nxt = tokens[i + 1][2].rstrip(".,;:!?") if i + 1 < len(tokens) else ""
        if tok.startswith(("(", "–", "—", "-")) or (low in _RELATIVES and kept):
            if low in _RELATIVES and not shorten:
                return None  # "the largest city that ...": without its relative clause it may be false
            break
        if low in ("and", "or") and (_finite(nxt, "") or nxt.lower() in _ADVERBS | _PRONOUNS):
            break
        if low == "but":
            break
        if low in _PRONOUNS:
            return None  # "their star player", "the year it opened": it depends on what came before
        if kept and _finite(low, nxt):
            return None
        kept.append(word)
        if tok != word and tok[len(word):][:1] in ",;:.!?)\"":
            break
    if len(kept) < 2 or not _head_ok(kept):
        return None
    if len(kept) > MAX_WORDS:
        if not shorten:
            return None
        cuts = [j for j in range(2, MAX_WORDS + 1)
                if j < len(kept) and _nounish(kept[j - 1]) and _cut_before(kept[j], kept[j + 1] if j + 1 < len(kept) else "")]
        if not cuts:
            return None
        kept = kept[: cuts[-1]]
    elif not _nounish(kept[-1]):
        if not shorten:
            return None
        cuts = [j for j in range(2, len(kept)) if _nounish(kept[j - 1]) and _cut_before(kept[j], kept[j + 1])]
        if not cuts:
            return None
        kept = kept[: cuts[-1]]
    return " ".join(kept)


def _cut_before(word: str, following: str) -> bool:
    low = word.lower()
    if low in _ADVERBS or low == "and" or (low in _PREPS and low != "of"):
        return True
    return bool(past_lemma(low)) and "NOUN" not in word_classes(low)  # a participle: "founded", "played"


def _head_ok(words: list[str]) -> bool:
    """The head noun (the last word before the first preposition, participle or adverb) is a common
    noun that identifies something."""
    head = _head(" ".join(words))
    if not head:
        return False
    if head.lower() in _NOT_IDENTIFYING | _ORDINALS or not _nounish(head) or any(ch.isdigit() for ch in head):
        return False
    # the head is a common noun: written in lower case, or a capitalised word the lexicon knows as a noun
    return head[:1].islower() or "NOUN" in word_classes(head.lower())


def _starts_description(text: str) -> bool:
    """Whether ``text`` starts with an article or a name's possessive ("the company's", "Ilsabet's")."""
    first = text.split(" ", 1)[0]
    return first.lower() in _DETS or bool(re.match(r"[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*'s\b", text))


def _head(description: str) -> str:
    """The head noun as written: the last word before the first preposition, "and", or an adverb or
    participle after a noun ("a glaciologist best remembered" -> "glaciologist"; "the most successful
    club side in history" -> "side")."""
    core: list[str] = []
    for w in description.split()[1:]:
        low = w.lower()
        if low in _PREPS or low == "and" or (core and (low in _ADVERBS or (past_lemma(low) and "NOUN" not in word_classes(low)))):
            break
        core.append(w)
    return core[-1] if core else ""


def _kind_clash(description: str, person: bool) -> bool:
    """A person's head noun for a name that is no person's ("Tromhavn, the daughter of ..."), or a place's
    or thing's head for a person's name."""
    head = _head(description).lower()
    return (head in _PERSON_HEADS and not person) or (person and head in THING_HEADS)


def _plural(noun: str) -> bool:
    """"recordings", "engineers": a title before a name is one noun ("the engineer Mirela Dunhaven"); a plural
    there is a phrase of its own ("From the recordings Ilsabet calculated ...")."""
    from lemminflect import getLemma

    lemma = getLemma(noun.lower(), upos="NOUN")
    return bool(lemma) and lemma[0] != noun.lower()


def _name_head(name: str) -> str:
    """The common noun a name ends in ("Skarrow Glacier" -> "glacier", "Norrgaard-Quint Institute for Ice
    Acoustics" -> "institute"), if it reads well in "the <head> that ..."."""
    head = re.split(r"\s+(?:of|for)\s+", name)[0].split()[-1].lower()
    return head if head in _RELATIVE_HEADS else ""


_FRONTED = frozenset("in on at for from with by to after before since during under over near within until when "
                     "while although though because if as once".split())


def _fronted_adverbial(prefix: str) -> bool:
    """Whether ``prefix`` (the sentence before a name) is a fronted phrase with no verb ("In Lyndmoor",
    "After meeting"), so a comma after the name ends that phrase rather than starting an appositive."""
    words = prefix.split()
    if not words or words[0].lower() not in _FRONTED or "," in prefix:
        return False
    return not any(_finite(w.strip(",").lower(), "") for w in words[1:])


def bridges(sentence: str, known_names: set[str] | None = None) -> list[Bridge]:
    """Every description ``sentence`` gives one of its names, by these patterns (examples in the tests):

    * appositive: "Bartholomew Ashgrove, a schoolteacher in the market town of Lyndmoor, ...";
    * appositive before the name: "The expedition ship, the Gullveig, was ...", "announced a fourth
      model, the Emberlark Nomad, designed ...";
    * title: "the engineer Mirela Dunhaven" (a common-noun role with an article; "Professor Anselm
      Grieve" alone is no description);
    * named: "a schoolteacher named Morwenna Tully", "a silver trophy known as the Ashgrove Kettle";
    * copular: "Drennick is a team sport played with ...", "X was the first woman to ...";
    * reverse: "The most successful club side in history is the Marrowgate Herons", "The Warden for the
      2023 festival was a schoolteacher named Morwenna Tully";
    * heading: "Ilsabet Norrgaard-Quint: the woman who listened to glaciers";
    * relative: "the Skarrow Glacier, which flows down ..." -> "the glacier that flows down ...",
      "Professor Anselm Grieve, who supervised ..." -> "the person who supervised ...".

    English only: a sentence with CJK characters gives none.
    """
    if CJK_CHAR.search(sentence):
        return []
    spans = [s for s in find_spans(sentence, known_names) if s.kind in ("person", "thing", "term")]
    out: list[Bridge] = []
    seen: set[tuple[str, str]] = set()

    def add(span, description, start, end, kind):
        name = span.text(sentence)
        # A place's name after "in" is not a person's even when it looks like one ("in Port Ebbering").
        prep = sentence[:span.start].rstrip().rsplit(" ", 1)[-1].lower() in PLACE_PREPS
        personish = span.kind == "person" or (person_like(name) and not prep)
        key = (name.lower(), definite(description).lower())
        if description and key not in seen and not _kind_clash(description, personish) \
                and name.lower() not in description.lower():
            seen.add(key)
            head = _head(description).lower()
            person = span.kind == "person" or head in _PERSON_HEADS or (
                personish and head.endswith(_PERSON_SUFFIXES) and head not in THING_HEADS)
            out.append(Bridge(name, description, start, end, kind, person))

    for span in spans:
        s, e = span.start, span.end
        before, after = sentence[:s], sentence[e:]
        the = re.search(r"\b[Tt]he\s+$", before)
        name_start = the.start() if the else s
        at_start = not sentence[:name_start].strip()
        if after.startswith("'s") or re.search(r"\b(?:a|an)\s+$", before, re.I):
            continue  # a possessive; "a Lantern Warden" is a capitalised role, not one thing's name
        # heading: "Name: the ..."
        m = re.match(r"\s*:\s+", after)
        if m and at_start and _starts_description(after[m.end():]):
            desc = after[m.end():].strip().rstrip(".")
            words = desc.split()
            if 2 <= len(words) <= MAX_WORDS and not any(w.lower().strip(",") in _PRONOUNS - {"that"} for w in words):
                desc = words[0].lower() + desc[len(words[0]):] if words[0].lower() in _DETS else desc
                add(span, desc, name_start, len(sentence), "heading")
            continue
        # appositive after the name: "Name, a schoolteacher in ..., who"
        m = re.match(r"\s*(?:\([^)]*\)\s*)?,\s+", after)
        if m and _starts_description(after[m.end():]) and not _fronted_adverbial(sentence[:name_start]) \
                and not re.search(r"\b(?:of|and|or)\s+$", sentence[:name_start]):
            rest = after[m.end():]
            desc = noun_phrase(rest, shorten=rest.split()[0].lower() in ("a", "an"))
            if desc:
                tail = rest[len(desc):]
                if not re.match(r"\s*,\s*(?:and|or)\b", tail) and re.match(r"\s*(?:[,;.:]|$)", tail):
                    add(span, desc, name_start, e + m.end() + len(desc), "appositive")
        # relative clause: "Name, which flows ...", "Name, founded in 1984 in Velmar,"
        m = re.match(r"\s*,\s+(?:(which|who)\s+)?(\S+)", after)
        if m and not re.search(r"\b(?:of|and|or)\s+$", sentence[:name_start]) \
                and not _fronted_adverbial(sentence[:name_start]):
            _relative(span, sentence, name_start, m, add)
        # appositive before the name: "The expedition ship, the Gullveig, was ..."
        m = re.search(r",\s+$", sentence[:name_start])
        if m and re.match(r"\s*,\s+(?!and\b|or\b)", after):
            head_text = sentence[: m.start()]
            clause_start = max(head_text.rfind(","), head_text.rfind(";")) + 1
            clause = head_text[clause_start:]
            for dm in re.finditer(r"(?:(?<=\s)|^)(?:[Tt]he|[Aa]n?)\s", clause.lstrip() and clause):
                prefix = clause[: dm.start()].strip()
                if prefix and not _finite(prefix.split()[-1], clause[dm.start():].split()[0]):
                    continue  # a determiner inside a phrase ("player in the 1970s") is not the description's
                desc = noun_phrase(clause[dm.start():].strip(), shorten=False)
                if desc and desc == clause[dm.start():].strip().rstrip(","):
                    add(span, desc[0].lower() + desc[1:] if desc.split()[0] in ("The", "A", "An") else desc,
                        clause_start + dm.start() + (len(clause[dm.start():]) - len(clause[dm.start():].lstrip())),
                        e, "appositive")
                break
        # title and named: "the engineer Mirela Dunhaven", "a schoolteacher named Morwenna Tully"
        m = re.search(r"(?:^|(?<=\s))((?:[Tt]he|[Aa]n?)\s+(?:(?!(?:named|called|nicknamed|known)\b)[a-z][\w-]*\s+){1,3})"
                      r"(?:(named|called|nicknamed|known as)\s+)?$", sentence[:name_start])
        if m and not (m.group(2) is None and (_fronted_adverbial(sentence[: m.start(1)] + "x")
                                              or _plural(m.group(1).split()[-1]))):
            desc = m.group(1).strip()
            words = desc.split()
            if m.group(2):
                words_ok = all(w.lower() not in _PREPS | STOP_EN - set(_DETS) and not _finite(w, "") for w in words[1:])
            else:
                words_ok = all(w.lower() not in STOP_EN and not _finite(w, "") and not past_lemma(w) for w in words[1:])
            if words_ok and _nounish(words[-1]) and _head_ok(words) and (
                    m.group(2) or ("ADJ" not in word_classes(words[-1]) and not words[-1].endswith("ing"))):
                add(span, desc[0].lower() + desc[1:], m.start(1), e, "named" if m.group(2) else "title")
        # copular: "Name is a team sport ..."
        m = re.match(r"\s*(?:\([^)]*\)\s*)?(?:is|was|are|were)\s+", after)
        if m and at_start and _starts_description(after[m.end():]):
            rest = after[m.end():]
            desc = noun_phrase(rest, shorten=rest.split()[0].lower() in ("a", "an"))
            if desc:
                add(span, desc, name_start, e + m.end() + len(desc), "copular")
        # reverse: "The most successful club side in history is the Marrowgate Herons"
        m = re.search(r"\s(?:is|was|are|were)\s+(?:(?:a|an|the)\s+(?:[a-z][\w-]*\s+){1,3}(?:named|called)\s+)?(?:the\s+)?$",
                      sentence[:s])
        if m and re.match(r"\s*(?:[,;.]|$)", after) and _starts_description(sentence):
            subject = sentence[: m.start()].strip()
            if not any(sp.start == 0 or sentence[:sp.start].strip().lower() == "the"
                       for sp in spans if sp.end >= len(subject) - 1 and sp is not span):
                desc = noun_phrase(subject, shorten=False)
                if desc == subject:
                    add(span, desc[0].lower() + desc[1:] if desc.split()[0] in ("The", "A", "An") else desc,
                        0, e, "reverse")
    return out


def _relative(span, sentence: str, name_start: int, m: re.Match, add) -> None:
    """"Name, which/who <verb> ..." and "Name, <participle> <preposition> ..." -> "the <head> that ...",
    "the person who ..."; only where the clause has no pronoun and ends at a comma or the sentence end."""
    rel, verb = m.group(1), m.group(2).strip(",").lower()
    rest = sentence[span.end + m.start(2):]
    end = re.search(r",|;|:|\.$|\s(?:and|but)\s+(?=\w+)", rest)
    clause = rest[: end.start()] if end else rest.rstrip(".")
    words = clause.split()
    if not words or len(words) > MAX_WORDS - 3 or any(w.lower().strip("\"'") in _PRONOUNS for w in words):
        return
    head = _name_head(span.text(sentence))
    # after "which"/"who" the next word is the clause's verb when the lexicon allows it ("flows" is a noun too)
    is_verb = _finite(verb, words[1] if len(words) > 1 else "") or "VERB" in word_classes(verb)
    if rel == "which" and head and is_verb:
        desc = f"the {head} that {clause}"
    elif rel == "who" and span.kind == "person" and is_verb and verb not in ("are", "were", "have"):
        desc = f"the person who {clause}"
    elif rel is None and head and past_lemma(verb) and len(words) > 1 and words[1].lower() in _PREPS:
        from lemminflect import getInflection

        if verb not in getInflection(past_lemma(verb), tag="VBN"):
            return
        desc = f"the {head} {clause}"  # "the institute founded in 1984 in Velmar"
    else:
        return
    add(span, desc, name_start, span.end + m.start(2) + len(clause), "relative")


def descriptions(sentence: str, known_names: set[str] | None = None) -> list[tuple[str, str]]:
    """``(name, description)`` for every description ``sentence`` gives a name (see :func:`bridges`)."""
    return [(b.name, b.description) for b in bridges(sentence, known_names)]


def _flat(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text).strip()


def _occurs(segment: str, text: str) -> bool:
    """Whether ``segment`` is in ``text`` (case aside) as a phrase of its own: not the end of a longer name
    ("Quillmere is ..." is not stated by "The Saltlight Festival of Quillmere is ...")."""
    pattern = r"\s+".join(re.escape(w) for w in segment.split())
    for m in re.finditer(pattern, text, re.I):
        if m.start() and text[m.start() - 1].isalnum():
            continue
        line = text[: m.start()].rsplit("\n", 1)[-1].rstrip()
        before = line.rsplit(" ", 1)[-1] if line else ""
        if segment[:1].isupper() and (before.lower() in ("of", "de", "van", "von")
                                      or (before[:1].isupper() and before[-1:] not in ".!?:\"")):
            continue
        return True
    return False


#: what joins a name and its description in "X, a ...", "X: a ...", "X is a ..." (one statement, three ways)
_JOINERS = re.compile(r"^(.*?)(\s*,\s+|\s*:\s+|\s+(?:is|was|are|were)\s+)(.*)$", re.S)


def stated_in(bridge: Bridge, sentence: str, source: str) -> bool:
    """Whether ``source`` (the chunk a fact came from) states ``bridge`` in these words, or with a pronoun
    where the fact has the name (facts get their leading pronoun resolved: "Her supervisor was ..." ->
    "Ilsabet Norrgaard-Quint's supervisor was ..."), or with another of "," ":" "is" between a name and
    the description that follows it ("The Emberlark: a portable oven ..." is stated by "the Emberlark, a
    portable oven ...").

    A generated fact can join a name and a description that the document keeps apart ("The Saltlight
    Festival of Quillmere is a small granite island"); its words are in the chunk, but not in this order.
    """
    segment = _flat(sentence[bridge.start:bridge.end])
    text = _flat(source)
    variants = [segment]
    for m in list(NAME_RUN.finditer(segment))[:2]:
        start = m.start() - 4 if segment[:m.start()].lower().endswith("the ") else m.start()
        possessive = m.group().endswith("'s") or segment[m.end():].startswith("'s")
        end = m.end() if m.group().endswith("'s") else m.end() + 2 * possessive
        for pronoun in (("his", "her", "its", "their") if possessive else ("he", "she", "it", "they")):
            variants.append(segment[:start] + pronoun + segment[end:])
    if bridge.kind in ("appositive", "copular", "heading"):
        joined = _JOINERS.match(segment)
        if joined and bridge.name in joined.group(1):
            variants += [joined.group(1) + j + joined.group(3) for j in (", ", ": ", " is ", " was ")]
    return any(_occurs(v, text) for v in variants)
