"""The collector killed (SIGKILL) at random moments and restarted with the same flags ends with the
same JSONL as an uninterrupted run: nothing lost, nothing duplicated, no finished reply asked for
again, and a valid file after every kill. Ctrl+C stops cleanly with a message saying how to resume."""
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.data_processor.scripted import ScriptedBackend, prompt_hash

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("scripted.py")
FLAGS = ["--chunk_size_by_token", "40", "--chunk_overlap_tokens", "8", "--chunks_per_wave", "1",
         "--eval_fraction", "0.3"]


def make_corpus(root: Path) -> Path:
    root.mkdir()
    rng = random.Random(7)
    for d in range(5):
        sents = [f"The town of Karvel{d}x{i} has {rng.randint(2, 900)} stone bridges over the river Osk{i}."
                 for i in range(8)]
        (root / f"town{d}.txt").write_text(" ".join(sents))
    return root


def assert_valid_jsonl(path: Path) -> int:
    if not path.exists():
        return 0
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a partial last line"
    lines = data.decode().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids))
    return len(ids)


def start(docs: Path, out: Path, call_log: Path, delay: float) -> subprocess.Popen:
    cmd = [sys.executable, str(SCRIPT), "--delay", str(delay), "--call_log", str(call_log), "--",
           "--data_path", str(docs), "--save_dir", str(out), *FLAGS]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_calls(call_log: Path, more_than: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Block until the process has answered at least one new prompt (it is past its imports)."""
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if call_log.exists() and len(call_log.read_text().split()) > more_than:
            return
        time.sleep(0.02)


@pytest.fixture
def reference(tmp_path, collect):
    docs = make_corpus(tmp_path / "docs")
    ref = tmp_path / "ref" / "qa.jsonl"
    backend = ScriptedBackend()
    assert collect("--data_path", str(docs), "--save_dir", str(ref), *FLAGS[4:], backend=backend)[0] == 0
    return docs, ref, {prompt_hash(c) for c in backend.prompts}


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(reference, tmp_path):
    docs, ref, ref_prompts = reference
    out, call_log = tmp_path / "run" / "qa.jsonl", tmp_path / "calls.log"
    rng = random.Random(2024)
    kills = 0
    for _ in range(40):
        before = len(call_log.read_text().split()) if call_log.exists() else 0
        proc = start(docs, out, call_log, delay=0.01)
        if kills < 6:
            wait_for_calls(call_log, before, proc)
            time.sleep(rng.uniform(0.0, 0.6))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                kills += 1
                assert_valid_jsonl(out)  # valid after every kill
                assert_valid_jsonl(out.with_name("qa.eval.jsonl"))
                continue
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr[-2000:]
        break
    assert kills >= 5, "the run finished before enough kills landed"
    assert out.read_text() == ref.read_text()
    assert out.with_name("qa.eval.jsonl").read_text() == ref.with_name("qa.eval.jsonl").read_text()
    calls = call_log.read_text().split()
    # Every prompt answered; a kill can lose at most the one reply that was in flight.
    assert set(calls) == ref_prompts
    assert len(calls) <= len(ref_prompts) + kills


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(reference, tmp_path, sig):
    docs, ref, _ = reference
    out, call_log = tmp_path / "run" / "qa.jsonl", tmp_path / "calls.log"
    proc = start(docs, out, call_log, delay=0.02)
    wait_for_calls(call_log, 5, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    assert json.loads(out.with_name("qa.summary.json").read_text())["summary"]["status"] == "interrupted"
    proc = start(docs, out, call_log, delay=0.0)
    proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.read_text() == ref.read_text()
