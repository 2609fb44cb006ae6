"""Reading model output tolerantly, and asking again (a bounded number of times) when it fails.

Small generators wrap JSON in code fences, add chatter around it, leave trailing commas, use
single or curly quotes, or skip JSON and write one item per line. These pure functions accept all
of that; whatever still does not parse raises :class:`ParseError` with a short reason that the
repair prompt repeats to the model.

This is also the one home of the text helpers the stages and rules share: :func:`normalize`,
:func:`finish_question`, :data:`STOP_EN`, :data:`CJK_CHAR`, :func:`content_words`,
:func:`proper_names` and the grounding checks.
"""
from __future__ import annotations

import ast
import json
import logging
import re
import unicodedata
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class ParseError(ValueError):
    """Model output that cannot be used; the message says why, briefly (it goes into repair prompts)."""


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_SMART = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "，": ",", "：": ":"})
# List markers: "-", "*", "1.", "2)", "(a)", "Fact 3:", "#". A number needs a space after it, so
# "3.5 million" keeps its "3."
_BULLET = re.compile(
    r"^\s*(?:[-*•·▪►>]+|\(?\d{1,3}[.)、:](?=\s|$)|\d{1,3}、|\(?[a-zA-Z]\)|#+|(?:fact|事实)\s*\d*\s*[:：.])\s*", re.I
)


def strip_code_fences(text: str) -> str:
    """Return the inside of the first fenced block if there is one (closed or not), else ``text``."""
    m = _FENCE.search(text)
    if m:
        return m.group(1).strip()
    if text.lstrip().startswith("```"):  # an unclosed fence: the model ran out of tokens
        return text.lstrip()[3:].split("\n", 1)[-1].strip()
    return text.strip()


def _balanced(text: str, start: int) -> str:
    """The bracketed span starting at ``text[start]``; to the end of text if never closed."""
    pairs = {"[": "]", "{": "}"}
    stack, in_str, esc = [], None, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == in_str:
                in_str = None
        elif ch in "\"'" and not (ch == "'" and i > 0 and text[i - 1].isalnum()):
            in_str = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return text[start : i + 1]
    return text[start:]


def _loads_lenient(candidate: str) -> Any:
    attempts = [candidate, _TRAILING_COMMA.sub(r"\1", candidate)]
    for c in attempts:
        try:
            return json.loads(c)
        except ValueError:
            pass
    try:  # single-quoted "JSON" is a Python literal
        return ast.literal_eval(_TRAILING_COMMA.sub(r"\1", candidate))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    # A list cut off by max_new_tokens: keep the complete items.
    if candidate.startswith("["):
        cut = candidate.rfind('",')
        if cut > 0:
            try:
                return json.loads(candidate[: cut + 1] + "]")
            except ValueError:
                pass
    raise ParseError("not valid JSON")


def extract_json(text: str, expect: type | None = None) -> Any:
    """Find and decode the first JSON value (of type ``expect``, if given) in model output.

    Handles code fences, text before/after the JSON, trailing commas, curly quotes, single quotes
    and a list truncated mid-item. Raises :class:`ParseError` if there is none.
    """
    body = strip_code_fences(text).translate(_SMART)
    openers = {list: "[", dict: "{", None: "[{"}[expect]
    for i, ch in enumerate(body):
        if ch in openers:
            try:
                value = _loads_lenient(_balanced(body, i))
            except ParseError:
                continue
            if expect is None or isinstance(value, expect):
                return value
    raise ParseError(f"no JSON {expect.__name__ if expect else 'value'} found")


def clean_line(line: str) -> str:
    """Strip list markers (``1.``, ``-``, ``Fact 2:``), wrapping quotes and surrounding space."""
    line = _BULLET.sub("", line.strip())
    line = line.strip().strip('"').strip("'").strip()
    return re.sub(r"\s+", " ", line)


def parse_lines(text: str) -> list[str]:
    """Items of a list answer: a JSON list of strings (or of objects with one text field), or one
    item per line with or without bullets/numbers. Blank lines and empty items are dropped."""
    try:
        value = extract_json(text, list)
    except ParseError:
        value = None
    if value:
        items = []
        for v in value:
            if isinstance(v, dict):
                v = next((x for x in v.values() if isinstance(x, str)), "")
            if isinstance(v, str | int | float):
                items.append(clean_line(str(v)))
        return [i for i in items if i]
    body = strip_code_fences(text)
    return [c for c in (clean_line(ln) for ln in body.splitlines()) if c]


def finish_question(q: str) -> str:
    """``q`` ending in a question mark (a full-width one after a Chinese character), in place of a final
    full stop or exclamation mark."""
    q = q.strip()
    if q and q[-1] not in "?？":
        q = q.rstrip(".。!！") + ("？" if re.search(r"[\u4e00-\u9fff]$", q) else "?")
    return q


def first_line(text: str) -> str:
    """The first non-empty line, cleaned (for one-line answers such as a theme)."""
    for ln in strip_code_fences(text).splitlines():
        c = clean_line(ln)
        if c:
            return c
    return ""


_REFUSAL = re.compile(r"^\W*(?:i'?m sorry|i am sorry|sorry,|i cannot|i can't|i can not|as an ai|unfortunately|对不起|抱歉|我无法|我不能)", re.I)
_HAS_WORD = re.compile(r"[^\W\d_]", re.U)


def check_usable(text: str) -> str:
    """``text`` if it has words and is not a refusal; else :class:`ParseError`."""
    if not _HAS_WORD.search(text):
        raise ParseError("the reply has no words")
    if _REFUSAL.match(text):
        raise ParseError("the reply is a refusal, not an answer")
    return text


def unique_usable(candidates) -> list[str]:
    """The candidates that pass :func:`check_usable`, without repeats (compared :func:`normalize`-d), in order."""
    out, seen = [], set()
    for text in candidates:
        try:
            check_usable(text)
        except ParseError:
            continue
        key = normalize(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def normalize(text: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form used for deduplication."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def ask_with_repair(
    llm,
    stage: str,
    chats: list[list[dict]],
    parse: Callable[[str, int], Any],
    repair_message: Callable[[str], str],
    max_repairs: int = 1,
) -> tuple[list[Any], int]:
    """Generate one reply per chat and parse it; re-ask those that fail, with the error, in one batch.

    Args:
        llm: a :class:`~data_processor.cache.CachedLLM`.
        stage: stage name (cache/progress label); repair rounds use ``<stage>-repair<n>``.
        chats: one chat per item.
        parse: ``parse(reply, item_index)``; raises :class:`ParseError` for unusable replies.
        repair_message: builds the follow-up user message from the parse error.
        max_repairs: repair rounds before an item counts as a parse failure.
    Returns:
        ``(results, failures)``: parsed values (``None`` where every attempt failed) and the
        number of such items.
    """
    results: list[Any] = [None] * len(chats)
    current = [list(c) for c in chats]
    pending = list(range(len(chats)))
    for attempt in range(max_repairs + 1):
        if not pending:
            break
        label = stage if attempt == 0 else f"{stage}-repair{attempt}"
        replies = llm.generate(label, [current[i] for i in pending], stage=stage)
        still = []
        for i, reply in zip(pending, replies):
            try:
                results[i] = parse(reply, i)
            except ParseError as exc:
                still.append(i)
                current[i] = current[i] + [
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": repair_message(str(exc))},
                ]
        pending = still
    if pending:
        logger.debug("%s: %d of %d replies unusable after %d repairs", stage, len(pending), len(chats), max_repairs)
    return results, len(pending)


# -- grounding -------------------------------------------------------------------------------------
STOP_EN = frozenset(
    "a an the and or but if then than of in on at to for from by with without about as into onto over "
    "under after before between during through is are was were be been being am do does did done has have "
    "had having it its it's this that these those there here which who whom whose what when where why how "
    "not no yes i you he she we they me him her us them my your his our their mine yours ours theirs "
    "can could will would shall should may might must also so such very more most much many some any "
    "each every all both either neither one ones other another same own just only up down out off again "
    "further once s t".split()
)
_STOP_ZH = frozenset("的了是在和有与及或也就都而被把对为以于之其这那个一上下中不没吗呢吧啊")
CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: between a document's title and a question anchored to it ("<title> — When did the festival start?")
ANCHOR_SEPARATOR = " — "
_WORD = re.compile(r"[^\W_]+", re.U)


def content_words(text: str) -> set[str]:
    """Lower-cased words that carry content (stop words dropped); each CJK character is a word."""
    text = unicodedata.normalize("NFKC", text).casefold()
    words: set[str] = set()
    for w in _WORD.findall(text):
        if CJK_CHAR.search(w):
            words.update(ch for ch in w if CJK_CHAR.match(ch) and ch not in _STOP_ZH)
            rest = CJK_CHAR.sub(" ", w).split()
            words.update(r for r in rest if r not in STOP_EN)
        elif w not in STOP_EN:
            words.add(w)
    return words


_NAME = re.compile(r"\b[A-Z][\w'-]+")


def proper_names(text: str) -> set[str]:
    """Lower-cased capitalised words that do not start a sentence or a ``Label:`` (likely names)."""
    names = set()
    for m in _NAME.finditer(text):
        before = text[: m.start()].rstrip(" \t")
        if not before or before[-1] in ".:!?\n\"'(":
            continue
        word = m.group(0).lower()
        if word not in STOP_EN:
            names.add(word)
    return names


def anchor_words(text: str) -> set[str]:
    """Words that name something specific in ``text``: capitalised mid-sentence and never written in
    lower case there ("Quillmere", "Brannock"; not "festival", though "the Saltlight Festival" occurs)."""
    lower = {w for w in _WORD.findall(text) if w[:1].islower()}
    return {w for name in proper_names(text) for w in _WORD.findall(name)} - lower


def leaked_example_names(text: str, example_names: set[str], source: str) -> set[str]:
    """Names from a prompt's worked example that appear in ``text`` but not in ``source``: a small
    model that copies its example (the Eiffel Tower, in a text about a festival)."""
    if not example_names:
        return set()
    return (content_words(text) & example_names) - content_words(source)


def is_repetitive(text: str, n: int = 4) -> bool:
    """True when some run of ``n`` words occurs twice: a small generator caught in a loop ("a game of the
    Hoop-and-Stick, which is a game of the Hoop-and-Stick, ..."). Every word of such a reply may be in
    the source, so the grounding check alone lets it through."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def is_number(word: str) -> bool:
    """A word with a digit in it: a year, count, size or date part ("2019", "016", "22nd")."""
    return any(ch.isdigit() for ch in word)


def support(claim: str, source: str) -> float:
    """Fraction of the content words of ``claim`` that occur in ``source`` (1.0 for an empty claim).

    A cheap grounding signal: an answer made of words the source chunk does not contain was
    probably invented by the generator. A number that is not in the source makes it 0.
    """
    words = content_words(claim)
    if not words:
        return 1.0
    src = content_words(source)
    if any(w not in src for w in words if is_number(w)):
        return 0.0  # a number the source does not contain is an invented year, size or count
    return sum(1 for w in words if w in src) / len(words)
