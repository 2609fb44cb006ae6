"""finetune.py when things go wrong: bad training data through the real entry point (one message
naming ``file:line``, exit 2, never a traceback), rows longer than the context (truncated or dropped,
each named), atomic writes of the loss file and the adapter, and incomplete checkpoints skipped.
The kill-and-resume run is ``tests/test_finetune_distributed.py::test_resume_after_kill_continues_the_loss_file``.
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import finetune
from finetuning.trainer import LossRecorderCallback, last_complete_checkpoint
from tests.finetuning.test_train import base_args, make_data

ROOT = Path(__file__).resolve().parents[2]


def qa_row(q: str, a: str) -> str:
    return json.dumps({"conversations": [{"from": "user", "value": q}, {"from": "assistant", "value": a}]})


GOOD = [qa_row(f"What is fact {i} about Zorbia?", f"Fact {i}: the Velka river is {i} km long.") for i in range(6)]


def run_finetune(tmp_path: Path, model_dir: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "finetune.py", *base_args(model_dir, data, tmp_path / "out", tmp_path / "losses",
                                                     "--max_steps", "2", *extra)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


BAD_DATA = {  # lines of the file -> the message expected (file:line where there is a line)
    "not_json": (GOOD[:2] + ["{oops, not json"] + GOOD[2:], r"bad\.jsonl:3: not a JSON object"),
    "no_assistant_turn": (GOOD[:1] + [json.dumps({"conversations": [{"from": "user", "value": "Q?"}]})],
                          r"bad\.jsonl:2: unusable row \(row has no assistant turn\).*--skip_bad_rows True"),
    "empty_file": ([], r"bad\.jsonl: no usable rows \(file empty or every row bad\)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_DATA))
def test_bad_training_data_is_one_message_naming_file_and_line(tmp_path, tiny_model_dir, kind):
    lines, expected = BAD_DATA[kind]
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    proc = run_finetune(tmp_path, tiny_model_dir, data)
    assert proc.returncode == finetune.EXIT_USER_ERROR, proc.stderr[-3000:]
    assert re.search(r"ERROR finetune: .*" + expected, proc.stderr), proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists() and not (tmp_path / "losses").exists()


def test_rows_longer_than_the_context_are_truncated_or_dropped_and_named(tmp_path, tiny_model_dir):
    """Line 7 has a long answer: cut to --model_max_length and trained on. Line 8 has a question so long
    that no answer token is left: dropped. Both are named; the rest of the run goes on."""
    data = tmp_path / "long.jsonl"
    lines = GOOD + [qa_row("Describe the Velka river.", "The Velka river " + "flows north and " * 60 + "ends."),
                    qa_row("Summarise: " + "the river flows north " * 60, "It flows north.")]
    data.write_text("".join(line + "\n" for line in lines))
    proc = run_finetune(tmp_path, tiny_model_dir, data, "--model_max_length", "64")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    assert re.search(r"WARNING .*1 of 8 rows are longer than --model_max_length 64 tokens and were truncated: "
                     + re.escape(f"{data}:7"), log), log[-3000:]
    assert re.search(r"WARNING .*1 row\(s\) dropped: no answer token left .*" + re.escape(f"{data}:8"), log)
    assert "Token indices sequence length" not in log  # the tokenizer's warning, which names no row
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["truncated_rows"] == 1 and summary["dropped_rows"] == 1 and summary["global_step"] == 2


def test_data_where_every_row_is_too_long_is_a_clean_error(tmp_path, tiny_model_dir, caplog):
    data = tmp_path / "long.jsonl"
    data.write_text(qa_row("Summarise: " + "the river flows north " * 60, "It flows north.") + "\n")
    caplog.set_level(logging.ERROR)
    rc = finetune.main(base_args(tiny_model_dir, data, tmp_path / "out", tmp_path / "l", "--model_max_length", "32"))
    assert rc == finetune.EXIT_USER_ERROR
    assert f"{data}: no trainable rows left after truncation to --model_max_length 32" in caplog.text


# -- atomic writes ---------------------------------------------------------------------------------
def test_loss_file_is_written_then_renamed(tmp_path, monkeypatch):
    path = tmp_path / "losses" / "run.npy"
    rec, state = LossRecorderCallback(str(path)), SimpleNamespace(is_world_process_zero=True)
    rec.losses = {1: 1.0, 2: 0.5}
    rec.write(state)
    old = path.read_bytes()
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((Path(src).read_bytes(), Path(dst).read_bytes()))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    rec.losses[3] = 0.25
    rec.write(state)
    # The whole new file existed under another name while the old one was still in place.
    assert renames == [(path.read_bytes(), old)]
    assert np.load(path).tolist() == [1.0, 0.5, 0.25]

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)  # the write fails (or the process dies) before the rename
    rec.losses[4] = 0.125
    with pytest.raises(OSError):
        rec.write(state)
    assert np.load(path).tolist() == [1.0, 0.5, 0.25]  # the previous file, whole
    assert os.listdir(path.parent) == ["run.npy"]  # and no temporary file left behind


def test_adapter_is_written_then_renamed(tmp_path, tiny_model_dir, monkeypatch, caplog):
    import peft.peft_model
    from safetensors.torch import load_file

    out = tmp_path / "out"
    args = base_args(tiny_model_dir, make_data(tmp_path / "qa.jsonl", 8), out, tmp_path / "l", "--max_steps", "1")
    assert finetune.main(args) == 0
    adapter = out / "adapter_model.safetensors"
    before = adapter.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(before[: len(before) // 2])  # half the file, then the disk is full
        raise OSError(28, "No space left on device", str(filename))

    monkeypatch.setattr(peft.peft_model, "safe_save_file", disk_full)
    caplog.set_level(logging.ERROR)
    assert finetune.main(args + ["--learning_rate", "5e-2"]) == finetune.EXIT_WRITE_ERROR
    assert f"cannot save the adapter to {out}: No space left on device" in caplog.text
    assert adapter.read_bytes() == before  # the finished adapter of the first run is untouched
    assert (out / ".saving" / "adapter_model.safetensors").exists()  # the half file stayed in staging
    monkeypatch.undo()
    # The next save starts a clean staging folder: the crashed save's leftovers never reach output_dir.
    (out / ".saving" / "stale_partial.bin").write_bytes(b"half")
    assert finetune.main(args + ["--learning_rate", "5e-2"]) == 0
    assert not (out / ".saving").exists() and not (out / "stale_partial.bin").exists()
    assert adapter.read_bytes() != before and load_file(adapter)


def test_incomplete_checkpoints_are_skipped_on_resume(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False), (10, False)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "adapter_model.safetensors").write_bytes(b"x")
        if complete:  # the Trainer writes trainer_state.json last
            (ckpt / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-notanumber").mkdir()
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-4")
    assert last_complete_checkpoint(str(tmp_path / "missing")) is None
