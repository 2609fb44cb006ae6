"""Collection throughput: one generate() call per prompt vs the collector's batching vs llama.cpp's server.

    python -m benchmarks.bench_collect --quick                  # 1 document, fewer facts: a few minutes on a CPU
    python -m benchmarks.bench_collect --max_docs 2 --rounds 1  # larger: ~15-20 min on 2 CPU cores
    python -m benchmarks.bench_collect --quick -- --batch_size 16   # flags after -- go to the collector

The same documents go through the same collector code (``data_processor.pipeline.run_collection``,
same prompts, parsing, caps) three ways; only the generator differs:
  sequential  the hf backend, one ``generate`` call per prompt, in order: the unbatched baseline
  batched     the hf backend as the collector runs it: each stage's prompts batched by length
  api         the api backend against ``python -m llama_cpp.server`` serving the default model's GGUF
              (started and stopped by this script; the CPU engine a user would otherwise pick)
The hf variants share one loaded model (same dtype) so only the batching differs. Variants run
interleaved (a, b, c, a, b, c ...) with a fresh output and reply cache each, so every reply is
generated, never read from the cache. Each run's collector summary gives QA rows written, LLM calls
and generated tokens; ratios are formed within a round and then averaged (robust to a noisy machine).

Prints a table; writes every measurement, as it is made, to <output_dir>/results.json.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data_processor.backends.base import BackendStats, LLMBackend
from utils.flops import load_average
from utils.io_utils import atomic_write_json
from utils.llama_server import LlamaServer
from utils.tables import format_table

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench_collect")
VARIANTS = ("sequential", "batched", "api")
# --quick: fewer prompts per stage, still every stage of the pipeline.
QUICK_COLLECT_ARGS = ["--max_facts_per_chunk", "4", "--qa_amount_per_fact", "1", "--personas_per_document", "1"]


@dataclass
class BenchCollectArguments:
    data_path: str = field(default=str(ROOT / "examples" / "docs"), metadata={"help": "Folder of documents."})
    max_docs: int = field(default=2, metadata={"help": "Use the first N documents (by name) of --data_path (0 = all)."})
    model_name_or_path: str = field(default="default", metadata={"help": "Generator for the hf variants."})
    variants: str = field(default=",".join(VARIANTS), metadata={
        "help": f"Comma-separated subset of {', '.join(VARIANTS)} (batched is required)."})
    rounds: int = field(default=1, metadata={"help": "Interleaved rounds of all variants."})
    gguf: str | None = field(default=None, metadata={
        "help": "GGUF for the api variant (default: the default model's, utils/default_model.py)."})
    threads: int = field(default=0, metadata={
        "help": "torch threads of the hf variants and llama.cpp threads of the api variant (0: every core)."})
    api_concurrency: int = field(default=1, metadata={
        "help": "Requests in flight to the llama.cpp server (it serves one stream at a time)."})
    port: int = field(default=0, metadata={"help": "llama.cpp server port (0: a free one)."})
    quick: bool = field(default=False, metadata={
        "help": f"1 document and fewer prompts per stage ({' '.join(QUICK_COLLECT_ARGS)})."})
    output_dir: str = field(default="output/bench_collect", metadata={"help": "results.json and one folder per run."})
    # Not a flag: the collector flags that followed a bare "--" (python -m data_processor --help lists them).
    collect_args: list[str] = field(default_factory=list, init=False)


def parse_args(argv: list[str] | None = None) -> BenchCollectArguments:
    """Flags into :class:`BenchCollectArguments`, ``--quick`` applied; flags after ``--`` go to the collector."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = HfArgumentParser(
        BenchCollectArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Flags after a bare -- are passed to the collector (python -m data_processor --help).")
    (args,) = parser.parse_args_into_dataclasses(args=own)
    args.collect_args = extra
    return apply_quick(args)


def apply_quick(args: BenchCollectArguments) -> BenchCollectArguments:
    if args.quick:
        args.max_docs = 1
        args.collect_args = QUICK_COLLECT_ARGS + list(args.collect_args)
    return args


class BenchBackend(LLMBackend):
    """Wraps a loaded backend for one benchmark run.

    ``sequential=True`` sends the prompts one ``generate`` call at a time, in order (the unbatched
    baseline); otherwise the whole list goes through as the collector sends it. ``close()`` leaves the
    wrapped model loaded (the pipeline closes its backend when a run ends; the next variant reuses the
    weights), and ``stats`` count this run only.
    """

    def __init__(self, inner: LLMBackend, *, sequential: bool):
        super().__init__()
        self.inner, self.sequential = inner, sequential
        self.model_id = inner.model_id
        self.generate_calls = 0

    def generate(self, chats, sampling, *, on_result=None, desc="generate"):
        before = BackendStats(**vars(self.inner.stats))
        if self.sequential:
            out = []
            for i, chat in enumerate(chats):
                out.append(self.inner.generate([chat], sampling, desc=desc)[0])
                self.generate_calls += 1
                if on_result is not None:
                    on_result(i, out[-1])
        else:
            out = self.inner.generate(chats, sampling, on_result=on_result, desc=desc)
            self.generate_calls += 1
        after = self.inner.stats
        for name in ("calls", "prompt_tokens", "completion_tokens", "seconds"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(after, name) - getattr(before, name))
        return out

    def close(self) -> None:
        """Keep the wrapped backend open for the next run (closed once by the benchmark)."""


def select_docs(data_path: str, max_docs: int, dest: Path) -> list[str]:
    """Copy the first ``max_docs`` documents (sorted by name; 0 = all) into ``dest``; return their names."""
    from data_processor.stages.step1_read import load_documents

    docs, _ = load_documents(data_path, "auto", 1, 0)
    docs = sorted(docs, key=lambda d: Path(d.path).name)
    chosen = docs[:max_docs] if max_docs > 0 else docs
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for d in chosen:
        shutil.copy2(d.path, dest / Path(d.path).name)
    chosen = [Path(d.path).name for d in chosen]
    return chosen


def run_once(variant: str, backend: LLMBackend, docs_dir: Path, run_dir: Path, collect_args: list[str],
             counter) -> dict:
    """One collection run into a fresh ``run_dir``; returns its throughput figures."""
    from data_processor.config import parse_args as parse_collect_args
    from data_processor.pipeline import run_collection

    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh reply cache: every reply is generated in this run
    run_dir.mkdir(parents=True)
    cfg = parse_collect_args(["--data_path", str(docs_dir), "--save_path", str(run_dir / "qa.jsonl"),
                              "--overwrite", "True", "--model_type", "api" if variant == "api" else "hf", *collect_args])
    t0 = time.perf_counter()
    summary = run_collection(cfg, backend=backend, counter=counter)
    seconds = time.perf_counter() - t0
    return {"variant": variant, "seconds": round(seconds, 2), "qa_rows": summary.qa_written,
            "facts": summary.stages.get("facts", {}).get("facts", 0), "chunks": summary.chunks, "llm_calls": summary.llm_calls,
            "generate_calls": getattr(backend, "generate_calls", None),
            "completion_tokens": summary.completion_tokens, "prompt_tokens": summary.prompt_tokens,
            "qa_per_min": 60 * summary.qa_written / seconds, "gen_tok_s": summary.completion_tokens / seconds,
            "status": summary.status}


def summarise(results: list[dict]) -> dict:
    """Per variant: medians, and the per-round ratios batched/sequential and batched/api (QA/min and tok/s)."""
    rounds: dict[int, dict[str, dict]] = {}
    for r in results:
        rounds.setdefault(r["round"], {})[r["variant"]] = r
    out: dict = {"variants": {}}
    for v in dict.fromkeys(r["variant"] for r in results):
        runs = [r for r in results if r["variant"] == v]
        out["variants"][v] = {k: statistics.median(r[k] for r in runs)
                              for k in ("qa_per_min", "gen_tok_s", "llm_calls", "qa_rows", "seconds", "completion_tokens")}
    for other, name in (("sequential", "b_over_a"), ("api", "b_over_c")):
        for metric in ("qa_per_min", "gen_tok_s"):
            ratios = [rnd["batched"][metric] / rnd[other][metric] for rnd in rounds.values()
                      if "batched" in rnd and other in rnd and rnd[other][metric] > 0]
            if ratios:
                out[f"{name}_{metric}"] = statistics.mean(ratios)
    return out


def variants_table(summary: dict) -> str:
    """The per-variant medians of :func:`summarise` as a table."""
    header = ["variant", "QA rows", "QA/min", "gen tok/s", "LLM calls", "seconds"]
    rows = [[v, f"{d['qa_rows']:.0f}", f"{d['qa_per_min']:.1f}", f"{d['gen_tok_s']:.1f}", f"{d['llm_calls']:.0f}",
             f"{d['seconds']:.0f}"] for v, d in summary["variants"].items()]
    return format_table(header, rows, align="lrrrrr")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if set(variants) - set(VARIANTS) or "batched" not in variants:
        print(f"error: --variants must include 'batched' and only {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    from transformers import AutoTokenizer

    from data_processor.backends import build_backend
    from data_processor.config import parse_args as parse_collect_args
    from data_processor.stages.step2_chunk import HFTokenCounter
    from utils.default_model import default_gguf_path, resolve_model_path

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = select_docs(args.data_path, args.max_docs, out_dir / "docs")
    base_cfg = parse_collect_args(["--model_name_or_path", args.model_name_or_path, *args.collect_args])
    # Chunks are measured with the default model's tokenizer in every variant, so all see the same chunks.
    counter = HFTokenCounter(AutoTokenizer.from_pretrained(resolve_model_path(args.model_name_or_path)))
    report = {"docs": docs, "args": asdict(args), "load_before": load_average(), "runs": []}
    results_path = out_dir / "results.json"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    hf = build_backend("hf", **{**base_cfg.backend_kwargs(), "show_progress": False})
    hf.load()
    report["hf_dtype"] = str(hf.model.dtype)

    server = None
    if "api" in variants:
        threads = args.threads or os.cpu_count() or 1
        gguf = args.gguf or str(default_gguf_path())
        server = LlamaServer(gguf, out_dir / "llama_cpp_server.log", port=args.port or None, threads=threads).__enter__()
        report["gguf"] = gguf
    try:
        from tqdm.auto import tqdm

        jobs = [(rnd, v) for rnd in range(args.rounds) for v in variants]
        for rnd, variant in tqdm(jobs, desc="collection variants"):
            if variant == "api":
                backend = build_backend("api", api_base=server.base_url, api_model="default",
                                        max_concurrency=args.api_concurrency, timeout=600.0, show_progress=False)
            else:
                backend = BenchBackend(hf, sequential=(variant == "sequential"))
            res = run_once(variant, backend, out_dir / "docs", out_dir / f"{variant}_round{rnd}", args.collect_args, counter)
            res["round"] = rnd
            report["runs"].append(res)
            atomic_write_json(results_path, report)
            logger.info("%s round %d: %.0f s, %d QA rows, %d LLM calls, %.1f gen tok/s", variant, rnd,
                        res["seconds"], res["qa_rows"], res["llm_calls"], res["gen_tok_s"])
    finally:
        if server is not None:
            server.__exit__(None, None, None)
        hf.close()
    report["summary"] = summarise(report["runs"])
    report["load_after"] = load_average()
    atomic_write_json(results_path, report)

    s = report["summary"]
    print(f"\nCollection: {len(docs)} document(s) ({', '.join(docs)}), hf dtype {report['hf_dtype']}, "
          f"{args.rounds} interleaved round(s); collector flags: {' '.join(args.collect_args) or '(defaults)'}")
    print(variants_table(s))
    for key, label in (("b_over_a", "batched / sequential"), ("b_over_c", "batched / llama.cpp api")):
        parts = [f"{name} x{s[f'{key}_{metric}']:.2f}" for metric, name in (("qa_per_min", "QA/min"), ("gen_tok_s", "generated tok/s"))
                 if f"{key}_{metric}" in s]
        if parts:
            print(f"{label}: {', '.join(parts)}")
    print(f"load average before/after: {report['load_before']} / {report['load_after']}; results -> {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
