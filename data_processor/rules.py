"""Rule-based text from fact sentences: the spans worth asking about, questions about each, and
facts made self-contained. Pure functions; the questions and pronoun rules are English only, the
spans (numbers, counts, years and quoted names) are found in Chinese text too.

Questions made by rule, one or more per name, number or date a fact states:

A 135M generator cannot be trusted to ask about a given span (measured: 2 of 8 few-shot attempts
asked for the span), but a span of a sentence can be asked about by rewriting the sentence around
it. Each span gets a wh-phrase chosen from its kind and its context ("in 1923" -> "in what year",
"seven players" -> "how many players", "the city of Castelbrook" -> "which city", "by Bartholomew
Ashgrove" -> "by whom"), and the sentence is turned into questions two ways:

* the echo question keeps the sentence and puts the wh-phrase where the span was ("Drennick was
  invented in what year by Bartholomew Ashgrove?");
* the fronted question moves the wh-phrase to the front with the auxiliary inverted, for the common
  shapes "X was/is/were/are ...", "X has/had ..." and "X <past- or present-tense verb> ..." ("In what year was
  Drennick invented?", "How many players does a drennick team have?", "In what year did she join
  the Velmarian Polar Survey?", "How many players does the team consist of?"), cut at the end of the
  span's clause. Verb forms and base forms come from lemminflect's lexicon.

A keyword question asks for the span with a random half of the sentence's other content words ("Which
bay: fisherman lantern salt floated?"), as a reworded question shares only some of them.

A span that is the sentence's subject gives the reverse question ("What is a team sport played with
a wooden hoop?"): attribute -> entity as well as entity -> attribute (the reversal curse, Berglund
et al. 2309.12288). The same spans are what fill-in-the-blank rows blank out.
"""
from __future__ import annotations

import functools
import random
import re
import zlib
from dataclasses import dataclass

from .parsing import CJK_CHAR, STOP_EN

MONTHS = ("January February March April May June July August September October November December").split()
_MONTH = "(?:" + "|".join(MONTHS) + ")"
_NUMBER_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
                 "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
                 "thousand million billion dozen").split()
_NUM_WORD = r"(?:" + "|".join(_NUMBER_WORDS) + r")(?:-(?:" + "|".join(_NUMBER_WORDS) + r"))?"
_DIGITS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_DATE = re.compile(rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)? {_MONTH},? \d{{4}}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|{_MONTH} \d{{4}})\b")
_MONEY = re.compile(rf"(?:[€$£]\s?(?:{_DIGITS})(?: (?:million|billion|thousand))?"
                    rf"|\b(?:{_DIGITS})(?: (?:million|billion|thousand))? (?:euros?|dollars?|pounds|crowns|francs|marks)\b)")
# digits may end a range ("1902-1979"); a number word may not start a compound ("five-minute")
_NUMBER = re.compile(rf"(?<![\w.,€$£])(?:(?:{_DIGITS})(?!\w)|(?:{_NUM_WORD})(?![\w-]))", re.I)
_ORDINAL = re.compile(r"\b\d+(?:st|nd|rd|th)\b")
_YEAR = re.compile(r"^(?:1[0-9]{3}|20[0-9]{2})$")
# Capitalised runs with short joiners ("University of Velmar", "Anselm Grieve"); a leading "The" is kept apart.
NAME_RUN = re.compile(r"(?<![\w'-])[A-Z][\w'&-]*(?:\s+(?:(?:of|the|de|da|van|von|and|du|del|la|le|&)\s+)*[A-Z][\w'-]*)*")
# A lower-case term the text introduces by name: "which she called ice-harps", "a period called the long roll"
_INTRODUCED = re.compile(r"\b(?:called|named|known as)\s+(?:(?:the|a|an)\s+)?((?!(?:the|a|an|after|by|in|of)\b)[a-z][\w-]*"
                         r"(?:\s+(?!(?:after|by|in|of|on|for|because|and|which|who|to|with)\b)[a-z][\w-]*)?)")
# Head nouns that make a capitalised run a thing or a place, not a person.
THING_HEADS = frozenset("""
bay sea ocean river lake glacier fjord mount mountain range valley island islands isle coast cliffs pits
city town village port harbour street road square bridge canal tower house hall castle church cathedral
federation society university college school institute academy survey club company kitchenworks works
championship cup medal prize award trophy kettle bell festival expedition council museum library
observatory railway line ship ferry station factory mill bakery foundry conservatory gate
""".split())
_HONORIFICS = frozenset("professor dr doctor sir lady lord master mr mrs ms captain king queen saint st".split())
_PERSON_VERBS = re.compile(r"^\s*(?:,\s*(?:a|an|the|who|whose)\b|\s+(?:was born|died|studied|wrote|said|married|"
                           r"taught|founded|invented|carved|lost|won|joined|became)\b)")
PLACE_PREPS = ("in", "at", "near", "from", "to", "into", "across", "on")
AUX = ("was", "were", "is", "are")
HAVE_DO = {"has": "does", "have": "do", "had": "did"}


# Chinese text has no word boundaries and no capitals: a number is a run of digits ("1763年" keeps its
# unit apart) or of numerals before a measure word ("八百人", "三十二道"); a name the text stresses is quoted.
_CJK_NUMERAL = "零一二三四五六七八九十百千万亿两"
_CJK_MEASURE = "年月日人个位名道米克下盏座条次块种家所只锭岁天元斤里层间"
_CJK_NUMBER = re.compile(rf"\d+(?:\.\d+)?|[{_CJK_NUMERAL}]{{2,}}(?=[{_CJK_MEASURE}])|[{_CJK_NUMERAL[2:]}](?=[{_CJK_MEASURE}])")  # a lone 一 ("一位") is an article
_CJK_QUOTED = re.compile(r'["“「]([^"”」]{1,12})["”」]')


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str  # date | year | money | count | number | ordinal | person | place | thing | term

    def text(self, sentence: str) -> str:
        return sentence[self.start:self.end]


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(s < span[1] and span[0] < e for s, e in taken)


def _is_person(name: str, sentence: str, end: int, start: int) -> bool:
    words = name.split()
    if any(w.lower().strip(".") in _HONORIFICS for w in words[:1]):
        return True
    if any(w.lower() in THING_HEADS for w in words) or words[0].lower() == "the":
        return False
    before = sentence[:start].rstrip().lower()
    if before.endswith(("the city of", "the town of", "the village of", "the island of", "the port of")):
        return False
    if before.endswith(tuple(f" {p}" for p in PLACE_PREPS)) or before in PLACE_PREPS:
        return False
    return len(words) >= 2 and all(w[:1].isupper() for w in words) and bool(_PERSON_VERBS.match(sentence[end:]))


def find_spans(sentence: str, known_names: set[str] | None = None) -> list[Span]:
    """The names, numbers and dates of ``sentence`` a question can ask for, in reading order, not overlapping.

    ``known_names`` (lower-cased words seen capitalised mid-sentence in the source) decide whether a
    capitalised first word is a name ("Drennick is ...") or just the sentence start ("Musicians ...").
    """
    taken: list[tuple[int, int]] = []
    spans: list[Span] = []

    def add(s: int, e: int, kind: str) -> None:
        if s < e and not _overlaps((s, e), taken) and (e - s) <= 0.6 * len(sentence):
            taken.append((s, e))
            spans.append(Span(s, e, kind))

    if CJK_CHAR.search(sentence):
        for m in _CJK_QUOTED.finditer(sentence):
            add(m.start(1), m.end(1), "term")
        for m in _CJK_NUMBER.finditer(sentence):
            year = sentence[m.end():m.end() + 1] == "年" and bool(_YEAR.match(m.group(0)))
            add(m.start(), m.end(), "year" if year else "number")
        return sorted(spans, key=lambda s: s.start)

    for m in _DATE.finditer(sentence):
        add(m.start(), m.end(), "date")
    for m in _MONEY.finditer(sentence):
        add(m.start(), m.end(), "money")
    for m in _ORDINAL.finditer(sentence):
        add(m.start(), m.end(), "ordinal")
    for m in _NUMBER.finditer(sentence):
        word = m.group(0)
        if word.isalpha() and (word.lower() == "one" or not _counted_noun(sentence, m.end())):
            continue  # "each village has one", "one keeper": a pronoun or an article, not a count
        add(m.start(), m.end(), "year" if _YEAR.match(word) else "number")
    for m in _INTRODUCED.finditer(sentence):
        add(m.start(1), m.end(1), "term")
    for m in NAME_RUN.finditer(sentence):
        start, text = m.start(), m.group(0)
        words = text.split()
        while words and (words[0].lower() in STOP_EN or words[0].lower() in ("while", "since", "because", "after",
                                                                               "before", "although", "however")):
            start += len(words[0])
            start += len(sentence[start:]) - len(sentence[start:].lstrip())
            words = words[1:]
        if not words:
            continue
        name = " ".join(words)
        if start == 0 and len(words) == 1 and words[0].lower() not in (known_names or ()):
            continue  # an ordinary word capitalised at the sentence start
        if words[0].lower() in STOP_EN:
            continue
        kind = "person" if _is_person(name, sentence, m.end(), start) else "thing"
        add(start, m.end(), kind)
    return sorted(spans, key=lambda s: s.start)


# -- the wh-phrase ---------------------------------------------------------------------------------
_COUNTED = re.compile(r"^\s+((?:[a-z][\w-]*\s+){0,1}[a-z][\w-]*)")
_NOT_NOUNS = STOP_EN | frozenset("""per each every long wide high tall old deep heavy apart away ago later earlier
more less than about around nearly almost over under times percent per cent""".split())


def _counted_noun(sentence: str, end: int) -> str:
    """The noun counted by a number ending at ``end``: "seven players" -> "players", "fourteen fishing boats"
    -> "fishing boats"; "" when none follows."""
    m = _COUNTED.match(sentence[end:])
    if not m:
        return ""
    words = m.group(1).split()
    out = []
    for w in words:
        if w.lower() in _NOT_NOUNS:
            break
        out.append(w)
    return " ".join(out)


def wh_phrase(sentence: str, span: Span) -> tuple[int, int, str]:
    """``(start, end, phrase)``: the part of ``sentence`` to replace (the span, sometimes with the word
    before or after it) and the wh-phrase that asks for it, in lower case."""
    s, e = span.start, span.end
    before = sentence[:s]
    prev = before.rstrip().rsplit(" ", 1)[-1].lower() if before.strip() else ""
    prev_start = len(before.rstrip()) - len(prev)
    if span.kind == "date":
        if prev in ("on", "in"):
            return prev_start, e, "on what date"
        return s, e, "what date"
    if span.kind == "year":
        if prev in ("in", "since", "by", "until", "from"):
            return prev_start, e, f"{prev} what year"
        return s, e, "what year"
    if span.kind == "money":
        return s, e, "how much"
    if span.kind == "ordinal":
        return s, e, "which"
    if span.kind == "number":
        noun = _counted_noun(sentence, e)
        if noun:
            return s, e + 1 + len(noun), f"how many {noun}"
        return s, e, "what number"
    if span.kind == "person":
        if prev == "by":
            return prev_start, e, "by whom"
        return s, e, "who"
    if span.kind == "term":
        return s, e, "what"
    # a thing or a place
    m = re.search(r"\bthe (city|town|village|island|port|county|region|province|country|river|valley|"
                  r"parish|district|country) of\s*$", before, re.I)
    if m:
        return m.start(), e, f"which {m.group(1).lower()}"
    head = re.split(r"\s+of\s+", sentence[s:e])[0].split()[-1].lower()  # "Halloran Medal of the ..." -> medal
    if head in THING_HEADS:
        start = prev_start if prev == "the" else s
        return start, e, f"which {head}"
    if prev in ("in", "at", "near"):
        return prev_start, e, "where"
    start = prev_start if prev == "the" else s
    return start, e, "what"


def alternative_phrase(phrase: str) -> str | None:
    """A second wording of a wh-phrase that asks for the same span ("in what year" -> "when", "how many
    players" -> "what number of players", "who" -> "which person"), or ``None``."""
    for prep in ("in", "by", "since", "until", "from"):
        if phrase == f"{prep} what year":
            return "when" if prep == "in" else f"{prep} when"
    fixed = {"what year": "which year", "on what date": "when", "what date": "which date", "by whom": "by which person",
             "who": "which person", "where": "in which place"}
    if phrase in fixed:
        return fixed[phrase]
    if phrase.startswith("how many "):
        return "what number of " + phrase[len("how many "):]
    if phrase.startswith("which "):
        return "what " + phrase[len("which "):]
    return None


def finish_question(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip().rstrip(".;:!,").rstrip()
    text = re.sub(r"\s+([,.;:?])", r"\1", text)
    return text[:1].upper() + text[1:] + "?"


def echo_question(sentence: str, span: Span, phrase: str | None = None) -> str:
    """The sentence with the span replaced by its wh-phrase (or ``phrase``): "Drennick was invented in what
    year by ...?"."""
    s, e, wh = wh_phrase(sentence, span)
    wh = phrase or wh
    question = sentence[:s] + wh + clause_after(sentence[e:], min_words=0 if s else 3)
    return finish_question(question)


_CLAUSE_END = re.compile(r",\s|;\s|:\s|\s\(|\s[-–—]\s|\s(?:which|who|where|while|because|and then)\s")
NO_SUBJECT_START = frozenset("""if when whenever although though because while after before since as during in on at
for from with by under over within throughout until unless once each every today now nowadays later then""".split())


MODALS = frozenset("must can could may might will would should shall".split())
_AND_VERB = re.compile(r"\s(?:and|but)\s+(\w+)")


def clause_after(text: str, min_words: int = 0) -> str:
    """``text`` cut at the end of its clause (a comma, semicolon, colon, dash, parenthesis, relative
    pronoun, or "and"/"but" before a verb), unless that leaves fewer than ``min_words`` words."""
    ends = [m.start() for m in _CLAUSE_END.finditer(text)]
    ends += [m.start() for m in _AND_VERB.finditer(text) if is_verb(m.group(1).lower()) or m.group(1).lower() in MODALS]
    for end in sorted(ends):
        if len(text[:end].split()) >= min_words:
            return text[:end]
    return text


@functools.lru_cache(maxsize=4096)
def past_lemma(verb: str) -> str | None:
    """The base form of a past-tense verb ("invented" -> "invent", "carried" -> "carry", "received" ->
    "receive", "began" -> "begin"), else ``None`` ("born", "hundred", "need").

    The lexicon is lemminflect's (its past-tense forms of each verb); a word it does not know that ends
    in "-ed" gets lemminflect's rules for unknown words. Imported here: loading it takes about a second.
    """
    from lemminflect import getAllLemmas, getInflection, getLemma

    v = verb.lower()
    lemmas = getAllLemmas(v, upos="VERB").get("VERB", ())
    past = [lemma for lemma in lemmas if v in getInflection(lemma, tag="VBD")]
    if past:
        return past[0]
    if lemmas or getAllLemmas(v) or not v.endswith("ed") or len(v) < 5:
        return None  # a known word that is not a past tense, or not a verb at all
    guess = getLemma(v, upos="VERB", lemmatize_oov=True)
    return guess[0] if guess else None


@functools.lru_cache(maxsize=4096)
def present_lemma(verb: str) -> str | None:
    """The base form of a third-person present verb ("consists" -> "consist", "carries" -> "carry"), else
    ``None``; "is" and "has" are handled apart. A word that is also a common noun ("records", "sales")
    is not taken for a verb."""
    from lemminflect import getAllLemmas, getInflection

    v = verb.lower()
    if not v.endswith("s") or v in AUX or v in HAVE_DO:
        return None
    lemmas = getAllLemmas(v)
    if "NOUN" in lemmas:
        return None
    return next((lemma for lemma in lemmas.get("VERB", ()) if v in getInflection(lemma, tag="VBZ")), None)


def is_verb(word: str) -> bool:
    return word in AUX or word in HAVE_DO or past_lemma(word) is not None or present_lemma(word) is not None


_NAMING = frozenset("named called nicknamed titled".split())


def is_main_verb(tokens: list[tuple[int, int, str]], idx: int) -> bool:
    """Whether ``tokens[idx]`` can be the clause's verb: a verb, not after an article or possessive, and not
    a participle that introduces a name ("a fisherman named Aldous Brannock", "a bell called the Brannock
    Bell")."""
    word = tokens[idx][2].lower().strip(",.;:")
    if not is_verb(word):
        return False
    if idx > 0 and tokens[idx - 1][2].lower() in ("a", "an", "the", "its", "their", "his", "her"):
        return False  # "a loaded saltback": an adjective
    following = tokens[idx + 1][2] if idx + 1 < len(tokens) else ""
    return not (word in _NAMING and (following[:1].isupper() or following.lower() == "the"))


def _invert(clause: str, wh: str) -> str | None:
    """``wh`` + ``clause`` with its subject and verb inverted ("she joined X" -> "<wh> did she join X?")."""
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", clause)]
    for idx, (ts, te, tok) in enumerate(tokens[:7]):
        word = tok.lower().strip(",.;:")
        if idx == 0 or not is_main_verb(tokens, idx):
            if tok.endswith((",", ";", ":")):
                return None
            continue
        return ask_question(wh, word, clause[:ts].strip(), clause_after(clause[te:]).strip())
    return None


def ask_question(wh: str, verb: str, subject: str, rest: str) -> str:
    """``wh`` + inverted ``subject verb rest``: "was X born", "does X have", "did X join"."""
    subj = subject[:1].lower() + subject[1:] if subject.split()[0].lower() in STOP_EN else subject
    if verb in AUX:
        return finish_question(f"{wh} {verb} {subj} {rest}")
    if verb in HAVE_DO:
        return finish_question(f"{wh} {HAVE_DO[verb]} {subj} have {rest}")
    if base := present_lemma(verb):
        return finish_question(f"{wh} does {subj} {base} {rest}")
    return finish_question(f"{wh} did {subj} {past_lemma(verb)} {rest}")


def fronted_question(sentence: str, span: Span, phrase: str | None = None) -> str | None:
    """The wh-phrase moved to the front with subject-auxiliary inversion, or ``None`` when the sentence
    has none of the handled shapes (a short subject, then was/were/is/are, has/have/had or a past- or
    present-tense verb) or the span sits in another clause than the verb's.

    When the span is the whole subject the question asks for it: "Drennick is a team sport ..." ->
    "What is a team sport ...?".
    """
    ws, we, wh = wh_phrase(sentence, span)
    wh = phrase or wh
    if ws == 0 and sentence[:we].split()[0].lower() in NO_SUBJECT_START:
        # "In 1931 she joined ..." asked for 1931: invert the clause that follows the fronted phrase.
        return _invert(sentence[we:].lstrip(" ,"), wh)
    tokens = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", sentence)]
    if not tokens or tokens[0][2].lower() in NO_SUBJECT_START:
        return None
    for idx, (ts, te, tok) in enumerate(tokens[:9]):
        word = tok.lower().strip(",.;:")
        if idx == 0 or not is_main_verb(tokens, idx):
            if tok.endswith((",", ";", ":")):
                return None  # not a plain subject noun phrase
            continue
        subject = sentence[: ts].strip()
        if span.start < ts:  # the span is in the subject
            bare = re.sub(r"^(?:the|a|an)\s+", "", subject, flags=re.I)
            if bare != span.text(sentence) or span.kind not in ("person", "thing", "term"):
                return None
            rest = clause_after(sentence[ts:])
            if len(rest.split()) < 3:
                return None
            return finish_question(("who" if span.kind == "person" else "what") + " " + rest)
        middle = sentence[te:ws]
        if _CLAUSE_END.search(middle + " ") or len(middle.split()) > 3 or any(ch.isdigit() for ch in middle):
            return None  # the span is not in the verb's own phrase: inversion would garble the sentence
        # "chooses a Lantern Warden", "weighs about 500 grams": the article or hedge goes with the span
        middle = re.sub(r"(?:\b(?:a|an|about|around|roughly|nearly|almost|some)\s*)+$", "", middle)
        return ask_question(wh, word, subject, (middle + clause_after(sentence[we:])).strip())
    return None


_WORD = re.compile(r"[A-Za-z][\w'-]*|\d[\d,.]*\d|\d")
# words that carry no cue of which fact is meant: the stop words, and hedges and adverbs of degree
_NOT_CUES = STOP_EN | frozenset("about almost nearly roughly around some only also just within more most less very "
                                 "so such own".split())


def keyword_questions(sentence: str, span: Span, count: int, phrase: str | None = None) -> list[str]:
    """Up to ``count`` short questions that ask for ``span`` with a random half (at most 8) of the
    sentence's other content words, in their order: "Which bay: fisherman lantern salt floated?".

    A reworded closed-book question shares only some of the fact's words ("Which fisherman floated the
    very first salt lantern on Quillmere?"); the echo and fronted questions keep all of them, so the
    model can learn to key the answer on the whole wording. Questions made of random subsets of the
    content words teach it to find the fact from any few of them (random word deletion, as in EDA, Wei &
    Zou 1901.11196). The subsets are drawn from a seed made of the sentence and the span, so a
    collection is reproducible.
    """
    ws, we, wh = wh_phrase(sentence, span)
    wh = phrase or wh
    asked = {w.lower() for w in _WORD.findall(span.text(sentence))}
    words: list[str] = []
    seen = set(_NOT_CUES) | asked
    for w in _WORD.findall(sentence[:ws] + " " + sentence[we:]):
        if w.lower() not in seen:
            seen.add(w.lower())
            words.append(w)
    if len(words) < 3:
        return []
    rng = random.Random(zlib.crc32(f"{sentence}\x00{span.start}:{span.end}".encode()))
    k = min(8, max(2, round(len(words) / 2)))
    out: list[str] = []
    for _ in range(4 * count):
        if len(out) == count:
            break
        keep = sorted(rng.sample(range(len(words)), k))
        question = f"{wh[:1].upper()}{wh[1:]}: {' '.join(words[i] for i in keep)}?"
        if question not in out:
            out.append(question)
    return out


def questions_for(sentence: str, known_names: set[str] | None = None, max_spans: int = 4,
                  phrasings: int = 1, keywords: int = 0) -> list[tuple[str, str]]:
    """``(question, span text)`` for the first ``max_spans`` spans: the fronted question
    where the sentence has a handled shape, and the echo question, for the span's wh-phrase and, with
    ``phrasings=2``, its :func:`alternative_phrase` too; then ``keywords`` :func:`keyword_questions`;
    duplicates dropped."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for span in find_spans(sentence, known_names)[:max_spans]:
        primary = wh_phrase(sentence, span)[2]
        phrases = [primary] + ([alternative_phrase(primary)] if phrasings > 1 and alternative_phrase(primary) else [])
        questions = [form(sentence, span, ph) for ph in phrases for form in (fronted_question, echo_question)]
        questions += keyword_questions(sentence, span, keywords) if keywords > 0 else []
        for q in questions:
            if q and len(q.split()) >= 4 and q.lower() not in seen and span.text(sentence).lower() not in q.lower():
                seen.add(q.lower())
                out.append((q, span.text(sentence)))
    return out


# -- self-contained facts --------------------------------------------------------------------------
_SUBJECT_PRONOUN = re.compile(r"\b(It|Its|it|its|He|His|She|Her|he|his|she|her)\b")
_PERSONAL = frozenset("he his she her".split())
# words after an object "her" ("gave it to her in 1902"); any other word makes it a possessive ("her father")
_OBJECT_FOLLOWERS = frozenset("in on at by to for with from and or as into after before up out down back that "
                              "than when while because so but if".split())


def title_entity(title: str) -> str:
    """What a document is about, from its heading: the part before a colon ("Drennick: the hoop-and-stick
    game" -> "Drennick"), else the leading name ("Odile Faverant-Rusk and the music of bells" -> "Odile
    Faverant-Rusk"; "Kessa bread of the Orvane Valley" -> "Kessa"), else the whole heading."""
    head = title.split(":", 1)[0].strip() if ":" in title else title.strip()
    if head != title.strip():
        return head
    m = NAME_RUN.match(head)
    return m.group(0).strip() if m else head


def person_like(name: str) -> bool:
    words = name.split()
    return len(words) >= 2 and all(w[:1].isupper() for w in words) and not any(
        w.lower() in THING_HEADS or w.lower() == "the" for w in words)


def sentence_subject(sentence: str, known: set[str]) -> str | None:
    """The name a sentence starts with ("The International Drennick Federation (IDF) was ..."), if any."""
    m = NAME_RUN.match(sentence.strip())
    if not m:
        return None
    name = m.group(0)
    words = [w for w in name.split() if w.lower() not in STOP_EN]
    if not words or (len(words) == 1 and words[0].lower() not in known):
        return None  # "Scoring is simple.": an ordinary word at the sentence start
    return name


def resolve_pronoun(fact: str, preceding: list[str], entity: str, known_names: set[str]) -> str:
    """``fact`` with its leading pronoun replaced by what it refers to, so the fact stands on its own.

    Asked closed-book, "It was invented in 1923" teaches nothing about drennick. The first "it/its"
    within the first five words becomes the subject of the sentence just before when that starts with a
    name, else the document's ``entity``; "he/she/his/her" becomes ``entity`` when that is a person's
    name, else the last person's name before. Possessives get "'s". Anything else stays as it was.

    Args:
        fact: one sentence.
        preceding: the sentences of the document before it, in order (for the antecedent).
        entity: what the document is about (:func:`title_entity`).
        known_names: lower-cased words seen capitalised mid-sentence (see ``parsing.proper_names``).
    """
    m = _SUBJECT_PRONOUN.search(fact)
    if not m or len(fact[: m.start()].split()) > 5 or '"' in fact[: m.start()]:
        return fact
    pron = m.group(1).lower()
    known = known_names | {w.lower() for w in entity.split()}
    if pron in _PERSONAL:
        if person_like(entity):
            ref = entity
        else:
            found = [s.text(p) for p in reversed(preceding) for s in find_spans(p, known) if s.kind == "person"]
            ref = found[0] if found else None
    else:
        # "it": the previous sentence's subject, or the document's topic; never a person
        prev = sentence_subject(preceding[-1], known) if preceding else None
        if prev and (person_like(prev) or (person_like(entity) and set(prev.split()) & set(entity.split()))):
            prev = None
        ref = prev or (None if person_like(entity) else entity)
    if not ref:
        return fact
    following = fact[m.end():].lstrip()
    possessive_her = pron == "her" and following[:1].isalpha() and following.split()[0].lower() not in _OBJECT_FOLLOWERS
    if pron in ("its", "his") or possessive_her:
        ref = ref + "'s"
    if m.start() > 0 and ref.split()[0] in ("The", "A", "An"):
        ref = ref[0].lower() + ref[1:]
    return fact[: m.start()] + ref + fact[m.end():]
