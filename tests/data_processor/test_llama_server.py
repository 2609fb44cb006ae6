"""The api backend against a real OpenAI-compatible server: llama-cpp-python's, serving the default
model's GGUF on 127.0.0.1 (what a CPU user would point the collector at)."""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.data_processor.conftest import read_jsonl


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@pytest.mark.slow
@pytest.mark.integration
def test_collect_through_llama_cpp_server(default_model_dir, tmp_path):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (requirements-test.txt)")
    from data_processor.pipeline import main
    from utils.default_model import default_gguf_path

    gguf = default_gguf_path()
    port = _free_port()
    log = open(tmp_path / "llama_server.log", "w")  # a file, not a pipe: it logs ~200 kB at start-up
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--model_alias", "smollm2"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1"
        _wait_until_up(base + "/models", proc)
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "bridge.txt").write_text(
            "The Ostrel bridge crosses the river Lune at Castelbrook. It was opened in 1911 and is 340 metres "
            "long. Its engineer was Ada Pellingham."
        )
        out = tmp_path / "qa.jsonl"
        rc = main(["--model_type", "api", "--api_base", base, "--api_model", "smollm2", "--max_concurrency", "2",
                   "--data_path", str(tmp_path / "docs"), "--save_dir", str(out),
                   "--qa_amount_per_fact", "1", "--role_amount_per_fact", "1"])
        assert rc == 0
        rows = read_jsonl(out)
        assert rows and all(r["conversations"][1]["value"] for r in rows)
        summary = json.loads((tmp_path / "qa.summary.json").read_text())["summary"]
        assert summary["llm_calls"] > 0 and summary["completion_tokens"] > 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
