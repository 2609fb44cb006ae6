"""benchmarks/knowledge.py: the recipe overrides and the bare chain's commands (no model is run)."""
import json

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
                     "--control_file", "--adapters", "--output_dir"}, "a training or collection setting outside the recipe"
    assert calls[1][calls[1].index("--seed") + 1] == "7"
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


def test_summary_table_gives_each_experiment_the_note_of_its_first_run():
    rows = [{"name": "x", "corpus": c, "seed": 42, "held_out": 0.3, "held_out_base": 0.0, "control": 0.7,
             "control_base": 0.7, "minutes": 30, "note": n} for c, n in (("dev", "what x changes"), ("test", ""))]
    lines = [line for line in knowledge.summary_table(rows).splitlines() if line.startswith("x ")]
    assert len(lines) == 2 and all(line.endswith("what x changes") for line in lines)
