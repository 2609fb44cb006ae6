"""Two runs of benchmarks/knowledge.py on the same questions, compared question by question.

    python -m benchmarks.compare_runs runs/knowledge/c2-default/dev-s42 runs/knowledge/e18-factanswers/dev-s42

With 40 questions and one seed, a difference of two or three questions is within the seed spread. The
totals hide how many questions each run gained and lost against the other; this prints both (per set:
eval_qa and control), the questions themselves, and the exact two-sided sign-test (McNemar) p-value of the
changed questions: the chance of a split at least this uneven if neither run were better.
"""
from __future__ import annotations

import json
import sys
from math import comb
from pathlib import Path

from utils.tables import format_table


def correct_by_question(results_path: Path, set_name: str) -> dict[str, bool]:
    """``question -> contains-correct`` of the updated model in one evaluation's results.json."""
    questions = json.loads(results_path.read_text(encoding="utf-8"))["sets"][set_name]["questions"]
    return {q["question"]: bool(q["predictions"]["updated"]["contains"]) for q in questions}


def sign_test(gained: int, lost: int) -> float:
    """Exact two-sided sign-test p-value for ``gained`` against ``lost`` changed questions."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(gained, lost) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare(a: dict[str, bool], b: dict[str, bool]) -> tuple[list[str], list[str]]:
    """The questions ``b`` answers and ``a`` does not (gained), and the reverse (lost)."""
    missing = set(a) ^ set(b)
    if missing:
        raise ValueError(f"the runs were asked different questions, e.g. {min(missing)!r}")
    return [q for q in a if b[q] and not a[q]], [q for q in a if a[q] and not b[q]]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    runs = [Path(a) for a in args]
    for run in runs:
        if not (run / "eval" / "results.json").is_file():
            print(f"error: {run / 'eval' / 'results.json'} not found (a finished benchmarks/knowledge.py run folder?)",
                  file=sys.stderr)
            return 2
    rows = []
    for set_name in ("eval_qa", "control"):
        a, b = (correct_by_question(r / "eval" / "results.json", set_name) for r in runs)
        gained, lost = compare(a, b)
        rows.append([set_name, *map(str, (len(a), sum(a.values()), sum(b.values()), len(gained), len(lost))),
                     f"{sign_test(len(gained), len(lost)):.2f}"])
        for label, qs in (("gained", gained), ("lost", lost)):
            for q in qs:
                print(f"{set_name} {label}: {q}")
    print(f"A = {runs[0]}\nB = {runs[1]}")
    print(format_table(["set", "n", "A right", "B right", "B gained", "B lost", "sign-test p"], rows,
                       align="lrrrrrr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
