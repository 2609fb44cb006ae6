"""Collection throughput at the scale where batching matters, idle and under a one-core background load.

    python -m benchmarks.bench_collect                     # 12 documents, idle + loaded: hours ((a): 35 min on 6 idle)
    python -m benchmarks.bench_collect --quick             # 2 documents, fewer prompts per stage: ~20 min
    python -m benchmarks.bench_collect -- --batch_size 16  # flags after -- go to the collector
    python -m utils.llama_server                           # builds llama-server once (~10-15 min on 2 cores)

Corpus: --num_docs documents built in <output_dir>/docs from the sample folders, each source repeated
under another name with its fictional names changed per copy (benchmarks/collect_corpus.py), so every
stage gets enough prompts to fill its batches and no prompt repeats another document's.

The same documents go through the same collector code (``data_processor.pipeline.run_collection``: same
prompts, parsing, repairs, caps), with a fresh reply cache per run, three ways:
  (a) sequential      one process, one ``generate`` call per prompt, in order (the original toolkit's loop;
                      torch's own threads, or --threads)
  (b) collector       the hf backend exactly as the collector builds it by default
                      (``build_backend("hf", **CollectConfig.backend_kwargs())``: on a CPU one worker process
                      per core with one torch thread each, continuous batching in --batch_size slots)
  (c) llama_server    the api backend against llama.cpp's C++ ``llama-server`` on the default model's GGUF,
                      with --server_parallel slots and continuous batching, and as many requests in flight
  collector_generate  (optional) (b) with ``model.generate`` on whole batches instead of continuous batching
  collector_1proc     (optional) (b) in one process with torch's threads and ``model.generate``: the layout
                      before worker processes
Every reply is generated, never read from a cache; backends are loaded (and worker pools started) before
the clock starts, so the figures are steady-state throughput.

Alongside, in the same run:
  model_workers / model_inproc   the bare model's own batched ``model.generate()`` on (b)'s prompts (one full
      batch per worker of each stage's first prompts, the stage's own sampling), through (b)'s worker
      layout and in one process: the same batch size and dtype, without stages, parsing, repairs or cache.
      (b)'s ratio to it weights each stage by (b)'s own tokens.
  replay_default / replay_1proc  ``replay.build.build_replay`` on --replay_prompts prompts (batch 16, greedy)
  eval_default / eval_1proc      greedy answers to the questions of --eval_qa (batch 32), as evaluate.py asks
All of it runs --rounds times, each round idle and then with a busy-loop process pinned to one core
(benchmarks/background_load.py). Ratios are formed within a round, then averaged. Every measurement goes
to <output_dir>/results.json as soon as it is made (an interrupted run keeps what it measured). The
ratio table, each target with its measured value and PASS/MISS, is printed last, with a note giving the
measured reason for each MISS.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data_processor.backends.base import BackendError, BackendStats, LLMBackend, SamplingConfig
from utils.flops import load_average
from utils.io_utils import atomic_write_json
from utils.tables import format_table

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench_collect")

COLLECTION = ("sequential", "collector", "collector_generate", "llama_server", "collector_1proc")
REFERENCES = ("model_workers", "model_inproc")
WORKLOADS = ("replay_default", "replay_1proc", "eval_default", "eval_1proc")
KIND = {**{j: "collection" for j in COLLECTION}, **{j: "reference" for j in REFERENCES},
        "replay_default": "replay", "replay_1proc": "replay", "eval_default": "eval", "eval_1proc": "eval"}
CONDITIONS = ("idle", "loaded")
# Jobs that run several threads in one process (torch's, or llama-server's): beside a busy core they can
# nearly stall, so only they get the time budget by default.
BUDGET_JOBS = ("sequential", "collector_1proc", "llama_server", "model_inproc", "replay_1proc", "eval_1proc")
# --quick: fewer prompts per stage, still every stage of the pipeline.
QUICK_COLLECT_ARGS = ["--max_facts_per_chunk", "4", "--qa_amount_per_fact", "1", "--personas_per_document", "1"]
REPLAY_BATCH, EVAL_BATCH = 16, 32  # build_replay's and evaluate.py's defaults


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
        "help": "llama-server executable (default: the cached build of python -m utils.llama_server)."})
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
        BenchCollectArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
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


def block_jobs(variants: list[str], references: bool, workloads: bool) -> list[str]:
    """The jobs of one (round, condition) block, in order: the collection variants ((b) before the
    references, which replay (b)'s prompts), then the references, then replay and evaluation."""
    jobs = [v for v in COLLECTION if v in variants]
    return jobs + (list(REFERENCES) if references else []) + (list(WORKLOADS) if workloads else [])


# -- the measuring wrapper ------------------------------------------------------------------------------
class BudgetExceeded(RuntimeError):
    """A job ran past its time budget (raised before the next generate() call)."""


def stage_of(desc: str) -> str:
    """A generate() label's stage: ``facts-repair1`` -> ``facts``."""
    return desc.split("-repair")[0]


class BenchBackend(LLMBackend):
    """Wraps a loaded backend for one measured job.

    ``sequential=True`` sends the prompts one ``generate`` call at a time, in order (the unbatched
    baseline); otherwise the whole list goes through as the caller sends it. ``close()`` leaves the
    wrapped model loaded (the pipeline closes its backend when a run ends; the next job reuses the
    weights and worker processes), and ``stats`` count this job only.

    Args:
        batch_size: the wrapped hf backend's batch size during this job's calls (restored after).
        deadline: a ``time.monotonic()`` after which the next generate() call raises :class:`BudgetExceeded`.
        keep_prompts: keep each stage's first ``keep_prompts`` prompts (and its sampling) in ``kept``
            (repair rounds excluded), for the bare-model reference.
        per_batch: send the prompts one batch (``batch_size``, else the wrapped backend's) per ``generate``
            call, so a deadline can stop a budgeted hf job between batches (a one-process ``model.generate``
            backend decodes batch by batch anyway; the prompts are then sorted by length within a batch only).
    ``calls`` logs one entry per call: stage label, prompts, seconds, completion tokens.
    """

    def __init__(self, inner: LLMBackend, *, sequential: bool, batch_size: int | None = None,
                 deadline: float | None = None, keep_prompts: int = 0, per_batch: bool = False):
        super().__init__()
        self.inner, self.sequential, self.per_batch = inner, sequential, per_batch
        self.model_id = inner.model_id
        self.batch_size, self.deadline, self.keep_prompts = batch_size, deadline, keep_prompts
        self.generate_calls = 0
        self.calls: list[dict] = []
        self.kept: dict[str, tuple[list, SamplingConfig]] = {}

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded("time budget spent")

    @contextmanager
    def _inner_batch_size(self):
        old = getattr(self.inner, "batch_size", None)
        if self.batch_size is not None and old is not None:
            self.inner.batch_size = self.batch_size
        try:
            yield
        finally:
            if self.batch_size is not None and old is not None:
                self.inner.batch_size = old

    @contextmanager
    def _inner_time_limit(self):
        """With a deadline, an api backend's requests end at it and are not retried: a server that nearly
        stalls (llama-server's threads beside a busy core) cannot hold a budgeted job for timeout x retries."""
        inner = self.inner
        if self.deadline is None or not hasattr(inner, "max_retries") or not hasattr(inner, "client"):
            yield
            return
        inner.load()
        old_client, old_retries = inner.client, inner.max_retries
        inner.client = old_client.with_options(timeout=max(1.0, self.deadline - time.monotonic()))
        inner.max_retries = 0
        try:
            yield
        finally:
            inner.client, inner.max_retries = old_client, old_retries

    def generate(self, chats, sampling, *, on_result=None, desc="generate"):
        self._check_deadline()
        if self.keep_prompts and "-repair" not in desc and desc not in self.kept:
            self.kept[desc] = (list(chats[: self.keep_prompts]), sampling)
        before = BackendStats(**vars(self.inner.stats))
        t0, out = time.perf_counter(), []
        try:
            with self._inner_batch_size():
                if self.sequential or self.per_batch:  # one prompt, or one batch, per call
                    step = 1 if self.sequential else (self.batch_size or getattr(self.inner, "batch_size", None)
                                                      or len(chats) or 1)
                    for k in range(0, len(chats), step):
                        if k:
                            self._check_deadline()
                        part_result = None if on_result is None else (lambda i, t, k=k: on_result(k + i, t))
                        out.extend(self.inner.generate(chats[k: k + step], sampling, on_result=part_result, desc=desc))
                        self.generate_calls += 1
                else:
                    with self._inner_time_limit():
                        out = self.inner.generate(chats, sampling, on_result=on_result, desc=desc)
                    self.generate_calls += 1
        except BackendError as exc:
            if self.deadline is not None and time.monotonic() >= self.deadline:  # a request cut at the deadline
                raise BudgetExceeded("time budget spent during a call") from exc
            raise
        finally:  # a call cut short by the budget still counts what it did
            after = self.inner.stats
            for name in ("calls", "prompt_tokens", "completion_tokens", "seconds"):
                setattr(self.stats, name, getattr(self.stats, name) + getattr(after, name) - getattr(before, name))
            self.calls.append({"desc": desc, "prompts": len(out) if self.sequential or self.per_batch else len(chats),
                               "seconds": round(time.perf_counter() - t0, 3),
                               "completion_tokens": after.completion_tokens - before.completion_tokens,
                               "max_new_tokens": sampling.max_new_tokens})
        return out

    def close(self) -> None:
        """Keep the wrapped backend open for the next job (closed once by the benchmark)."""


def stage_breakdown(calls: list[dict], full_batch: int | None = None) -> dict:
    """Per stage (repairs counted with their stage): calls, prompts, generate() seconds, tokens, tok/s;
    with ``full_batch``, also the calls with fewer prompts than one full batch per worker and their seconds."""
    out: dict[str, dict] = {}
    for c in calls:
        s = out.setdefault(stage_of(c["desc"]), {"calls": 0, "prompts": 0, "seconds": 0.0, "completion_tokens": 0,
                                                 "underfilled_calls": 0, "underfilled_seconds": 0.0})
        s["calls"] += 1
        s["prompts"] += c["prompts"]
        s["seconds"] += c["seconds"]
        s["completion_tokens"] += c["completion_tokens"]
        if full_batch and c["prompts"] < full_batch:
            s["underfilled_calls"] += 1
            s["underfilled_seconds"] += c["seconds"]
    for s in out.values():
        s["seconds"] = round(s["seconds"], 3)
        s["underfilled_seconds"] = round(s["underfilled_seconds"], 3)
        s["tok_s"] = s["completion_tokens"] / s["seconds"] if s["seconds"] > 0 else None
    return out


def weighted_reference_tok_s(run_stages: dict, ref_stages: dict) -> tuple[float | None, float]:
    """The bare model's tok/s over a run's own token mix: ``sum(T_s) / sum(T_s / ref_s)`` over the stages
    both measured (each stage's tokens at the reference's rate for that stage); also the share of the
    run's tokens those stages cover."""
    total = sum(s["completion_tokens"] for s in run_stages.values())
    tokens = seconds = 0.0
    for name, s in run_stages.items():
        ref = ref_stages.get(name) or {}
        if s["completion_tokens"] > 0 and ref.get("tok_s"):
            tokens += s["completion_tokens"]
            seconds += s["completion_tokens"] / ref["tok_s"]
    if not seconds:
        return None, 0.0
    return tokens / seconds, tokens / total if total else 0.0


# -- the jobs ---------------------------------------------------------------------------------------------
def run_collection_job(job: str, backend: BenchBackend, docs_dir: Path, run_dir: Path, collect_args: list[str],
                       counter, full_batch: int | None = None) -> dict:
    """One collection run into a fresh ``run_dir``; its throughput figures (``status`` ``budget`` when the
    time budget stopped it: tok/s cover the part done, QA/min is not comparable and left out)."""
    from data_processor.config import parse_args as parse_collect_args
    from data_processor.pipeline import run_collection

    if run_dir.exists():
        shutil.rmtree(run_dir)  # a fresh reply cache: every reply is generated in this run
    run_dir.mkdir(parents=True)
    cfg = parse_collect_args(["--data_path", str(docs_dir), "--save_path", str(run_dir / "qa.jsonl"), "--overwrite",
                              "True", "--model_type", "api" if job == "llama_server" else "hf", *collect_args])
    t0 = time.perf_counter()
    summary, status = None, "complete"
    try:
        summary = run_collection(cfg, backend=backend, counter=counter)
    except BudgetExceeded:
        status = "budget"
    seconds = time.perf_counter() - t0
    gen_seconds = sum(c["seconds"] for c in backend.calls)
    tokens = backend.stats.completion_tokens
    res = {"kind": "collection", "status": status, "seconds": round(seconds, 2),
           "completion_tokens": tokens, "prompt_tokens": backend.stats.prompt_tokens,
           "llm_calls": backend.stats.calls, "generate_calls": backend.generate_calls,
           "gen_tok_s": tokens / seconds if seconds > 0 else None,
           "gen_seconds": round(gen_seconds, 2), "outside_seconds": round(seconds - gen_seconds, 2),
           "full_batch": full_batch, "per_stage": stage_breakdown(backend.calls, full_batch)}
    if summary is not None:
        res.update(qa_rows=summary.qa_written, chunks=summary.chunks, llm_calls=summary.llm_calls,
                   facts=summary.stages.get("facts", {}).get("facts", 0), qa_per_min=60 * summary.qa_written / seconds)
    else:
        res.update(qa_rows=None, qa_per_min=None)
    return res


def run_reference_job(backend: BenchBackend, kept: dict[str, tuple[list, SamplingConfig]]) -> dict:
    """The bare model's batched generate() on each kept stage's prompts (one call per stage)."""
    per_stage, status = {}, "complete"
    t_all = time.perf_counter()
    try:
        for desc, (chats, sampling) in kept.items():
            before = backend.stats.completion_tokens
            t0 = time.perf_counter()
            backend.generate(chats, sampling, desc=f"reference:{desc}")
            dt = time.perf_counter() - t0
            tokens = backend.stats.completion_tokens - before
            per_stage[stage_of(desc)] = {"prompts": len(chats), "seconds": round(dt, 3), "completion_tokens": tokens,
                                         "max_new_tokens": sampling.max_new_tokens,
                                         "tok_s": tokens / dt if dt > 0 else None}
    except BudgetExceeded:
        status = "budget"  # the stages measured so far stand
    seconds = time.perf_counter() - t_all
    tokens = backend.stats.completion_tokens
    return {"kind": "reference", "status": status, "seconds": round(seconds, 2), "completion_tokens": tokens,
            "prompts": sum(s["prompts"] for s in per_stage.values()),
            "gen_tok_s": tokens / seconds if seconds > 0 else None, "per_stage": per_stage}


def run_replay_job(backend: BenchBackend, model: str, prompts_file: Path, run_dir: Path, new_tokens: int) -> dict:
    """``build_replay`` into a fresh folder (so it generates), through ``backend``."""
    from replay.build import build_replay

    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    t0, status, rows = time.perf_counter(), "complete", None
    try:
        out = build_replay(model, prompts_file, run_dir / "replay.jsonl", max_new_tokens=new_tokens,
                           batch_size=REPLAY_BATCH, backend=backend)
        rows = len(Path(out).read_text(encoding="utf-8").splitlines())
    except BudgetExceeded:
        status = "budget"  # tok/s of the batches done
    seconds = time.perf_counter() - t0
    tokens = backend.stats.completion_tokens
    return {"kind": "replay", "status": status, "seconds": round(seconds, 2), "completion_tokens": tokens,
            "prompts": backend.stats.calls, "rows": rows, "gen_tok_s": tokens / seconds if seconds > 0 else None}


def run_eval_job(backend: BenchBackend, questions: list[str], new_tokens: int) -> dict:
    """Greedy replies to ``questions``, one user turn each, as evaluate.py asks them."""
    chats = [[{"role": "user", "content": q}] for q in questions]
    t0, status = time.perf_counter(), "complete"
    try:
        backend.generate(chats, SamplingConfig(temperature=0.0, max_new_tokens=new_tokens), desc="evaluation")
    except BudgetExceeded:
        status = "budget"  # tok/s of the batches done
    seconds = time.perf_counter() - t0
    tokens = backend.stats.completion_tokens
    return {"kind": "eval", "status": status, "seconds": round(seconds, 2), "completion_tokens": tokens,
            "prompts": backend.stats.calls, "gen_tok_s": tokens / seconds if seconds > 0 else None}


# -- ratios and targets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    """``num``/``den`` of ``metric``, per round: both in ``condition``, or ``den`` in ``den_condition``.
    ``weighted``: ``den`` is a reference, weighted by ``num``'s stage mix (:func:`weighted_reference_tok_s`)."""

    key: str
    label: str
    num: str
    den: str
    metric: str = "gen_tok_s"
    condition: str = "idle"
    den_condition: str | None = None
    target: float | None = None
    weighted: bool = False


RATIOS = (
    Ratio("b_over_a_qa", "collection (b)/(a) QA rows/min, idle", "collector", "sequential", "qa_per_min", target=4.0),
    Ratio("b_over_a_tok", "collection (b)/(a) generated tok/s, idle", "collector", "sequential"),
    Ratio("b_over_generate_qa", "collection (b)/(b with model.generate) QA rows/min, idle", "collector",
          "collector_generate", "qa_per_min"),
    Ratio("b_over_generate_tok", "collection (b)/(b with model.generate) generated tok/s, idle", "collector",
          "collector_generate"),
    Ratio("b_over_c_tok", "(b)/(c) llama-server generated tok/s, idle", "collector", "llama_server", target=1.0),
    Ratio("b_over_c_qa", "(b)/(c) llama-server QA rows/min, idle", "collector", "llama_server", "qa_per_min"),
    Ratio("b_over_model_workers", "(b) / bare model generate(), same worker layout, batch, dtype: tok/s, idle",
          "collector", "model_workers", target=0.70, weighted=True),
    Ratio("b_over_model_inproc", "(b) / bare model generate() in one process, same batch, dtype: tok/s, idle",
          "collector", "model_inproc", weighted=True),
    Ratio("b_loaded_qa", "collection (b) loaded/idle QA rows/min", "collector", "collector", "qa_per_min",
          "loaded", "idle", target=0.5),
    Ratio("b_loaded_tok", "collection (b) loaded/idle generated tok/s", "collector", "collector", condition="loaded",
          den_condition="idle"),
    Ratio("replay_default_loaded", "replay, default layout, loaded/idle tok/s", "replay_default", "replay_default",
          condition="loaded", den_condition="idle", target=0.5),
    Ratio("eval_default_loaded", "evaluation, default layout, loaded/idle tok/s", "eval_default", "eval_default",
          condition="loaded", den_condition="idle", target=0.5),
    Ratio("replay_1proc_loaded", "replay, one process x torch threads, loaded/idle tok/s", "replay_1proc",
          "replay_1proc", condition="loaded", den_condition="idle"),
    Ratio("eval_1proc_loaded", "evaluation, one process x torch threads, loaded/idle tok/s", "eval_1proc",
          "eval_1proc", condition="loaded", den_condition="idle"),
    Ratio("collector_1proc_loaded", "collection, (b) in one process, loaded/idle tok/s", "collector_1proc",
          "collector_1proc", condition="loaded", den_condition="idle"),
    Ratio("a_loaded_tok", "collection (a) loaded/idle generated tok/s", "sequential", "sequential",
          condition="loaded", den_condition="idle"),
    Ratio("c_loaded_tok", "collection (c) loaded/idle generated tok/s", "llama_server", "llama_server",
          condition="loaded", den_condition="idle"),
    Ratio("model_workers_loaded", "bare model, worker layout, loaded/idle tok/s", "model_workers", "model_workers",
          condition="loaded", den_condition="idle"),
    Ratio("model_inproc_loaded", "bare model, one process, loaded/idle tok/s", "model_inproc", "model_inproc",
          condition="loaded", den_condition="idle"),
    Ratio("b_over_a_qa_loaded", "collection (b)/(a) QA rows/min, loaded", "collector", "sequential", "qa_per_min",
          "loaded"),
)


def index_runs(runs: list[dict]) -> dict[tuple[int, str, str], dict]:
    """``(round, condition, job) -> run`` for the runs that finished (complete or stopped at budget)."""
    return {(r["round"], r["condition"], r["job"]): r for r in runs if r.get("status") in ("complete", "budget")}


def ratio_values(runs: list[dict], spec: Ratio) -> list[float]:
    """The ratio in each round where both sides were measured."""
    idx = index_runs(runs)
    values = []
    for rnd in sorted({r["round"] for r in runs}):
        num = idx.get((rnd, spec.condition, spec.num))
        den = idx.get((rnd, spec.den_condition or spec.condition, spec.den))
        if num is None or den is None or num.get(spec.metric) is None:
            continue
        if spec.weighted:
            den_value, _ = weighted_reference_tok_s(num.get("per_stage", {}), den.get("per_stage", {}))
        else:
            den_value = den.get(spec.metric)
        if den_value:
            values.append(num[spec.metric] / den_value)
    return values


def summarise(runs: list[dict]) -> dict:
    """Per (condition, job): medians of the figures; per ratio: per-round values, mean, target and verdict."""
    out: dict = {"jobs": {}, "ratios": {}}
    for cond in dict.fromkeys(r["condition"] for r in runs):
        for job in dict.fromkeys(r["job"] for r in runs if r["condition"] == cond):
            done = [r for r in runs if r["condition"] == cond and r["job"] == job and r.get("status") in ("complete", "budget")]
            if not done:
                last = [r for r in runs if r["condition"] == cond and r["job"] == job][-1]
                out["jobs"].setdefault(cond, {})[job] = {"status": last.get("status", "failed")}
                continue
            fig = {"status": ",".join(sorted({r["status"] for r in done})), "rounds": len(done)}
            for k in ("gen_tok_s", "qa_per_min", "qa_rows", "llm_calls", "seconds", "completion_tokens",
                      "gen_seconds", "outside_seconds", "prompts"):
                vals = [r[k] for r in done if r.get(k) is not None]
                if vals:
                    fig[k] = statistics.median(vals)
            out["jobs"].setdefault(cond, {})[job] = fig
    for spec in RATIOS:
        values = ratio_values(runs, spec)
        if not values and spec.target is None:
            continue
        mean = statistics.mean(values) if values else None
        verdict = "info" if spec.target is None else ("not measured" if mean is None else
                                                      ("PASS" if mean >= spec.target else "MISS"))
        out["ratios"][spec.key] = {"label": spec.label, "values": values, "mean": mean, "target": spec.target,
                                   "result": verdict}
    return out


def ratio_table(summary: dict) -> str:
    rows = []
    for r in summary["ratios"].values():
        per_round = ", ".join(f"{v:.2f}" for v in r["values"]) if len(r["values"]) > 1 else ""
        rows.append([r["label"], "-" if r["mean"] is None else f"{r['mean']:.2f}", per_round,
                     "" if r["target"] is None else f">= {r['target']:g}", r["result"]])
    return format_table(["ratio", "measured", "per round", "target", "result"], rows, align="lrrll")


def jobs_table(summary: dict, condition: str) -> str:
    header = ["job", "status", "QA rows", "QA/min", "gen tok/s", "prompts sent", "in generate s", "outside s", "seconds"]

    def f(d, k, fmt):
        return "-" if d.get(k) is None else format(d[k], fmt)

    rows = [[job, d.get("status", ""), f(d, "qa_rows", ".0f"), f(d, "qa_per_min", ".1f"), f(d, "gen_tok_s", ".1f"),
             f(d, "llm_calls", ".0f") if KIND.get(job) == "collection" else f(d, "prompts", ".0f"),
             f(d, "gen_seconds", ".0f"), f(d, "outside_seconds", ".0f"), f(d, "seconds", ".0f")]
            for job, d in summary["jobs"].get(condition, {}).items()]
    return format_table(header, rows, align="llrrrrrrr")


def breakdown_table(b_run: dict, ref_run: dict | None) -> str:
    """(b)'s stages against the bare model's rate on the same stage's prompts."""
    rows = []
    for stage, s in b_run["per_stage"].items():
        ref = (ref_run or {}).get("per_stage", {}).get(stage, {})
        rows.append([stage, str(s["prompts"]), str(s["calls"]), f"{s['seconds']:.1f}", str(s["completion_tokens"]),
                     "-" if s["tok_s"] is None else f"{s['tok_s']:.1f}",
                     f"{ref['tok_s']:.1f}" if ref.get("tok_s") else "-",
                     f"{s['tok_s'] / ref['tok_s']:.2f}" if ref.get("tok_s") and s["tok_s"] else "-",
                     f"{s['underfilled_calls']} / {s['underfilled_seconds']:.1f}"])
    return format_table(["stage", "prompts", "calls", "generate s", "tokens", "tok/s (b)", "tok/s bare model",
                         "(b)/bare", "calls under a full batch / s"], rows, align="lrrrrrrrr")


def stage_speedups(a_stages: dict, b_stages: dict, target: float) -> str:
    """Each stage's (a) seconds over (b) seconds, and the stage whose (b) seconds exceed (a)'s / ``target``
    by the most."""
    both = {k: (a_stages[k]["seconds"], v["seconds"]) for k, v in b_stages.items()
            if k in a_stages and v.get("seconds") and a_stages[k].get("seconds")}
    if not both:
        return ""
    worst = max(both, key=lambda k: both[k][1] - both[k][0] / target)
    sa, sb = both[worst]
    return (" Per stage, (a)'s generate() seconds over (b)'s: "
            + ", ".join(f"{k} {a / b:.1f}x" for k, (a, b) in both.items())
            + f"; {worst} is furthest from {target:g}x: {sb:.0f} s where {target:g}x would need {sa / target:.0f} s.")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def miss_notes(report: dict, summary: dict) -> list[str]:
    """For each target missed, what stands in the way, in measured figures (round 0 where one run is needed)."""
    idx = index_runs(report["runs"])
    jobs = summary["jobs"]
    notes = []

    def run(cond, job):
        return idx.get((0, cond, job))

    def tok(cond, job):
        return (jobs.get(cond, {}).get(job) or {}).get("gen_tok_s")

    for key, r in summary["ratios"].items():
        if r["result"] != "MISS":
            continue
        if key == "b_over_a_qa":
            gain = (tok("idle", "model_workers") or 0) / (tok("idle", "sequential") or float("inf"))
            b, a = run("idle", "collector") or {}, run("idle", "sequential") or {}
            notes.append(f"{r['label']}: (b) got {tok('idle', 'collector') or 0:.1f} tok/s vs (a) "
                         f"{tok('idle', 'sequential') or 0:.1f}; the bare model.generate() on (b)'s prompts through "
                         f"the worker layout makes {gain:.1f}x the tokens/s of (a)'s one-prompt calls; "
                         f"QA rows (a) {a.get('qa_rows')} vs (b) {b.get('qa_rows')}."
                         + stage_speedups(a.get("per_stage") or {}, b.get("per_stage") or {}, r["target"]))
        elif key == "b_over_c_tok":
            c = report.get("server", {})
            notes.append(f"{r['label']}: llama-server ({c.get('parallel')} slots, {c.get('threads')} threads, "
                         f"{Path(c.get('gguf', '?')).name}) {tok('idle', 'llama_server') or 0:.1f} tok/s; the bare hf "
                         f"model ({report.get('hf_dtype')}) on (b)'s prompts through the worker layout "
                         f"{tok('idle', 'model_workers') or 0:.1f} tok/s"
                         + (" - the model itself, not the pipeline, is slower than llama.cpp here."
                            if (tok("idle", "model_workers") or 0) < (tok("idle", "llama_server") or 0) else "."))
        elif key == "b_over_model_workers":
            b, ref = run("idle", "collector"), run("idle", "model_workers")
            if b:
                gen_tok_s = b["completion_tokens"] / b["gen_seconds"] if b.get("gen_seconds") else 0
                ref_tok_s, cover = weighted_reference_tok_s(b["per_stage"], (ref or {}).get("per_stage", {}))
                under = sum(s["underfilled_seconds"] for s in b["per_stage"].values())
                notes.append(f"{r['label']}: (b) spent {b['outside_seconds']:.0f} s of {b['seconds']:.0f} s "
                             f"({_pct(b['outside_seconds'] / b['seconds'])}) outside generate() (stages, parsing, "
                             f"repairs, cache, writing); inside generate() it made {gen_tok_s:.1f} tok/s"
                             + (f" = {_pct(gen_tok_s / ref_tok_s)} of the bare model's {ref_tok_s:.1f} "
                                f"(stages covering {_pct(cover)} of its tokens)" if ref_tok_s else "")
                             + f"; generate() calls with fewer prompts than one full batch per worker "
                             f"({b.get('full_batch')}) took {under:.0f} s of {b['gen_seconds']:.0f} s.")
        elif key in ("b_loaded_qa", "replay_default_loaded", "eval_default_loaded"):
            job = {"b_loaded_qa": "collector", "replay_default_loaded": "replay_default",
                   "eval_default_loaded": "eval_default"}[key]
            ref = summary["ratios"].get("model_workers_loaded", {}).get("mean")
            old = summary["ratios"].get({"collector": "collector_1proc_loaded", "replay_default": "replay_1proc_loaded",
                                         "eval_default": "eval_1proc_loaded"}[job], {}).get("mean")
            load = report.get("background_load", {})
            notes.append(f"{r['label']}: the busy loop held {load.get('cpu_share', '?')} of a core (cpu "
                         f"{load.get('cpu')}); {job} {tok('idle', job) or 0:.1f} -> {tok('loaded', job) or 0:.1f} tok/s"
                         + (f"; the bare model through the same worker layout kept {_pct(ref)}" if ref else "")
                         + (f"; one process x torch threads kept {_pct(old)}" if old else "") + ".")
    return notes


# -- main ---------------------------------------------------------------------------------------------------
def _read_questions(path: str, n: int) -> list[str]:
    qs = [json.loads(line)["question"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return qs[:n] if n > 0 else qs


def _warm_up(backend, workers: int) -> float:
    """Start the worker processes (each loads the model) before any clock runs; returns the seconds it took."""
    t0 = time.perf_counter()
    old, backend.batch_size = backend.batch_size, 1
    try:
        for _ in range(2):  # twice: a worker still loading during the first call gets work in the second
            backend.generate([[{"role": "user", "content": f"Say {i}."}] for i in range(2 * workers)],
                             SamplingConfig(temperature=0.0, max_new_tokens=4), desc="warm-up")
    finally:
        backend.batch_size = old
    backend.stats = BackendStats()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return reprint(Path(args.report))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    try:
        variants, conditions = selected(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch
    from transformers import AutoTokenizer

    from benchmarks.background_load import BackgroundLoad, default_load_cpu
    from benchmarks.collect_corpus import build_corpus, common_word_test
    from data_processor.backends import build_backend
    from data_processor.config import parse_args as parse_collect_args
    from data_processor.stages.step2_chunk import HFTokenCounter
    from replay.build import read_prompts
    from utils.default_model import default_gguf_path, resolve_model_path
    from utils.llama_server import LlamaCppServer, ensure_llama_server, find_llama_server

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.json"
    base_cfg = parse_collect_args(["--model_name_or_path", args.model_name_or_path, *args.collect_args])
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.model_name_or_path))
    # Chunks are measured with the generator's tokenizer in every variant, so all see the same chunks.
    counter = HFTokenCounter(tokenizer)
    corpus = build_corpus(args.data_path, args.num_docs, out_dir / "docs", is_common=common_word_test(tokenizer))
    replay_file = out_dir / "replay_prompts.txt"
    replay_file.write_text("\n".join(read_prompts(args.replay_prompts_file)[: args.replay_prompts]) + "\n")
    questions = _read_questions(args.eval_qa, args.eval_questions)
    jobs = block_jobs(variants, args.references, args.workloads)
    torch_threads = torch.get_num_threads()  # restored at the end (tests run main() in their own process)
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"args": asdict(args), "jobs": jobs, "conditions": conditions, "load_before": load_average(),
                    "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None},
                    "corpus": corpus, "collector_flags": args.collect_args, "runs": []}
    atomic_write_json(results_path, report)

    binary = None
    if "llama_server" in variants:  # before anything is measured: a build takes minutes
        try:
            binary = args.server_binary or find_llama_server() or (ensure_llama_server() if args.build_server else None)
        except (RuntimeError, FileNotFoundError) as exc:
            print(f"error: could not build llama-server: {exc}", file=sys.stderr)
            return 2
        if binary is None:
            print("error: no llama-server built and --build_server False: build it with python -m utils.llama_server, "
                  "or drop llama_server from --variants", file=sys.stderr)
            return 2

    kw = {**base_cfg.backend_kwargs(), "show_progress": False}
    hf_default = build_backend("hf", **kw)  # (b): exactly the collector's default backend
    # (b)'s worker layout with model.generate(): collector_generate and the bare-model reference
    hf_generate = build_backend("hf", **{**kw, "decode": "generate"})
    hf_1proc = build_backend("hf", **{**kw, "workers": "1", "decode": "generate"})  # one process, torch's threads
    server = api = None
    load = BackgroundLoad(default_load_cpu() if args.load_cpu == -2 else args.load_cpu)
    report["background_load"] = {"cpu": load.cpu}
    kept: dict = {}
    interrupted = False
    # SIGTERM (kill, a job scheduler) stops like Ctrl+C: the servers and workers are stopped, the report printed.
    on_term = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() else None
    try:  # from here on, whatever happens, the server, the workers and the busy loop are stopped
        if binary is not None:
            threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
            gguf = args.gguf or str(default_gguf_path())
            server = LlamaCppServer(gguf, out_dir / "llama_server.log", binary=binary, parallel=args.server_parallel,
                                    threads=threads, n_ctx=args.server_ctx)
            report["server"] = {"binary": str(binary), "gguf": gguf, "parallel": args.server_parallel, "threads": threads,
                                "command": server.command()}
            t0 = time.perf_counter()
            try:
                server.__enter__()
            except RuntimeError as exc:  # it exited or never answered: the log says why
                report["status"] = f"llama-server failed: {exc}"
                atomic_write_json(results_path, report)
                print(f"error: {exc}", file=sys.stderr)
                return 2
            report["server"]["start_s"] = round(time.perf_counter() - t0, 1)
            api = build_backend("api", api_base=server.base_url, api_model=server.alias,
                                max_concurrency=args.server_parallel, timeout=600.0, show_progress=False)
            api.generate([[{"role": "user", "content": "Say hi."}]], SamplingConfig(temperature=0.0, max_new_tokens=4))
            api.stats = BackendStats()
        t0 = time.perf_counter()
        hf_1proc.load()
        report["hf_dtype"] = str(hf_1proc.model.dtype)
        report["load_1proc_s"] = round(time.perf_counter() - t0, 1)
        workers, batch = hf_default.num_workers(), hf_default.batch_size
        full_batch = workers * batch
        report.update(workers=workers, batch_size=batch, full_batch=full_batch)
        report["pool_start_s"] = round(_warm_up(hf_default, workers), 1)
        if "collector_generate" in variants or args.references:
            report["pool_start_generate_s"] = round(_warm_up(hf_generate, workers), 1)
        logger.info("collector backend: %d worker process(es) x 1 thread, batch %d, %s; one-process layout: %d torch "
                    "threads", workers, batch, report["hf_dtype"], torch.get_num_threads())
        atomic_write_json(results_path, report)
        from tqdm.auto import tqdm

        blocks = [(rnd, cond) for rnd in range(args.rounds) for cond in conditions]
        budgeted = set(budget_jobs(args))
        bar = tqdm(total=len(blocks) * len(jobs), desc="bench_collect jobs")
        for rnd, cond in blocks:
            if cond == "loaded":
                load.start()
            budget = args.loaded_budget_s if cond == "loaded" else args.idle_budget_s
            try:
                for job in jobs:
                    deadline = time.monotonic() + budget if budget > 0 and job in budgeted else None
                    res = _run_job(job, args, (hf_default, hf_generate, hf_1proc), api, kept, deadline, out_dir,
                                   counter, full_batch, batch, replay_file, questions)
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
    except KeyboardInterrupt:
        interrupted = True
        logger.warning("interrupted: the figures measured so far follow")
    finally:
        load.stop()
        if server is not None:
            server.__exit__(None, None, None)
        if api is not None:
            api.close()
        hf_default.close()
        hf_generate.close()
        hf_1proc.close()
        torch.set_num_threads(torch_threads)
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


def reprint(results_path: Path) -> int:
    """The report of a results.json written by an earlier run, finished or not."""
    try:
        report = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {results_path}: {exc}", file=sys.stderr)
        return 2
    print_report(report, summarise(report.get("runs", [])), results_path)
    return 0


def _run_job(job, args, hf, api, kept, deadline, out_dir, counter, full_batch, batch, replay_file, questions) -> dict:
    """Run one job; a failure is recorded (``status`` ``failed: ...``) and the benchmark goes on. ``hf``: the
    (default, worker layout with model.generate, one process with model.generate) hf backends."""
    hf_default, hf_generate, hf_1proc = hf
    # Budgeted hf jobs go batch by batch, idle and loaded alike, so the budget can stop them between batches.
    per_batch = job in budget_jobs(args) and job not in ("sequential", "llama_server")
    try:
        if KIND[job] == "collection":
            inner = {"sequential": hf_1proc, "collector": hf_default, "collector_generate": hf_generate,
                     "collector_1proc": hf_1proc, "llama_server": api}[job]
            backend = BenchBackend(inner, sequential=(job == "sequential"), deadline=deadline, per_batch=per_batch,
                                   keep_prompts=full_batch if job == "collector" and not kept else 0)
            res = run_collection_job(job, backend, out_dir / "docs", out_dir / "runs" / job, args.collect_args,
                                     counter, full_batch if job == "collector" else None)
            if backend.kept:
                kept.update(backend.kept)
            return res
        if KIND[job] == "reference":
            if not kept:
                return {"kind": "reference", "status": "skipped: no (b) prompts recorded"}
            inner = hf_generate if job == "model_workers" else hf_1proc
            return run_reference_job(BenchBackend(inner, sequential=False, batch_size=batch, deadline=deadline,
                                                  per_batch=per_batch), kept)
        inner = hf_default if job.endswith("_default") else hf_1proc
        if KIND[job] == "replay":
            return run_replay_job(BenchBackend(inner, sequential=False, batch_size=REPLAY_BATCH, deadline=deadline,
                                               per_batch=per_batch),
                                  args.model_name_or_path, replay_file, out_dir / "runs" / job, args.replay_new_tokens)
        return run_eval_job(BenchBackend(inner, sequential=False, batch_size=EVAL_BATCH, deadline=deadline,
                                         per_batch=per_batch),
                            questions, args.eval_new_tokens)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one failed job must not lose the others' figures
        logger.exception("%s failed", job)
        return {"kind": KIND[job], "status": f"failed: {type(exc).__name__}: {exc}"[:300]}


def print_report(report: dict, summary: dict, results_path: Path) -> None:
    docs = report["corpus"]
    print(f"\nCollection benchmark: {len(docs)} documents ({sum(d['words'] for d in docs)} words), hf "
          f"{report.get('hf_dtype')}, (b) = {report.get('workers')} worker process(es) x 1 thread, batch "
          f"{report.get('batch_size')}; one-process layout {report['machine']['torch_threads']} torch threads; "
          f"collector flags: {' '.join(report['collector_flags']) or '(defaults)'}")
    if report.get("server"):
        s = report["server"]
        print(f"(c) llama-server: {s['parallel']} slots, continuous batching, {s['threads']} threads, "
              f"{Path(s['gguf']).name}; api backend max_concurrency {s['parallel']}")
    for cond in report["conditions"]:
        if cond in summary["jobs"]:
            extra = f" (busy loop on cpu {report['background_load']['cpu']}, " \
                    f"{report['background_load'].get('cpu_share', '?')} of a core)" if cond == "loaded" else ""
            print(f"\n{cond}{extra}:")
            print(jobs_table(summary, cond))
    idx = index_runs(report["runs"])
    b = idx.get((0, "idle", "collector"))
    if b:
        print("\n(b) per stage, idle, round 0, against the bare model on the same stage's prompts (worker layout):")
        print(breakdown_table(b, idx.get((0, "idle", "model_workers"))))
    print(f"\nload average before/after: {report['load_before']} / {report.get('load_after', '?')}; "
          f"results -> {results_path}")
    print("\nRatios (formed within each round, then averaged):")
    print(ratio_table(summary))
    for note in miss_notes(report, summary):
        print(f"- MISS {note}")


if __name__ == "__main__":
    sys.exit(main())
