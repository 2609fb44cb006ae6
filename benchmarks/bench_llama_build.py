"""llama.cpp build flags vs generation speed: the installed (portable) llama-cpp-python server against
other builds of the same version, on the default model's GGUF, interleaved in one run.

    # a native build to compare with (about 5 minutes on 2 cores; pip's wheel cache is bypassed):
    CMAKE_ARGS="-DGGML_NATIVE=ON" pip install --no-cache-dir --no-deps --target /tmp/llama_native \
        llama-cpp-python==0.3.36
    python -m benchmarks.bench_llama_build --build native=/tmp/llama_native

Each build serves the GGUF in turn (single stream, greedy, fixed prompts, fixed reply length) for
--rounds interleaved rounds; the table gives generated tokens/s per build and whether the build
survived (a build with instructions this CPU cannot execute dies with SIGILL on its first completion).
Writes every measurement to --output (default benchmarks/results/llama_build.json) and each server's log
beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from utils.default_model import default_gguf_path
from utils.flops import load_average
from utils.io_utils import atomic_write_json
from finetuning.llama_server import LlamaServer, chat_completion
from utils.tables import format_table

PROMPTS = ["Describe how bees make honey.", "Explain what a volcano is.", "Write a short story about a lighthouse.",
           "Why do leaves change colour in autumn?"]


@dataclass
class LlamaBuildArguments:
    build: list[str] = field(default_factory=list, metadata={
        "action": "extend",
        "help": "LABEL=FOLDER: a llama-cpp-python installed with --target FOLDER (repeatable, or several after one "
                "--build). The installed one is always measured, as 'installed'."})
    rounds: int = field(default=3, metadata={"help": "Interleaved rounds over all builds."})
    threads: int = field(default=os.cpu_count() or 1, metadata={
        "help": "llama.cpp threads of every server (default: every core)."})
    max_tokens: int = field(default=128, metadata={"help": "Reply length in tokens for each prompt."})
    output: str = field(default="benchmarks/results/llama_build.json", metadata={
        "help": "Results JSON; the servers' logs go to its folder."})


def parse_args(argv: list[str] | None = None) -> LlamaBuildArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(LlamaBuildArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    for b in args.build:
        if "=" not in b:
            parser.error(f"--build {b}: expected LABEL=FOLDER")
    return args


def complete(base_url: str, prompt: str, max_tokens: int) -> tuple[int, float]:
    """One greedy chat completion; returns (completion tokens, seconds)."""
    t0 = time.perf_counter()
    reply = chat_completion(base_url, prompt, max_tokens=max_tokens)
    return reply["usage"]["completion_tokens"], time.perf_counter() - t0


def measure(label: str, path: str | None, gguf: str, threads: int, max_tokens: int, log_dir: Path) -> dict:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    try:
        with LlamaServer(gguf, log_dir / f"server_{label}.log", threads=threads, env=env) as server:
            complete(server.base_url, PROMPTS[0], 8)  # warm-up
            toks = secs = 0.0
            for p in PROMPTS:
                n, s = complete(server.base_url, p, max_tokens)
                toks, secs = toks + n, secs + s
            server.check_alive()
            return {"build": label, "ok": True, "tokens": toks, "seconds": secs, "tok_s": toks / secs}
    except (RuntimeError, OSError) as exc:
        return {"build": label, "ok": False, "error": str(exc)}


def summary_rows(runs: list[dict], labels: list[str]) -> list[list[str]]:
    """Per build: survived rounds, median / min / max generated tok/s, and the first error of a failed build."""
    rows = []
    for label in labels:
        mine = [r for r in runs if r["build"] == label]
        rates = [r["tok_s"] for r in mine if r["ok"]]
        error = next((r.get("error", "") for r in mine if not r["ok"]), "")
        stats = [f"{statistics.median(rates):.1f}", f"{min(rates):.1f}", f"{max(rates):.1f}"] if rates else ["-"] * 3
        rows.append([label, f"{len(rates)}/{len(mine)}", *stats, error])
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    builds = [("installed", None)] + [tuple(b.split("=", 1)) for b in args.build]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    gguf = str(default_gguf_path())
    runs = []
    for rnd in range(args.rounds):
        for label, path in builds:
            res = measure(label, path, gguf, args.threads, args.max_tokens, out.parent)
            res["round"] = rnd
            runs.append(res)
            print(json.dumps(res), flush=True)
    report = {"gguf": gguf, "threads": args.threads, "max_tokens": args.max_tokens, "cpu": _cpu_name(),
              "load_after": load_average(), "runs": runs}
    atomic_write_json(out, report)
    print(f"\n{report['cpu']}, {args.threads} thread(s), {args.rounds} interleaved round(s), greedy, "
          f"{args.max_tokens} new tokens x {len(PROMPTS)} prompts")
    print(format_table(["build", "survived", "tok/s (median)", "min", "max", "error"],
                       summary_rows(runs, [label for label, _ in builds]), align="lrrrrl"))
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
