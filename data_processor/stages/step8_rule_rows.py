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
* ``alias`` (``--alias_rows``): a question that names an entity by a description the document gives
  it ("the schoolteacher in the market town of Lyndmoor" for Bartholomew Ashgrove;
  data_processor/aliases.py), answered with a fact that names it. A question written by someone else
  often does that, and without a row that states the bridge it is a two-hop question closed-book.
* ``statement`` (``--statement_rows``): not a question but a plain-text row, the chunk's facts under the
  document's title, in document order and in shuffled orders (data_processor/statements.py).
* ``paraphrase`` (``--relation_paraphrases``): a ``wh`` or ``alias`` question asked with another verb for the
  same relation ("Who invented drennick?" -> "Who devised drennick?"; data_processor/relations.py), answered
  like the question it rewords.
* ``cause`` (``--cause_questions``): a why- or how-question about a fact's cause, purpose or means clause, asked
  without it ("The Rhine was regulated to counteract the flooding." -> "Why was the Rhine regulated?";
  data_processor/causes.py), answered with the fact.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..aliases import Bridge, bridges, stated_in, word_classes
from .. import causes
from ..parsing import CJK_CHAR, STOP_EN, anchor_words, normalize, proper_names
from ..relations import paraphrases
from ..rules import find_spans, is_verb, present_lemma, questions_for, sentence_subject, title_entity
from ..statements import in_document_order, statement_texts
from . import StageResult
from .step2_chunk import sentence_spans
from .step4_facts import Fact
from .step5_qa import anchor_question

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
    kind: str  # cloze | wh | alias | statement | paraphrase | cause
    question: str  # "" for a statement
    answer: str  # a statement's text
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


def _heading(first_text: str) -> str:
    """The document's first line when that is short and not a sentence, else ``""``."""
    line = next((ln.strip().lstrip("#").strip() for ln in first_text.splitlines() if ln.strip()), "")
    return line if line and len(line.split()) <= 14 and not line.endswith((".", "。")) else ""


def document_title(first_text: str, doc_name: str) -> str:
    """The document's heading (its first line when that is short and not a sentence), else its file name."""
    if heading := _heading(first_text):
        return heading
    stem = doc_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[_-]+", " ", stem).strip() or doc_name


def document_entity(first_text: str, doc_name: str) -> str:
    """What a document is about, which its pronouns fall back on: the subject of its heading
    (:func:`~data_processor.rules.title_entity`); without a heading, the name its first sentence starts with
    ("The Rhine (Romansh: Rein, ...) is a European river ..." -> "The Rhine"), else its file name. A file
    name ("rhine_course.txt" -> "rhine course") names a document, not a thing: "It is the second-longest
    river" must not become "rhine course is the second-longest river"."""
    if heading := _heading(first_text):
        return title_entity(heading)
    spans = sentence_spans(first_text)
    first = first_text[spans[0][0]:spans[0][1]] if spans else ""
    return sentence_subject(first, proper_names(first_text)) or document_title(first_text, doc_name)


def _title(fact: Fact, titles: dict[str, str] | None) -> str:
    """The name a row gives the fact's document: its entry in ``titles``, else the document's theme, the
    chunk's theme, the file name."""
    return (titles or {}).get(fact.doc_name) or fact.doc_theme or fact.theme or fact.doc_name


def cloze_items(facts: list[Fact], per_fact: int, titles: dict[str, str] | None = None,
                names: dict[str, set[str]] | None = None) -> list[RuleItem]:
    """Up to ``per_fact`` fill-in-the-blank items per fact (the first spans in reading order).

    ``titles`` maps a document name to the title the prompt names (default: the document's theme);
    ``names`` maps a chunk id to its known names (see :func:`data_processor.rules.find_spans`)."""
    items: list[RuleItem] = []
    if per_fact <= 0:
        return items
    for k, fact in enumerate(facts):
        title = _title(fact, titles)
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


def _copula(fact: str, bridge: Bridge) -> str:
    """"is"/"was" (or "are"/"were" for a plural head) in the tense of the fact that states the bridge."""
    present = bool(re.search(r"\b(?:is|are|has|have)\b", fact)) or any(present_lemma(w) for w in re.findall(r"[a-z]+", fact))
    plural = bridge.definite.split()[-1].endswith("s") and bridge.kind in ("title", "named")
    return ("are" if plural else "is") if present else ("were" if plural else "was")


def _with_article(name: str, sentence: str) -> str:
    """The name as the sentence writes it after "What is": "the Gullveig", "the Nineteen Laws of Drennick"."""
    return f"the {name}" if re.search(rf"\bthe {re.escape(name)}\b", sentence, re.I) else name


def _plural(name: str, sentence: str) -> bool:
    """Whether the sentence treats the name as plural ("the Marrowgate Herons, who have won")."""
    return bool(re.search(rf"{re.escape(name)}(?:,\s+who)?\s+(?:are|were|have)\b", sentence))


def substituted(question: str, bridge: Bridge) -> str | None:
    """``question`` with ``bridge``'s name replaced by its definite description ("In what year did Ilsabet
    Norrgaard-Quint join ...?" -> "In what year did the glaciologist join ...?"), or ``None`` when the
    question names it other than once, as a possessive or a modifier ("Emberlark ovens"), or already
    gives the description."""
    matches = list(re.finditer(rf"(?:\b[Tt]he\s+)?(?<![\w-]){re.escape(bridge.name)}(?![\w-])", question))
    if len(matches) != 1 or bridge.description.lower() in question.lower():
        return None
    m = matches[0]
    if re.search(r"\b(?:named|called|nicknamed|known as)\s+$", question[:m.start()]) or any(
            other.name == bridge.name for other in bridges(question)):
        return None  # "a fisherman named Aldous Brannock": replaced, the name's own description would be lost
    following = question[m.end():].split(" ", 2)
    nxt = following[1].strip("?,.;:") if len(following) > 1 and not following[0] else ""
    previous = question[:m.start()].rstrip().rsplit(" ", 1)[-1] if question[:m.start()].strip() else ""
    if question[m.end():].startswith("'") or nxt[:1].isupper() or (previous[:1].isupper() and previous.isalpha()
                                                                    and previous not in ("In", "On", "At", "By", "From")):
        return None  # "Ilsabet's supervisor", "Emberlark Standard": the name is part of another name
    if nxt[:1].islower() and nxt.lower() not in STOP_EN and not is_verb(nxt.lower()) and "VERB" not in word_classes(nxt):
        return None  # "Emberlark ovens": the name modifies a noun
    desc = bridge.definite
    if m.start() == 0:
        desc = desc[:1].upper() + desc[1:]
    return question[:m.start()] + desc + question[m.end():]


def alias_items(facts: list[Fact], per_pair: int, names: dict[str, set[str]] | None = None,
                sources: dict[str, str] | None = None, titles: dict[str, str] | None = None) -> list[RuleItem]:
    """Questions that name an entity by a description its document gives it, up to ``per_pair`` per
    (name, description) and fact; answered with the fact (which names the entity in full).

    A description is taken from a fact (:func:`data_processor.aliases.bridges`) only when the fact's
    chunk (``sources``, by chunk id) states it in those words, and only when no other name of the same
    document has the same description. For the fact that states it: "Who was the schoolteacher in the
    market town of Lyndmoor?", "Who was Bartholomew Ashgrove?" (once per name), "What was the name of
    the schoolteacher ...?". For every fact of the document that names the entity: its rule-made
    questions (:func:`data_processor.rules.questions_for`) with the name replaced by the description
    ("In what year did the glaciologist join the Velmarian Polar Survey?"). A question that names
    nothing specific to its document ("Who is the engineer?") gets the document's title (``titles``) in
    front, as generated questions do (:func:`data_processor.stages.step5_qa.anchor_question`). Facts are
    grouped by document, never across documents.
    """
    if per_pair <= 0:
        return []
    names, sources, titles = names or {}, sources or {}, titles or {}
    by_doc: dict[str, list[Fact]] = {}
    for f in facts:
        if not CJK_CHAR.search(f.text):
            by_doc.setdefault(f.doc_name, []).append(f)
    items: list[RuleItem] = []
    for doc, doc_facts in by_doc.items():
        found: dict[tuple[str, str], tuple[Bridge, Fact]] = {}
        owners: dict[str, set[str]] = {}
        for f in doc_facts:
            for b in bridges(f.text, names.get(f.chunk_id)):
                if stated_in(b, f.text, sources.get(f.chunk_id, "")):
                    found.setdefault((b.name, b.definite.lower()), (b, f))
                    owners.setdefault(b.definite.lower(), set()).add(b.name)
        people = {b.name for b, _ in found.values() if b.person}
        # every span of the fact, so the name (which a question cannot keep when it asks for it) leaves others
        questions_of = {f.text: [q for q, _ in questions_for(f.text, names.get(f.chunk_id), max_spans=8)] for f in doc_facts}
        asked_names: set[str] = set()

        def add(question: str, fact: Fact, name: str) -> None:
            title = titles.get(doc, "")
            anchored = anchor_question(question, title, anchor_words(sources.get(fact.chunk_id, "")))
            if anchored != question and name.lower() in title.lower():
                return  # the title would give the name away; without it the question names nothing specific
            items.append(_item("alias", anchored, fact, name))

        for (name, desc), (b, f) in found.items():
            if len(owners[desc]) > 1:
                continue  # "the river" for the Rhine and for the Aare: it identifies neither
            wh, be = ("Who" if name in people else "What"), _copula(f.text, b)
            bridge_questions = [f"{wh} {be} {b.definite}?"]
            if name not in asked_names:
                asked_names.add(name)
                plural = {"is": "are", "was": "were"}.get(be, be) if _plural(name, f.text) else be
                bridge_questions.append(f"{wh} {plural} {_with_article(name, f.text)}?")
            bridge_questions.append(f"What {be} the name of {b.definite}?")
            for q in bridge_questions[:per_pair]:
                add(q, f, name)
            done: set[str] = set()
            for g in doc_facts:
                if g.text in done or (g.text == f.text and b.kind not in ("appositive", "relative")):
                    continue  # the same sentence twice (overlapping chunks); or it says "X is D": "What is D?" is asked
                done.add(g.text)
                asked = [sq for q in questions_of[g.text] if (sq := substituted(q, b))]
                for q in asked[:per_pair]:
                    add(q, g, name)
    return items


def statement_items(facts: list[Fact], per_chunk: int, titles: dict[str, str] | None = None,
                    sources: dict[str, str] | None = None, seed: int = 0) -> list[RuleItem]:
    """Up to ``per_chunk`` plain-text statements of each chunk's facts (:func:`~data_processor.statements.
    statement_texts`, shuffles seeded by ``seed`` and the chunk id), the first in the order the chunk
    (``sources``, by chunk id) states them. The text is the item's ``answer``; its question and fact are empty
    (a statement is about every fact of its chunk). ``titles`` as for :func:`cloze_items`."""
    if per_chunk <= 0:
        return []
    by_chunk: dict[str, list[Fact]] = {}
    for f in facts:
        by_chunk.setdefault(f.chunk_id, []).append(f)
    items: list[RuleItem] = []
    for chunk_id, chunk_facts in by_chunk.items():
        first = chunk_facts[0]
        title = _title(first, titles)
        ordered = in_document_order([f.text for f in chunk_facts], (sources or {}).get(chunk_id, ""))
        for text in statement_texts(ordered, title, per_chunk, seed, chunk_id):
            items.append(RuleItem("statement", "", text, first.doc_name, chunk_id, first.theme, "", ""))
    return items


def paraphrase_items(items: list[RuleItem], per_question: int, seed: int = 0) -> list[RuleItem]:
    """Up to ``per_question`` rewordings of each ``wh`` and ``alias`` item's question with another verb for the
    same relation (:func:`~data_processor.relations.paraphrases`, drawn by ``seed`` and the question), each an
    item of kind ``paraphrase`` with the answer, fact and span of the item it rewords. A wording that is already
    a question of the same fact (or another item's paraphrase of it) is not made twice."""
    if per_question <= 0:
        return []
    seen = {(normalize(i.question), i.fact) for i in items if i.kind in ("wh", "alias")}
    out: list[RuleItem] = []
    for item in items:
        if item.kind not in ("wh", "alias") or CJK_CHAR.search(item.question):
            continue
        for question in paraphrases(item.question, per_question, seed):
            if (key := (normalize(question), item.fact)) not in seen:
                seen.add(key)
                out.append(RuleItem("paraphrase", question, item.answer, item.doc_name, item.chunk_id, item.theme,
                                    item.fact, item.span))
    return out


def cause_items(facts: list[Fact], per_clause: int, names: dict[str, set[str]] | None = None) -> list[RuleItem]:
    """Up to ``per_clause`` why/how questions per cause, purpose or means clause of each fact
    (:func:`~data_processor.causes.cause_questions`), answered with the fact; the item's span is the clause asked
    about. ``names`` as for :func:`cloze_items`."""
    if per_clause <= 0:
        return []
    return [_item("cause", q, f, clause)
            for f in facts
            for q, clause in causes.cause_questions(f.text, per_clause, (names or {}).get(f.chunk_id))]


def run(facts: list[Fact], titles: dict[str, str], names: dict[str, set[str]], *,
        cloze_per_fact: int, wh_spans_per_fact: int, wh_phrasings: int = 1,
        wh_keywords: int = 0, alias_rows: int = 0, statement_rows: int = 0, relation_paraphrases: int = 0,
        cause_questions: int = 0, seed: int = 0,
        sources: dict[str, str] | None = None) -> StageResult[list[RuleItem]]:
    """Every rule-made row of a wave. Counters: ``cloze``, ``wh``, ``alias``, ``paraphrase``, ``cause`` and
    ``statement`` (rows of each kind).

    ``sources`` maps a chunk id to its text (the alias rows take only descriptions it states; the statements
    follow its order); ``seed`` draws the statements' shuffles and the paraphrases. The paraphrases come after
    the questions they reword, so the held-out choice (step9_write) has seen those first."""
    asked = (cloze_items(facts, cloze_per_fact, titles, names)
             + wh_items(facts, wh_spans_per_fact, names, wh_phrasings, wh_keywords)
             + alias_items(facts, alias_rows, names, sources, titles))
    items = (asked + paraphrase_items(asked, relation_paraphrases, seed)
             + cause_items(facts, cause_questions, names)
             + statement_items(facts, statement_rows, titles, sources, seed))
    counters = Counter(cloze=0, wh=0, alias=0, paraphrase=0, cause=0, statement=0)
    counters.update(item.kind for item in items)
    return StageResult(items, counters)
