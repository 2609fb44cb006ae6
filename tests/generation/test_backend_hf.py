"""The hf backend: batching contract on the tiny random model (garbage output must not crash a run), one
slow run of the real default model over a short document, the CPU dtype that ``auto`` picks, and CPU
workers that exit with a killed parent."""
from pathlib import Path

import pytest

from generation import build_backend
from generation.base import SamplingConfig
from tests.data_processor.conftest import collect_with_model, read_jsonl


def _chat(text):
    return [{"role": "user", "content": text}]


def test_generate_order_callbacks_and_stats(tiny_model_dir):
    backend = build_backend("hf", model_name_or_path=str(tiny_model_dir), batch_size=2, show_progress=False)
    chats = [_chat("short"), _chat("a much longer prompt " * 10), _chat("medium prompt here")]
    seen = {}
    for temperature in (0.0, 0.9):
        out = backend.generate(chats, SamplingConfig(temperature=temperature, max_new_tokens=5),
                               on_result=seen.__setitem__, desc="test")
        assert len(out) == 3 and all(isinstance(o, str) for o in out)
        assert sorted(seen) == [0, 1, 2] and [seen[i] for i in range(3)] == out
    greedy = backend.generate(chats, SamplingConfig(temperature=0.0, max_new_tokens=5))
    assert greedy == backend.generate(chats, SamplingConfig(temperature=0.0, max_new_tokens=5))  # reproducible
    assert backend.stats.calls == 12 and backend.stats.prompt_tokens > 0 and backend.generate([], SamplingConfig()) == []


def test_collection_on_a_garbage_generator_completes(tiny_model_dir, docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    rc, summary = collect_with_model(tiny_model_dir, docs_dir, out, "--chunk_size_by_token", "64",
                                     "--chunk_overlap_tokens", "8")
    assert rc == 0
    assert summary["status"] == "complete" and summary["llm_calls"] > 0
    assert sum(c.get("parse_failures", 0) for c in summary["stages"].values()) > 0  # random weights write garbage ...
    for row in read_jsonl(out) if out.exists() else []:  # ... and whatever got through is well-formed
        assert row["conversations"][0]["value"] and row["conversations"][1]["value"]


@pytest.mark.slow
def test_real_default_model_writes_valid_rows(default_model_dir, tmp_path):
    """The embedded SmolLM2-135M over one short document: at least one valid QA row."""
    from data_processor.pipeline import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bridge.txt").write_text(
        "The Ostrel bridge crosses the river Lune at Castelbrook. It was opened in 1911 and is 340 metres long. "
        "Its engineer was Ada Pellingham, who also built the Castelbrook tram depot."
    )
    out = tmp_path / "qa.jsonl"
    # --max_new_tokens 96 caps the facts stage too (the document is 45 tokens): ~1 min on 2 idle cores.
    rc = main(["--data_path", str(tmp_path / "docs"), "--save_dir", str(out), "--qa_amount_per_fact", "1",
               "--role_amount_per_fact", "1", "--max_new_tokens", "96"])
    assert rc == 0
    rows = read_jsonl(out)
    assert rows
    for row in rows:
        q, a = row["conversations"][0]["value"], row["conversations"][1]["value"]
        assert a and row["file_name"] == "bridge.txt"
        if row["role"] == "cloze":  # fill-in-the-blank: a statement with one blank, answered by the fact
            assert q.count("____") == 1 and a == row["fact"]
        else:
            assert q.endswith("?")
    assert any(row["role"] != "cloze" for row in rows), "no model-written QA row survived"


EPYC_FLAGS = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n"
XEON_FLAGS = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
ARM_FLAGS = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_auto_dtype_on_a_cpu_is_bf16_only_with_native_bf16_instructions():
    import torch

    from generation.hf import HFBackend, cpu_bf16_flags, cpu_dtype

    assert cpu_bf16_flags(EPYC_FLAGS) == {"avx512_bf16"} and cpu_dtype(EPYC_FLAGS) is torch.bfloat16
    assert cpu_bf16_flags(ARM_FLAGS) == {"bf16"} and cpu_dtype(ARM_FLAGS) is torch.bfloat16
    # avx512_vnni is an int8 instruction; without a bf16 one, bf16 products go through fp32 conversions.
    assert cpu_bf16_flags(XEON_FLAGS) == set() and cpu_dtype(XEON_FLAGS) is torch.float32
    assert cpu_dtype("") is torch.float32  # no /proc/cpuinfo (macOS): the safe choice
    if not torch.cuda.is_available():  # auto follows this machine's flags; explicit dtypes are kept
        assert HFBackend(dtype="auto")._torch_dtype() is cpu_dtype()
    assert HFBackend(dtype="bfloat16")._torch_dtype() is torch.bfloat16
    assert HFBackend(dtype="float32")._torch_dtype() is torch.float32


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the workers' state from /proc")
def test_cpu_workers_exit_when_the_collector_is_killed(tiny_model_dir, tmp_path):
    """A collector killed by SIGKILL cannot close its pool: its workers must not outlive it."""
    import os
    import subprocess
    import sys

    from tests.conftest import still_running

    script = tmp_path / "parent.py"
    script.write_text(
        "import os\n"
        "from generation.base import SamplingConfig\n"
        "from generation.hf import HFBackend\n"
        "if __name__ == '__main__':  # spawned workers import this file too\n"
        f"    b = HFBackend({str(tiny_model_dir)!r}, workers=2, batch_size=1, show_progress=False)\n"
        "    b.generate([[{'role': 'user', 'content': 'hi'}]] * 2, SamplingConfig(temperature=0.0, max_new_tokens=2))\n"
        "    print(*[p.pid for p in b._pool._processes.values()], flush=True)\n"
        "    os.kill(os.getpid(), 9)\n")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2, out.stderr[-2000:]

    left = still_running(pids, 15)
    for p in left:
        os.kill(p, 9)
    assert not left, "pool workers outlived the killed parent"
