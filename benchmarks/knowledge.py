"""Recipe experiments: the main job on the dev corpora and the frozen test corpus, several seeds, one table.

    python benchmarks/knowledge.py --name default --corpus test2 --seeds 42,7   # report an adopted recipe
    python benchmarks/knowledge.py --name default --corpus dev,external_dev --seeds 42,7   # tune on both dev sets
    python benchmarks/knowledge.py --name lr1e-3 --set finetune.learning_rate=1e-3 --corpus dev --seeds 42
    python benchmarks/knowledge.py --name bare --entry bare --corpus test --seeds 42   # the four-command chain
    # lr1e-3's saved adapter scaled by 0.8, no training:
    python benchmarks/knowledge.py --name lr-s0.8 --set finetune.learning_rate=1e-3 finetune.adapter_scale=0.8 --scale_from lr1e-3 --corpus dev --seeds 42

Each (corpus, seed) is one ``python -m quickstart`` run into runs/knowledge/<name>/<corpus>-s<seed>
(or, with ``--entry bare``, the commands a user types: shells/collect_data.sh, shells/finetune_lora_ds.sh,
shells/evaluate.sh, each with its defaults except paths, the recipe and the seed),
with the recipe ``--recipe`` changed by the ``--set section.key=value`` overrides (the resolved
recipe is saved beside the runs). The training seed is the ``--seed`` of finetune.py; the collection
is the same for every seed. Corpora: ``dev`` (examples/docs, written beside the rules), ``external_dev``
(examples/external_dev: SQuAD 2.0 paragraphs with crowd-written questions, CC BY-SA 4.0; it has no control
set of its own and uses dev's), ``test`` (examples/test_corpus: written by the same hands as dev and read for
tuning, so a second dev set now) and ``test2`` (examples/test_corpus_v2, frozen: questions written by the
discipline in its README; measured with test's control set). Collector replies are shared between experiments through a reply cache per
corpus (runs/knowledge/cache/), so a recipe that changes only training settings collects in seconds.

Every finished run appends a line to benchmarks/knowledge/results.jsonl (the command that reproduces
it, the recipe, the scores, the time per stage); the table of all experiments, mean and spread over
seeds, is rewritten to benchmarks/knowledge/RESULTS.md and printed. Tune on ``dev`` and ``external_dev``;
``test2`` is for reporting, once per adopted recipe. Besides the updated and base models' accuracy, every row has the reading baseline
(``held_out_open_book``: the base model with each question's document in its prompt, evaluate.py
--open_book) and the forgetting measure on general text (``general_nll``, ``general_nll_base`` and
``general_nll_change_pct``: mean token NLL on examples/general_text.jsonl).

A dev run is also scored on benchmarks/knowledge/dev_extra_qa.jsonl: 40 more hand-written questions about
other facts of the same documents, so a dev decision rests on 80 questions instead of 40 (the seed alone
flips about 9 of 40 answers). Its score is the row's ``held_out_extra`` and the table's "dev+40" column.
Forgetting is measured the same way on benchmarks/knowledge/dev_extra_control.jsonl: 40 more general
questions (small sums, everyday facts, trivia; none of either corpus's control set), because the dev
control set is trivia only and misses forgetting that shows on the test corpus's simpler control questions.
Its score is ``control_extra`` ("ctrl+40"). A third extra set, benchmarks/knowledge/dev_descriptive_qa.jsonl,
asks 40 questions the way other people write them: 37 name an entity by a description the document gives
("the schoolteacher who invented the game", "the company behind the oven") instead of its name, 14 ask
why or how (written from the documents alone, without the collector's rules or its training rows; about
half ask facts the other two sets ask by name). Its score is ``held_out_descriptive`` ("dev-desc"; the base
model's ``held_out_descriptive_base``). The README's dev figures stay on examples/eval_qa.jsonl and
examples/control_qa.jsonl. Runs made before the extra sets existed are scored from their saved adapters
with ``--score_extra`` (the rows of ``--name`` are updated in place; the replies already in a run's
eval_extra/ are reused, so only a set new to that run is generated).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from evaluation.report import BASE_LABEL, OPEN_BOOK_LABEL
from utils.recipe import DEFAULT_RECIPE, REPO_ROOT, load_recipe
from utils.tables import format_table

CORPORA = {
    "dev": ("examples/docs", "examples/eval_qa.jsonl", "examples/control_qa.jsonl"),
    "test": ("examples/test_corpus/docs", "examples/test_corpus/eval_qa.jsonl", "examples/test_corpus/control_qa.jsonl"),
    # a second frozen test set (examples/test_corpus_v2/README.md): report once per adopted recipe, never tune;
    # it has no control set of its own and measures forgetting on test's
    "test2": ("examples/test_corpus_v2/docs", "examples/test_corpus_v2/eval_qa.jsonl",
              "examples/test_corpus/control_qa.jsonl"),
    # questions nobody here wrote (examples/external_dev/README.md); forgetting measured on dev's control set
    "external_dev": ("examples/external_dev/docs", "examples/external_dev/eval_qa.jsonl", "examples/control_qa.jsonl"),
}
#: more dev questions, scored beside the dev corpus's own (see the module docstring)
EXTRA_QA = {"dev": "benchmarks/knowledge/dev_extra_qa.jsonl"}
#: dev questions that name entities by description or ask why/how (see the module docstring)
EXTRA_DESCRIPTIVE = {"dev": "benchmarks/knowledge/dev_descriptive_qa.jsonl"}
EXTRA_CONTROL = {"dev": "benchmarks/knowledge/dev_extra_control.jsonl"}
RESULTS = REPO_ROOT / "benchmarks" / "knowledge" / "results.jsonl"
TABLE = REPO_ROOT / "benchmarks" / "knowledge" / "RESULTS.md"


@dataclass
class ExperimentArguments:
    name: str = field(metadata={"help": "Experiment name (folder under runs/knowledge/, row of the table)."})
    recipe: str = field(default=DEFAULT_RECIPE, metadata={"help": "Base recipe."})
    set: list[str] = field(default_factory=list, metadata={
        "help": "Overrides of the recipe: section.key=value (YAML value), e.g. finetune.num_train_epochs=6."})
    corpus: str = field(default="dev", metadata={"help": f"Comma list of {', '.join(CORPORA)}."})
    seeds: str = field(default="42", metadata={"help": "Comma list of training seeds."})
    runs_dir: str = field(default="runs/knowledge", metadata={"help": "Where the run folders go."})
    note: str = field(default="", metadata={
        "help": "What the experiment tests (goes into the table; once per name is enough, later runs inherit it)."})
    entry: str = field(default="quickstart", metadata={
        "help": "quickstart: python -m quickstart; bare: the shell commands collect_data.sh, finetune_lora_ds.sh "
                "and evaluate.sh in turn, as a user with their own documents would type them."})
    scale_from: str = field(default="", metadata={
        "help": "Train nothing: take the saved runs of this experiment (same corpus and seed), whose recipe must "
                "differ from this one only in finetune.adapter_scale, scale their adapters to this recipe's "
                "adapter_scale (finetuning/scale.py) and evaluate them. The same model as training with this "
                "recipe, without training again; the row's minutes are the source run's plus the evaluation."})
    score_extra: bool = field(default=False, metadata={
        "help": "Train nothing: score the saved adapters of --name's dev runs (--seeds) on the extra dev questions "
                "(the 40 more, the descriptive ones and the extra control questions) and add the scores to their "
                "rows in results.jsonl."})

    def __post_init__(self):
        if self.entry not in ("quickstart", "bare"):
            raise ValueError(f"--entry must be quickstart or bare, not {self.entry!r}")
        unknown = [c for c in self.corpus.split(",") if c.strip() and c.strip() not in CORPORA]
        if unknown:
            raise ValueError(f"--corpus {', '.join(unknown)}: not one of {', '.join(CORPORA)}")


def resolved_recipe(base: str, overrides: list[str]) -> dict:
    """The recipe ``base`` with ``section.key=value`` overrides applied (values parsed as YAML)."""
    recipe = load_recipe(base)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {item!r}: expected section.key=value")
        recipe.setdefault(section, {})[name] = yaml.safe_load(value)
    return recipe


def _share_cache(src: Path, dst: Path) -> None:
    """Copy a reply cache when it has more replies than the destination (a bigger SQLite file)."""
    if src.is_file() and (not dst.is_file() or src.stat().st_size > dst.stat().st_size):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def run_one(args: ExperimentArguments, recipe_file: Path, corpus: str, seed: int) -> dict | None:
    docs, questions, control = CORPORA[corpus]
    run_dir = Path(args.runs_dir) / args.name / f"{corpus}-s{seed}"
    shared = Path(args.runs_dir) / "cache" / f"{corpus}.sqlite"
    own = run_dir / "data" / "qa_pairs.jsonl.cache.sqlite"
    if not own.exists():
        _share_cache(shared, own)
    t0 = time.time()
    source_row = None
    if args.scale_from:
        source_row = scale_saved_run(args, recipe_file, run_dir, corpus, seed)
        if source_row is None:
            return None
        stage_seconds = {"scale + evaluate": round(time.time() - t0, 1)}
    elif args.entry == "bare":
        stage_seconds = run_bare(recipe_file, run_dir, docs, questions, control, seed)
        if stage_seconds is None:
            return None
    else:
        cmd = [sys.executable, "-m", "quickstart", "--recipe", str(recipe_file), "--docs", docs, "--eval_qa", questions,
               "--control", control, "--run_dir", str(run_dir), "--finetune_args", f"--seed {seed}"]
        print(f"[knowledge] {shlex.join(cmd)}", flush=True)
        rc = subprocess.call(cmd, cwd=REPO_ROOT)
        if rc != 0:
            print(f"[knowledge] {args.name} {corpus} seed {seed}: the main job failed (exit {rc}); see {run_dir}/quickstart.log")
            return None
        stage_seconds = {t["stage"]: t["seconds"] for t in json.loads((run_dir / "timings.json").read_text())}
    _share_cache(own, shared)
    extra = score_extra(run_dir, recipe_file, corpus)
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    know = _knowledge_set(results)
    ctrl = results["sets"].get("control")
    train = json.loads((run_dir / "adapter" / "train_summary.json").read_text())
    return {
        "name": args.name, "note": args.note, "corpus": corpus, "seed": seed,
        "held_out": know["summary"]["updated"]["contains"], "held_out_base": know["summary"]["base"]["contains"],
        "control": ctrl["summary"]["updated"]["contains"] if ctrl else None,
        "control_base": ctrl["summary"]["base"]["contains"] if ctrl else None,
        **baselines(results),
        **extra,
        "by_document": {d: v["updated"] for d, v in know.get("by_document", {}).items()},
        "train_rows": sum(1 for _ in open(run_dir / "data" / "qa_pairs.jsonl")),
        "train_tokens": train.get("tokens"), "train_steps": train.get("global_step"),
        "minutes": round((time.time() - t0) / 60 + (source_row["minutes"] if source_row else 0), 1),
        "stage_seconds": stage_seconds, "entry": args.entry,
        **({"scaled_from": {"run": f"{args.scale_from}/{corpus}-s{seed}", "date": source_row["date"],
                            "command": source_row["command"]}} if source_row else {}),
        "recipe": json.loads(json.dumps(load_recipe(recipe_file))),
        "command": "python benchmarks/knowledge.py " + shlex.join(
            ["--name", args.name, "--recipe", args.recipe, *(["--set", *args.set] if args.set else []),
             *(["--entry", args.entry] if args.entry != "quickstart" else []),
             *(["--runs_dir", args.runs_dir] if args.runs_dir != "runs/knowledge" else []),  # another reply cache
             *(["--scale_from", args.scale_from] if args.scale_from else []),
             "--corpus", corpus, "--seeds", str(seed)]),
        "host": _cpu(), "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def scale_saved_run(args: ExperimentArguments, recipe_file: Path, run_dir: Path, corpus: str, seed: int) -> dict | None:
    """``--scale_from``: copy the source run's data, scale its adapter to this recipe's ``adapter_scale`` and
    evaluate it as the main job does; the source run's row, or None (with the reason printed) when the
    source run is missing or its recipe differs in more than ``finetune.adapter_scale``."""
    from finetuning.scale import adapter_scale, scale_adapter

    src = Path(args.runs_dir) / args.scale_from / f"{corpus}-s{seed}"
    src_recipe = load_recipe(Path(args.runs_dir) / args.scale_from / "recipe.yaml")
    recipe = load_recipe(recipe_file)
    want = float(recipe.get("finetune", {}).get("adapter_scale", 1.0))
    have = float(src_recipe.get("finetune", {}).get("adapter_scale", 1.0))
    for r in (src_recipe, recipe):
        r.get("finetune", {}).pop("adapter_scale", None)
    rows = read_rows()
    source_row = next((r for r in rows if (r["name"], r["corpus"], r["seed"]) == (args.scale_from, corpus, seed)), None)
    problem = ("its recipe differs in more than finetune.adapter_scale" if src_recipe != recipe
               else "its recipe scales the adapter to 0: nothing is left to scale" if have == 0
               else "it has no row in " + str(RESULTS) if source_row is None
               else "it has no saved adapter" if not (src / "adapter" / "adapter_config.json").is_file() else "")
    if problem:
        print(f"[knowledge] --scale_from {args.scale_from}: {src} cannot be used: {problem}")
        return None
    if abs(adapter_scale(src / "adapter") - have) > 1e-6:
        print(f"[knowledge] {src / 'adapter'}: scaled by {adapter_scale(src / 'adapter')}, not by its recipe's {have}")
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "data", run_dir / "data", dirs_exist_ok=True)
    scale_adapter(src / "adapter", want / have, run_dir / "adapter")
    docs, questions, control = CORPORA[corpus]
    cmd = [sys.executable, "-m", "evaluation", "--recipe", str(recipe_file), "--qa_file", questions,
           "--control_file", control, "--open_book", docs, "--adapters", f"updated={run_dir / 'adapter'}",
           "--output_dir", str(run_dir / "eval")]
    print(f"[knowledge] {shlex.join(cmd)}", flush=True)
    with open(run_dir / "evaluate.log", "w", encoding="utf-8") as log:
        rc = subprocess.call(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        print(f"[knowledge] evaluating the scaled adapter failed (exit {rc}); see {run_dir / 'evaluate.log'}")
        return None
    return source_row


def baselines(results: dict) -> dict:
    """The reading baseline and the general-text forgetting measure of an evaluate.py results.json:
    ``held_out_open_book`` (the base model with each question's document in its prompt) and ``general_nll``,
    ``general_nll_base``, ``general_nll_change_pct`` (mean token NLL of the updated and base models on the
    general text, and the relative change in %); each left out when the evaluation did not measure it."""
    out = {}
    open_book = _knowledge_set(results)["summary"].get(OPEN_BOOK_LABEL)
    if open_book is not None:
        out["held_out_open_book"] = open_book["contains"]
    general = results.get("general_text") or {}
    if "updated" in general.get("nll", {}):
        out.update(general_nll=general["nll"]["updated"], general_nll_base=general["nll"].get(BASE_LABEL),
                   general_nll_change_pct=general["change_pct"].get("updated"))
    return out


def read_rows() -> list[dict]:
    """The rows of benchmarks/knowledge/results.jsonl (none before the first run)."""
    return [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines()] if RESULTS.is_file() else []


def _knowledge_set(results: dict) -> dict:
    """The new-knowledge set of an evaluate.py results.json (the one that is not the control set)."""
    return next(s for s in results["sets"].values() if s["kind"] == "knowledge")


def score_extra(run_dir: Path, recipe_file: Path, corpus: str) -> dict:
    """``held_out_extra``, ``held_out_descriptive``, ``control_extra`` and their ``*_base``: the run's adapter and
    the base model on the corpus's extra, descriptive and extra control questions (one evaluate.py into
    <run_dir>/eval_extra, each file its own set); empty for a corpus without extra questions."""
    if corpus not in EXTRA_QA:
        return {}
    out = run_dir / "eval_extra"
    qa_files = [EXTRA_QA[corpus], *([EXTRA_DESCRIPTIVE[corpus]] if corpus in EXTRA_DESCRIPTIVE else [])]
    # --general_text none: the run's own evaluation measured it on the same models
    cmd = [sys.executable, "evaluate.py", "--recipe", str(recipe_file), "--qa_file", ",".join(qa_files),
           "--control_file", EXTRA_CONTROL.get(corpus, "none"), "--adapters", f"updated={run_dir / 'adapter'}",
           "--general_text", "none", "--output_dir", str(out)]
    print(f"[knowledge] {shlex.join(cmd)}", flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "eval_extra.log", "w", encoding="utf-8") as log:
        rc = subprocess.call(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        print(f"[knowledge] scoring the extra questions failed (exit {rc}); see {run_dir / 'eval_extra.log'}")
        return {}
    results = json.loads((out / "results.json").read_text())
    scores = {}
    # evaluate.py names each set after its file's stem
    for key, qa_file in (("held_out_extra", EXTRA_QA[corpus]), ("held_out_descriptive", EXTRA_DESCRIPTIVE.get(corpus))):
        if qa_file:
            summary = results["sets"][Path(qa_file).stem]["summary"]
            scores.update({key: summary["updated"]["contains"], f"{key}_base": summary["base"]["contains"]})
    if "control" in results["sets"]:
        ctrl = results["sets"]["control"]["summary"]
        scores.update(control_extra=ctrl["updated"]["contains"], control_extra_base=ctrl["base"]["contains"])
    return scores


def rescore_rows(args: ExperimentArguments) -> int:
    """``--score_extra``: the extra-question scores of ``--name``'s saved dev runs, written into their rows."""
    rows = read_rows()
    seeds = {int(s) for s in args.seeds.split(",") if s.strip()}
    done = 0
    for row in rows:
        if row["name"] != args.name or row["corpus"] not in EXTRA_QA or row["seed"] not in seeds:
            continue
        run_dir = Path(args.runs_dir) / args.name / f"{row['corpus']}-s{row['seed']}"
        recipe_file = Path(args.runs_dir) / args.name / "recipe.yaml"
        if not (run_dir / "adapter" / "adapter_config.json").is_file() and not (run_dir / "adapter" / "config.json").is_file():
            print(f"[knowledge] {run_dir}: no saved adapter, not scored")
            continue
        extra = score_extra(run_dir.resolve(), recipe_file.resolve(), row["corpus"])
        if extra:
            row.update(extra, extra_scored=time.strftime("%Y-%m-%d %H:%M"))
            done += 1
            print(f"[knowledge] {args.name} {row['corpus']} seed {row['seed']}: extra questions "
                  f"{extra['held_out_extra']:.3f} (base {extra['held_out_extra_base']:.3f})"
                  + (f", descriptive questions {extra['held_out_descriptive']:.3f} "
                     f"(base {extra['held_out_descriptive_base']:.3f})" if "held_out_descriptive" in extra else "")
                  + (f", extra control {extra['control_extra']:.3f} (base {extra['control_extra_base']:.3f})"
                     if "control_extra" in extra else ""))
    RESULTS.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return 0 if done else 1


def run_bare(recipe_file: Path, run_dir: Path, docs: str, questions: str, control: str, seed: int) -> dict | None:
    """The four-command chain's first three commands, as typed by a user (paths, recipe, seed only), each
    logged to <run_dir>/<stage>.log; the seconds per stage, or None when one fails."""
    qa = run_dir / "data" / "qa_pairs.jsonl"
    recipe = ["--recipe", str(recipe_file)]
    stages = [
        ("collect", ["bash", "shells/collect_data.sh", *recipe, "--data_path", docs, "--save_path", str(qa)]),
        ("fine-tune", ["bash", "shells/finetune_lora_ds.sh", "-d", str(qa), "-o", str(run_dir / "adapter"), *recipe,
                       "--", "--seed", str(seed), "--loss_dir", str(run_dir / "losses")]),
        ("evaluate", ["bash", "shells/evaluate.sh", *recipe, "--qa_file", questions, "--control_file", control,
                      "--open_book", docs, "--adapters", f"updated={run_dir / 'adapter'}",
                      "--output_dir", str(run_dir / "eval")]),
    ]
    seconds: dict[str, float] = {}
    run_dir.mkdir(parents=True, exist_ok=True)
    for stage, cmd in stages:
        print(f"[knowledge] {shlex.join(cmd)}", flush=True)
        t = time.time()
        with open(run_dir / f"{stage}.log", "w", encoding="utf-8") as log:
            rc = subprocess.call(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        seconds[stage] = round(time.time() - t, 1)
        if rc != 0:
            print(f"[knowledge] {stage} failed (exit {rc}); see {run_dir / (stage + '.log')}")
            return None
    seconds["total"] = round(sum(seconds.values()), 1)
    return seconds


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def _mean_spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {(max(values) - min(values)) / 2:.3f}"


def summary_table(rows: list[dict]) -> str:
    """One line per (experiment, corpus): held-out and control accuracy, mean ± half-range over seeds; the
    gain over the base model (mean held-out minus base); the reading baseline (open-book, the base model with
    the document in its prompt); the general-text NLL change of the updated model against the base, in %.
    Rows made before a measure existed show "-" for it.

    An experiment's note is the first one given under its name, so a later run of the same experiment on
    another corpus or seed need not repeat ``--note``."""
    groups: dict[tuple[str, str], list[dict]] = {}
    notes: dict[str, str] = {}
    for r in rows:
        groups.setdefault((r["name"], r["corpus"]), []).append(r)
        if r.get("note") and r["name"] not in notes:
            notes[r["name"]] = r["note"]
    body = []
    for (name, corpus), rs in groups.items():
        open_book = [r["held_out_open_book"] for r in rs if "held_out_open_book" in r]
        nll = [r["general_nll_change_pct"] for r in rs if r.get("general_nll_change_pct") is not None]
        body.append([name, corpus, ",".join(str(r["seed"]) for r in rs), _mean_spread([r["held_out"] for r in rs]),
                     f"{rs[0]['held_out_base']:.3f}",
                     f"{statistics.mean(r['held_out'] - r['held_out_base'] for r in rs):+.3f}",
                     f"{open_book[0]:.3f}" if open_book else "-",
                     _mean_spread([r["control"] for r in rs if r["control"] is not None]),
                     f"{rs[0]['control_base']:.3f}" if rs[0]["control_base"] is not None else "-",
                     f"{statistics.mean(nll):+.2f}%" if nll else "-",
                     _mean_spread([r["held_out_extra"] for r in rs if "held_out_extra" in r]),
                     _mean_spread([r["held_out_descriptive"] for r in rs if "held_out_descriptive" in r]),
                     _mean_spread([r["control_extra"] for r in rs if "control_extra" in r]),
                     f"{rs[0]['control_extra_base']:.3f}" if "control_extra_base" in rs[0] else "-",
                     f"{statistics.mean(r['minutes'] for r in rs):.0f}", notes.get(name, "")])
    return format_table(["experiment", "corpus", "seeds", "held-out", "base", "gain", "open-book", "control", "base",
                         "NLL Δ", "dev+40", "dev-desc", "ctrl+40", "base", "min", "note"], body,
                        align="lllrrrrrrrrrrrrl")


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(ExperimentArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
                             ).parse_args_into_dataclasses(args=argv)
    if args.score_extra:
        rc = rescore_rows(args)
        print(write_table())
        return rc
    recipe = resolved_recipe(args.recipe, args.set)
    recipe_file = Path(args.runs_dir) / args.name / "recipe.yaml"
    recipe_file.parent.mkdir(parents=True, exist_ok=True)
    recipe_file.write_text(f"# {args.name}: {args.recipe} with {' '.join(args.set) or 'no changes'}\n"
                           + yaml.safe_dump(recipe, sort_keys=False))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    for corpus in [c.strip() for c in args.corpus.split(",") if c.strip()]:
        for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
            row = run_one(args, recipe_file.resolve(), corpus, seed)
            if row is None:
                failed.append(f"{corpus} seed {seed}")
                continue
            with open(RESULTS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    print(write_table())
    if failed:  # a queue of experiments must see it: the table above simply lacks the row
        print(f"[knowledge] {args.name}: {len(failed)} run(s) failed and were not recorded: {', '.join(failed)}")
        return 1
    return 0


def write_table() -> str:
    """Rewrite benchmarks/knowledge/RESULTS.md from results.jsonl (also after rows are added by hand from
    another checkout's runs) and return the table."""
    rows = read_rows()
    table = summary_table(rows)
    TABLE.write_text("# Recipe experiments (benchmarks/knowledge.py)\n\nHeld-out and control: contains-accuracy of "
                     "the updated model, mean ± half-range over the seeds; base: the base model; gain: held-out minus "
                     "base, mean over the seeds; open-book: the base model answering with each question's document in "
                     "its prompt (the line closed-book training must cross); NLL Δ: the updated model's mean token NLL "
                     "on examples/general_text.jsonl against the base model's, mean over the seeds (a rise is "
                     "forgetting). Tune on dev and external_dev (examples/external_dev: SQuAD 2.0 paragraphs and "
                     "crowd-written questions, CC BY-SA 4.0); test is examples/test_corpus (read for tuning: a second dev "
                     "set); test2 is examples/test_corpus_v2 (frozen, reported once per adopted recipe); dev+40: the dev run on benchmarks/knowledge/dev_extra_qa.jsonl "
                     "(held_out_extra_base in results.jsonl: the base model); dev-desc: the dev run on "
                     "benchmarks/knowledge/dev_descriptive_qa.jsonl, questions that name entities by description or "
                     "ask why/how (held_out_descriptive_base: the base model); ctrl+40 and its base: on "
                     "benchmarks/knowledge/dev_extra_control.jsonl. Each row's command is in "
                     "results.jsonl.\n\n```\n" + table + "\n```\n")
    return table


if __name__ == "__main__":
    sys.exit(main())
