"""Where the general-text forgetting shows: plain-text rows against chat rows, at several adapter scales.

    python -m benchmarks.forgetting_split runs/knowledge/e39-default/external_dev-s42 --scales 1,0.5

evaluate.py reports one mean token NLL on examples/general_text.jsonl per model. That file holds two kinds of
row (evaluation/general_text.py): ``{"text"}`` (ordinary prose, every token scored) and ``{"prompt", "reply"}``
(the chat template, the reply scored). They call for different remedies: a rise on the chat rows alone points at
the chat-format training rows and the chat replay; a rise on both points at the size of the update itself. This
prints the base model's NLL on each kind and each scaled adapter's change against it (the adapter's B matrices
multiplied by the scale, finetuning/scale.py; scale 1 is the adapter as trained). Forward passes only, one CPU
thread: well under a minute per scale for SmolLM2-135M.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from evaluation.general_text import change_pct, load_general_text, mean_nll
from finetuning.scale import scale_adapter
from utils.recipe import REPO_ROOT
from utils.tables import format_table

KINDS = ("text", "chat")


def split_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """The general-text rows by kind: ``text`` rows and ``chat`` (prompt/reply) rows."""
    return {"text": [r for r in rows if "text" in r], "chat": [r for r in rows if "prompt" in r]}


def split_table(base: dict[str, float], scaled: dict[str, dict[str, float]]) -> str:
    """One row for the base model (its NLL per kind) and one per scale (its NLL and change per kind)."""
    body = [["base", *(f"{base[k]:.4f}" for k in KINDS), *("-" for _ in KINDS)]]
    for label, nll in scaled.items():
        body.append([label, *(f"{nll[k]:.4f}" for k in KINDS), *(f"{change_pct(nll[k], base[k]):+.1f}%" for k in KINDS)])
    return format_table(["model", *(f"{k} NLL" for k in KINDS), *(f"{k} change" for k in KINDS)], body,
                        align="l" + "r" * 2 * len(KINDS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="A benchmarks/knowledge.py run folder (with adapter/).")
    parser.add_argument("--scales", default="1,0.5", help="Comma list of adapter scales (1 = as trained).")
    parser.add_argument("--general_text", default="examples/general_text.jsonl", help="The general-text rows.")
    args = parser.parse_args(argv)

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from utils.default_model import resolve_model_path

    torch.set_num_threads(1)  # the machine's other core may be training; two threads stall on a shared core
    adapter = Path(args.run_dir) / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        print(f"[forgetting_split] {adapter}: no adapter_config.json (a finished benchmarks/knowledge.py run?)",
              file=sys.stderr)
        return 2
    kinds = split_rows(load_general_text(REPO_ROOT / args.general_text))
    base_path = resolve_model_path("default")
    tokenizer = AutoTokenizer.from_pretrained(base_path)

    def nll_by_kind(model) -> dict[str, float]:
        return {k: mean_nll(model, tokenizer, rows)["nll"] for k, rows in kinds.items()}

    base = nll_by_kind(AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32))
    scaled = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in [float(x) for x in args.scales.split(",") if x.strip()]:
            path = adapter if s == 1 else scale_adapter(adapter, s, Path(tmp) / f"s{s:g}")
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32),
                                              str(path))
            scaled[f"s{s:g}"] = nll_by_kind(model)
    print(f"{args.run_dir}: mean token NLL on {args.general_text} by row kind "
          f"({len(kinds['text'])} text rows, {len(kinds['chat'])} chat rows)")
    print(split_table(base, scaled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
