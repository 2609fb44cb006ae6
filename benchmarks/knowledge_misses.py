"""Why held-out questions are missed: accuracy by kind of question, and what the wrong replies are.

    python -m benchmarks.knowledge_misses runs/knowledge/e37-default/external_dev-s42 runs/knowledge/e36-default-fp32/dev-s42

For each benchmarks/knowledge.py (or quickstart) run folder, with ``eval/results.json`` and the training rows
``data/qa_pairs.jsonl``, the updated model's held-out answers (set ``eval_qa``) are split:

- by question: asks why/how/what caused (``how many/much/long ...`` does not count), and names its document's
  subject (a word of four letters or more of the document's file name occurs in the question; the
  collector's own questions nearly always do, other people's often do not);
- by coverage: some training row of the question's document has an answer that contains an accepted answer
  (evaluation.scoring.contains_match); an uncovered question cannot be answered from the update's rows;
- a wrong reply by what it repeats: a training answer of the same document (``another fact``: the question
  was matched on its words to the wrong fact; a reply repeats an answer when at least :data:`REPEATS` of its
  normalised words are in it), one of another document (``another document``: facts leak across
  documents), pieces of several answers of its document (``blend``: at least :data:`BLENDS` of its words
  occur in the document's training answers, no single answer holds enough: names and numbers recombined),
  or neither (``own words``: what the base model would say).

The figures are counts over one run; compare runs on the same questions with benchmarks/compare_runs.py.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from evaluation.scoring import contains_match, tokens
from utils.io_utils import iter_jsonl
from utils.tables import format_table

#: "how" as a question of manner or cause; "how many/much/long..." asks for a quantity
WHY_HOW = re.compile(r"\bwhy\b|\bhow\b(?!\s+(?:many|much|long|old|far|high|often|large|big|tall|deep)\b)"
                     r"|\bwhat caused\b", re.IGNORECASE)
#: the share of a reply's words that must occur in a training answer for the reply to repeat it
REPEATS = 0.7
#: the share of a reply's words that must occur in its document's training answers for a blend
BLENDS = 0.6


def subject_words(doc: str) -> set[str]:
    """The words of four letters or more of a document's file name: ``drennick_sport.txt`` -> {drennick, sport}."""
    return {w for w in re.split(r"[^a-z]+", Path(doc).stem.lower()) if len(w) >= 4}


def names_subject(question: str, doc: str) -> bool:
    """Whether the question names its document's subject (:func:`subject_words`)."""
    return bool(subject_words(doc) & set(re.findall(r"[a-z]+", question.lower())))


def training_answers(path: Path) -> list[tuple[str, str]]:
    """``(document, answer)`` of every training row of a collector file (its last assistant turn)."""
    out = []
    for _, row in iter_jsonl(path):
        turns = [t for t in row.get("conversations", []) if t.get("from") in ("gpt", "assistant")]
        if turns and row.get("file_name"):
            out.append((row["file_name"], turns[-1]["value"]))
    return out


def repeated_doc(reply: str, answers: list[tuple[str, str]]) -> str | None:
    """The document of the training answer the reply repeats most (:data:`REPEATS`), or ``None``."""
    words = set(tokens(reply))
    if not words:
        return None
    best, share = None, REPEATS
    for doc, answer in answers:
        s = len(words & set(tokens(answer))) / len(words)
        if s >= share:
            best, share = doc, s
    return best


def classify(question: dict, answers: list[tuple[str, str]], label: str = "updated") -> dict:
    """One held-out question of results.json: its kind, coverage, correctness and, if wrong, what it repeats."""
    doc, reply = question.get("doc") or "", question["predictions"][label]["text"]
    correct = bool(question["predictions"][label]["contains"])
    covered = any(d == doc and contains_match(a, question["answers"]) for d, a in answers)
    miss = None
    if not correct:
        source = repeated_doc(reply, answers)
        if source is not None:
            miss = "another fact" if source == doc else "another document"
        else:
            words = set(tokens(reply))
            vocabulary = {w for d, a in answers if d == doc for w in tokens(a)}
            miss = "blend" if words and len(words & vocabulary) / len(words) >= BLENDS else "own words"
    return {"why": bool(WHY_HOW.search(question["question"])), "names_subject": names_subject(question["question"], doc),
            "covered": covered, "correct": correct, "miss": miss}


def summarize(rows: list[dict]) -> dict[str, str]:
    """``part -> "right/n"`` for the table."""
    def frac(sel: list[dict]) -> str:
        return f"{sum(r['correct'] for r in sel)}/{len(sel)}"
    misses = Counter(r["miss"] for r in rows if r["miss"])
    return {
        "all": frac(rows),
        "why/how": frac([r for r in rows if r["why"]]),
        "names subject": frac([r for r in rows if r["names_subject"]]),
        "no subject": frac([r for r in rows if not r["names_subject"]]),
        "covered": frac([r for r in rows if r["covered"]]),
        "uncovered": frac([r for r in rows if not r["covered"]]),
        "wrong: another fact": str(misses["another fact"]),
        "wrong: another doc": str(misses["another document"]),
        "wrong: blend": str(misses["blend"]),
        "wrong: own words": str(misses["own words"]),
    }


def analyze(run: Path, set_name: str = "eval_qa") -> dict[str, str]:
    results = json.loads((run / "eval" / "results.json").read_text(encoding="utf-8"))
    answers = training_answers(run / "data" / "qa_pairs.jsonl")
    return summarize([classify(q, answers) for q in results["sets"][set_name]["questions"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (eval/results.json, data/qa_pairs.jsonl)")
    parser.add_argument("--set", default="eval_qa", help="the held-out set of results.json to split")
    args = parser.parse_args(argv)
    summaries = {str(run): analyze(run, args.set) for run in args.runs}
    parts = list(next(iter(summaries.values())))
    print(format_table(["run", *parts], [[run, *s.values()] for run, s in summaries.items()]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
