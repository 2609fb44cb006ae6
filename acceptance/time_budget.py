"""The time-budget test behind ``test_case_1.sh``: three fine-tuning runs, timed, judged against a budget.

    bash test_case_1.sh                       # full-size runs, datasets/qa_pairs_00{1,2,3}.jsonl, budget 8 h
    bash test_case_1.sh --small               # default model, examples/datasets, a few steps each (CPU, minutes)
    bash test_case_1.sh --budget_hours 6 --abort_on_projected_overrun -- --model_max_length 512

Each run calls the fine-tune launcher (``bash shells/finetune_lora_ds.sh -m MODEL -d DATA -- ...``) into
``<output_dir>/<name>/`` with its log in ``<output_dir>/logs/<name>.log`` and its per-step loss in
``<loss_dir>/<name>.npy``. The start, end and duration of each run go into a table and into
``<output_dir>/time_budget.json`` (rewritten after every run, so a crash keeps what was measured).

Full-size runs train with per-GPU batch 32 x gradient accumulation 4, 5 epochs, learning rate 3e-4 and
LoRA (``FULL_TRAINER_FLAGS``): the original toolkit's workload, the one the 8 h budget was set for. They
are passed on top of the recipe (configs/recipes/default.yaml, read by finetune.py), so the time measured
is that workload's whatever the recipe trains with; the recipe's other settings (replay rows, LoRA shape,
...) apply. ``--small`` swaps in ``SMALL_TRAINER_FLAGS``. Flags after a bare ``--`` are appended to every
finetune.py command line, so they win (``python finetune.py --help`` lists them).

Verdict: exit 0 when every run succeeded and the average duration is within ``--budget_hours``;
exit 1 when a run failed or the average exceeds the budget; exit 2 on bad usage (missing dataset).

Each run is given a time allowance, passed to finetune.py as ``--time_budget_hours``: the budget plus
whatever earlier runs left unused (run i may take ``i * budget - time used so far``), so the average
holds if every later run stays within the budget. finetune.py projects its total time from the first
few percent of steps and writes ``<run>/time_projection.json``; we report that projection as soon as it
appears. With ``--abort_on_projected_overrun`` a run whose projection exceeds its allowance stops early,
and the remaining runs are skipped: the test has failed and would only burn more hours.

``CUDA_VISIBLE_DEVICES`` (and the rest of the environment) reaches the launcher unchanged; the launcher
derives ``GPUS_PER_NODE`` from it.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from utils import tables
from utils.io_utils import atomic_write_json
from utils.logging_utils import redact_command, redact_text, setup_logging

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAUNCHER = f"bash {ROOT / 'shells' / 'finetune_lora_ds.sh'}"
DEFAULT_NAMES = ("qa_pairs_001", "qa_pairs_002", "qa_pairs_003")

# Full-size runs, the workload the 8 h budget is set for: per-GPU batch 32 x accumulation 4, 5 epochs, lr 3e-4.
FULL_TRAINER_FLAGS = (
    "--per_device_train_batch_size", "32", "--gradient_accumulation_steps", "4", "--num_train_epochs", "5",
    "--learning_rate", "3e-4", "--lazy_preprocess", "True", "--use_lora", "True",
)
# Small mode: same code path, a handful of optimizer steps, so three runs fit in minutes on a CPU.
SMALL_TRAINER_FLAGS = (
    "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1", "--num_train_epochs", "1",
    "--max_steps", "5", "--learning_rate", "3e-4", "--lazy_preprocess", "True", "--use_lora", "True",
    "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--use_wandb", "False",
)
SMALL_DATA_DIR = ROOT / "examples" / "datasets"
PROJECTION_FILE = "time_projection.json"
POLL_S = 1.0
LOG_TAIL_LINES = 25


@dataclass
class RunResult:
    """What one run did; serialised into ``time_budget.json``."""

    name: str
    dataset: str
    output_dir: str
    log: str
    loss_file: str
    allowance_hours: float
    command: list[str] = field(default_factory=list)
    status: str = "pending"  # ok | failed | aborted | interrupted | skipped | pending
    detail: str = ""
    returncode: int | None = None
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None
    projection: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class TimeBudgetArguments:
    """Flags of ``test_case_1.sh``; :func:`parse_args` fills in the defaults that depend on ``--small``."""

    small: bool = field(default=False, metadata={
        "help": f"Small mode: default data folder {SMALL_DATA_DIR.relative_to(ROOT)}, batch 4, no accumulation, "
                "5 steps per run, one process, no checkpoints; runs on a CPU in minutes."})
    model: str = field(default="default", metadata={
        "aliases": ["-m", "--model_name_or_path"], "help": "Model path, hub id or 'default' (the embedded SmolLM2-135M)."})
    data_dir: str | None = field(default=None, metadata={
        "help": "Folder with <name>.jsonl datasets (default: datasets; with --small: examples/datasets)."})
    names: list[str] = field(default_factory=lambda: list(DEFAULT_NAMES), metadata={
        "help": "Dataset names, one run each (default: qa_pairs_001 qa_pairs_002 qa_pairs_003)."})
    output_dir: str | None = field(default=None, metadata={
        "help": "Run folders, logs and time_budget.json (default: output/test_case_1[_small])."})
    loss_dir: str = field(default="losses", metadata={"help": "Where each run writes <name>.npy (default: losses)."})
    budget_hours: float = field(default=8.0, metadata={
        "help": "Maximum average run duration in hours (default 8). Exceeding it exits 1."})
    abort_on_projected_overrun: bool = field(default=False, metadata={
        "help": "Stop a run as soon as its projected total exceeds its allowance, and skip the rest."})
    stop_on_failure: bool = field(default=False, metadata={"help": "Skip the remaining runs after a failed one."})
    launcher: str = field(default=DEFAULT_LAUNCHER, metadata={
        "help": "Launcher command, split like a shell would (default: bash shells/finetune_lora_ds.sh)."})
    deepspeed: str | None = field(default=None, metadata={
        "help": "DeepSpeed JSON passed to the launcher (default: none, plain DDP)."})
    nproc: int | None = field(default=None, metadata={
        "help": "Processes per node for the launcher (default: its detection; 1 with --small)."})
    wandb_key: str | None = field(default=None, metadata={"help": "Passed to the launcher; never printed."})
    dry_run: bool = field(default=False, metadata={"help": "Print the commands and exit without running them."})
    # Not a flag: the finetune.py arguments that followed a bare "--".
    extra: list[str] = field(default_factory=list, init=False)


def parse_args(argv: list[str] | None = None) -> TimeBudgetArguments:
    """Flags into :class:`TimeBudgetArguments`; everything after a bare ``--`` goes to finetune.py.

    Exits with status 2 (``SystemExit``) on bad usage, as argparse does.
    """
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # everything after "--" goes to finetune.py / TrainingArguments
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = HfArgumentParser(
        TimeBudgetArguments, prog="test_case_1.sh", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Arguments after a bare -- are appended to every finetune.py command line (they win over "
        "the defaults above, e.g. -- --num_train_epochs 3).\n\n"
        "Entry points: bash test_case_1.sh | python -m acceptance.time_budget | ku-time-budget",
    )
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    args.extra = extra
    if args.budget_hours <= 0:
        parser.error(f"--budget_hours must be > 0, got {args.budget_hours}")
    if args.data_dir is None:
        args.data_dir = str(SMALL_DATA_DIR) if args.small else "datasets"
    if args.output_dir is None:
        args.output_dir = "output/test_case_1_small" if args.small else "output/test_case_1"
    if args.small and args.nproc is None:
        args.nproc = 1
    args.names = [n.removesuffix(".jsonl") for n in args.names]
    return args


def build_command(args: TimeBudgetArguments, name: str, dataset: Path, run_dir: Path,
                  allowance_hours: float) -> list[str]:
    """The launcher command line for one run (launcher flags, then ``--`` and finetune.py flags).

    Paths are made absolute: the launcher runs from the repository root, not from our directory.
    """
    model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    cmd = shlex.split(args.launcher) + ["-m", model, "-d", str(dataset.resolve())]
    if args.deepspeed:
        cmd += ["--deepspeed", args.deepspeed]
    if args.wandb_key:
        cmd += ["--wandb_key", args.wandb_key]
    if args.nproc is not None:
        cmd += ["--nproc", str(args.nproc)]
    cmd += ["--", "--output_dir", str(run_dir.resolve()), "--run_name", name,
            "--loss_dir", str(Path(args.loss_dir).resolve())]
    cmd += list(SMALL_TRAINER_FLAGS if args.small else FULL_TRAINER_FLAGS)
    cmd += ["--time_budget_hours", f"{allowance_hours:.6g}"]
    if args.abort_on_projected_overrun:
        cmd += ["--abort_on_projected_overrun", "True"]
    return cmd + list(args.extra)


def allowance_for(index: int, budget_s: float, used_s: float) -> float:
    """Seconds run ``index`` (0-based) may take so the average still fits if later runs take ``budget_s``.

    Earlier runs that finished under budget leave their slack to this one; an overrun takes it away.
    Never zero or negative (finetune.py reads 0 as "no budget"): an already-lost budget gives the run
    a token allowance, which its projection then exceeds.
    """
    return max((index + 1) * budget_s - used_s, 1e-3)


def _read_projection(run_dir: Path, since: float) -> dict | None:
    """The run's ``time_projection.json`` if this run wrote it (not a stale one from before ``since``)."""
    path = run_dir / PROJECTION_FILE
    try:
        if path.stat().st_mtime < since - 1:
            return None
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None  # not written yet, or caught mid-write by a non-atomic writer: poll again


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return redact_text("".join(fh.readlines()[-lines:]))
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"


def _stop(proc: subprocess.Popen) -> None:
    """Stop the launcher and everything it started (torchrun workers are in its process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def run_one(result: RunResult) -> None:
    """Run one launcher command, logging to its own file, and fill ``result`` in place."""
    run_dir, log_path, loss_path = Path(result.output_dir), Path(result.log), Path(result.loss_file)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.time()
    result.start = datetime.fromtimestamp(t0).isoformat(timespec="seconds")
    logger.info("%s: started; log %s", result.name, log_path)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"$ {redact_command(result.command)}\n")
        log.flush()
        try:
            proc = subprocess.Popen(result.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        except OSError as exc:
            result.status, result.detail = "failed", f"cannot start launcher: {exc}"
            result.end, result.duration_s = result.start, 0.0
            return
        try:
            while True:
                try:
                    proc.wait(timeout=POLL_S)  # returns the moment the run ends: exact durations
                    break
                except subprocess.TimeoutExpired:
                    pass
                if result.projection is None:
                    result.projection = _read_projection(run_dir, t0)
                    if result.projection is not None:
                        _report_projection(result)
        except KeyboardInterrupt:
            _stop(proc)
            result.status, result.detail = "interrupted", "stopped by Ctrl+C or SIGTERM"
            raise
        finally:
            t1 = time.time()
            result.end = datetime.fromtimestamp(t1).isoformat(timespec="seconds")
            result.duration_s = round(t1 - t0, 3)
            result.returncode = proc.returncode
    if result.projection is None:
        result.projection = _read_projection(run_dir, t0)
        if result.projection is not None:
            _report_projection(result)
    _classify(result, loss_path, t0)


def _report_projection(result: RunResult) -> None:
    proj = result.projection or {}
    total, fits = proj.get("projected_total_s"), proj.get("will_fit")
    if isinstance(total, (int, float)):
        logger.info("%s: projected total %.3f h (allowance %.3f h) -> %s", result.name, total / 3600,
                    result.allowance_hours, "fits" if fits else "WILL NOT FIT")


def _classify(result: RunResult, loss_path: Path, t0: float) -> None:
    proj = result.projection or {}
    if result.returncode == 0:
        fresh = loss_path.is_file() and loss_path.stat().st_mtime >= t0 - 1
        if fresh:
            result.status = "ok"
        else:
            result.status, result.detail = "failed", f"exit 0 but no new loss file {loss_path}"
    elif proj.get("will_fit") is False:
        result.status = "aborted"
        total = proj.get("projected_total_s")
        result.detail = (f"projected {total / 3600:.3f} h > allowance {result.allowance_hours:.3f} h"
                         if isinstance(total, (int, float)) else "projected overrun")
    else:
        result.status, result.detail = "failed", f"exit code {result.returncode}"


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_table(results: list[RunResult]) -> str:
    """Run, start, end, duration, projected total and status, one line per run."""
    header = ("run", "start", "end", "duration", "hours", "projected h", "allowance h", "status")
    rows = []
    for r in results:
        proj = (r.projection or {}).get("projected_total_s")
        rows.append((
            r.name, r.start or "-", r.end or "-", _hms(r.duration_s),
            f"{r.duration_s / 3600:.4f}" if r.duration_s is not None else "-",
            f"{proj / 3600:.4f}" if isinstance(proj, (int, float)) else "-",
            f"{r.allowance_hours:.4f}" if r.status != "skipped" else "-",
            r.status + (f" ({r.detail})" if r.detail else ""),
        ))
    return tables.format_table(list(header), [list(r) for r in rows])


def verdict(results: list[RunResult], budget_hours: float) -> tuple[bool, float | None, str]:
    """(passed, average hours of the successful runs, one-line explanation)."""
    done = [r.duration_s for r in results if r.ok and r.duration_s is not None]
    avg_h = sum(done) / len(done) / 3600 if done else None
    bad = [r for r in results if not r.ok]
    if bad:
        what = ", ".join(f"{r.name} {r.status}" for r in bad)
        return False, avg_h, f"FAIL: not every run succeeded ({what})"
    if avg_h is None:
        return False, None, "FAIL: no run finished"
    if avg_h > budget_hours:
        return False, avg_h, f"FAIL: average {avg_h:.4f} h exceeds the budget of {budget_hours:g} h"
    return True, avg_h, f"PASS: average {avg_h:.4f} h within the budget of {budget_hours:g} h"


def _save(path: Path, args: TimeBudgetArguments, results: list[RunResult], finished: bool) -> None:
    passed, avg_h, line = verdict(results, args.budget_hours)
    atomic_write_json(path, {
        "finished": finished,
        "passed": passed if finished else None,
        "verdict": line if finished else "in progress",
        "average_hours": avg_h,
        "budget_hours": args.budget_hours,
        "small": args.small,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "runs": [dict(asdict(r), command=redact_command(r.command)) for r in results],
    })


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the timed fine-tunings and return the exit status (0 pass, 1 fail, 2 usage, 130 interrupted)."""
    setup_logging()
    args = parse_args(argv)
    if threading.current_thread() is not threading.main_thread():  # signals only work there
        return _run(args)
    # A killed job (SIGTERM) stops its training run and saves the table, like Ctrl+C.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: TimeBudgetArguments) -> int:
    data_dir, out_dir = Path(args.data_dir), Path(args.output_dir)
    datasets = [data_dir / f"{n}.jsonl" for n in args.names]
    missing = [str(d) for d in datasets if not d.is_file()]
    if missing:
        hint = ("collect them with the data collector, or run bash test_case_1.sh --small on the samples in "
                "examples/datasets" if not args.small
                else "they ship with the repository; is the checkout complete?")
        logger.error("Missing dataset file(s): %s (%s; or pass --data_dir/--names)", ", ".join(missing), hint)
        return 2
    budget_s = args.budget_hours * 3600
    logger.info("CUDA_VISIBLE_DEVICES=%s; %d run(s); budget %.4g h average%s",
                os.environ.get("CUDA_VISIBLE_DEVICES", "(unset: all devices)"), len(datasets), args.budget_hours,
                ", abort on projected overrun" if args.abort_on_projected_overrun else "")

    results: list[RunResult] = []
    for name, dataset in zip(args.names, datasets):
        run_dir = out_dir / name
        r = RunResult(name=name, dataset=str(dataset), output_dir=str(run_dir),
                      log=str(out_dir / "logs" / f"{name}.log"),
                      loss_file=str(Path(args.loss_dir) / f"{name}.npy"), allowance_hours=0.0)
        results.append(r)
    if args.dry_run:
        for r in results:
            r.allowance_hours = args.budget_hours
            print(redact_command(build_command(args, r.name, Path(r.dataset), Path(r.output_dir), args.budget_hours)))
        return 0

    json_path = out_dir / "time_budget.json"
    stop_reason = ""
    try:
        for i, r in enumerate(results):
            if stop_reason:
                r.status, r.detail = "skipped", stop_reason
                continue
            used = sum(x.duration_s or 0.0 for x in results[:i])
            r.allowance_hours = allowance_for(i, budget_s, used) / 3600
            r.command = build_command(args, r.name, Path(r.dataset), Path(r.output_dir), r.allowance_hours)
            logger.info("run %d/%d: %s", i + 1, len(results), redact_command(r.command))
            _save(json_path, args, results, finished=False)
            run_one(r)
            logger.info("%s: %s in %s%s", r.name, r.status, _hms(r.duration_s), f" ({r.detail})" if r.detail else "")
            if not r.ok:
                logger.warning("last lines of %s:\n%s", r.log, _log_tail(Path(r.log)))
            if r.status == "aborted":
                stop_reason = f"{r.name} aborted on projected overrun"
            elif not r.ok and args.stop_on_failure:
                stop_reason = f"{r.name} failed (--stop_on_failure)"
    except KeyboardInterrupt:
        for r in results:
            if r.status == "pending":
                r.status, r.detail = "skipped", "interrupted"
        _save(json_path, args, results, finished=False)
        print(format_table(results))
        logger.error("Interrupted; partial results in %s", json_path)
        return 130

    passed, avg_h, line = verdict(results, args.budget_hours)
    _save(json_path, args, results, finished=True)
    print(format_table(results))
    print(f"average: {avg_h:.4f} h over {sum(r.ok for r in results)} successful run(s); budget {args.budget_hours:g} h"
          if avg_h is not None else f"average: - (no successful run); budget {args.budget_hours:g} h")
    print(line)
    logger.info("Results saved to %s", json_path)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
