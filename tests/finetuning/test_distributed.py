"""End to end: the launcher with DeepSpeed ZeRO-2/ZeRO-3 on 2 CPU processes, and resume after SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.finetuning.test_train import make_data
from utils.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "shells" / "finetune_lora_ds.sh"


def env(**extra) -> dict:
    e = {**os.environ, "MASTER_PORT": str(free_port()), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline",
         **extra}
    e.pop("WANDB_API_KEY", None)
    return e


def run_launcher(args, timeout=300, **extra_env):
    return subprocess.run(["bash", str(LAUNCHER), *args], cwd=ROOT, env=env(**extra_env), capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("stage", ["ds_zero2", "ds_zero3"])
def test_deepspeed_two_cpu_processes_save_a_trained_adapter(tmp_path, tiny_model_dir, stage):
    from safetensors.torch import load_file

    data, out, losses = make_data(tmp_path / "qa.jsonl"), tmp_path / "out", tmp_path / "losses"
    proc = run_launcher(["-m", str(tiny_model_dir), "-d", str(data), "-o", str(out), "--deepspeed",
                         f"configs/{stage}.json", "--wandb_key", "sk-NEVER-PRINTED", "--",
                         "--max_steps", "3", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2",
                         "--loss_dir", str(losses), "--save_strategy", "no", "--disable_tqdm", "True"],
                        WANDB_MODE="disabled")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "--nproc_per_node 2" in log and "sk-NEVER-PRINTED" not in log
    adapter = load_file(out / "adapter_model.safetensors")
    lora_b = {k: v for k, v in adapter.items() if "lora_B" in k}
    # Non-empty, full-shape (gathered, not ZeRO-3 placeholders) and trained (lora_B starts at zero).
    assert len(lora_b) == 14  # 7 linear projections x 2 layers
    assert all(v.shape[1] == 16 and v.shape[0] in (32, 64, 128) for v in lora_b.values())
    assert any(v.abs().max() > 0 for v in lora_b.values())
    assert sorted(p.name for p in losses.iterdir()) == ["qa.npy"] and np.load(losses / "qa.npy").shape == (3,)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_step"] == 3


@pytest.mark.integration
@pytest.mark.slow
def test_two_cpu_processes_without_deepspeed_split_the_data(tmp_path, tiny_model_dir):
    # Regression: on a GPU-less host accelerate built no process group, so each torchrun process
    # trained alone on all rows (world size 1, twice the steps, the same work done twice).
    data, out = make_data(tmp_path / "qa.jsonl"), tmp_path / "out"
    n_rows = sum(1 for _ in open(data))
    proc = run_launcher(["-m", str(tiny_model_dir), "-d", str(data), "-o", str(out), "--",
                         "--num_train_epochs", "1", "--per_device_train_batch_size", "2", "--use_wandb", "False",
                         "--loss_dir", str(tmp_path / "losses"), "--save_strategy", "no", "--disable_tqdm", "True"])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["global_step"] == -(-n_rows // 4)  # global batch = 2 per process x 2 processes


@pytest.mark.integration
def test_launcher_without_data_says_how_to_make_it(tmp_path):
    proc = run_launcher(["-d", str(tmp_path / "none.jsonl")], timeout=60)
    assert proc.returncode != 0
    assert "none.jsonl not found" in proc.stderr and "bash shells/collect_data.sh" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_resume_after_kill_continues_the_loss_file(tmp_path, tiny_model_dir):
    """SIGKILL after a checkpoint, resume with --resume_from_checkpoint True: the step count continues
    from the newest complete checkpoint and the loss file has every step once, no gap, no repeat."""
    from finetuning.trainer import last_complete_checkpoint

    total = 12
    data, out, losses = make_data(tmp_path / "qa.jsonl", 40), tmp_path / "out", tmp_path / "losses"
    args = [sys.executable, "finetune.py", "--model_name_or_path", str(tiny_model_dir), "--data_path", str(data),
            "--output_dir", str(out), "--loss_dir", str(losses), "--max_steps", str(total), "--save_strategy",
            "steps", "--save_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2",
            "--use_wandb", "False", "--disable_tqdm", "True", "--seed", "3"]
    with open(tmp_path / "first.log", "w") as log:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while not (out / "checkpoint-4" / "trainer_state.json").exists():
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint-4 within 180 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "train_summary.json").exists(), "the run finished before the kill"
    resume_step = int(last_complete_checkpoint(str(out)).rsplit("-", 1)[1])
    assert 4 <= resume_step < total
    saved = np.load(losses / "qa.npy")  # written at each checkpoint save, atomically: survives the kill
    assert len(saved) >= 2 and np.isfinite(saved).all()

    resumed = subprocess.run(args + ["--resume_from_checkpoint", "True"], cwd=ROOT, env=env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr
    assert f"resuming from {out / f'checkpoint-{resume_step}'}" in resumed.stderr
    # This session ran only the remaining steps: the step count continued from the checkpoint.
    assert json.loads((out / "time_projection.json").read_text())["total_steps"] == total - resume_step
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == total
    logged = [(h["step"], h["loss"]) for h in state["log_history"] if "loss" in h]
    assert [s for s, _ in logged] == list(range(1, total + 1))  # every step once: no gap, no repeat
    curve = np.load(losses / "qa.npy")
    assert curve.shape == (total,)
    np.testing.assert_allclose(curve, [loss for _, loss in logged], rtol=1e-6)  # step k's loss at index k-1
    np.testing.assert_allclose(curve[: len(saved)], saved)  # the history before the kill is kept as it was


@pytest.mark.integration
@pytest.mark.slow
def test_two_nodes_of_one_process_train_like_one_node_of_two(tmp_path, tiny_model_dir):
    """Multi-node torchrun, simulated on localhost: 2 nodes x 1 process (NNODES=2, NODE_RANK 0/1, one
    MASTER_ADDR/PORT) train to the same per-step losses as 1 node x 2 processes (within float noise)."""
    data = make_data(tmp_path / "qa.jsonl", 32)

    def args(out, losses, nproc):
        return ["-m", str(tiny_model_dir), "-d", str(data), "-o", str(out), "--recipe", "none", "--nproc", nproc,
                "--", "--max_steps", "4", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2",
                "--use_wandb", "False", "--loss_dir", str(losses), "--save_strategy", "no", "--disable_tqdm", "True",
                "--seed", "5"]

    single = run_launcher(args(tmp_path / "one", tmp_path / "l1", "2"), OMP_NUM_THREADS="1")
    assert single.returncode == 0, (single.stdout + single.stderr)[-4000:]
    port = str(free_port())
    nodes = [subprocess.Popen(["bash", str(LAUNCHER), *args(tmp_path / f"node{rank}", tmp_path / f"l2_{rank}", "1")],
                              cwd=ROOT, env=env(NNODES="2", NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                                                MASTER_PORT=port, OMP_NUM_THREADS="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (0, 1)]
    logs = [p.communicate(timeout=600)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert "--nnodes 2" in logs[0] and "--node_rank 1" in logs[1]
    two_nodes = np.load(tmp_path / "l2_0" / "qa.npy")  # written by global rank 0, on node 0
    assert not (tmp_path / "l2_1").exists()
    np.testing.assert_allclose(two_nodes, np.load(tmp_path / "l1" / "qa.npy"), rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "node0" / "train_summary.json").read_text())["world_size"] == 2
