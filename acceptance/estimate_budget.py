"""Estimate the wall time of a fine-tuning run (and of test_case_1.sh) on paper.

    time = epochs x tokens_trained x flops_per_token / (num_gpus x peak_flops x MFU)

``tokens_trained`` counts the tokens the model actually processes: the real tokens, or, with
``--pad_to_max_length N``, N per row (every example padded to one fixed length; finetune.py pads a batch
only to its longest example, so its padding is small). The MFU (model FLOP utilisation) is an
assumption shown as a parameter: 0.3-0.45 is typical for well-fed bf16 LoRA training of 1B-70B models;
small models and tiny batches get less.

Examples:
    python -m acceptance.estimate_budget --data_path datasets/qa_pairs.jsonl --params 7e9 --gpu A100 --num_gpus 4
    python -m acceptance.estimate_budget --fit_table --gpu A100 --num_gpus 4 --epochs 5      # what fits in 8 h
    python -m acceptance.estimate_budget --compare_summary output/run/train_summary.json   # check on CPU
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from utils.flops import GPU_PEAK_FLOPS, measure_matmul_peak, training_flops_per_token
from utils.tables import format_table


def count_tokens(paths: list[str], tokenizer, max_rows: int | None = None) -> list[int]:
    """Token length of every row (chat template applied, or none for a plain-text row, as finetune.py tokenises it)."""
    from utils.data_formats import is_plain_text, to_messages
    from utils.io_utils import iter_jsonl

    lengths: list[int] = []
    for path in paths:
        for _, row in iter_jsonl(path, skip_bad=True):
            try:
                msgs = to_messages(row, allow_text=True)
            except ValueError:
                continue
            if is_plain_text(msgs):
                ids = tokenizer(msgs[0]["content"], add_special_tokens=False)["input_ids"]
            else:
                ids = tokenizer.apply_chat_template(msgs, tokenize=True)
            # transformers 5 returns a BatchEncoding (a UserDict, not a dict): len() of it counts its keys.
            if hasattr(ids, "keys") and "input_ids" in ids:
                ids = ids["input_ids"]
            lengths.append(len(ids))
            if max_rows and len(lengths) >= max_rows:
                return lengths
    return lengths


def estimate_seconds(
    tokens: float, n_params: float, *, epochs: float, peak_flops: float, num_devices: int, mfu: float,
    lora: bool = True, gradient_checkpointing: bool = False,
) -> float:
    flops = epochs * tokens * training_flops_per_token(n_params, lora=lora, gradient_checkpointing=gradient_checkpointing)
    return flops / (num_devices * peak_flops * mfu)


def max_tokens_in_budget(budget_s: float, n_params: float, *, epochs: float, peak_flops: float, num_devices: int,
                         mfu: float, lora: bool = True) -> float:
    """Inverse of :func:`estimate_seconds`: the dataset size (tokens per epoch) that fills the budget."""
    return budget_s * num_devices * peak_flops * mfu / (epochs * training_flops_per_token(n_params, lora=lora))


def _param_count(model_name_or_path: str) -> float:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from utils.default_model import resolve_model_path

    config = AutoConfig.from_pretrained(resolve_model_path(model_name_or_path))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return float(sum(p.numel() for p in model.parameters()))


@dataclass
class EstimateArguments:
    data_path: list[str] = field(default_factory=list, metadata={
        "help": "JSONL file(s); tokens counted with the model's tokenizer."})
    model_name_or_path: str = field(default="default", metadata={
        "help": "Tokenizer and (unless --params) parameter count."})
    params: float | None = field(default=None, metadata={
        "help": "Parameter count to estimate for, e.g. 7e9 (overrides the model's)."})
    epochs: float = field(default=5.0, metadata={"help": "Epochs per run (test_case_1.sh default: 5)."})
    gpu: str = field(default="A100", metadata={
        "choices": sorted(GPU_PEAK_FLOPS), "help": "GPU type (bf16 dense peak)."})
    num_gpus: int = field(default=4, metadata={"help": "GPUs in total across nodes."})
    mfu: float = field(default=0.35, metadata={"help": "Assumed model FLOP utilisation (0-1)."})
    full_finetune: bool = field(default=False, metadata={
        "help": "Full fine-tuning (6N FLOPs/token) instead of LoRA (4N)."})
    pad_to_max_length: int = field(default=0, metadata={
        "help": "Count every row as padded to this many tokens (fixed-length padding); 0: real tokens only."})
    budget_hours: float = field(default=8.0, metadata={
        "help": "Budget per run (test_case_1.sh compares the average run)."})
    fit_table: bool = field(default=False, metadata={
        "help": "Print, per model size, the largest dataset that fits the budget."})
    compare_summary: str | None = field(default=None, metadata={
        "help": "A finetune.py train_summary.json from a CPU run: predict it with this CPU's measured matmul peak "
                "and report the error."})


def parse_args(argv: list[str] | None = None) -> EstimateArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(EstimateArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Entry points: python -m acceptance.estimate_budget | ku-estimate-budget")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lora = not args.full_finetune
    budget_s = args.budget_hours * 3600

    if args.fit_table:
        peak = GPU_PEAK_FLOPS[args.gpu]
        print(f"Largest dataset per run that fits {args.budget_hours:g} h: {args.num_gpus}x{args.gpu} bf16, "
              f"MFU {args.mfu:g}, {args.epochs:g} epochs, {'LoRA' if lora else 'full FT'}")
        rows = []
        for size in (0.135e9, 0.5e9, 1.5e9, 3e9, 7e9, 14e9, 32e9, 72e9):
            tok = max_tokens_in_budget(budget_s, size, epochs=args.epochs, peak_flops=peak, num_devices=args.num_gpus,
                                       mfu=args.mfu, lora=lora)
            rows.append([f"{size / 1e9:.3g}B", f"{tok:,.0f}", f"{tok / 150:,.0f}"])
        print(format_table(["model", "tokens/epoch", "QA rows at 150 tok"], rows, align="rrr"))
        return 0

    if args.compare_summary:
        summary = json.loads(Path(args.compare_summary).read_text())
        processes = int(summary.get("world_size", 1))
        # The run's processes shared the cores (the launcher gives each cores // processes threads):
        # the machine's peak is that many single-process peaks, not one process using every core.
        threads = max(1, (os.cpu_count() or 1) // processes)
        peak = processes * measure_matmul_peak("bfloat16" if summary.get("bf16") else "float32", threads=threads)
        n = _param_count(summary.get("model_name_or_path", args.model_name_or_path))
        # Real (non-pad) tokens over all epochs and ranks; with dynamic padding the pad share is small.
        tokens = summary["tokens"]
        pred = estimate_seconds(tokens, n, epochs=1, peak_flops=peak, num_devices=1, mfu=1.0, lora=lora)
        measured = summary["train_runtime_s"]
        achieved = pred / measured  # = achieved MFU against this CPU's matmul peak
        print(f"CPU matmul peak {peak / 1e9:.1f} GFLOP/s ({processes} process(es) x {threads} thread(s)); model {n / 1e6:.0f}M params; "
              f"{tokens:,} tokens processed in {measured:.0f} s")
        print(f"achieved MFU vs this CPU's matmul peak: {achieved:.3f}")
        pred_assumed = pred / args.mfu
        print(f"predicted at the assumed MFU {args.mfu:g}: {pred_assumed:.0f} s -> error {100 * (pred_assumed / measured - 1):+.0f}%")
        return 0

    if not args.data_path:
        print("error: give --data_path FILE(S), or --fit_table, or --compare_summary", file=sys.stderr)
        return 2
    from transformers import AutoTokenizer

    from utils.default_model import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model_name_or_path))
    lengths = count_tokens(args.data_path, tokenizer)
    if not lengths:
        print(f"error: no usable rows in {', '.join(args.data_path)}", file=sys.stderr)
        return 2
    real = sum(lengths)
    processed = len(lengths) * args.pad_to_max_length if args.pad_to_max_length else real
    n = args.params or _param_count(args.model_name_or_path)
    secs = estimate_seconds(processed, n, epochs=args.epochs, peak_flops=GPU_PEAK_FLOPS[args.gpu],
                            num_devices=args.num_gpus, mfu=args.mfu, lora=lora)
    print(f"rows {len(lengths):,}; tokens {real:,} real (mean {statistics.mean(lengths):.0f}, max {max(lengths)}), "
          f"{processed:,} processed per epoch")
    print(f"model {n / 1e9:.3g}B params, {args.epochs:g} epochs, {args.num_gpus}x{args.gpu}, MFU {args.mfu:g}")
    print(f"estimated time per run: {secs / 3600:.2f} h -> {'fits' if secs <= budget_s else 'EXCEEDS'} the {args.budget_hours:g} h budget")
    return 0 if secs <= budget_s else 1


if __name__ == "__main__":
    sys.exit(main())
