"""Fine-tuning throughput: fixed-length padding vs dynamic batching vs packing, threads vs processes, bf16 vs fp32, FLOP/s.

    python -m benchmarks.bench_finetune                      # default model, examples/datasets, ~10 min on 2 CPU cores
    python -m benchmarks.bench_finetune --quick              # fewer steps/rounds, no finetune.py parts (~3 min)
    python -m benchmarks.bench_finetune --skip_batching --skip_parallel   # part 3 only: bf16 vs fp32, 40 steps
    python -m benchmarks.bench_finetune --model_name_or_path /path/to/tiny --quick --in_process   # smoke test

Part 1 (batching) trains a fresh LoRA (finetune.py's defaults) for --steps optimizer steps per variant,
on the same rows, same batch size, one process:
  seed_pad_max     every example padded to --pad_to_length, random order: the fixed-padding baseline
  dynamic_grouped  padded to the batch's longest only, batches of similar length (finetune.py's default)
  packed           examples packed into sequences of --pad_to_length (finetune.py --packing True)
  answer_logits    dynamic_grouped, with logits and loss only at answer positions (finetune.py's default,
                   --answer_logits_only True); the earlier variants compute them at every position
  shared_prefix    answer_logits, with the rows' common prefix (the system prompt) computed once per
                   sequence of up to --shared_prefix_tokens tokens (finetune.py's default)
The variants run interleaved (a, b, c, a, b, c ...), each in its own process so that its peak memory is
its own, and the machine's background load hits them alike; ratios are taken per round then averaged.
Part 2 (parallelism) runs finetune.py itself for the same steps and global batch as 1 process x 2
threads and as 2 processes x 1 thread (torchrun, gloo), interleaved, and reads its train_summary.json.
Part 3 (precision) runs finetune.py for --precision_steps steps in --precision_layout with
--bf16 auto and with --bf16 False, interleaved, and measures right before each run this host's fp32 and bf16
matmul peaks (utils/flops.measure_matmul_peak in as many processes and threads as the run, at once, summed).
FLOP/s: training_flops_per_token (utils/flops) x tokens executed (pad included: the CPU computes them)
over the step time, against this CPU's matmul peak of the dtype in use, measured in the same run.

Prints one table per part; writes every measurement, as it is made, to <output_dir>/results.json.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

from utils.flops import load_average
from utils.io_utils import atomic_write_json
from utils.logging_utils import setup_logging
from utils.tables import format_table

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench_finetune")
VARIANTS = ("seed_pad_max", "dynamic_grouped", "packed", "answer_logits", "shared_prefix")
BASELINE = "seed_pad_max"  # every example padded to --pad_to_length: the fixed-padding baseline
LENGTH_GROUPED = ("dynamic_grouped", "answer_logits", "shared_prefix")  # batches from LengthGroupedSampler
ANSWER_LOGITS_ONLY = ("answer_logits", "shared_prefix")  # output layer and loss only where a label follows


@dataclass
class BenchFinetuneArguments:
    data_path: list[str] | None = field(default=None, metadata={
        "help": "Training JSONL file(s) (default: examples/datasets/*.jsonl)."})
    model_name_or_path: str = field(default="default", metadata={"help": "'default' (SmolLM2-135M) or a model folder."})
    steps: int = field(default=4, metadata={
        "help": "Timed optimizer steps per variant and round (after 1 warm-up step)."})
    batch_size: int = field(default=4, metadata={"help": "Examples (or packed sequences) per optimizer step."})
    pad_to_length: int = field(default=512, metadata={
        "help": "Fixed length of seed_pad_max (every example padded to it), the packed sequence length, and the "
                "truncation length of every variant."})
    rounds: int = field(default=2, metadata={
        "help": "Interleaved rounds of all variants (ratios averaged over rounds)."})
    variants: str = field(default=",".join(VARIANTS), metadata={
        "help": f"Comma-separated subset of {', '.join(VARIANTS)} ({BASELINE} is required: the ratios' baseline)."})
    threads: int = field(default=1, metadata={"help": "torch threads (OMP_NUM_THREADS) for part 1."})
    parallel_steps: int = field(default=8, metadata={"help": "Optimizer steps of each finetune.py run in part 2."})
    parallel_global_batch: int = field(default=8, metadata={
        "help": "Global batch of part 2 (split across processes)."})
    parallel_rounds: int = field(default=2, metadata={"help": "Interleaved rounds of part 2."})
    skip_parallel: bool = field(default=False, metadata={"help": "Skip part 2 (torchrun)."})
    precision_steps: int = field(default=40, metadata={"help": "Optimizer steps of each finetune.py run in part 3."})
    precision_layout: str = field(default="2x1", metadata={
        "help": "Processes x threads of part 3: 2x1 (the launcher's CPU default on 2 cores) or 1x2."})
    precision_rounds: int = field(default=1, metadata={"help": "Interleaved rounds of part 3."})
    skip_precision: bool = field(default=False, metadata={"help": "Skip part 3 (bf16 vs fp32 with finetune.py)."})
    skip_batching: bool = field(default=False, metadata={"help": "Skip part 1 (only the parallelism comparison)."})
    in_process: bool = field(default=False, metadata={
        "help": "Run part-1 variants in this process (faster start; peak memory is then cumulative, not per variant)."})
    quick: bool = field(default=False, metadata={"help": "At most 2 steps, 1 round, no parts 2 and 3."})
    output_dir: str = field(default="output/bench_finetune", metadata={"help": "results.json and part-2 run folders."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling order and LoRA init."})
    # Internal: run one part-1 variant and print its figures as JSON (how each variant gets its own process).
    worker: str | None = field(default=None, metadata={"help": argparse.SUPPRESS})


def parse_args(argv: list[str] | None = None) -> BenchFinetuneArguments:
    """Flags into :class:`BenchFinetuneArguments`, ``--quick`` applied."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BenchFinetuneArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return apply_quick(args)


def apply_quick(args: BenchFinetuneArguments) -> BenchFinetuneArguments:
    """--quick: the smallest run whose ratios still mean something."""
    if args.quick:
        args.steps, args.rounds, args.skip_parallel, args.skip_precision = min(args.steps, 2), 1, True, True
    return args


# ---------------------------------------------------------------- batching (part 1): pure pieces
def pad_to_fixed(features: list[dict], length: int, pad_token_id: int) -> dict:
    """Fixed-length collation (the seed_pad_max baseline): every example right-padded (or cut) to ``length``
    tokens, labels -100 on pads."""
    import torch

    ids, labels, mask = [], [], []
    for f in features:
        n = min(len(f["input_ids"]), length)
        ids.append(list(f["input_ids"][:n]) + [pad_token_id] * (length - n))
        labels.append(list(f["labels"][:n]) + [-100] * (length - n))
        mask.append([1] * n + [0] * (length - n))
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def batch_token_counts(batch: dict, features: list[dict]) -> tuple[int, int]:
    """``(real, executed)`` tokens of a collated batch: real = the examples' own tokens; executed = all slots."""
    real = sum(min(len(f["input_ids"]), batch["input_ids"].shape[1]) for f in features)
    return real, batch["input_ids"].numel()


def batch_orders(variant: str, lengths: list[int], batch_size: int, n_batches: int, seed: int) -> list[list[int]]:
    """Index lists of ``n_batches`` batches, cycling over the data in fresh epochs as needed.

    ``dynamic_grouped``, ``answer_logits`` and ``shared_prefix`` use transformers' LengthGroupedSampler (what finetune.py's
    sampler does); the others a seeded random permutation.
    """
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    order: list[int] = []
    epoch = 0
    while len(order) < n_batches * batch_size:
        if variant in LENGTH_GROUPED:
            gen = torch.Generator().manual_seed(seed + epoch)
            order += list(LengthGroupedSampler(batch_size, lengths=lengths, generator=gen))
        else:
            perm = list(range(len(lengths)))
            random.Random(seed + epoch).shuffle(perm)
            order += perm
        epoch += 1
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(n_batches)]


def _train_args():
    # finetune.py's load_model reads only these fields of TrainingArguments.
    return SimpleNamespace(bf16=False, fp16=False, gradient_checkpointing=False, process_index=0)


def run_variant(variant: str, args: BenchFinetuneArguments) -> dict:
    """Train a fresh LoRA for 1 + ``args.steps`` optimizer steps with ``variant``'s batching; time the last ``steps``."""
    import torch

    from finetuning.args import DataArguments, LoraArguments, ModelArguments
    from finetuning.data import PackedDataset, SFTCollator, SupervisedDataset, load_rows
    from finetuning.model import load_model, load_tokenizer
    from finetuning.trainer import answer_only_loss, peak_memory_mb

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model_args = ModelArguments(model_name_or_path=args.model_name_or_path)
    data_args = DataArguments(model_max_length=args.pad_to_length)
    tokenizer = load_tokenizer(model_args, data_args)
    rows = [r for p in args.data_path for r in load_rows(p)]
    dataset = SupervisedDataset(rows, tokenizer, args.pad_to_length)
    collator = SFTCollator(tokenizer.pad_token_id,
                           shared_prefix_tokens=data_args.shared_prefix_tokens if variant == "shared_prefix" else 0)
    if variant == "packed":
        dataset = PackedDataset(dataset, args.pad_to_length)
    if variant == "seed_pad_max":
        def collate(features): return pad_to_fixed(features, args.pad_to_length, tokenizer.pad_token_id)
    else:
        collate = collator
    model = load_model(model_args, LoraArguments(), _train_args(), tokenizer)
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    n_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    batches = batch_orders(variant, dataset.lengths, args.batch_size, args.steps + 1, args.seed)
    real = executed = 0
    losses = []
    t_start = None
    for step, idx in enumerate(batches):
        if step == 1:  # step 0 warms up allocator and kernels; it is not timed
            t_start = time.perf_counter()
        features = [dataset[i] for i in idx]
        batch = collate(features)
        loss = answer_only_loss(model, batch) if variant in ANSWER_LOGITS_ONLY else model(**batch).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        losses.append(loss.detach().item())
        if step >= 1:
            r, e = batch_token_counts(batch, features)
            real, executed = real + r, executed + e
    seconds = time.perf_counter() - t_start
    return {"variant": variant, "steps": args.steps, "batch_size": args.batch_size, "seconds": round(seconds, 3),
            "real_tokens": real, "executed_tokens": executed, "real_tok_s": real / seconds,
            "executed_tok_s": executed / seconds, "pad_fraction": 1 - real / executed, "n_params": n_params,
            "threads": args.threads, "losses": losses, **peak_memory_mb()}


def _variant_in_subprocess(variant: str, argv: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_finetune", *argv, "--worker", variant]
    env = {**os.environ, "OMP_NUM_THREADS": str(parse_threads(argv)), "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"variant {variant} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_threads(argv: list[str]) -> int:
    return parse_args(argv).threads


def summarise_rounds(results: list[dict], baseline: str = BASELINE) -> dict:
    """Per variant: median real tok/s, pad fraction, peak memory, and the mean per-round ratio to ``baseline``.

    Ratios are formed within a round (same background load) before averaging, which is what makes them
    robust on a shared machine where absolute tok/s drift by 2x.
    """
    by_round: dict[int, dict[str, dict]] = {}
    for r in results:
        by_round.setdefault(r["round"], {})[r["variant"]] = r
    out: dict[str, dict] = {}
    for variant in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == variant]
        ratios = [rnd[variant]["real_tok_s"] / rnd[baseline]["real_tok_s"]
                  for rnd in by_round.values() if variant in rnd and baseline in rnd]
        out[variant] = {
            "real_tok_s": statistics.median(r["real_tok_s"] for r in runs),
            "executed_tok_s": statistics.median(r["executed_tok_s"] for r in runs),
            "pad_fraction": statistics.mean(r["pad_fraction"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "ratio_vs_baseline": statistics.mean(ratios) if ratios else None,
            "ratios_per_round": ratios,
        }
    return out


# ---------------------------------------------------------------- parallelism (part 2)
def layout_shape(layout: str) -> tuple[int, int]:
    """``(processes, threads per process)`` of ``layout`` '1x2' or '2x1'."""
    if layout not in ("1x2", "2x1"):
        raise ValueError(f"layout {layout!r}: expected 1x2 or 2x1")
    return (1, 2) if layout == "1x2" else (2, 1)


def finetune_command(layout: str, args: BenchFinetuneArguments, output_dir: str, port: int,
                     steps: int | None = None, extra: tuple[str, ...] = ()) -> tuple[list[str], dict]:
    """finetune.py command and environment for ``layout`` '1x2' (1 process, 2 threads) or '2x1' (torchrun, gloo),
    for ``steps`` optimizer steps (default ``--parallel_steps``), with ``extra`` finetune.py flags appended."""
    procs, threads = layout_shape(layout)
    flags = ["--model_name_or_path", args.model_name_or_path, "--data_path", ",".join(args.data_path),
             "--output_dir", output_dir, "--max_steps", str(steps or args.parallel_steps),
             "--per_device_train_batch_size", str(args.parallel_global_batch // procs),
             "--gradient_accumulation_steps", "1", "--save_strategy", "no", "--report_to", "none",
             "--use_wandb", "False", "--logging_steps", "1", "--loss_dir", os.path.join(output_dir, "losses"),
             "--run_name", layout, "--dataloader_num_workers", "0", "--seed", str(args.seed), *extra]
    if procs == 1:
        cmd = [sys.executable, "finetune.py", *flags]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs),
               "--master_addr", "127.0.0.1", "--master_port", str(port), "finetune.py", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "DS_ACCELERATOR": "cpu", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    return cmd, env


def run_layout(layout: str, args: BenchFinetuneArguments, output_dir: str, port: int,
               steps: int | None = None, extra: tuple[str, ...] = ()) -> dict:
    """Run finetune.py in ``layout`` (:func:`finetune_command`); return its summary figures."""
    cmd, env = finetune_command(layout, args, output_dir, port, steps, extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of every process of the run (torchrun waits for its workers, so theirs are included), start-up
    # included: unlike wall time, barely changed by other jobs taking turns on the cores.
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"{layout}: finetune.py failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    summary = json.loads(Path(output_dir, "train_summary.json").read_text())
    procs = layout_shape(layout)[0]
    if int(summary.get("world_size", 1)) != procs:
        # Each torchrun process would then train alone on the whole data: not data parallelism.
        raise RuntimeError(f"{layout}: finetune.py reports world_size {summary.get('world_size')}, expected {procs}")
    runtime = summary["train_runtime_s"]  # all steps, first included: the same warm-up for both layouts
    return {"layout": layout, "train_runtime_s": runtime, "tokens": summary["tokens"],
            "steps": summary["global_step"], "s_per_step": runtime / max(1, summary["global_step"]),
            "real_tok_s": summary["tokens"] / runtime, "world_size": summary.get("world_size"),
            "peak_rss_mb": summary.get("peak_rss_mb"), "bf16": summary.get("bf16"), "cpu_s": round(cpu_s, 1),
            "train_loss_mean": summary.get("train_loss_mean"), "train_loss_last": summary.get("train_loss_last"),
            "summary_path": str(Path(output_dir, "train_summary.json"))}


# ---------------------------------------------------------------- precision (part 3)
PRECISION_RUNS = {"auto": ("--bf16", "auto"), "fp32": ("--bf16", "False")}  # bf16 where the host computes it natively, vs fp32


def base_param_count(model_name_or_path: str) -> int:
    """Parameters of the base model (tied weights once), counted on the meta device: no weights are loaded."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from utils.default_model import resolve_model_path

    config = AutoConfig.from_pretrained(resolve_model_path(model_name_or_path))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def _peak_worker(dtype: str, threads: int, barrier, results) -> None:
    from utils.flops import measure_matmul_peak

    barrier.wait()  # every process measures at the same time, as the training processes run
    results.put(measure_matmul_peak(dtype, threads=threads))


def matmul_peaks(threads: int, processes: int) -> dict[str, float]:
    """fp32 and bf16 matmul FLOP/s of the training layout: ``processes`` processes of ``threads`` threads,
    measuring at the same time, summed."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    peaks = {}
    for dtype in ("float32", "bfloat16"):
        barrier, results = ctx.Barrier(processes), ctx.Queue()
        workers = [ctx.Process(target=_peak_worker, args=(dtype, threads, barrier, results)) for _ in range(processes)]
        for w in workers:
            w.start()
        peaks[dtype] = sum(results.get(timeout=600) for _ in workers)
        for w in workers:
            w.join()
    return peaks


def summarise_precision(runs: list[dict], flops_per_token: float) -> dict:
    """Per run ('default', 'fp32'): its dtype, median real tok/s, and achieved FLOP/s against the matmul peak of
    that dtype measured right before the run (``matmul_peaks``), averaged over rounds; plus the mean per-round
    tok/s ratio default / fp32 (ratios within a round: the same background load)."""
    out: dict = {}
    for name in dict.fromkeys(r["run"] for r in runs):
        mine = [r for r in runs if r["run"] == name]
        dtype = "bfloat16" if mine[0]["bf16"] else "float32"
        fractions = [r["real_tok_s"] * flops_per_token / r["matmul_peaks"][dtype] for r in mine]
        out[name] = {"dtype": dtype, "real_tok_s": statistics.median(r["real_tok_s"] for r in mine),
                     "gflop_s": statistics.median(r["real_tok_s"] for r in mine) * flops_per_token / 1e9,
                     "peak_gflop_s": statistics.median(r["matmul_peaks"][dtype] for r in mine) / 1e9,
                     "tok_per_cpu_s": statistics.median(r["tokens"] / r["cpu_s"] for r in mine),
                     "of_peak": statistics.mean(fractions), "train_loss_mean": statistics.mean(
                         r["train_loss_mean"] for r in mine), "train_loss_last": mine[-1]["train_loss_last"]}
    by_round: dict[int, dict[str, dict]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["run"]] = r
    ratios = [rnd["auto"]["real_tok_s"] / rnd["fp32"]["real_tok_s"]
              for rnd in by_round.values() if "auto" in rnd and "fp32" in rnd]
    out["ratio_default_over_fp32"] = statistics.mean(ratios) if ratios else None
    out["ratios_per_round"] = ratios
    cpu_ratios = [(rnd["auto"]["tokens"] / rnd["auto"]["cpu_s"]) / (rnd["fp32"]["tokens"] / rnd["fp32"]["cpu_s"])
                  for rnd in by_round.values() if "auto" in rnd and "fp32" in rnd]
    out["cpu_ratio_default_over_fp32"] = statistics.mean(cpu_ratios) if cpu_ratios else None
    return out


def run_precision(args: BenchFinetuneArguments, out_dir: Path, report: dict, results_path: Path) -> None:
    """Part 3: finetune.py with --bf16 auto and with --bf16 False, interleaved, each run right after
    measuring the fp32 and bf16 matmul peaks of its layout; prints the side-by-side table."""
    from tqdm.auto import tqdm

    from utils.flops import training_flops_per_token

    procs, threads = layout_shape(args.precision_layout)
    fpt = training_flops_per_token(base_param_count(args.model_name_or_path), lora=True)
    report["precision_runs"] = []
    jobs = [(rnd, name) for rnd in range(args.precision_rounds) for name in PRECISION_RUNS]
    for i, (rnd, name) in enumerate(tqdm(jobs, desc="bf16 vs fp32")):
        peaks = matmul_peaks(threads, procs)  # the background load drifts: measured beside each run
        res = run_layout(args.precision_layout, args, str(out_dir / f"precision_{name}_round{rnd}"), port=29700 + i,
                         steps=args.precision_steps, extra=PRECISION_RUNS[name])
        res.update(round=rnd, run=name, matmul_peaks=peaks, load=load_average())
        report["precision_runs"].append(res)
        atomic_write_json(results_path, report)
    table = report["precision"] = summarise_precision(report["precision_runs"], fpt)
    atomic_write_json(results_path, report)
    rows = [[f"{name} ({'bf16' if t['dtype'] == 'bfloat16' else 'fp32'})", f"{t['real_tok_s']:.0f}",
             f"{t['tok_per_cpu_s']:.1f}",
             f"{t['gflop_s']:.1f}", f"{t['peak_gflop_s']:.1f}", f"{t['of_peak']:.2f}",
             f"{t['train_loss_mean']:.4f}", f"{t['train_loss_last']:.4f}"]
            for name, t in table.items() if name in PRECISION_RUNS]
    print(f"\nPart 3: finetune.py --bf16 auto vs --bf16 False, {args.precision_steps} steps, global batch "
          f"{args.parallel_global_batch}, {procs} process(es) x {threads} thread(s), {args.precision_rounds} round(s)")
    print(format_table(["run (dtype)", "real tok/s", "tok/CPU-s", "GFLOP/s", "matmul peak GFLOP/s", "of peak",
                        "mean loss", "last loss"], rows, align="lrrrrrrr"))
    per_round = ", ".join(f"{x:.2f}" for x in table["ratios_per_round"])
    print(f"default / fp32 tok/s = {table['ratio_default_over_fp32']:.2f} (per round: {per_round}); tokens per CPU "
          f"second (all processes, start-up included) {table['cpu_ratio_default_over_fp32']:.2f}. GFLOP/s counts 4N "
          "FLOPs per token (utils/flops); the peak is that of the run's dtype, measured right before the run.")


# ---------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.data_path = args.data_path or sorted(glob.glob(str(ROOT / "examples" / "datasets" / "*.jsonl")))
    if args.worker:
        print(json.dumps(run_variant(args.worker, args)))
        return 0
    setup_logging()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown or BASELINE not in variants:
        print(f"error: --variants must include {BASELINE} and only {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    try:
        layout_shape(args.precision_layout)
    except ValueError as exc:
        print(f"error: --precision_layout: {exc}", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    from utils.flops import measure_matmul_peak, training_flops_per_token

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"args": {k: v for k, v in asdict(args).items() if k != "worker"}, "load_before": load_average(),
                    "batching": [], "parallel": []}
    results_path = out_dir / "results.json"
    peak = measure_matmul_peak("float32", threads=args.threads)
    report["matmul_peak_flops"] = peak

    # Part 1: interleaved a, b, c, a, b, c ...
    jobs = [] if args.skip_batching else [(rnd, v) for rnd in range(args.rounds) for v in variants]
    for rnd, variant in tqdm(jobs, desc="batching variants"):
        # The worker gets this command line as given (it ignores --in_process) plus --worker VARIANT.
        res = run_variant(variant, args) if args.in_process else _variant_in_subprocess(variant, argv)
        res["round"] = rnd
        report["batching"].append(res)
        atomic_write_json(results_path, report)
    if report["batching"]:
        table = summarise_rounds(report["batching"])
        fpt = training_flops_per_token(report["batching"][0]["n_params"], lora=True)
        rows = []
        for v, s in table.items():
            achieved = s["executed_tok_s"] * fpt
            rows.append([v, f"{s['real_tok_s']:.0f}", f"{100 * s['pad_fraction']:.1f}%", f"{s['peak_rss_mb']:.0f}",
                         f"{achieved / 1e9:.1f}", f"{achieved / peak:.2f}",
                         f"{s['ratio_vs_baseline']:.2f}" + (f" ({', '.join(f'{x:.2f}' for x in s['ratios_per_round'])})"
                                                             if len(s['ratios_per_round']) > 1 else "")])
        report["batching_summary"] = table
        print(f"\nPart 1: batching — {report['batching'][0]['n_params'] / 1e6:.0f}M params, LoRA, batch {args.batch_size}, "
              f"{args.steps} timed steps x {args.rounds} round(s), {args.threads} thread(s), pad length {args.pad_to_length}; "
              f"fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")
        print(format_table(["variant", "real tok/s", "pad", "peak RSS MiB", "GFLOP/s", "of peak", f"x {BASELINE}"],
                           rows, align="lrrrrrr"))
        if "shared_prefix" in table:
            print("pad = 1 - real/executed tokens; shared_prefix runs its rows' common prefix once per sequence, so it "
                  "executes fewer tokens than its rows hold and its figure is negative.")
        if "answer_logits" in table:
            print("GFLOP/s counts 4N FLOPs per token; answer_logits skips the output layer at prompt positions, so its "
                  "figure is the equivalent rate, not work done.")

    # Part 2: 1 process x 2 threads vs 2 processes x 1 thread, interleaved.
    if not args.skip_parallel:
        layouts = ("1x2", "2x1")
        jobs = [(rnd, lay) for rnd in range(args.parallel_rounds) for lay in layouts]
        for i, (rnd, layout) in enumerate(tqdm(jobs, desc="parallel layouts")):
            res = run_layout(layout, args, str(out_dir / f"{layout}_round{rnd}"), port=29600 + i)
            res["round"] = rnd
            report["parallel"].append(res)
            atomic_write_json(results_path, report)
        rows, per = [], {}
        for layout in layouts:
            runs = [r for r in report["parallel"] if r["layout"] == layout]
            per[layout] = statistics.median(r["real_tok_s"] for r in runs)
            rows.append([layout, f"{per[layout]:.0f}", f"{statistics.median(r['s_per_step'] for r in runs):.2f}",
                         f"{max(r['peak_rss_mb'] or 0 for r in runs):.0f}"])
        ratios = [a["real_tok_s"] / b["real_tok_s"] for a, b in zip(
            [r for r in report["parallel"] if r["layout"] == "2x1"], [r for r in report["parallel"] if r["layout"] == "1x2"])]
        report["parallel_ratio_2x1_over_1x2"] = statistics.mean(ratios)
        print(f"\nPart 2: finetune.py, {args.parallel_steps} steps, global batch {args.parallel_global_batch}, "
              f"{args.parallel_rounds} interleaved round(s)")
        print(format_table(["procs x threads", "real tok/s", "s/step", "peak RSS MiB (rank 0)"], rows, align="lrrr"))
        faster = "2x1" if report["parallel_ratio_2x1_over_1x2"] > 1 else "1x2"
        print(f"2 processes x 1 thread / 1 process x 2 threads = {report['parallel_ratio_2x1_over_1x2']:.2f} "
              f"-> faster here: {faster}")
        print(f"check the paper estimator: python -m acceptance.estimate_budget --compare_summary {report['parallel'][0]['summary_path']}")
    if not args.skip_precision:
        run_precision(args, out_dir, report, results_path)
    report["load_after"] = load_average()
    atomic_write_json(results_path, report)
    print(f"\nload average before/after: {report['load_before']} / {report['load_after']}; results -> {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
