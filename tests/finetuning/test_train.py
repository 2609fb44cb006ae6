"""finetune.main on the tiny model: LoRA learns, base frozen, files written once, errors without tracebacks."""
from __future__ import annotations

import json
import logging

import numpy as np
import torch
from transformers import TrainerCallback

import finetune


def make_data(path, n=24):
    rows = [{"id": i, "conversations": [{"from": "user", "value": f"What is fact {i} about Zorbia?"},
                                        {"from": "assistant", "value": f"Fact {i}: the Velka river is {i} km long."}]}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def base_args(model_dir, data, out, losses, *extra):
    """Explicit settings, no recipe: these tests are about the mechanics, not the measured recipe."""
    return ["--recipe", "none", "--model_name_or_path", str(model_dir), "--data_path", str(data), "--output_dir", str(out),
            "--loss_dir", str(losses), "--per_device_train_batch_size", "4", "--learning_rate", "1e-2",
            "--use_wandb", "False", "--save_strategy", "no", "--disable_tqdm", "True", "--seed", "0", *extra]


class Snapshot(TrainerCallback):
    """Keeps the base weights before and after training (through the live model)."""

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.before = {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" not in k}

    def on_train_end(self, args, state, control, model=None, **kw):
        self.after = {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" not in k}


def test_tiny_lora_run_trains_adapter_only(tmp_path, tiny_model_dir):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    data, out, losses = make_data(tmp_path / "qa.jsonl"), tmp_path / "out", tmp_path / "losses"
    snap = Snapshot()
    rc = finetune.main(base_args(tiny_model_dir, data, out, losses, "--max_steps", "4", "--validation", "True",
                                 "--validation_size", "4", "--lazy_preprocess", "True"), extra_callbacks=[snap])
    assert rc == 0
    # Base weights untouched, LoRA weights moved (lora_B starts at zero).
    assert snap.before.keys() == snap.after.keys() and snap.before
    assert all(torch.equal(snap.before[k], snap.after[k]) for k in snap.before)
    adapter = load_file(out / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in adapter.items())
    assert not any("embed_tokens" in k or "lm_head" in k for k in adapter)  # modules_to_save off by default
    # One loss file, one finite value per logged step, no per-rank copies.
    assert [p.name for p in losses.iterdir()] == ["qa.npy"]
    curve = np.load(losses / "qa.npy")
    assert curve.shape == (4,) and np.isfinite(curve).all()
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["global_step"] == 4 and summary["tokens"] > 0 and summary["eval_loss_last"] is not None
    proj = json.loads((out / "time_projection.json").read_text())
    assert proj["steps_measured"] >= 2 and proj["will_fit"] is True and proj["projected_total_s"] > 0
    # The adapter loads back and changes the model's output.
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4]])
    ref = base(input_ids=ids).logits
    tuned = PeftModel.from_pretrained(base, out)(input_ids=ids).logits
    assert not torch.allclose(ref, tuned)


def test_packing_run_trains(tmp_path, tiny_model_dir):
    data, out, losses = make_data(tmp_path / "qa.jsonl"), tmp_path / "out", tmp_path / "l"
    rc = finetune.main(base_args(tiny_model_dir, data, out, losses, "--max_steps", "2", "--packing", "True",
                                 "--model_max_length", "128", "--per_device_train_batch_size", "2"))
    assert rc == 0 and np.isfinite(np.load(losses / "qa.npy")).all()


def test_user_errors_exit_cleanly_with_the_message(tmp_path, tiny_model_dir, caplog):
    caplog.set_level(logging.ERROR)
    out, losses = tmp_path / "out", tmp_path / "l"
    rc = finetune.main(base_args(tiny_model_dir, tmp_path / "missing.jsonl", out, losses))
    assert rc == 2 and "missing.jsonl: training data not found" in caplog.text and "collect_data.sh" in caplog.text
    bad = make_data(tmp_path / "bad.jsonl", 6)
    bad.write_text(bad.read_text() + "{oops\n")
    rc = finetune.main(base_args(tiny_model_dir, bad, out, losses))
    assert rc == 2 and "bad.jsonl:7" in caplog.text
    rc = finetune.main(base_args(tiny_model_dir, bad, out, losses, "--skip_bad_rows", "True",
                                 "--validation", "True", "--validation_size", "6"))
    assert rc == 2 and "validation_size 6 is too large" in caplog.text
    assert not losses.exists()
    rc = finetune.main(base_args(tiny_model_dir, bad, out, losses, "--skip_bad_rows", "True", "--max_steps", "1"))
    assert rc == 0 and np.load(losses / "bad.npy").shape == (1,)


def test_projected_overrun_aborts_non_zero(tmp_path, tiny_model_dir):
    data, out, losses = make_data(tmp_path / "qa.jsonl"), tmp_path / "out", tmp_path / "l"
    rc = finetune.main(base_args(tiny_model_dir, data, out, losses, "--max_steps", "40", "--time_budget_hours",
                                 "1e-7", "--abort_on_projected_overrun", "True", "--projection_fraction", "0.05"))
    assert rc == finetune.EXIT_PROJECTED_OVERRUN
    proj = json.loads((out / "time_projection.json").read_text())
    assert proj["will_fit"] is False and proj["projected_total_s"] > proj["budget_s"]
    assert len(np.load(losses / "qa.npy")) < 40  # stopped early instead of burning the budget


def test_wandb_key_is_never_kept(tmp_path, monkeypatch):
    from finetuning.args import parse_args

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    *_, args = parse_args(["--output_dir", str(tmp_path / "o"), "--key", "sk-SECRET-123", "--use_wandb", "True"])
    assert args.key is None and "sk-SECRET-123" not in args.to_json_string() and "sk-SECRET-123" not in repr(args)
    assert "wandb" in args.report_to and "WANDB_MODE" not in __import__("os").environ
    monkeypatch.delenv("WANDB_API_KEY")
    *_, args = parse_args(["--output_dir", str(tmp_path / "o2"), "--use_wandb", "True", "--run_name", "r"])
    assert __import__("os").environ["WANDB_MODE"] == "offline"


def test_bad_flag_value_is_a_message_not_a_traceback(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    assert finetune.main(["--output_dir", str(tmp_path), "--projection_fraction", "2"]) == 2
    assert "--projection_fraction must be in (0, 1]" in caplog.text


def test_merge_lora_matches_the_adapter(tmp_path, tiny_model_dir):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetuning.merge_lora import main as merge_main

    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                                LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    assert merge_main(["--adapter", str(tmp_path / "adapter"), "--output", str(tmp_path / "merged")]) == 0
    ids = torch.tensor([[1, 5, 9, 13]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        expected = PeftModel.from_pretrained(base, tmp_path / "adapter")(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)(input_ids=ids).logits
    torch.testing.assert_close(merged, expected, atol=1e-4, rtol=1e-4)
    assert merge_main(["--adapter", str(tmp_path / "nothing"), "--output", str(tmp_path / "m2")]) == 2


def test_the_same_seed_gives_the_same_run_and_another_seed_another(tmp_path, tiny_model_dir):
    """--seed must control the LoRA initialisation too (drawn before the Trainer exists), not only the data order."""
    data = make_data(tmp_path / "qa.jsonl", 16)

    def curve(name, seed):
        rc = finetune.main(base_args(tiny_model_dir, data, tmp_path / name, tmp_path / name, "--max_steps", "3",
                                     "--seed", seed, "--run_name", "r"))
        assert rc == 0
        return np.load(tmp_path / name / "r.npy")

    first, again, other = curve("a", "11"), curve("b", "11"), curve("c", "12")
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[1:], other[1:])


def test_adapter_scale_multiplies_the_saved_update_and_rerunning_does_not_compound(tmp_path, tiny_model_dir, caplog):
    from safetensors.torch import load_file

    from finetuning.scale import adapter_scale

    data, losses = make_data(tmp_path / "qa.jsonl"), tmp_path / "l"
    full, half = tmp_path / "full", tmp_path / "half"
    assert finetune.main(base_args(tiny_model_dir, data, full, losses, "--max_steps", "2")) == 0
    for _ in range(2):  # a second run into the same folder starts from fresh weights, not the scaled ones
        assert finetune.main(base_args(tiny_model_dir, data, half, losses, "--max_steps", "2",
                                       "--adapter_scale", "0.5")) == 0
    a, b = load_file(full / "adapter_model.safetensors"), load_file(half / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k] * 0.5 if ".lora_B." in k else a[k])
    assert adapter_scale(half) == 0.5 and adapter_scale(full) == 1.0
    assert json.loads((half / "train_summary.json").read_text())["adapter_scale"] == 0.5
    caplog.set_level(logging.ERROR)
    assert finetune.main(base_args(tiny_model_dir, data, tmp_path / "ft", losses, "--use_lora", "False",
                                   "--adapter_scale", "0.5")) == 2
    assert "--adapter_scale 0.5 scales a plain LoRA update" in caplog.text
