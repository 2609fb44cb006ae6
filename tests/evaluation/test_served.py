"""evaluate.py --served: a column for any OpenAI-compatible server, asked through the collector's api
backend (retries, key handling), cached like the other columns. Against a small quiz server here; the
real llama.cpp server is in tests/finetuning/test_export.py and test_served_updated_model.py."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evaluation import runner as evaluate

ANSWERS = {"What is the capital of Quillmere?": "Port Ebbering, of course.",
           "Who invented drennick?": "I believe it was Ada Pellingham."}


class QuizServer:
    """Chat completions from :data:`ANSWERS`; ``GET /v1/models`` lists ``models``; the first ``fail_first``
    completions answer 503. Records every completion request (body and Authorization header)."""

    def __init__(self, models=("quiz",), fail_first=0):
        self.models, self.fail_first, self.requests = list(models), fail_first, []
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, obj):
                payload = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    return self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                                        "owned_by": "me"} for m in srv.models]})
                return self._send(404, {"error": {"message": "no"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                srv.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                if len(srv.requests) <= srv.fail_first:
                    return self._send(503, {"error": {"message": "warming up"}})
                text = ANSWERS.get(body["messages"][-1]["content"], "I do not know.")
                return self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": text}}],
                                        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def facts(tmp_path) -> Path:
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"question": "What is the capital of Quillmere?", "answers": ["Port Ebbering", "Ebbering"]},
        {"question": "Who invented drennick?", "answers": ["Bartholomew Ashgrove"]},
        {"question": "When did the festival start?", "answers": ["1847"]}]))
    return path


def test_served_flag_parsing_and_specs(tmp_path):
    args = evaluate.parse_args(["--recipe", "none", "--served", "llama=http://h:8080/v1/,updated",
                                "vllm=https://h/v1", "base=http://x/v1"])
    specs = evaluate.model_specs(args)
    assert [(s.label, s.kind, s.model, s.api_model) for s in specs[1:]] == [
        ("llama", "served", "http://h:8080/v1", "updated"), ("vllm", "served", "https://h/v1", None),
        ("base_2", "served", "http://x/v1", None)]  # a label taken by the in-process base gets a suffix
    for bad in (["--served", "http://h/v1"], ["--served", "x=h:8080"], ["--served", "=http://h/v1"],
                ["--served_kwargs", "[1]"], ["--served_kwargs", "{nope"]):
        with pytest.raises(ValueError):
            evaluate.parse_args(["--recipe", "none", *bad])


def test_served_column_retries_sends_the_key_and_is_cached(tmp_path, tiny_model_dir, facts, monkeypatch, caplog):
    monkeypatch.setenv("QUIZ_KEY", "sk-quiz-123")
    out = tmp_path / "eval"
    with QuizServer(fail_first=1) as server:
        argv = ["--recipe", "none", "--model_name_or_path", str(tiny_model_dir), "--qa_file", str(facts),
                "--control_file", "none", "--served", f"quiz={server.base_url}", "--max_new_tokens", "5",
                "--dtype", "float32", "--cpu_workers", "1", "--output_dir", str(out),
                "--served_kwargs", '{"api_key_env": "QUIZ_KEY", "backoff_base": 0.01, "max_concurrency": 2}']
        assert evaluate.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert [(m["label"], m["kind"]) for m in results["models"]] == [("base", "base"), ("quiz", "served")]
    qs = results["sets"]["facts"]["questions"]
    assert [q["predictions"]["quiz"]["text"] for q in qs] == [*ANSWERS.values(), "I do not know."]
    assert [q["predictions"]["quiz"]["contains"] for q in qs] == [True, False, False]  # scored like any column
    # one 503 retried: 3 questions, 4 requests; the model name came from GET /models; greedy, capped, keyed
    assert len(server.requests) == 4
    assert {r["body"]["model"] for r in server.requests} == {"quiz"}
    assert all(r["body"]["temperature"] == 0 and r["body"]["max_tokens"] == 5 for r in server.requests)
    assert {r["auth"] for r in server.requests} == {"Bearer sk-quiz-123"}
    assert "sk-quiz-123" not in (out / "results.json").read_text()
    # The server is gone: a re-run reuses the cached replies of every column.
    assert evaluate.main(argv) == 0
    assert json.loads((out / "results.json").read_text())["sets"] == results["sets"]
    # A setting that changes the replies asks again, and an unreachable server is an error naming it.
    assert evaluate.main([*argv, "--max_new_tokens", "6"]) == 1
    assert f"--served quiz={server.base_url}: cannot list its models" in caplog.text


def test_server_with_several_models_needs_a_name(tmp_path, tiny_model_dir, facts, caplog):
    with QuizServer(models=("a", "b")) as server:
        argv = ["--recipe", "none", "--model_name_or_path", str(tiny_model_dir), "--qa_file", str(facts),
                "--control_file", "none", "--max_new_tokens", "3", "--dtype", "float32", "--cpu_workers", "1",
                "--output_dir", str(tmp_path / "eval")]
        assert evaluate.main([*argv, "--served", f"q={server.base_url}"]) == 1
        assert "['a', 'b']" in caplog.text and f"q={server.base_url},MODEL" in caplog.text
        assert not server.requests
        assert evaluate.main([*argv, "--served", f"q={server.base_url},b"]) == 0
        assert {r["body"]["model"] for r in server.requests} == {"b"}
