"""Generation speed of the hf backend per dtype on this CPU: what ``--dtype auto`` should choose.

    python -m benchmarks.bench_generate                          # float32 vs bfloat16, batch 1 and 32, 3 rounds
    python -m benchmarks.bench_generate --batch_sizes 32 --rounds 2 --max_new_tokens 32

Each measurement is one ``HFBackend`` in this process with one torch thread (what each collector worker
runs), greedy replies to the first prompts of --prompts_file, --max_new_tokens new tokens. The dtypes
take turns within each round, so a change of machine speed during the run hits both. Printed: generated
tok/s per dtype and batch size (median over rounds, min, max), the CPU's bf16-related flags, torch's
CPU capability and what ``dtype=auto`` picks here; ``<output_dir>/results.json`` keeps every round.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from utils.flops import load_average
from utils.io_utils import atomic_write_json
from utils.logging_utils import setup_logging
from utils.tables import format_table

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchGenerateArguments:
    model_name_or_path: str = field(default="default", metadata={"help": "Model to generate with."})
    dtypes: str = field(default="float32,bfloat16", metadata={"help": "Comma-separated dtypes to compare."})
    batch_sizes: str = field(default="1,32", metadata={"help": "Comma-separated batch sizes (prompts per generate)."})
    rounds: int = field(default=3, metadata={"help": "Interleaved rounds."})
    max_new_tokens: int = field(default=64, metadata={"help": "New tokens per reply (greedy)."})
    prompts_file: str = field(default=str(ROOT / "examples" / "replay_prompts.txt"), metadata={
        "help": "One prompt per line; the first max(batch_sizes) are used."})
    threads: int = field(default=1, metadata={"help": "torch threads (1: one collector worker)."})
    output_dir: str = field(default="output/bench_generate", metadata={"help": "Where results.json goes."})


def parse_args(argv: list[str] | None = None) -> BenchGenerateArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BenchGenerateArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=list(sys.argv[1:] if argv is None else argv))
    return args


def summarise(runs: list[dict]) -> list[dict]:
    """Median, min and max tok/s per (dtype, batch size), in the order first measured."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in runs:
        groups.setdefault((r["dtype"], r["batch_size"]), []).append(r["tok_s"])
    return [{"dtype": d, "batch_size": b, "median": statistics.median(v), "min": min(v), "max": max(v),
             "rounds": len(v)} for (d, b), v in groups.items()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(logging.WARNING)
    import torch

    from generation.base import SamplingConfig
    from generation.hf import HFBackend, cpu_bf16_flags, cpu_dtype
    from replay.build import read_prompts

    torch.set_num_threads(args.threads)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    prompts = read_prompts(args.prompts_file)[: max(sizes)]
    if len(prompts) < max(sizes):
        print(f"error: {args.prompts_file} has {len(prompts)} prompts, fewer than batch {max(sizes)}", file=sys.stderr)
        return 2
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"args": asdict(args), "load_before": load_average(), "torch": torch.__version__,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_bf16_flags": sorted(cpu_bf16_flags()),
              "auto_picks": str(cpu_dtype()).replace("torch.", ""), "runs": []}
    backends = {d: HFBackend(args.model_name_or_path, dtype=d, workers="1", show_progress=False) for d in dtypes}
    sampling = SamplingConfig(temperature=0.0, max_new_tokens=args.max_new_tokens)
    for b in backends.values():  # loading and a first call outside the clock
        b.load()
        b.generate([[{"role": "user", "content": prompts[0]}]], SamplingConfig(temperature=0.0, max_new_tokens=4))
    for rnd in range(args.rounds):
        for size in sizes:
            chats = [[{"role": "user", "content": p}] for p in prompts[:size]]
            for dtype in (dtypes if rnd % 2 == 0 else dtypes[::-1]):  # alternate who goes first
                backend = backends[dtype]
                backend.batch_size = size
                before = backend.stats.completion_tokens
                t0 = time.perf_counter()
                backend.generate(chats, sampling)
                dt = time.perf_counter() - t0
                tokens = backend.stats.completion_tokens - before
                report["runs"].append({"round": rnd, "dtype": dtype, "batch_size": size, "seconds": round(dt, 2),
                                       "completion_tokens": tokens, "tok_s": tokens / dt})
                atomic_write_json(out_dir / "results.json", report)
                print(f"round {rnd} batch {size} {dtype}: {tokens} tokens in {dt:.1f} s = {tokens / dt:.1f} tok/s",
                      flush=True)
    report["load_after"] = load_average()
    report["summary"] = summary = summarise(report["runs"])
    atomic_write_json(out_dir / "results.json", report)
    print(f"\ntorch {report['torch']}, {args.threads} thread(s), CPU capability {report['cpu_capability']}, "
          f"bf16 flags: {', '.join(report['cpu_bf16_flags']) or 'none'}; dtype=auto picks {report['auto_picks']} here")
    print(f"load average before/after: {report['load_before']} / {report['load_after']}")
    print(format_table(["dtype", "batch", "tok/s median", "min", "max", "rounds"],
                       [[s["dtype"], s["batch_size"], f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}",
                         s["rounds"]] for s in summary]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
