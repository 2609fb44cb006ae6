"""The jobs of the collection benchmark: what each one runs, and the wrapper that measures it.

A job is one measured run on a backend that is already loaded: a collection variant, a bare-model
reference on (b)'s prompts, replay or evaluation generation. :func:`run_job` runs one by name and returns
its figures (a failure is recorded, never raised); :class:`BenchBackend` counts each job's calls, tokens
and seconds and stops a job at its time budget.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from generation.base import BackendError, BackendStats, LLMBackend, SamplingConfig

logger = logging.getLogger("bench_collect")

COLLECTION = ("sequential", "collector", "collector_generate", "llama_server", "collector_1proc")
REFERENCES = ("model_workers", "model_inproc")
WORKLOADS = ("replay_default", "replay_1proc", "eval_default", "eval_1proc")
KIND = {**{j: "collection" for j in COLLECTION}, **{j: "reference" for j in REFERENCES},
        "replay_default": "replay", "replay_1proc": "replay", "eval_default": "eval", "eval_1proc": "eval"}
REPLAY_BATCH, EVAL_BATCH = 16, 32  # build_replay's and evaluate.py's defaults


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


# -- one job by name ----------------------------------------------------------------------------------------
@dataclass
class JobContext:
    """What the jobs of one benchmark run share.

    ``hf_default`` is (b), the collector's default hf backend; ``hf_generate`` its worker layout with
    ``model.generate``; ``hf_1proc`` one process with torch's threads; ``api`` the llama-server client (or
    None). ``budget_jobs``: the jobs a time budget applies to. ``kept``: (b)'s first prompts per stage,
    recorded by its first run for the bare-model references.
    """

    hf_default: LLMBackend
    hf_generate: LLMBackend
    hf_1proc: LLMBackend
    api: LLMBackend | None
    out_dir: Path
    counter: object
    collect_args: list[str]
    model: str
    replay_file: Path
    replay_new_tokens: int
    questions: list[str]
    eval_new_tokens: int
    budget_jobs: set[str]
    full_batch: int = 0
    batch: int = 0
    kept: dict = field(default_factory=dict)


def run_job(job: str, ctx: JobContext, deadline: float | None) -> dict:
    """Run one job; a failure is recorded (``status`` ``failed: ...``) and the benchmark goes on."""
    # Budgeted hf jobs go batch by batch, idle and loaded alike, so the budget can stop them between batches.
    per_batch = job in ctx.budget_jobs and job not in ("sequential", "llama_server")
    try:
        if KIND[job] == "collection":
            inner = {"sequential": ctx.hf_1proc, "collector": ctx.hf_default, "collector_generate": ctx.hf_generate,
                     "collector_1proc": ctx.hf_1proc, "llama_server": ctx.api}[job]
            backend = BenchBackend(inner, sequential=(job == "sequential"), deadline=deadline, per_batch=per_batch,
                                   keep_prompts=ctx.full_batch if job == "collector" and not ctx.kept else 0)
            res = run_collection_job(job, backend, ctx.out_dir / "docs", ctx.out_dir / "runs" / job, ctx.collect_args,
                                     ctx.counter, ctx.full_batch if job == "collector" else None)
            if backend.kept:
                ctx.kept.update(backend.kept)
            return res
        if KIND[job] == "reference":
            if not ctx.kept:
                return {"kind": "reference", "status": "skipped: no (b) prompts recorded"}
            inner = ctx.hf_generate if job == "model_workers" else ctx.hf_1proc
            return run_reference_job(BenchBackend(inner, sequential=False, batch_size=ctx.batch, deadline=deadline,
                                                  per_batch=per_batch), ctx.kept)
        inner = ctx.hf_default if job.endswith("_default") else ctx.hf_1proc
        if KIND[job] == "replay":
            return run_replay_job(BenchBackend(inner, sequential=False, batch_size=REPLAY_BATCH, deadline=deadline,
                                               per_batch=per_batch),
                                  ctx.model, ctx.replay_file, ctx.out_dir / "runs" / job, ctx.replay_new_tokens)
        return run_eval_job(BenchBackend(inner, sequential=False, batch_size=EVAL_BATCH, deadline=deadline,
                                         per_batch=per_batch),
                            ctx.questions, ctx.eval_new_tokens)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one failed job must not lose the others' figures
        logger.exception("%s failed", job)
        return {"kind": KIND[job], "status": f"failed: {type(exc).__name__}: {exc}"[:300]}


def read_questions(path: str, n: int) -> list[str]:
    """The first ``n`` questions (all for 0) of an evaluation JSONL file."""
    qs = [json.loads(line)["question"] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return qs[:n] if n > 0 else qs


def warm_up(backend, workers: int) -> float:
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
