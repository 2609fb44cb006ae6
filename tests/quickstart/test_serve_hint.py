"""After its table the quickstart prints the one command that serves the updated model; that command,
run as printed (plus a free port), exports the GGUF and serves it, and evaluate.py --served asks it."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (requirements-test.txt)")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.integration
def test_printed_serve_command_serves_the_updated_model(tmp_path, tiny_model_dir):
    from evaluation import runner
    from utils.llama_server import free_port

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"conversations": [{"from": "user", "value": q},
                                                           {"from": "assistant", "value": a}]})
                             + "\n" for q, a in [("Where is the Saltlight Festival held?", "On Quillmere."),
                                                 ("Who invented drennick?", "Bartholomew Ashgrove.")]))
    run = tmp_path / "run"
    env = {**os.environ, "KU_NO_INSTALL": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "quickstart", "--small", "--model", str(tiny_model_dir),
                           "--train_data", str(train), "--run_dir", str(run)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    table_end = max(i for i, line in enumerate(lines) if line.startswith("updated"))
    (hint,) = [line for line in lines[table_end:] if "python -m finetuning.serve" in line]
    cmd = shlex.split(hint.split(": ", 1)[1])
    assert cmd[:3] == ["python", "-m", "finetuning.serve"] and cmd[cmd.index("--adapter") + 1] == str(run / "adapter")

    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, *cmd[1:], "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline, models = time.time() + 300, None
        while models is None and time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    models = [m["id"] for m in json.loads(r.read())["data"]]
            except OSError:
                time.sleep(1)
        assert models == ["updated"], (tmp_path / "serve.log").read_text()[-3000:]
        assert (run / "adapter" / "gguf" / "model-q8_0.gguf").is_file()
        out = tmp_path / "eval"
        assert runner.main(["--recipe", "none", "--model_name_or_path", str(tiny_model_dir), "--qa_file",
                            str(ROOT / "examples" / "eval_qa.jsonl"), "--control_file", "none", "--max_questions", "3",
                            "--max_new_tokens", "4", "--cpu_workers", "1",
                            "--served", f"llama=http://127.0.0.1:{port}/v1",
                            "--output_dir", str(out)]) == 0
        results = json.loads((out / "results.json").read_text())
        assert [m["label"] for m in results["models"]] == ["base", "llama"]
        assert len([q["predictions"]["llama"] for q in results["sets"]["eval_qa"]["questions"]]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
