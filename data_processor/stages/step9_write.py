"""Stage 9: SFT rows (and held-out eval rows) appended one whole line at a time, never duplicated.

:func:`write_rows` turns a wave's QA pairs, persona rewrites and rule-made items into rows, and makes
the held-out choice (:func:`is_eval_fact`: which facts give questions to the eval file, and which of
their questions) here, where each row goes to one file or the other.

Each line goes to the file in one ``write`` on an append-only descriptor and is ``fsync``-ed, so a
kill at any moment leaves a valid JSONL file (at worst a partial last line, which the next run cuts
off before it appends). Row ids are content hashes; rows whose id, or whose normalised
question + answer (a plain-text row's: its normalised text), is already in the file are not written again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..parsing import normalize
from ..rules import find_spans

if TYPE_CHECKING:
    from .step5_qa import QAPair
    from .step7_diversify import Rewrite
    from .step8_rule_rows import RuleItem

logger = logging.getLogger(__name__)


def row_id(*parts: str) -> str:
    """A stable id from content: same inputs, same id, on every run and machine."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]


def pair_key(question: str, answer: str) -> str:
    """Deduplication key: case-, punctuation- and whitespace-insensitive question + answer."""
    return normalize(question) + "\x00" + normalize(answer)


def repair_tail(path: str | os.PathLike) -> int:
    """Cut a partial last line (a write interrupted by a kill). Returns the bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the last newline.
        pos, block = size, 65536
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            data = fh.read(pos - start)
            nl = data.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    logger.warning("%s: removed a partial last line (%d bytes) left by an interrupted run", path, size - keep)
    return size - keep


class JsonlWriter:
    """Append-only JSONL file that knows the rows already in it (for resume)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.truncated_bytes = repair_tail(self.path)
        self.rows: list[dict] = []
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:
                        logger.warning("%s:%d: not JSON; left as it is and ignored", self.path, lineno)
                        continue
                    if isinstance(row, dict):
                        self.rows.append(row)
        self.ids = {r.get("id") for r in self.rows}
        self.resumed = len(self.rows)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, row: dict) -> bool:
        """Append ``row`` unless its id is already in the file. Returns whether it was written."""
        if row["id"] in self.ids:
            return False
        data = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        written = 0
        while written < len(data):  # one write almost always; loop in case the OS splits it
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        self.ids.add(row["id"])
        self.rows.append(row)
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_text_row(row: dict) -> bool:
    """A plain-text training row (``{"text": ...}``, no turns; :func:`text_row`), as finetuning/data.py reads it."""
    return "text" in row and "conversations" not in row


def train_row_question_answer(row: dict) -> tuple[str, str]:
    turns = row.get("conversations") or []
    q = next((t.get("value", "") for t in turns if t.get("from") == "user"), "")
    a = next((t.get("value", "") for t in turns if t.get("from") == "assistant"), "")
    return q, a


class OutputSet:
    """The training file and the optional eval file, with deduplication across both.

    A question set aside for evaluation never appears in the training file (and vice versa).
    """

    def __init__(self, train_path: str | os.PathLike, eval_path: str | os.PathLike | None) -> None:
        self.train = JsonlWriter(train_path)
        self.eval = JsonlWriter(eval_path) if eval_path else None
        self.pairs: set[str] = set()
        self.texts: set[str] = set()  # normalised plain-text rows (they have no question and answer)
        self.train_questions: set[str] = set()
        self.eval_questions: set[str] = set()
        for row in self.train.rows:
            if is_text_row(row):
                self.texts.add(normalize(str(row["text"])))
                continue
            q, a = train_row_question_answer(row)
            self.pairs.add(pair_key(q, a))
            self.train_questions.add(normalize(q))
        if self.eval is not None:
            for row in self.eval.rows:
                a = (row.get("answers") or [""])[0]
                self.pairs.add(pair_key(row.get("question", ""), a))
                self.eval_questions.add(normalize(row.get("question", "")))
        self.written = {"train": 0, "eval": 0, "duplicates": 0, "already_there": 0}

    def add_train(self, row: dict) -> bool:
        if row["id"] in self.train.ids:  # written by an earlier (interrupted) run
            self.written["already_there"] += 1
            return False
        if is_text_row(row):
            text = normalize(str(row["text"]))
            if text in self.texts:
                self.written["duplicates"] += 1
                return False
            self.texts.add(text)
            self.train.write(row)
            self.written["train"] += 1
            return True
        q, a = train_row_question_answer(row)
        key, nq = pair_key(q, a), normalize(q)
        if key in self.pairs or nq in self.eval_questions:
            self.written["duplicates"] += 1
            return False
        self.pairs.add(key)
        self.train_questions.add(nq)
        self.train.write(row)
        self.written["train"] += 1
        return True

    def add_eval(self, row: dict) -> bool:
        if self.eval is None:
            return False
        if row["id"] in self.eval.ids:
            self.written["already_there"] += 1
            return False
        key, nq = pair_key(row["question"], row["answers"][0]), normalize(row["question"])
        if key in self.pairs or nq in self.train_questions:
            self.written["duplicates"] += 1
            return False
        self.pairs.add(key)
        self.eval_questions.add(nq)
        self.eval.write(row)
        self.written["eval"] += 1
        return True

    def close(self) -> None:
        self.train.close()
        if self.eval is not None:
            self.eval.close()


def is_eval_fact(seed: int, chunk_id: str, fact: str, fraction: float) -> bool:
    """Seeded, order-independent choice of the facts that contribute held-out questions."""
    if fraction <= 0:
        return False
    h = int(hashlib.sha256(f"{seed}\x1f{chunk_id}\x1f{fact}".encode()).hexdigest()[:12], 16)
    return h / float(16**12) < fraction


def train_row(*, question: str, answer: str, fact: str, theme: str, role: str, file_name: str, chunk_id: str) -> dict:
    return {
        "id": row_id(file_name, chunk_id, fact, role, question, answer),
        "conversations": [{"from": "user", "value": question}, {"from": "assistant", "value": answer}],
        "fact": fact,
        "theme": theme,
        "role": role,
        "file_name": file_name,
        "chunk_id": chunk_id,
    }


def text_row(*, text: str, theme: str, role: str, file_name: str, chunk_id: str) -> dict:
    """A plain-text training row: no ``conversations`` (the fine-tuning loader would read it as a chat), no
    chat template, every token trained. ``fact`` is empty: the text states several facts."""
    return {
        "id": row_id(file_name, chunk_id, role, text),
        "text": text,
        "fact": "",
        "theme": theme,
        "role": role,
        "file_name": file_name,
        "chunk_id": chunk_id,
    }


def eval_row(*, question: str, answer: str, fact: str, theme: str, role: str, file_name: str, chunk_id: str,
             train_question: str, answers: list[str] | None = None) -> dict:
    """A held-out question. ``answers`` (what a reply must contain) defaults to the names, numbers and dates
    of ``answer`` that the question does not already give, else the whole answer."""
    if answers is None:
        given = question.lower()
        answers = [s.text(answer) for s in find_spans(answer) if s.text(answer).lower() not in given] or [answer]
    return {
        "id": row_id("eval", file_name, chunk_id, fact, role, question, answer),
        "question": question,
        "answers": answers,
        "answer": answer,
        "fact": fact,
        "theme": theme,
        "role": role,
        "file_name": file_name,
        "chunk_id": chunk_id,
        "train_question": train_question,
    }


def write_rows(out: OutputSet, pairs: list[QAPair], rewrites: list[Rewrite], rule_items: list[RuleItem], *,
               fact_answers: bool, seed: int, eval_fraction: float) -> None:
    """Rows of one wave: each QA pair as generated, then its role rewrites; then the rows made by rule.

    With ``fact_answers``, generated questions and their rewrites are answered with the fact sentence.
    Held-out rows keep their answers.

    With ``eval_fraction``, a sampled fact (:func:`is_eval_fact`, seeded by ``seed``) gives held-out
    questions to the eval file instead: one persona rewrite per QA pair, or, for a fact without
    rewrites, the rule-made questions about its first asked span (both forms). Every other row of the
    fact stays in training: the held-out question asks for a fact the model was taught in other words.
    A ``statement`` item becomes a plain-text row (:func:`text_row`). A ``paraphrase`` item (a rule-made question
    reworded with another verb) is trained, except where it asks what the held-out questions ask (its fact and
    span): it is left out, so the held-out question stays one the model has not seen in any wording. A ``cause``
    item (a why/how question about a clause of the fact) is trained like a ``wh`` question about another span,
    except where the clause it asks about holds the held-out span ("Why did the festival begin?", answered "because
    of the Great Gale of 1846", when the held-out question asks for 1846): it is left out for the same reason.
    Neither kind changes which questions are held out.
    """
    by_pair: dict[int, list[Rewrite]] = {}
    for rw in rewrites:
        by_pair.setdefault(rw.pair_index, []).append(rw)
    held_out_facts = set()
    for pi, p in enumerate(pairs):
        f = p.fact
        answer = f.text if fact_answers else p.answer
        common = dict(fact=f.text, theme=f.theme, file_name=f.doc_name, chunk_id=f.chunk_id)
        variants = by_pair.get(pi, [])
        pick = None
        if variants and is_eval_fact(seed, f.chunk_id, f.text, eval_fraction):
            pick = int(row_id(p.question, p.answer), 16) % len(variants)
            held_out_facts.add(f.text)
        out.add_train(train_row(question=p.question, role="", answer=answer, **common))
        for j, rw in enumerate(variants):
            if j == pick:
                out.add_eval(eval_row(question=rw.question, role=rw.role, train_question=p.question, answer=p.answer,
                                      **common))
            else:
                out.add_train(train_row(question=rw.question, role=rw.role, answer=answer, **common))
    asked: dict[str, str] = {}  # fact -> the span whose questions are held out: the first asked of a held-out fact
    for item in rule_items:
        if (item.kind == "wh" and item.fact not in held_out_facts
                and is_eval_fact(seed, item.chunk_id, item.fact, eval_fraction)):
            asked.setdefault(item.fact, item.span)
    for item in rule_items:
        if item.kind == "statement":  # plain text, always trained: it asks nothing to hold out
            out.add_train(text_row(text=item.answer, theme=item.theme, role=item.kind, file_name=item.doc_name,
                                   chunk_id=item.chunk_id))
            continue
        common = dict(answer=item.answer, fact=item.fact, theme=item.theme, file_name=item.doc_name,
                      chunk_id=item.chunk_id)
        asks_held_out = item.fact in asked and asked[item.fact] == item.span
        if (item.kind == "wh" and asks_held_out and item.fact not in held_out_facts
                and is_eval_fact(seed, item.chunk_id, item.fact, eval_fraction)):
            out.add_eval(eval_row(question=item.question, role=item.kind, train_question="", answers=[item.span],
                                  **common))
        elif item.kind == "paraphrase" and asks_held_out:
            continue  # a held-out question in other words (from any chunk that states the fact): it would give it away
        elif item.kind == "cause" and item.fact in asked and asked[item.fact].lower() in item.span.lower():
            continue  # its answer is the held-out span: the held-out question asked another way
        else:
            out.add_train(train_row(question=item.question, role=item.kind, **common))
