"""The api backend against a real OpenAI-compatible server: llama-cpp-python's, serving the default
model's GGUF on 127.0.0.1 (what a CPU user would point the collector at)."""
import json

import pytest

from tests.data_processor.conftest import read_jsonl

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (requirements-test.txt)")


@pytest.fixture
def llama_server(default_model_dir, tmp_path):
    from utils.default_model import default_gguf_path
    from finetuning.llama_server import LlamaServer

    with LlamaServer(default_gguf_path(), tmp_path / "llama_server.log", alias="smollm2") as server:
        yield server


def test_server_answers_one_completion(llama_server):
    """Fast (seconds): a llama.cpp build the CPU cannot execute dies on its first completion (SIGILL),
    not at start-up, so one real completion is what shows the build is portable."""
    from finetuning.llama_server import chat_completion

    reply = chat_completion(llama_server.base_url, "What is the capital of France?", model="smollm2", timeout=60)
    llama_server.check_alive()
    assert reply["choices"][0]["message"]["content"].strip()
    assert reply["usage"]["completion_tokens"] > 0


@pytest.mark.slow
@pytest.mark.integration
def test_collect_through_llama_cpp_server(llama_server, tmp_path):
    from data_processor.pipeline import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bridge.txt").write_text(
        "The Ostrel bridge crosses the river Lune at Castelbrook. It was opened in 1911 and is 340 metres "
        "long. Its engineer was Ada Pellingham."
    )
    out = tmp_path / "qa.jsonl"
    rc = main(["--model_type", "api", "--api_base", llama_server.base_url, "--api_model", "smollm2",
               "--max_concurrency", "2", "--data_path", str(tmp_path / "docs"), "--save_dir", str(out),
               "--qa_amount_per_fact", "1", "--role_amount_per_fact", "1"])
    assert rc == 0
    rows = read_jsonl(out)
    assert rows and all(r["conversations"][1]["value"] for r in rows)
    summary = json.loads((tmp_path / "qa.summary.json").read_text())["summary"]
    assert summary["llm_calls"] > 0 and summary["completion_tokens"] > 0
