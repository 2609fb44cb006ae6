"""Was a held-out question missed because the fact was not learned, or because the rewording did not reach it?

    python -m benchmarks.knowledge_probe --run_dir runs/knowledge/e6-replay2/dev-s42 --corpus dev

For each held-out question of a finished benchmarks/knowledge.py run, the training row that is closest to it
(the most content words shared with the question, among the rows whose answer holds one of the question's
expected answers) gives a *probe*: that training question, asked of the same updated model with the same
expected answers. evaluate.py answers the probes (into <run_dir>/probe/), and the held-out results
(<run_dir>/eval/results.json) are set beside them:

  learned, transferred       right on both
  learned, not transferred   right on its training question, wrong on the held-out rewording
  not learned                wrong on its training question (whatever the held-out answer: a poor probe
                             can put a question here that the model answers when reworded)
  no training row            no training answer holds an expected answer

The counts, and one line per question, are printed and written to <run_dir>/probe/probe.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.knowledge import CORPORA
from data_processor.parsing import content_words
from evaluation.scoring import contains_match
from utils.recipe import REPO_ROOT
from utils.tables import format_table

OUTCOMES = ("learned, transferred", "learned, not transferred", "not learned", "no training row")


@dataclass
class ProbeArguments:
    run_dir: str = field(metadata={"help": "A run folder of benchmarks/knowledge.py (data/, adapter/, eval/)."})
    corpus: str = field(default="dev", metadata={"help": "Which corpus the run used: dev or test."})


def training_pairs(qa_path: Path) -> list[tuple[str, str]]:
    """``(question, answer)`` of every collected question row (sharegpt ``conversations``; a plain-text
    statement row, ``--statement_rows``, asks nothing and is left out)."""
    pairs = []
    with open(qa_path, encoding="utf-8") as fh:
        for line in fh:
            if turns := json.loads(line).get("conversations"):
                pairs.append((turns[0]["value"], turns[1]["value"]))
    return pairs


def nearest_row(question: str, answers: list[str], pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The training pair whose answer holds one of ``answers`` and whose question shares the most content
    words with ``question`` (ties: the first); None when no answer holds one."""
    words = content_words(question)
    best, best_score = None, -1.0
    for q, a in pairs:
        if not contains_match(a, answers):
            continue
        other = content_words(q)
        score = len(words & other) / max(1, len(words | other))
        if score > best_score:
            best, best_score = (q, a), score
    return best


def outcome(held_out_right: bool, probe_right: bool | None) -> str:
    if probe_right is None:
        return OUTCOMES[3]
    if not probe_right:
        return OUTCOMES[2]
    return OUTCOMES[0] if held_out_right else OUTCOMES[1]


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ProbeArguments, description=__doc__).parse_args_into_dataclasses(args=argv)
    run = Path(args.run_dir).resolve()
    _, questions_file, _ = CORPORA[args.corpus]
    questions = [json.loads(line) for line in (REPO_ROOT / questions_file).read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    results = json.loads((run / "eval" / "results.json").read_text(encoding="utf-8"))
    held = next(s for s in results["sets"].values() if s["kind"] == "knowledge")["questions"]
    label = next(k for k in held[0]["predictions"] if k != "base")
    pairs = training_pairs(run / "data" / "qa_pairs.jsonl")
    probes = [nearest_row(q["question"], q["answers"], pairs) for q in questions]
    out = run / "probe"
    out.mkdir(parents=True, exist_ok=True)
    probe_file = out / "probe_qa.jsonl"
    with open(probe_file, "w", encoding="utf-8") as fh:
        for q, p in zip(questions, probes):
            if p is not None:
                fh.write(json.dumps({"question": p[0], "answers": q["answers"], "doc": q.get("doc", "")}) + "\n")
    cmd = [sys.executable, "evaluate.py", "--qa_file", str(probe_file), "--control_file", "none",
           "--adapters", f"{label}={run / 'adapter'}", "--output_dir", str(out)]
    print("[probe]", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    probed = iter(next(iter(json.loads((out / "results.json").read_text(encoding="utf-8"))["sets"].values()))["questions"])
    lines, counts = [], dict.fromkeys(OUTCOMES, 0)
    for q, h, p in zip(questions, held, probes):
        right = bool(h["predictions"][label]["contains"])
        asked = next(probed) if p is not None else None
        probe_right = None if asked is None else bool(asked["predictions"][label]["contains"])
        kind = outcome(right, probe_right)
        counts[kind] += 1
        lines.append({"question": q["question"], "answers": q["answers"], "outcome": kind,
                      "reply": h["predictions"][label]["text"], "probe": p[0] if p else None,
                      "probe_reply": asked["predictions"][label]["text"] if asked else None})
    (out / "probe.json").write_text(json.dumps({"counts": counts, "questions": lines}, indent=1, ensure_ascii=False))
    for line in lines:
        print(f"- [{line['outcome']}] {line['question']} -> {line['reply'][:90]!r}\n"
              f"    probe: {line['probe']!r} -> {(line['probe_reply'] or '')[:90]!r}")
    print(format_table(["outcome", "questions"], [[k, v] for k, v in counts.items()], align="lr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
