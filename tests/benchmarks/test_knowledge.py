"""benchmarks/knowledge.py: the recipe overrides and the bare chain's commands (no model is run)."""
import json
import re

import pytest

from benchmarks import knowledge


def test_overrides_change_one_key_and_keep_the_rest():
    recipe = knowledge.resolved_recipe("configs/recipes/default.yaml", ["finetune.num_train_epochs=2"])
    assert recipe["finetune"]["num_train_epochs"] == 2
    assert recipe["finetune"]["learning_rate"] == knowledge.load_recipe("configs/recipes/default.yaml")["finetune"]["learning_rate"]
    with pytest.raises(ValueError, match="section.key=value"):
        knowledge.resolved_recipe("configs/recipes/default.yaml", ["epochs=2"])


def test_bare_entry_runs_the_user_commands_with_paths_recipe_and_seed_only(tmp_path, monkeypatch):
    calls = []

    def fake_call(cmd, cwd=None, stdout=None, stderr=None):
        calls.append(cmd)
        return 0

    monkeypatch.setattr(knowledge.subprocess, "call", fake_call)
    seconds = knowledge.run_bare(tmp_path / "r.yaml", tmp_path / "run", "docs", "q.jsonl", "c.jsonl", 7)
    assert [c[1] for c in calls] == ["shells/collect_data.sh", "shells/finetune_lora_ds.sh", "shells/evaluate.sh"]
    for cmd in calls:
        assert cmd[cmd.index("--recipe") + 1] == str(tmp_path / "r.yaml")
    flags = {a for cmd in calls for a in cmd if a.startswith("--")}
    assert flags <= {"--recipe", "--data_path", "--save_path", "--", "--seed", "--loss_dir", "--qa_file",
                     "--control_file", "--open_book", "--adapters", "--output_dir"}, \
        "a training or collection setting outside the recipe"
    assert calls[1][calls[1].index("--seed") + 1] == "7"
    assert calls[2][calls[2].index("--open_book") + 1] == "docs"  # the reading baseline's documents
    assert set(seconds) == {"collect", "fine-tune", "evaluate", "total"}


def test_bare_entry_stops_at_the_first_failing_command(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(knowledge.subprocess, "call", lambda cmd, **k: calls.append(cmd) or 3)
    assert knowledge.run_bare(tmp_path / "r.yaml", tmp_path / "run", "docs", "q.jsonl", "c.jsonl", 7) is None
    assert len(calls) == 1 and (tmp_path / "run" / "collect.log").is_file()


def test_summary_table_gives_mean_and_half_range_over_seeds():
    rows = [{"name": "x", "corpus": "dev", "seed": s, "held_out": h, "held_out_base": 0.0, "control": 0.7,
             "control_base": 0.7, "minutes": 30, "note": ""} for s, h in ((42, 0.3), (7, 0.2))]
    table = knowledge.summary_table(json.loads(json.dumps(rows)))
    assert "0.250 ± 0.050" in table and "42,7" in table


def test_summary_table_shows_gain_open_book_and_general_text_change():
    rows = [{"name": "x", "corpus": "external_dev", "seed": s, "held_out": h, "held_out_base": 0.1,
             "held_out_open_book": 0.4, "control": 0.7, "control_base": 0.7, "general_nll": 2.5,
             "general_nll_base": 2.4, "general_nll_change_pct": pct, "minutes": 30, "note": ""}
            for s, h, pct in ((42, 0.5, 4.0), (7, 0.3, 2.0))]
    old = {"name": "y", "corpus": "dev", "seed": 42, "held_out": 0.3, "held_out_base": 0.0, "control": 0.7,
           "control_base": 0.7, "minutes": 30, "note": ""}  # a row from before these measures
    lines = knowledge.summary_table(rows + [old]).splitlines()
    header = lines[0].split()
    x = lines[2].split()
    assert header[5:8] == ["gain", "open-book", "control"] and header[9:11] == ["NLL", "Δ"]
    assert x[1] == "external_dev" and x[7:9] == ["+0.300", "0.400"] and "+3.00%" in x
    assert lines[3].split()[5:7] == ["+0.300", "-"]


def test_baselines_read_open_book_and_general_text_from_results():
    results = {"sets": {"q": {"kind": "knowledge", "summary": {"base": {"contains": 0.1}, "updated": {"contains": 0.5},
                                                               "open_book": {"contains": 0.4}}}},
               "general_text": {"nll": {"base": 2.0, "updated": 2.1}, "change_pct": {"updated": 5.0}}}
    assert knowledge.baselines(results) == {"held_out_open_book": 0.4, "general_nll": 2.1, "general_nll_base": 2.0,
                                            "general_nll_change_pct": 5.0}
    assert knowledge.baselines({"sets": {"q": {"kind": "knowledge", "summary": {"base": {}, "updated": {}}}}}) == {}


def test_external_dev_is_a_corpus():
    docs, questions, control = knowledge.CORPORA["external_dev"]
    assert (knowledge.REPO_ROOT / docs / "rhine_course.txt").is_file()
    assert (knowledge.REPO_ROOT / questions).is_file() and (knowledge.REPO_ROOT / control).is_file()
    assert knowledge.ExperimentArguments(name="x", corpus="dev,external_dev").corpus == "dev,external_dev"
    with pytest.raises(ValueError, match="squad"):
        knowledge.ExperimentArguments(name="x", corpus="dev,squad")


def test_summary_table_gives_each_experiment_the_note_of_its_first_run():
    rows = [{"name": "x", "corpus": c, "seed": 42, "held_out": 0.3, "held_out_base": 0.0, "control": 0.7,
             "control_base": 0.7, "minutes": 30, "note": n} for c, n in (("dev", "what x changes"), ("test", ""))]
    lines = [line for line in knowledge.summary_table(rows).splitlines() if line.startswith("x ")]
    assert len(lines) == 2 and all(line.endswith("what x changes") for line in lines)


def _fake_evaluate(calls, updated=0.4, base=0.0, descriptive=0.2):
    """A subprocess.call that records the command and writes the results.json evaluate.py would: one set per
    --qa_file file, named after its stem; the descriptive set scores ``descriptive`` (base 0.05)."""
    def call(cmd, cwd=None, stdout=None, stderr=None):
        calls.append(cmd)
        out = knowledge.Path(cmd[cmd.index("--output_dir") + 1])
        out.mkdir(parents=True, exist_ok=True)
        sets = {}
        for f in cmd[cmd.index("--qa_file") + 1].split(","):
            score = (descriptive, 0.05) if f == knowledge.EXTRA_DESCRIPTIVE["dev"] else (updated, base)
            sets[knowledge.Path(f).stem] = {"kind": "knowledge",
                                            "summary": {"updated": {"contains": score[0]}, "base": {"contains": score[1]}}}
        if cmd[cmd.index("--control_file") + 1] != "none":
            sets["control"] = {"kind": "control", "summary": {"updated": {"contains": 0.6}, "base": {"contains": 0.7}}}
        (out / "results.json").write_text(json.dumps({"sets": sets}))
        return 0
    return call


def test_dev_runs_are_scored_on_the_extra_questions_and_test_runs_are_not(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(knowledge.subprocess, "call", _fake_evaluate(calls))
    assert knowledge.score_extra(tmp_path / "run", tmp_path / "r.yaml", "test") == {} and not calls
    extra = knowledge.score_extra(tmp_path / "run", tmp_path / "r.yaml", "dev")
    assert extra == {"held_out_extra": 0.4, "held_out_extra_base": 0.0, "held_out_descriptive": 0.2,
                     "held_out_descriptive_base": 0.05, "control_extra": 0.6, "control_extra_base": 0.7}
    cmd = calls[0]
    # one evaluation for both question files, into the folder whose cached replies a re-score reuses
    assert cmd[cmd.index("--qa_file") + 1] == f"{knowledge.EXTRA_QA['dev']},{knowledge.EXTRA_DESCRIPTIVE['dev']}"
    assert cmd[cmd.index("--output_dir") + 1] == str(tmp_path / "run" / "eval_extra")
    assert cmd[cmd.index("--control_file") + 1] == knowledge.EXTRA_CONTROL["dev"]
    assert cmd[cmd.index("--adapters") + 1] == f"updated={tmp_path / 'run' / 'adapter'}"
    questions = [json.loads(line) for line in (knowledge.REPO_ROOT / knowledge.EXTRA_QA["dev"]).read_text().splitlines()]
    own = {json.loads(line)["question"] for line in (knowledge.REPO_ROOT / "examples/eval_qa.jsonl").read_text().splitlines()}
    assert len(questions) == 40 and not own & {q["question"] for q in questions}
    assert all(q["answers"] and q["doc"] for q in questions)


def test_the_extra_control_questions_are_new_general_questions():
    questions = [json.loads(line) for line in
                 (knowledge.REPO_ROOT / knowledge.EXTRA_CONTROL["dev"]).read_text().splitlines()]
    controls = {json.loads(line)["question"].lower()
                for f in ("examples/control_qa.jsonl", "examples/test_corpus/control_qa.jsonl")
                for line in (knowledge.REPO_ROOT / f).read_text().splitlines()}
    assert len(questions) == 40 and len({q["question"] for q in questions}) == 40
    assert not controls & {q["question"].lower() for q in questions}
    assert all(q["answers"] and q["doc"] == "general" for q in questions)


def test_score_extra_updates_the_saved_runs_rows_in_place(tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    rows = [{"name": n, "corpus": c, "seed": s, "held_out": 0.3, "held_out_base": 0.0, "control": 0.7,
             "control_base": 0.7, "minutes": 30, "note": ""}
            for n, c, s in (("x", "dev", 42), ("x", "dev", 7), ("x", "test", 42), ("y", "dev", 42))]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for seed in (42, 7):
        (tmp_path / "runs" / "x" / f"dev-s{seed}" / "adapter").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "dev-s42" / "adapter" / "adapter_config.json").write_text("{}")  # s7 has no adapter
    monkeypatch.setattr(knowledge, "RESULTS", results)
    monkeypatch.setattr(knowledge, "TABLE", tmp_path / "RESULTS.md")
    calls = []
    monkeypatch.setattr(knowledge.subprocess, "call", _fake_evaluate(calls, updated=0.45))
    assert knowledge.main(["--name", "x", "--score_extra", "--seeds", "42,7", "--runs_dir", str(tmp_path / "runs")]) == 0
    after = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r.get("held_out_extra") for r in after] == [0.45, None, None, None] and len(calls) == 1
    assert [r.get("control_extra") for r in after] == [0.6, None, None, None]
    assert [r.get("held_out_descriptive") for r in after] == [0.2, None, None, None]
    assert after[0]["held_out_descriptive_base"] == 0.05
    table = (tmp_path / "RESULTS.md").read_text()
    assert "0.450" in table and "0.600" in table


def test_the_table_shows_the_descriptive_score_beside_dev_40():
    rows = [{"name": "x", "corpus": "dev", "seed": s, "held_out": 0.3, "held_out_base": 0.0, "control": 0.7,
             "control_base": 0.7, "held_out_extra": 0.5, "held_out_descriptive": d, "control_extra": 0.8,
             "control_extra_base": 0.9, "minutes": 30, "note": ""} for s, d in ((42, 0.1), (7, 0.3))]
    old = {"name": "y", "corpus": "dev", "seed": 42, "held_out": 0.3, "held_out_base": 0.0, "control": 0.7,
           "control_base": 0.7, "held_out_extra": 0.5, "minutes": 30, "note": ""}  # scored before the set existed
    # columns are two spaces apart; a cell ("0.200 ± 0.100", "NLL Δ") has single spaces only
    header, _, x, y = (re.split(r"\s{2,}", line.strip()) for line in knowledge.summary_table(rows + [old]).splitlines())
    i = header.index("dev-desc")
    assert header[i - 1:i + 2] == ["dev+40", "dev-desc", "ctrl+40"]
    assert x[i - 1:i + 2] == ["0.500 ± 0.000", "0.200 ± 0.100", "0.800 ± 0.000"]
    assert y[i - 1:i + 2] == ["0.500", "-", "-"]


def _saved_run(runs, name, recipe, corpus="dev", seed=42):
    """A finished run folder as knowledge.py leaves one: recipe, data, a (two-tensor) LoRA adapter."""
    import torch
    from safetensors.torch import save_file

    (runs / name).mkdir(parents=True, exist_ok=True)
    (runs / name / "recipe.yaml").write_text(knowledge.yaml.safe_dump(recipe))
    run = runs / name / f"{corpus}-s{seed}"
    (run / "data").mkdir(parents=True)
    (run / "data" / "qa_pairs.jsonl").write_text('{"id": 0}\n{"id": 1}\n')
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": False}))
    (run / "adapter" / "train_summary.json").write_text(json.dumps({"tokens": 10, "global_step": 3}))
    save_file({"m.q_proj.lora_A.weight": torch.ones(2, 4), "m.q_proj.lora_B.weight": torch.ones(4, 2)},
              str(run / "adapter" / "adapter_model.safetensors"))
    return run


def test_scale_from_evaluates_a_saved_runs_adapter_scaled_instead_of_training(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    runs, results = tmp_path / "runs", tmp_path / "results.jsonl"
    recipe = knowledge.resolved_recipe("configs/recipes/default.yaml", ["collect.wh_keywords=1"])
    _saved_run(runs, "src", recipe)
    results.write_text(json.dumps({"name": "src", "corpus": "dev", "seed": 42, "minutes": 50.0, "date": "d",
                                   "command": "python benchmarks/knowledge.py --name src", "held_out": 0.55,
                                   "held_out_base": 0.0, "control": 0.6, "control_base": 0.7}) + "\n")
    monkeypatch.setattr(knowledge, "RESULTS", results)
    monkeypatch.setattr(knowledge, "TABLE", tmp_path / "RESULTS.md")
    calls = []

    def fake_call(cmd, cwd=None, stdout=None, stderr=None):
        calls.append(cmd)
        out = knowledge.Path(cmd[cmd.index("--output_dir") + 1])
        out.mkdir(parents=True, exist_ok=True)
        summary = {"updated": {"contains": 0.5}, "base": {"contains": 0.0}}
        ctrl = {"updated": {"contains": 0.7}, "base": {"contains": 0.7}}
        # as evaluate.py does: one set per --qa_file file, named after its stem
        sets = {knowledge.Path(f).stem: {"kind": "knowledge", "summary": summary, "by_document": {}}
                for f in cmd[cmd.index("--qa_file") + 1].split(",")}
        (out / "results.json").write_text(json.dumps({"sets": {**sets, "control": {"kind": "control", "summary": ctrl}}}))
        return 0

    monkeypatch.setattr(knowledge.subprocess, "call", fake_call)
    argv = ["--name", "scaled", "--set", "collect.wh_keywords=1", "finetune.adapter_scale=0.5", "--scale_from", "src",
            "--runs_dir", str(runs)]
    assert knowledge.main(argv) == 0
    assert not any("quickstart" in c for cmd in calls for c in cmd)  # nothing trained
    weights = load_file(str(runs / "scaled" / "dev-s42" / "adapter" / "adapter_model.safetensors"))
    assert weights["m.q_proj.lora_B.weight"].eq(0.5).all() and weights["m.q_proj.lora_A.weight"].eq(1).all()
    row = json.loads(results.read_text().splitlines()[-1])
    assert row["name"] == "scaled" and row["held_out"] == 0.5 and row["train_rows"] == 2
    assert row["scaled_from"]["run"] == "src/dev-s42" and 50 <= row["minutes"] < 51
    assert "--scale_from src" in row["command"] and row["recipe"]["finetune"]["adapter_scale"] == 0.5


def test_scale_from_refuses_a_source_trained_with_other_settings(tmp_path, monkeypatch, capsys):
    runs, results = tmp_path / "runs", tmp_path / "results.jsonl"
    _saved_run(runs, "src", knowledge.resolved_recipe("configs/recipes/default.yaml", ["finetune.num_train_epochs=3"]))
    results.write_text(json.dumps({"name": "src", "corpus": "dev", "seed": 42, "minutes": 50.0, "date": "d",
                                   "command": "c", "held_out": 0.55, "held_out_base": 0.0, "control": 0.6,
                                   "control_base": 0.7}) + "\n")
    monkeypatch.setattr(knowledge, "RESULTS", results)
    monkeypatch.setattr(knowledge, "TABLE", tmp_path / "RESULTS.md")
    monkeypatch.setattr(knowledge.subprocess, "call", lambda *a, **k: pytest.fail("nothing may run"))
    assert knowledge.main(["--name", "scaled", "--set", "finetune.adapter_scale=0.5", "--scale_from", "src",
                           "--runs_dir", str(runs)]) == 1  # refused: no row, and the exit code says so
    assert "differs in more than finetune.adapter_scale" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == 1


def test_a_failed_run_is_not_recorded_and_the_exit_code_says_so(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.jsonl"
    monkeypatch.setattr(knowledge, "RESULTS", results)
    monkeypatch.setattr(knowledge, "TABLE", tmp_path / "RESULTS.md")
    monkeypatch.setattr(knowledge.subprocess, "call", lambda cmd, **k: 1)  # the main job fails (e.g. OOM-killed)
    argv = ["--name", "broken", "--corpus", "dev", "--seeds", "42,7", "--runs_dir", str(tmp_path / "runs")]
    assert knowledge.main(argv) == 1
    assert not results.exists() or "broken" not in results.read_text()
    assert "2 run(s) failed and were not recorded: dev seed 42, dev seed 7" in capsys.readouterr().out
