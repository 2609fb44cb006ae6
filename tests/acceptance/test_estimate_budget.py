import json

import pytest

from acceptance.estimate_budget import estimate_seconds, main, max_tokens_in_budget
from utils.flops import training_flops_per_token


def test_lora_costs_two_thirds_of_full_finetuning():
    assert training_flops_per_token(1e9, lora=True) == pytest.approx(4e9)
    assert training_flops_per_token(1e9, lora=False) == pytest.approx(6e9)
    assert training_flops_per_token(1e9, lora=True, gradient_checkpointing=True) == pytest.approx(6e9)


def test_estimate_scales_and_inverts():
    kw = dict(epochs=5, peak_flops=312e12, num_devices=4, mfu=0.35)
    t = estimate_seconds(1e8, 7e9, **kw)
    assert estimate_seconds(2e8, 7e9, **kw) == pytest.approx(2 * t)
    assert estimate_seconds(1e8, 7e9, **{**kw, "num_devices": 8}) == pytest.approx(t / 2)
    assert max_tokens_in_budget(t, 7e9, **kw) == pytest.approx(1e8)


def test_cli_on_a_dataset_fits_or_fails_the_budget(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "d.jsonl"
    row = {"conversations": [{"from": "user", "value": "Who?"}, {"from": "assistant", "value": "Ada."}]}
    data.write_text("\n".join(json.dumps(row) for _ in range(10)) + "\n")
    base = ["--data_path", str(data), "--model_name_or_path", str(tiny_model_dir)]
    assert main(base + ["--params", "7e9"]) == 0
    out = capsys.readouterr().out
    assert "rows 10" in out and "fits" in out
    # 1e15 parameters on one GPU cannot fit 8 hours even for ten rows.
    assert main(base + ["--params", "1e15", "--num_gpus", "1", "--epochs", "1000"]) == 1
    assert "EXCEEDS" in capsys.readouterr().out
    # Padding to a fixed length makes the processed count rows x length.
    assert main(base + ["--params", "7e9", "--pad_to_max_length", "512"]) == 0
    assert "5,120 processed" in capsys.readouterr().out


def test_fit_table_and_usage(capsys):
    assert main(["--fit_table", "--gpu", "H100", "--num_gpus", "8", "--full_finetune"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "8xH100" in lines[0] and "full FT" in lines[0]
    assert lines[1].split() == ["model", "tokens/epoch", "QA", "rows", "at", "150", "tok"]
    assert set(lines[2].replace(" ", "")) == {"-"} and len(lines) == 3 + 8
    assert lines[-1].split()[0] == "72B"
    assert main([]) == 2  # no --data_path, --fit_table or --compare_summary
    assert "error: give --data_path" in capsys.readouterr().err
