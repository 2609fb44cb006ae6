"""The main job, end to end: teach a model some documents and measure what it learned and forgot.

    bash shells/quickstart.sh                                # default model, examples/docs, full run
    bash shells/quickstart.sh --run_dir runs/quickstart-X    # resume an interrupted run
    bash shells/quickstart.sh --docs mydocs                  # your documents, held-out questions from the collector
    bash shells/quickstart.sh --generator_type api --generator gpt-4o-mini --collect_args "--api_base URL"
    bash shells/quickstart.sh --small --model PATH --docs DIR   # reduced smoke run (tests)

Stages: prepare the default model -> collect QA from the documents (python -m data_processor) ->
fine-tune (the launcher, finetuning/launch.py, which mixes in the replay rows) -> evaluate base vs
updated on the held-out questions and the control set (evaluate.py) -> print the table and where the
time went. Every setting comes from the recipe (--recipe, default configs/recipes/default.yaml): the
same file the bare commands read. Everything goes under one run folder: data/ (QA + collector cache),
adapter/, losses/, eval/ (results.json, report.md), quickstart.log, timings.json.

Resume: a stage is skipped when its output's stamp says it was made from the same inputs and settings
(utils/io_utils.py); an interrupted stage resumes from its own state (the collector's reply cache, the
Trainer's checkpoints, the evaluation's cached replies). Run the same command again.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evaluation.report import results_table
from utils.io_utils import atomic_write_json, file_digest, is_current, mark_current
from utils.logging_utils import redact_argv, redact_command, redact_obj
from utils.recipe import DEFAULT_RECIPE, REPO_ROOT, is_none, load_recipe, repo_path
from utils.tables import format_table

logger = logging.getLogger("quickstart")
SMOKE_RECIPE = "configs/recipes/smoke.yaml"
#: share of facts whose questions the collector sets aside when no hand-written questions are given
HELD_OUT_FRACTION = 0.2


@dataclass
class QuickstartArguments:
    run_dir: str | None = field(default=None, metadata={
        "help": "Run folder (default runs/quickstart-<timestamp>); give an existing one to resume it."})
    model: str = field(default="default", metadata={
        "aliases": ["-m", "--model_name_or_path"], "help": "Model to update: 'default' (embedded SmolLM2-135M-Instruct), a folder or a hub id."})
    generator: str | None = field(default=None, metadata={"help": "Model that writes the QA data (default: --model)."})
    generator_type: str = field(default="hf", metadata={
        "help": "Collection backend: hf, vllm (CUDA) or api (OpenAI-compatible server)."})
    docs: str = field(default="examples/docs", metadata={"help": "Documents to learn (a folder, or one file)."})
    train_data: str | None = field(default=None, metadata={
        "help": "Skip collection and fine-tune on this QA JSONL (collector format)."})
    eval_qa: str = field(default="auto", metadata={
        "help": "Held-out questions: a JSONL of {question, answers}. 'auto': the eval_qa.jsonl beside the documents "
                "folder (examples/docs -> examples/eval_qa.jsonl) when there is one; otherwise the collector sets "
                f"aside the questions of {HELD_OUT_FRACTION * 100:.0f}%% of the facts (--eval_fraction) and those "
                "are asked."})
    control: str = field(default="auto", metadata={
        "help": "General-knowledge questions that measure forgetting: 'auto' = the control_qa.jsonl beside the "
                "documents folder, else examples/control_qa.jsonl; 'none' to skip."})
    language: str = field(default="en", metadata={"help": "Language of the documents: the collector's prompt set (en, zh)."})
    recipe: str = field(default=DEFAULT_RECIPE, metadata={"help": "Recipe YAML: every collection, training and "
                                                                  "evaluation setting."})
    small: bool = field(default=False, metadata={
        "help": f"Reduced smoke run: the same as --recipe {SMOKE_RECIPE} (1 QA per fact, 1 persona per document, "
                "2 training steps, 5 questions per set)."})
    collect_args: str = field(default="", metadata={"help": "Extra flags for the collector (e.g. \"--api_base URL\")."})
    finetune_args: str = field(default="", metadata={"help": "Extra flags for finetune.py (they win over the recipe)."})
    eval_args: str = field(default="", metadata={"help": "Extra flags for evaluate.py (e.g. \"--batch_size 16\")."})

    def __post_init__(self) -> None:
        if self.small:
            self.recipe = SMOKE_RECIPE
        if self.generator_type not in ("hf", "vllm", "api"):
            raise ValueError(f"--generator_type must be hf, vllm or api, not {self.generator_type!r}")


@dataclass
class Plan:
    """Absolute paths and commands of one run (what the stages need; built once, printed, saved)."""

    run: Path
    docs: Path
    qa: Path
    held_out: Path | None  # questions to evaluate on
    control: Path | None
    adapter: Path
    recipe: Path


def _abs(path: str) -> Path:
    return repo_path(path).resolve()


def _optional(path: str) -> Path | None:
    return None if is_none(path) else _abs(path)


def _model_arg(name: str) -> str:
    """A local model folder goes on absolute (stages run from the repository); names stay as they are."""
    return str(Path(name).resolve()) if Path(name).exists() else name


def make_plan(args: QuickstartArguments) -> Plan:
    """Resolve every path; raises ``FileNotFoundError`` naming what is missing."""
    run = Path(args.run_dir or f"runs/quickstart-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    docs = _abs(args.docs)
    if not args.train_data and not docs.exists():
        raise FileNotFoundError(f"no such documents folder: {docs}")
    beside = docs.parent if docs.is_dir() else docs.parent.parent  # a corpus: docs/, eval_qa.jsonl, control_qa.jsonl
    if args.eval_qa == "auto":
        own = beside / "eval_qa.jsonl"
        held_out = own if own.is_file() else (_abs("examples/eval_qa.jsonl") if args.train_data else None)
    else:
        held_out = _optional(args.eval_qa)
    if args.control == "auto":
        control = beside / "control_qa.jsonl" if (beside / "control_qa.jsonl").is_file() else _abs("examples/control_qa.jsonl")
    else:
        control = _optional(args.control)
    for f in (held_out, control):
        if f is not None and not f.is_file():
            raise FileNotFoundError(f"no such QA file: {f}")
    recipe = _abs(args.recipe)
    load_recipe(recipe)  # a bad recipe stops here, before any work
    qa = run / "data" / "qa_pairs.jsonl"
    if held_out is None and args.eval_qa == "auto":
        held_out = qa.with_name("qa_pairs.eval.jsonl")  # written by the collector (--eval_fraction)
    return Plan(run=run, docs=docs, qa=qa, held_out=held_out, control=control, adapter=run / "adapter", recipe=recipe)


# -- running one stage -----------------------------------------------------------------------------
class Runner:
    """Runs stage commands with their output shown and appended to ``quickstart.log``; times each stage."""

    def __init__(self, run: Path):
        self.log_path = run / "quickstart.log"
        self.timings: list[dict] = []

    def say(self, msg: str) -> None:
        line = f"[quickstart] {msg}"
        print(line, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def call(self, cmd: list[str], env: dict | None = None) -> int:
        """Run ``cmd`` from the repository root, streaming its output to the terminal and the log."""
        self.say("$ " + redact_command(cmd))
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env={**os.environ, **(env or {})})
            assert proc.stdout is not None
            try:
                for chunk in iter(lambda: proc.stdout.read1(4096), b""):
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                    log.write(chunk)
                    log.flush()
                return proc.wait()
            except BaseException:  # Ctrl+C / SIGTERM: stop the child too, then let the caller see it
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise

    def stage(self, name: str, output: Path, key: dict, work, workdir: Path | None = None) -> None:
        """Run ``work()`` unless ``output`` is current for ``key``; record the stage's time.

        ``workdir`` holds state an interrupted stage resumes from (checkpoints): it is kept when the stage
        was started with the same ``key`` and emptied when the inputs changed since.
        """
        t0 = time.time()
        if is_current(output, key):
            self.say(f"{name}: up to date, skipped ({output})")
            self.timings.append({"stage": name, "seconds": 0.0, "status": "up to date"})
            return
        if workdir is not None:
            started = workdir / ".stage_inputs.json"
            if workdir.exists() and (not started.is_file() or json.loads(started.read_text()) != key):
                self.say(f"{name}: inputs changed since {workdir} was started; starting it afresh")
                shutil.rmtree(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(started, key)
        self.say(f"{name} ...")
        work()
        mark_current(output, key)
        seconds = round(time.time() - t0, 1)
        self.timings.append({"stage": name, "seconds": seconds, "status": "done"})
        self.say(f"{name} done in {seconds:.0f} s")


class StageFailed(RuntimeError):
    """A stage's command failed; the message says which and where its output is."""


def _check(rc: int, what: str, log: Path) -> None:
    if rc != 0:
        raise StageFailed(f"{what} failed (exit {rc}); its output is in {log}")


def _docs_key(docs: Path) -> list:
    files = [docs] if docs.is_file() else sorted(p for p in docs.rglob("*") if p.is_file())
    return [(str(p.relative_to(docs.parent)), file_digest(p)) for p in files]


# -- the stages ------------------------------------------------------------------------------------
def collect_command(args: QuickstartArguments, plan: Plan) -> list[str]:
    cmd = [sys.executable, "-m", "data_processor", "--recipe", str(plan.recipe), "--model_type", args.generator_type,
           "--model_name_or_path", _model_arg(args.generator or args.model), "--data_path", str(plan.docs),
           "--save_path", str(plan.qa), "--overwrite", "True", "--language", args.language]
    if plan.held_out == plan.qa.with_name("qa_pairs.eval.jsonl"):
        cmd += ["--eval_fraction", str(HELD_OUT_FRACTION)]
    return cmd + shlex.split(args.collect_args)


def finetune_command(args: QuickstartArguments, plan: Plan) -> list[str]:
    """The bare launcher's command with the run's paths: no training setting of the quickstart's own."""
    return [sys.executable, "-m", "finetuning.launch", "-m", _model_arg(args.model), "-d", str(plan.qa),
            "-o", str(plan.adapter), "--recipe", str(plan.recipe), "--",
            "--run_name", "quickstart", "--loss_dir", str(plan.run / "losses"), "--resume_from_checkpoint", "latest",
            *shlex.split(args.finetune_args)]


def evaluate_command(args: QuickstartArguments, plan: Plan) -> list[str]:
    """evaluate.py with the run's paths. The documents go along (--open_book), so the table holds the reading
    baseline: the base model answering with each question's document in its prompt. With --train_data the
    documents are not what the model learned, so there is no such row."""
    open_book = None if args.train_data else open_book_docs(plan.held_out, plan.docs)
    return [sys.executable, "-m", "evaluation", "--recipe", str(plan.recipe), "--model_name_or_path",
            _model_arg(args.model), "--qa_file", str(plan.held_out), "--control_file", str(plan.control or "none"),
            "--adapters", f"updated={plan.adapter}", "--output_dir", str(plan.run / "eval"),
            *(["--open_book", str(open_book)] if open_book else []), *shlex.split(args.eval_args)]


def _count_rows(path: Path | None) -> int:
    """Non-empty lines of a JSONL file; 0 for no file."""
    if path is None or not path.is_file():
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def open_book_docs(qa_file: Path, docs: Path) -> Path | None:
    """``docs`` when every question of ``qa_file`` names a document in it, else ``None`` and a warning.

    The reading baseline needs each question's document; questions about documents the run did not read
    would stop evaluate.py --open_book after the whole training, so the quickstart leaves that row out.
    """
    from evaluation.open_book import document_path
    from evaluation.runner import load_qa_file
    from utils.io_utils import DataFileError

    try:
        for question in load_qa_file(str(qa_file)):
            document_path(docs, question.get("doc"), question["source"])
    except DataFileError as exc:
        logger.warning("no reading-baseline row (evaluate.py --open_book): %s", exc)
        return None
    return docs


def run(args: QuickstartArguments) -> int:
    plan = make_plan(args)
    (plan.run / "data").mkdir(parents=True, exist_ok=True)
    runner = Runner(plan.run)
    t_start = time.time()
    runner.say(f"run folder {plan.run} (resume an interrupted run with: bash shells/quickstart.sh --run_dir {plan.run})")
    runner.say(f"model={args.model} generator={args.generator or args.model} ({args.generator_type}) docs={plan.docs} "
               f"recipe={plan.recipe}")
    atomic_write_json(plan.run / "command.json", redact_obj({"argv": sys.argv[1:], "arguments": asdict(args)}))
    env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
           "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    recipe = load_recipe(plan.recipe)

    if "default" in (args.model, args.generator):
        from utils.default_model import prepare_default_model

        prepare_default_model()

    if args.train_data:
        src = _abs(args.train_data)

        def copy_given():
            plan.qa.write_bytes(src.read_bytes())

        runner.stage("collect (given data)", plan.qa, {"train_data": file_digest(src)}, copy_given)
    else:
        cmd = collect_command(args, plan)
        key = {"docs": _docs_key(plan.docs), "recipe": recipe.get("collect", {}), "cmd": redact_argv(cmd[3:])}

        def collect():
            _check(runner.call(cmd, env), "collection", runner.log_path)

        runner.stage("collect", plan.qa, key, collect)
    rows = _count_rows(plan.qa)
    if rows == 0:
        raise StageFailed(f"collection produced no QA pairs in {plan.qa}; see the collector's summary above. "
                          "A stronger generator usually helps: --generator_type api|vllm --generator MODEL")
    runner.say(f"{rows} training rows in {plan.qa}")
    # Checked here, not after training: a small collection can hold out no question at all.
    if _count_rows(plan.held_out) == 0:
        raise StageFailed(f"no held-out questions to ask ({plan.held_out} is missing or empty: the collection set "
                          f"none aside from its {rows} rows); pass --eval_qa FILE, or give more documents")

    cmd = finetune_command(args, plan)
    # The stamp file holds its key: commands go in redacted (a wandb key does not change the model).
    key = {"data": file_digest(plan.qa), "recipe": recipe.get("finetune", {}), "cmd": redact_argv(cmd[3:])}

    def finetune():
        _check(runner.call(cmd, env), "fine-tuning", runner.log_path)
        if not (plan.adapter / "adapter_config.json").is_file() and not (plan.adapter / "config.json").is_file():
            raise StageFailed(f"fine-tuning wrote no model to {plan.adapter}")

    runner.stage("fine-tune", plan.adapter / "train_summary.json", key, finetune, workdir=plan.adapter)

    cmd = evaluate_command(args, plan)
    key = {"adapter": file_digest(plan.adapter / "train_summary.json"), "held_out": file_digest(plan.held_out),
           "recipe": recipe.get("evaluate", {}), "cmd": redact_argv(cmd[3:])}

    def evaluate():
        _check(runner.call(cmd, env), "evaluation", runner.log_path)

    runner.stage("evaluate", plan.run / "eval" / "results.json", key, evaluate)

    results = json.loads((plan.run / "eval" / "results.json").read_text(encoding="utf-8"))
    print(results_table(results), flush=True)
    runner.timings.append({"stage": "total", "seconds": round(time.time() - t_start, 1), "status": ""})
    atomic_write_json(plan.run / "timings.json", runner.timings)
    runner.say("where the time went:\n" + format_table(["stage", "seconds", "status"],
                                                        [[t["stage"], f"{t['seconds']:.0f}", t["status"]]
                                                         for t in runner.timings]))
    runner.say(f"report: {plan.run / 'eval' / 'report.md'}  scores: {plan.run / 'eval' / 'results.json'}")
    for line in serve_hint(plan.adapter):
        runner.say(line)
    return 0


def serve_hint(adapter: Path) -> list[str]:
    """The commands that serve the updated model (README "Use your updated model"; docs/serving.md), to be
    typed in the user's shell: that shell needs the venv active, and the server installed once (an install
    option that the quickstart's own install leaves out)."""
    from finetuning.serve import SERVE_SWITCH, server_import_error

    model = shlex.quote(str(adapter))
    serve = (f"--adapter {model}" if (adapter / "adapter_config.json").is_file()  # else --use_lora False
             else f"--model {model} --output {shlex.quote(str(adapter / 'gguf'))}")
    install = os.path.relpath(REPO_ROOT / "shells" / "install.sh")
    if install.startswith(".."):
        install = str(REPO_ROOT / "shells" / "install.sh")
    ready = server_import_error() is None
    return ["serve the updated model at http://127.0.0.1:8080/v1 (llama.cpp), from a shell with the venv active"
            + ("" if ready else " and the server installed (once: it builds llama.cpp, about 5 minutes)")
            + f": {'' if ready else SERVE_SWITCH + ' '}source {shlex.quote(install)}",
            f"then: python -m finetuning.serve {serve}"]


def parse_args(argv: list[str] | None = None) -> QuickstartArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(QuickstartArguments, prog="quickstart.sh", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Entry points: bash shells/quickstart.sh | python -m quickstart | ku-quickstart")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 done, 1 a stage failed, 2 bad usage, 130 interrupted (run again to resume)."""
    from utils.logging_utils import setup_logging

    setup_logging()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a scheduler, `kill`) stops like Ctrl+C: the running stage's command is stopped too.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        args = parse_args(argv)
        return run(args)
    except (FileNotFoundError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    except StageFailed as exc:
        logger.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        logger.warning("interrupted; run the same command (with --run_dir) to resume")
        return 130


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
