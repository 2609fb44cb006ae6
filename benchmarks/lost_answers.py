"""Control answers that fine-tuned runs lost, and the replay rows whose wording the lost answers repeat.

    python -m benchmarks.lost_answers runs/knowledge/e19-fact-wh2/test-s42 runs/knowledge/e25-keywords/test-s7

For each benchmarks/knowledge.py run folder (with ``eval/results.json``): the control questions that the
base model answered right and the updated model wrong. For each lost answer it lists the replay rows
whose answer shares a run of ``--ngram`` normalised words with it (evaluation.scoring.tokens), and whether ``--checks`` would drop that row (replay/build.py: its answer
contains none of the accepted answers). The last line counts the lost answers, those that share a run with
any replay answer, and those that share one with a replay answer the checks drop; for comparison, the same
count over the updated model's other control answers.

The replay rows default to the default model's shipped answers (examples/replay_answers.jsonl), which are
the rows every default-model run trains on.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from evaluation.scoring import tokens
from replay.build import check_rows, read_checks
from utils.io_utils import iter_jsonl
from utils.recipe import repo_path
from utils.tables import format_table


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The runs of ``n`` consecutive normalised words of ``text``."""
    words = tokens(text)
    return {tuple(words[i: i + n]) for i in range(len(words) - n + 1)}


def control_answers(run_dir: Path) -> list[tuple[str, str, bool]]:
    """``(question, updated answer, lost)`` for each control question of the run's evaluation
    (``eval/results.json``); lost: the base model's answer was right and the updated model's wrong."""
    results = run_dir / "eval" / "results.json"
    if not results.is_file():
        raise SystemExit(f"{results}: no such file (a benchmarks/knowledge.py run folder has one after evaluation)")
    questions = json.loads(results.read_text(encoding="utf-8"))["sets"]["control"]["questions"]
    return [(q["question"], q["predictions"]["updated"]["text"],
             q["predictions"]["base"]["contains"] and not q["predictions"]["updated"]["contains"]) for q in questions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="benchmarks/knowledge.py run folders, e.g. runs/knowledge/e25-keywords/test-s42.")
    parser.add_argument("--replay", default="examples/replay_answers.jsonl", help="The replay rows the runs trained on.")
    parser.add_argument("--checks", default="examples/replay_checks.jsonl", help="Replay checks (JSONL of question, answers).")
    parser.add_argument("--ngram", type=int, default=5, help="Length of the shared word run.")
    args = parser.parse_args(argv)

    rows = [row for _, row in iter_jsonl(repo_path(args.replay))]
    _, dropped = check_rows(rows, read_checks(repo_path(args.checks)))
    dropped_ids = {r["id"] for r in dropped}
    replay = [(r, ngrams(r["conversations"][1]["value"], args.ngram)) for r in rows]

    body, n_lost, n_shared, n_wrong, n_other, n_other_wrong = [], 0, 0, 0, 0, 0
    for run in args.run_dirs:
        run_dir = Path(run).resolve()
        for question, answer, lost in control_answers(run_dir):
            grams = ngrams(answer, args.ngram)
            shared = sorted(((len(grams & g), r) for r, g in replay if grams & g), key=lambda x: -x[0])
            wrong = [r for _, r in shared if r["id"] in dropped_ids]
            if not lost:  # the comparison count only
                n_other += 1
                n_other_wrong += bool(wrong)
                continue
            n_lost += 1
            n_shared += bool(shared)
            n_wrong += bool(wrong)
            nearest = shared[0][1]["conversations"][0]["value"] if shared else "-"
            body.append([f"{run_dir.parent.name}/{run_dir.name}", question, answer[:60].replace("\n", " "),
                         str(len(shared)), str(len(wrong)), nearest])
    print(format_table(["run", "lost control question", "updated answer", "replay rows sharing", "of them checked wrong",
                        "nearest replay prompt"], body, align="lllrrl"))
    print(f"\nlost {n_lost}; sharing a {args.ngram}-word run with a replay answer {n_shared}; "
          f"with a replay answer the checks drop {n_wrong} ({n_wrong / max(n_lost, 1):.2f}); the other control answers: "
          f"{n_other_wrong} of {n_other} ({n_other_wrong / max(n_other, 1):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
