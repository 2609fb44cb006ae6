"""The main job (quickstart/run.py): one recipe with the bare commands, resume by stamps, random kills."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quickstart.run import (
    HELD_OUT_FRACTION,
    QuickstartArguments,
    collect_command,
    evaluate_command,
    finetune_command,
    make_plan,
)

ROOT = Path(__file__).resolve().parents[2]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _finetune_argv(cmd: list[str]) -> list[str]:
    """finetune.py's argv as the launcher builds it from a launcher command line."""
    from finetuning.launch import build

    launcher_args = cmd[cmd.index("finetuning.launch") + 1:]
    _, torchrun, _ = build(launcher_args, environ={"GPUS_PER_NODE": "0"})
    return torchrun[torchrun.index(str(ROOT / "finetune.py")) + 1:]


def _settings(argv: list[str]) -> dict:
    """Every resolved fine-tuning setting except where files go (paths differ by design)."""
    from finetuning.args import parse_args

    parsed = parse_args(argv)
    paths = {"output_dir", "logging_dir", "data_path", "run_name", "loss_dir", "resume_from_checkpoint",
             "model_name_or_path"}
    out = {}
    for obj in parsed:
        for k, v in vars(obj).items():
            if k not in paths and not k.startswith("_"):
                out[f"{type(obj).__name__}.{k}"] = repr(v)
    return out


def test_quickstart_and_the_bare_chain_train_with_the_same_settings(tmp_path, monkeypatch):
    """The quickstart passes paths only: whatever the recipe says, both paths resolve to the same settings."""
    from utils.recipe import recipe_section

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "qa_pairs.jsonl").write_text("")  # where the bare collector writes
    plan = make_plan(QuickstartArguments(run_dir=str(tmp_path / "run")))
    plan.qa.parent.mkdir(parents=True)
    plan.qa.write_text("")
    quick = _finetune_argv(finetune_command(QuickstartArguments(), plan))
    bare = _finetune_argv(["python", "-m", "finetuning.launch"])  # bash shells/finetune_lora_ds.sh, typed bare
    assert _settings(quick) == _settings(bare)
    recipe = recipe_section(plan.recipe, "finetune")
    assert _settings(bare)["TrainingArguments.learning_rate"] == repr(float(recipe["learning_rate"]))
    assert _settings(bare)["DataArguments.replay_prompts"] == repr(recipe["replay_prompts"])


def test_quickstart_collects_with_the_bare_collectors_settings(tmp_path):
    from data_processor.config import parse_args

    plan = make_plan(QuickstartArguments(run_dir=str(tmp_path / "run")))
    quick = parse_args(collect_command(QuickstartArguments(), plan)[3:])
    bare = parse_args([])
    differ = {k for k in vars(bare) if getattr(bare, k) != getattr(quick, k)}
    assert differ <= {"data_path", "save_path", "overwrite", "recipe"}, differ


def test_questions_about_documents_the_run_did_not_read_leave_out_the_reading_baseline(tmp_path, caplog):
    """evaluate.py --open_book would stop on them after the whole training: the quickstart warns up front
    and evaluates closed-book only."""
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "a.txt").write_text("Something happened in 1900.")
    questions = tmp_path / "q.jsonl"
    _write_jsonl(questions, [{"question": "When did it happen?", "answers": ["1900"], "doc": "a.txt"},
                             {"question": "Who came?", "answers": ["Ann"], "doc": "b.txt"}])
    args = QuickstartArguments(run_dir=str(tmp_path / "run"), docs=str(docs), eval_qa=str(questions))
    plan = make_plan(args)
    with caplog.at_level("WARNING", logger="quickstart"):
        assert "--open_book" not in evaluate_command(args, plan)
    assert "q.jsonl:2" in caplog.text and "'b.txt' is not in" in caplog.text
    _write_jsonl(questions, [{"question": "When did it happen?", "answers": ["1900"], "doc": "a.txt"}])
    assert "--open_book" in evaluate_command(args, plan)


def test_documents_without_questions_are_evaluated_on_the_collectors_held_out_split(tmp_path):
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "a.txt").write_text("Something happened in 1900.")
    args = QuickstartArguments(run_dir=str(tmp_path / "run"), docs=str(docs))
    plan = make_plan(args)
    assert plan.held_out == plan.qa.with_name("qa_pairs.eval.jsonl")
    cmd = collect_command(args, plan)
    assert cmd[cmd.index("--eval_fraction") + 1] == str(HELD_OUT_FRACTION)
    plan.held_out.parent.mkdir(parents=True)
    _write_jsonl(plan.held_out, [{"question": "When did it happen?", "answers": ["1900"], "file_name": "a.txt"}])
    assert str(plan.held_out) in evaluate_command(args, plan)
    evaluate = evaluate_command(args, plan)  # the reading baseline reads the run's documents
    assert evaluate[evaluate.index("--open_book") + 1] == str(plan.docs)
    given = QuickstartArguments(run_dir=str(tmp_path / "run3"), docs=str(docs), train_data=str(docs / "a.txt"))
    assert "--open_book" not in evaluate_command(given, make_plan(given))  # trained on rows, not on these documents
    # The sample documents come with hand-written questions; then nothing is set aside.
    sample = make_plan(QuickstartArguments(run_dir=str(tmp_path / "run2")))
    assert sample.held_out == (ROOT / "examples" / "eval_qa.jsonl").resolve()
    assert "--eval_fraction" not in collect_command(QuickstartArguments(), sample)


def test_bad_inputs_are_named_before_any_work(tmp_path, caplog):
    from quickstart.run import main

    assert main(["--docs", str(tmp_path / "nope"), "--run_dir", str(tmp_path / "r")]) == 2
    assert "no such documents folder" in caplog.text
    assert main(["--eval_qa", str(tmp_path / "missing.jsonl"), "--run_dir", str(tmp_path / "r")]) == 2
    assert "no such QA file" in caplog.text
    assert main(["--recipe", str(tmp_path / "none.yaml"), "--run_dir", str(tmp_path / "r")]) == 2
    assert "not found" in caplog.text
    assert not (tmp_path / "r" / "adapter").exists()


# -- end to end on the tiny model ------------------------------------------------------------------
def _quickstart(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "quickstart", "--small", *args]


def _env() -> dict:
    return {**os.environ, "KU_NO_INSTALL": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}


def _processes_of(run: Path) -> list[str]:
    """Command lines of the processes that mention ``run`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run) in cmd:
            found.append(cmd[:200])
    return found


def _table(run: Path) -> str:
    from evaluation.report import results_table

    return results_table(json.loads((run / "eval" / "results.json").read_text()))


@pytest.fixture
def sample(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "drennick_sport.txt").write_text((ROOT / "examples" / "docs" / "drennick_sport.txt").read_text())
    questions = tmp_path / "q.jsonl"
    rows = [json.loads(line) for line in open(ROOT / "examples" / "eval_qa.jsonl")]
    _write_jsonl(questions, [r for r in rows if r["doc"] == "drennick_sport.txt"][:5])  # about the one document
    return docs, questions


@pytest.mark.slow
@pytest.mark.integration
def test_killed_at_a_random_moment_the_same_command_finishes_with_the_same_table(tmp_path, tiny_model_dir, sample):
    """The whole chain on the tiny model (generator and learner): run it once undisturbed, then run it
    again in a fresh folder, SIGKILL the whole process group at a random moment, and run the same command:
    it must finish with the table of the undisturbed run."""
    docs, questions = sample
    common = ["--model", str(tiny_model_dir), "--docs", str(docs), "--eval_qa", str(questions),
              "--control", str(questions)]
    t0 = time.time()
    ref = subprocess.run(_quickstart([*common, "--run_dir", str(tmp_path / "ref")]), cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=900)
    duration = time.time() - t0
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    assert "where the time went" in ref.stdout and "updated" in ref.stdout

    run = tmp_path / "killed"
    cmd = _quickstart([*common, "--run_dir", str(run)])
    moment = random.Random().uniform(2.0, max(3.0, duration - 2.0))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # Nothing of the killed run may live on (a training worker whose launcher died included).
        deadline = time.time() + 30
        while _processes_of(run) and time.time() < deadline:
            time.sleep(0.5)
        assert not _processes_of(run), f"killed after {moment:.1f} s, still running: {_processes_of(run)}"
    again = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, f"killed after {moment:.1f} s; " + again.stdout[-3000:] + again.stderr[-3000:]
    assert _table(run) == _table(tmp_path / "ref"), f"killed after {moment:.1f} s"


@pytest.mark.slow
@pytest.mark.integration
def test_given_data_then_a_rerun_skips_every_finished_stage(tmp_path, tiny_model_dir):
    train = _write_jsonl(tmp_path / "train.jsonl", [
        {"id": f"r{i}", "conversations": [{"from": "user", "value": q}, {"from": "assistant", "value": a}]}
        for i, (q, a) in enumerate([("Where is the Saltlight Festival held?", "On Quillmere."),
                                    ("When did the Saltlight Festival begin?", "In 1847."),
                                    ("Who invented drennick?", "Bartholomew Ashgrove."),
                                    ("What is the Emberlark?", "A solar oven.")])
    ])
    run = tmp_path / "run"
    cmd = _quickstart(["--model", str(tiny_model_dir), "--train_data", str(train), "--run_dir", str(run)])
    first = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = json.loads((run / "eval" / "results.json").read_text())
    assert [m["label"] for m in results["models"]] == ["base", "updated"]
    assert set(results["sets"]) == {"eval_qa", "control"}
    assert (run / "adapter" / "adapter_config.json").is_file() and (run / "losses" / "quickstart.npy").is_file()
    timings = json.loads((run / "timings.json").read_text())
    assert [t["stage"] for t in timings] == ["collect (given data)", "fine-tune", "evaluate", "total"]
    again = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("up to date, skipped") == 3
    assert _table(run) in again.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_own_documents_without_questions_end_to_end(tmp_path, tiny_model_dir, default_model_dir, sample):
    """The real 135M lists the facts of one document (only the facts: the questions are made by rule, which
    keeps this test short), some questions are set aside; the tiny model is trained on the rest and asked
    the set-aside ones."""
    docs, _ = sample
    run = tmp_path / "run"
    rules_only = "--qa_amount_per_fact 0 --personas_per_document 0 --wh_spans_per_fact 2"
    proc = subprocess.run(_quickstart(["--model", str(tiny_model_dir), "--generator", "default", "--docs", str(docs),
                                       "--run_dir", str(run), "--collect_args", rules_only]),
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    held_out = [json.loads(line) for line in (run / "data" / "qa_pairs.eval.jsonl").read_text().splitlines()]
    train = (run / "data" / "qa_pairs.jsonl").read_text()
    assert held_out and all(q["question"] not in train for q in held_out)
    results = json.loads((run / "eval" / "results.json").read_text())
    assert set(results["sets"]) == {"qa_pairs.eval", "control"}


@pytest.mark.slow
@pytest.mark.integration
def test_chinese_sample_end_to_end(tmp_path, tiny_model_dir):
    """The zh sample corpus through the reduced main job with the zh prompts: rows about both documents,
    the zh questions and control set found beside the documents, and replies scored per character."""
    from evaluation.scoring import contains_match

    run = tmp_path / "run"
    proc = subprocess.run(_quickstart(["--model", str(tiny_model_dir), "--docs", str(ROOT / "examples" / "zh" / "docs"),
                                       "--language", "zh", "--run_dir", str(run)]),
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "data" / "qa_pairs.jsonl").read_text().splitlines()]
    assert {r["file_name"] for r in rows} == {"moxiang_ink.txt", "qingshi_bridge.txt"}
    results = json.loads((run / "eval" / "results.json").read_text())
    assert set(results["sets"]) == {"eval_qa", "control"}
    assert results["sets"]["eval_qa"]["files"] == [str((ROOT / "examples" / "zh" / "eval_qa.jsonl").resolve())]
    for q in results["sets"]["eval_qa"]["questions"]:  # the table's numbers are the replies' scores
        for pred in q["predictions"].values():
            assert pred["contains"] == contains_match(pred["text"], q["answers"])


def test_no_held_out_question_stops_before_training(tmp_path, caplog):
    """A collection too small to set a question aside (or an empty --eval_qa) fails right after collection,
    naming the file, instead of after the whole fine-tuning."""
    from quickstart.run import main

    data = _write_jsonl(tmp_path / "rows.jsonl", [{"conversations": [
        {"from": "user", "value": "When was it?"}, {"from": "assistant", "value": "In 1900."}]}])
    empty = tmp_path / "q.jsonl"
    empty.write_text("")
    run = tmp_path / "run"
    with caplog.at_level("ERROR", logger="quickstart"):
        assert main(["--train_data", str(data), "--eval_qa", str(empty), "--run_dir", str(run)]) == 1
    assert "no held-out questions to ask" in caplog.text and str(empty) in caplog.text
    assert not (run / "adapter").exists()
