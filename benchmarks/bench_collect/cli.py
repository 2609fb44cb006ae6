"""The collection benchmark's command line: its flags, and ``main``, which prepares the corpus, loads the
backends once, runs every job of every (round, condition) block and prints the report.

    python -m benchmarks.bench_collect --help
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import benchmarks.bench_collect as package
from benchmarks.bench_collect.jobs import COLLECTION, KIND, JobContext, block_jobs, read_questions, run_job, warm_up
from benchmarks.bench_collect.report import print_report, reprint, summarise
from generation.base import BackendStats, SamplingConfig
from utils.flops import load_average
from utils.io_utils import atomic_write_json
from utils.logging_utils import setup_logging

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger("bench_collect")

CONDITIONS = ("idle", "loaded")
# Jobs that run several threads in one process (torch's, or llama-server's): beside a busy core they can
# nearly stall, so only they get the time budget by default.
BUDGET_JOBS = ("sequential", "collector_1proc", "llama_server", "model_inproc", "replay_1proc", "eval_1proc")
# --quick: fewer prompts per stage, still every stage of the pipeline.
QUICK_COLLECT_ARGS = ["--max_facts_per_chunk", "4", "--qa_amount_per_fact", "1", "--personas_per_document", "1"]


@dataclass
class BenchCollectArguments:
    data_path: list[str] = field(default_factory=lambda: [str(ROOT / "examples" / "docs"),
                                                          str(ROOT / "examples" / "test_corpus" / "docs")],
                                 metadata={"help": "Folders whose documents the corpus repeats (renamed per copy)."})
    num_docs: int = field(default=12, metadata={"help": "Documents in the corpus (sources repeated as needed)."})
    model_name_or_path: str = field(default="default", metadata={"help": "Generator of the hf variants."})
    variants: str = field(default="sequential,collector,llama_server", metadata={
        "help": f"Comma-separated collection variants from {', '.join(COLLECTION)}; 'collector' is required."})
    conditions: str = field(default="idle,loaded", metadata={
        "help": "idle, loaded or both: loaded runs everything again beside a busy loop pinned to one core."})
    rounds: int = field(default=1, metadata={"help": "Rounds; each runs every job idle, then loaded."})
    references: bool = field(default=True, metadata={
        "help": "Measure the bare model's batched generate() on (b)'s prompts (model_workers, model_inproc)."})
    workloads: bool = field(default=True, metadata={"help": "Measure replay and evaluation generation too."})
    threads: int = field(default=0, metadata={
        "help": "torch threads of the one-process layout ((a), *_1proc, model_inproc) and llama-server's threads "
                "(0: torch's default; every core for the server)."})
    server_parallel: int = field(default=16, metadata={
        "help": "llama-server slots (--parallel, continuous batching) = the api backend's max_concurrency."})
    server_ctx: int = field(default=2048, metadata={"help": "llama-server context per slot (prompt + reply)."})
    server_binary: str | None = field(default=None, metadata={
        "help": "llama-server executable (default: the cached build of python -m finetuning.llama_server)."})
    build_server: bool = field(default=True, metadata={
        "help": "Build llama-server first if it is not cached (once; about 10-15 minutes on 2 cores)."})
    gguf: str | None = field(default=None, metadata={"help": "GGUF for llama-server (default: the default model's)."})
    replay_prompts: int = field(default=40, metadata={"help": "First N prompts of --replay_prompts_file."})
    replay_prompts_file: str = field(default=str(ROOT / "examples" / "replay_prompts.txt"), metadata={
        "help": "Replay prompts (one a line)."})
    replay_new_tokens: int = field(default=128, metadata={"help": "Replay reply cap (the recipe's replay_max_new_tokens)."})
    eval_qa: str = field(default=str(ROOT / "examples" / "eval_qa.jsonl"), metadata={"help": "Evaluation questions."})
    eval_questions: int = field(default=0, metadata={"help": "First N questions of --eval_qa (0: all)."})
    eval_new_tokens: int = field(default=48, metadata={"help": "Evaluation reply cap (evaluate.py's default)."})
    load_cpu: int = field(default=-2, metadata={
        "help": "Core the background busy loop is pinned to (-2: the last one this process may use; -1: unpinned)."})
    loaded_budget_s: float = field(default=1200.0, metadata={
        "help": "Under load, a job stops at its next generate() call after this many seconds and reports the "
                "throughput of what it did (one process with several threads can nearly stall beside a busy "
                "core). 0: no limit."})
    idle_budget_s: float = field(default=0.0, metadata={"help": "The same for idle jobs (0: no limit)."})
    budget_jobs: str = field(default=",".join(BUDGET_JOBS), metadata={
        "help": "Comma-separated jobs the time budgets apply to (default: the ones whose threads can nearly stall "
                "beside a busy core). The others run to completion, so the loaded/idle ratios with targets "
                "compare whole runs."})
    quick: bool = field(default=False, metadata={
        "help": f"2 documents, {' '.join(QUICK_COLLECT_ARGS)}, 8 replay prompts and 8 questions."})
    output_dir: str = field(default="output/bench_collect", metadata={"help": "results.json, the corpus, one folder per run."})
    report: str | None = field(default=None, metadata={
        "help": "Print the tables and ratios of an earlier run's results.json (one that was stopped, too) and exit."})
    # Not a flag: the collector flags that followed a bare "--" (python -m data_processor --help lists them).
    collect_args: list[str] = field(default_factory=list, init=False)


def parse_args(argv: list[str] | None = None) -> BenchCollectArguments:
    """Flags into :class:`BenchCollectArguments`, ``--quick`` applied; flags after ``--`` go to the collector."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = HfArgumentParser(
        BenchCollectArguments, prog="python -m benchmarks.bench_collect", description=package.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Flags after a bare -- are passed to the collector (python -m data_processor --help).")
    (args,) = parser.parse_args_into_dataclasses(args=own)
    args.collect_args = extra
    return apply_quick(args)


def apply_quick(args: BenchCollectArguments) -> BenchCollectArguments:
    if args.quick:
        args.num_docs = min(args.num_docs, 2)
        args.replay_prompts, args.eval_questions = min(args.replay_prompts, 8), min(args.eval_questions or 8, 8)
        args.collect_args = QUICK_COLLECT_ARGS + list(args.collect_args)
    return args


def selected(args: BenchCollectArguments) -> tuple[list[str], list[str]]:
    """``(collection variants, conditions)`` from the flags; ``ValueError`` for unknown or missing names."""
    variants = list(dict.fromkeys(v.strip() for v in args.variants.split(",") if v.strip()))
    conditions = list(dict.fromkeys(c.strip() for c in args.conditions.split(",") if c.strip()))
    if set(variants) - set(COLLECTION) or "collector" not in variants:
        raise ValueError(f"--variants must include 'collector' and only {', '.join(COLLECTION)}")
    if not conditions or set(conditions) - set(CONDITIONS):
        raise ValueError(f"--conditions must be some of {', '.join(CONDITIONS)}")
    if set(budget_jobs(args)) - set(KIND):
        raise ValueError(f"--budget_jobs must be some of {', '.join(KIND)}")
    return variants, [c for c in CONDITIONS if c in conditions]  # idle first: loaded/idle pairs per round


def budget_jobs(args: BenchCollectArguments) -> list[str]:
    return [j.strip() for j in args.budget_jobs.split(",") if j.strip()]




# -- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Parse the flags, then print an earlier run's report (``--report``) or run the benchmark."""
    args = parse_args(argv)
    if args.report:
        return reprint(Path(args.report))
    setup_logging(logging.WARNING)
    logger.setLevel(logging.INFO)
    try:
        variants, conditions = selected(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch

    torch_threads = torch.get_num_threads()  # restored at the end (tests run main() in their own process)
    try:
        return run_benchmark(args, variants, conditions)
    finally:
        torch.set_num_threads(torch_threads)


def run_benchmark(args: BenchCollectArguments, variants: list[str], conditions: list[str]) -> int:
    """Every job of every block, each figure written to results.json as soon as it is measured; then the
    report. Returns 0, 2 (no llama-server) or 130 (interrupted: the figures so far are reported)."""
    from benchmarks.background_load import BackgroundLoad, default_load_cpu

    out_dir = Path(args.output_dir)
    results_path = out_dir / "results.json"
    ctx, report = prepare(args, variants, conditions, out_dir)
    atomic_write_json(results_path, report)
    binary = None
    if "llama_server" in variants:  # before anything is measured: a build takes minutes
        try:
            binary = server_binary(args)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    server = None
    load = BackgroundLoad(default_load_cpu() if args.load_cpu == -2 else args.load_cpu)
    report["background_load"] = {"cpu": load.cpu}
    interrupted = False
    # SIGTERM (kill, a job scheduler) stops like Ctrl+C: the servers and workers are stopped, the report printed.
    on_term = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    try:  # from here on, whatever happens, the server, the workers and the busy loop are stopped
        if binary is not None:
            server = make_server(args, binary, out_dir, report)
            try:
                ctx.api = start_server(server, args, report)
            except RuntimeError as exc:  # it exited or never answered: the log says why
                report["status"] = f"llama-server failed: {exc}"
                atomic_write_json(results_path, report)
                print(f"error: {exc}", file=sys.stderr)
                return 2
        load_backends(ctx, report, warm_generate="collector_generate" in variants or args.references)
        atomic_write_json(results_path, report)
        run_blocks(args, ctx, report["jobs"], conditions, report, results_path, load)
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: the figures measured so far follow")
    finally:
        load.stop()
        if server is not None:
            server.__exit__(None, None, None)
        for backend in (ctx.api, ctx.hf_default, ctx.hf_generate, ctx.hf_1proc):
            if backend is not None:
                backend.close()
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
    report["load_after"] = load_average()
    report["summary"] = summary = summarise(report["runs"])
    report["status"] = "interrupted" if interrupted else "complete"
    atomic_write_json(results_path, report)
    print_report(report, summary, results_path)
    return 130 if interrupted else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def prepare(args: BenchCollectArguments, variants: list[str], conditions: list[str],
            out_dir: Path) -> tuple[JobContext, dict]:
    """The corpus, the replay prompts and questions, the three hf backends (built, not loaded) and the
    report's header (the flags, the machine, the corpus)."""
    import torch
    from transformers import AutoTokenizer

    from benchmarks.collect_corpus import build_corpus, common_word_test
    from data_processor.config import parse_args as parse_collect_args
    from data_processor.stages.step2_chunk import HFTokenCounter
    from generation import build_backend
    from replay.build import read_prompts
    from utils.default_model import resolve_model_path

    out_dir.mkdir(parents=True, exist_ok=True)
    base_cfg = parse_collect_args(["--model_name_or_path", args.model_name_or_path, *args.collect_args])
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model_name_or_path))
    corpus = build_corpus(args.data_path, args.num_docs, out_dir / "docs", is_common=common_word_test(tokenizer))
    replay_file = out_dir / "replay_prompts.txt"
    replay_file.write_text("\n".join(read_prompts(args.replay_prompts_file)[: args.replay_prompts]) + "\n")
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"args": asdict(args), "jobs": block_jobs(variants, args.references, args.workloads),
                    "conditions": conditions, "load_before": load_average(),
                    "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None},
                    "corpus": corpus, "collector_flags": args.collect_args, "runs": []}
    kw = {**base_cfg.backend_kwargs(), "show_progress": False}
    ctx = JobContext(
        hf_default=build_backend("hf", **kw),  # (b): exactly the collector's default backend
        # (b)'s worker layout with model.generate(): collector_generate and the bare-model reference
        hf_generate=build_backend("hf", **{**kw, "decode": "generate"}),
        hf_1proc=build_backend("hf", **{**kw, "workers": "1", "decode": "generate"}),  # one process, torch's threads
        api=None, out_dir=out_dir,
        # Chunks are measured with the generator's tokenizer in every variant, so all see the same chunks.
        counter=HFTokenCounter(tokenizer), collect_args=args.collect_args, model=args.model_name_or_path,
        replay_file=replay_file, replay_new_tokens=args.replay_new_tokens,
        questions=read_questions(args.eval_qa, args.eval_questions), eval_new_tokens=args.eval_new_tokens,
        budget_jobs=set(budget_jobs(args)))
    return ctx, report


def server_binary(args: BenchCollectArguments) -> Path:
    """llama-server's executable: --server_binary, the cached build, or a new build (``RuntimeError`` if
    there is none and --build_server False, or the build fails)."""
    from finetuning.llama_server import ensure_llama_server, find_llama_server

    try:
        binary = args.server_binary or find_llama_server() or (ensure_llama_server() if args.build_server else None)
    except (RuntimeError, FileNotFoundError) as exc:
        raise RuntimeError(f"could not build llama-server: {exc}") from exc
    if binary is None:
        raise RuntimeError("no llama-server built and --build_server False: build it with python -m finetuning.llama_server, "
                           "or drop llama_server from --variants")
    return binary


def make_server(args: BenchCollectArguments, binary, out_dir: Path, report: dict):
    """(c)'s llama-server (not started), its settings recorded in ``report``."""
    from utils.default_model import default_gguf_path
    from finetuning.llama_server import LlamaCppServer

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    gguf = args.gguf or str(default_gguf_path())
    server = LlamaCppServer(gguf, out_dir / "llama_server.log", binary=binary, parallel=args.server_parallel,
                            threads=threads, n_ctx=args.server_ctx)
    report["server"] = {"binary": str(binary), "gguf": gguf, "parallel": args.server_parallel, "threads": threads,
                        "command": server.command()}
    return server


def start_server(server, args: BenchCollectArguments, report: dict):
    """Start ``server`` and return the api backend on it, warmed up with one request (``RuntimeError`` if
    the server exits or never answers)."""
    from generation import build_backend

    t0 = time.perf_counter()
    server.__enter__()
    report["server"]["start_s"] = round(time.perf_counter() - t0, 1)
    api = build_backend("api", api_base=server.base_url, api_model=server.alias,
                        max_concurrency=args.server_parallel, timeout=600.0, show_progress=False)
    api.generate([[{"role": "user", "content": "Say hi."}]], SamplingConfig(temperature=0.0, max_new_tokens=4))
    api.stats = BackendStats()
    return api


def load_backends(ctx: JobContext, report: dict, warm_generate: bool) -> None:
    """Load the one-process model and start the worker pools before any clock runs (``warm_generate``: the
    model.generate() pool too); their layout and start-up seconds go to ``report``."""
    import torch

    t0 = time.perf_counter()
    ctx.hf_1proc.load()
    report["hf_dtype"] = str(ctx.hf_1proc.model.dtype)
    report["load_1proc_s"] = round(time.perf_counter() - t0, 1)
    workers, ctx.batch = ctx.hf_default.num_workers(), ctx.hf_default.batch_size
    ctx.full_batch = workers * ctx.batch
    report.update(workers=workers, batch_size=ctx.batch, full_batch=ctx.full_batch)
    report["pool_start_s"] = round(warm_up(ctx.hf_default, workers), 1)
    if warm_generate:
        report["pool_start_generate_s"] = round(warm_up(ctx.hf_generate, workers), 1)
    logger.info("collector backend: %d worker process(es) x 1 thread, batch %d, %s; one-process layout: %d torch "
                "threads", workers, ctx.batch, report["hf_dtype"], torch.get_num_threads())


def run_blocks(args: BenchCollectArguments, ctx: JobContext, jobs: list[str], conditions: list[str], report: dict,
               results_path: Path, load) -> None:
    """Each round's blocks (idle, then loaded beside ``load``), each job of a block in turn; every run is
    appended to ``report['runs']`` and written at once."""
    from tqdm.auto import tqdm

    blocks = [(rnd, cond) for rnd in range(args.rounds) for cond in conditions]
    bar = tqdm(total=len(blocks) * len(jobs), desc="bench_collect jobs")
    for rnd, cond in blocks:
        if cond == "loaded":
            load.start()
        budget = args.loaded_budget_s if cond == "loaded" else args.idle_budget_s
        try:
            for job in jobs:
                deadline = time.monotonic() + budget if budget > 0 and job in ctx.budget_jobs else None
                res = run_job(job, ctx, deadline)
                res.update(round=rnd, condition=cond, job=job, load_average=load_average())
                report["runs"].append(res)
                atomic_write_json(results_path, report)
                bar.update(1)
                logger.info("%s %s round %d: %s, %.0f s, %s gen tok/s%s", cond, job, rnd, res.get("status"),
                            res.get("seconds") or 0, f"{res['gen_tok_s']:.1f}" if res.get("gen_tok_s") else "-",
                            f", {res['qa_rows']} QA rows" if res.get("qa_rows") is not None else "")
        finally:
            if cond == "loaded":
                load.stop()
                report["background_load"].setdefault("cpu_share_per_block", []).append(load.cpu_share)
                shares = [s for s in report["background_load"]["cpu_share_per_block"] if s is not None]
                report["background_load"]["cpu_share"] = round(statistics.mean(shares), 2) if shares else None
    bar.close()
