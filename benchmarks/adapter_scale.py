"""Accuracy of one trained run at several adapter scales (finetuning/scale.py), on its corpus's questions.

    python -m benchmarks.adapter_scale runs/knowledge/e25-keywords/dev-s42 --scales 0.5,0.7,0.85,1
    python -m benchmarks.adapter_scale runs/knowledge/e25-keywords/test-s42 --corpus test --scales 0.7,1

Scaling a LoRA update by s < 1 pulls the model part of the way back to the base: it should forget less and
know less of the new facts. This measures the trade-off without training again: the run's adapter is
scaled into <run_dir>/scaled/s<scale>, and one evaluate.py run scores the base model and every scale on
the corpus's held-out questions and control questions (dev: also benchmarks/knowledge's 40 extra
questions and 40 extra control questions), and every model's mean token NLL on examples/general_text.jsonl
(the forgetting measure) is taken beside. Results go to <run_dir>/scaled/eval; the table (share of
questions whose answer contains an expected answer, and the general-text NLL change against the base model) is printed and written to <run_dir>/scaled/table.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from benchmarks.knowledge import CORPORA, EXTRA_CONTROL, EXTRA_QA
from finetuning.scale import scale_adapter
from utils.recipe import REPO_ROOT
from utils.tables import format_table


def question_files(corpus: str) -> list[str]:
    """The corpus's question files, held-out first then control, each scored as its own set."""
    _, held_out, control = CORPORA[corpus]
    return [held_out, *([EXTRA_QA[corpus]] if corpus in EXTRA_QA else []), control,
            *([EXTRA_CONTROL[corpus]] if corpus in EXTRA_CONTROL else [])]


def scores_table(results: dict, labels: list[str], files: list[str]) -> str:
    """One row per model (base first), one column per question file: contains-accuracy; then, where evaluate.py
    measured it, the change of the mean token NLL on general text against the base model (the forgetting that
    scaling should trade against the accuracy)."""
    sets = results["sets"]
    names = [Path(f).stem for f in files]
    body = [[label, *(f"{sets[n]['summary'][label]['contains']:.3f}" for n in names)] for label in labels]
    header = ["model", *names]
    general = results.get("general_text")
    if general:
        header.append("general NLL change")
        for row, label in zip(body, labels):
            pct = general["change_pct"].get(label)
            row.append("-" if pct is None else f"{pct:+.1f}%")
    return format_table(header, body, align="l" + "r" * (len(header) - 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="A benchmarks/knowledge.py run folder (with adapter/ and recipe.yaml above it).")
    parser.add_argument("--scales", default="0.5,0.7,0.85,1", help="Comma list of scales (1 = the adapter as trained).")
    parser.add_argument("--corpus", default="dev", choices=sorted(CORPORA), help="Which corpus's questions.")
    args = parser.parse_args(argv)

    run_dir = Path(args.run_dir).resolve()
    adapter = run_dir / "adapter"
    recipe = run_dir.parent / "recipe.yaml"
    scales = [float(s) for s in args.scales.split(",") if s.strip()]
    labels, specs = ["base"], []
    for s in scales:
        label = f"s{s:g}"
        path = adapter if s == 1 else scale_adapter(adapter, s, run_dir / "scaled" / label)
        labels.append(label)
        specs.append(f"{label}={path}")
    files = question_files(args.corpus)
    out = run_dir / "scaled" / "eval"
    cmd = [sys.executable, "evaluate.py", *(["--recipe", str(recipe)] if recipe.is_file() else []),
           "--qa_file", *files, "--control_file", "none", "--adapters", *specs, "--output_dir", str(out)]
    print(f"[adapter_scale] {shlex.join(cmd)}", flush=True)
    rc = subprocess.call(cmd, cwd=REPO_ROOT)
    if rc != 0:
        print(f"[adapter_scale] evaluate.py failed (exit {rc})", file=sys.stderr)
        return rc
    table = scores_table(json.loads((out / "results.json").read_text()), labels, files)
    (run_dir / "scaled" / "table.md").write_text(f"# {run_dir} at adapter scales\n\n```\n{table}\n```\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
