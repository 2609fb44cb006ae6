"""After its table the quickstart prints how to serve the updated model, and the README's "Use your updated
model" block says the same: run as written (the README's commands, in order, from the repository root, on
the quickstart's run; only a free port and the tiny model's evaluation settings added), they export the
GGUF, serve it, say "serving" only once the server answers, and evaluate.py --served asks it."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_RUN = "runs/quickstart-X/adapter"


def readme_serve_commands() -> list[str]:
    """The commands of the README's "Use your updated model" code block, comments dropped."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Use your updated model", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_serve_block_installs_serves_then_evaluates():
    install, serve, evaluate = readme_serve_commands()
    assert install == "KU_WITH_SERVE=1 source shells/install.sh"
    assert serve == f"python -m finetuning.serve --adapter {README_RUN}"
    assert evaluate == "source shells/install.sh && python evaluate.py --served updated=http://127.0.0.1:8080/v1,updated"


def _models(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
        return [m["id"] for m in json.loads(r.read())["data"]]


@pytest.mark.slow
@pytest.mark.integration
def test_printed_and_readme_commands_serve_and_evaluate_the_updated_model(tmp_path, tiny_model_dir):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (KU_WITH_SERVE=1)")
    from utils.processes import free_port

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"conversations": [{"from": "user", "value": q},
                                                           {"from": "assistant", "value": a}]})
                             + "\n" for q, a in [("Where is the Saltlight Festival held?", "On Quillmere."),
                                                 ("Who invented drennick?", "Bartholomew Ashgrove.")]))
    run = tmp_path / "run"
    # KU_NO_INSTALL: the environment is ready, so `source shells/install.sh` only activates it (KU_VENV).
    env = {**os.environ, "KU_NO_INSTALL": "1", "KU_VENV": sys.prefix, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "quickstart", "--small", "--model", str(tiny_model_dir),
                           "--train_data", str(train), "--run_dir", str(run), "--control", "none",
                           "--finetune_args", "--replay_prompts none", "--eval_args", "--cpu_workers 1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    table_end = max(i for i, line in enumerate(lines) if line.startswith("updated"))
    activate, serve_line = [line for line in lines[table_end:] if "source " in line or "finetuning.serve" in line]
    # The server is installed here, so the hint only activates the venv (without it: KU_WITH_SERVE=1 source ...).
    assert activate.endswith(f": source {ROOT / 'shells' / 'install.sh'}"), activate
    install, serve, evaluate = readme_serve_commands()
    assert serve_line == f"[quickstart] then: {serve.replace(README_RUN, shlex.quote(str(run / 'adapter')))}"

    port = free_port()
    serve_cmd = f"{install} && exec {serve.replace(README_RUN, str(run / 'adapter'))} --port {port}"
    with open(tmp_path / "serve.out", "w") as out:
        proc = subprocess.Popen(["bash", "-c", serve_cmd], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while "serving " not in (tmp_path / "serve.out").read_text():
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "serve.out").read_text()[-3000:]
            time.sleep(0.2)
        assert _models(port) == ["updated"]  # "serving" came after the server answered, not before
        printed = (tmp_path / "serve.out").read_text()
        assert re.search(rf"serving \S+model-q8_0.gguf at http://127.0.0.1:{port}/v1", printed), printed[-2000:]
        assert (run / "adapter" / "gguf" / f"server-{port}.log").is_file()

        eval_cmd = (evaluate.replace(":8080/", f":{port}/") + " " + shlex.join([
            "--recipe", "none", "--model_name_or_path", str(tiny_model_dir), "--qa_file", "examples/eval_qa.jsonl",
            "--control_file", "none", "--max_questions", "3", "--max_new_tokens", "4", "--cpu_workers", "1",
            "--output_dir", str(tmp_path / "eval")]))
        assert f"--served updated=http://127.0.0.1:{port}/v1,updated" in printed  # the command serve printed
        done = subprocess.run(["bash", "-c", eval_cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        results = json.loads((tmp_path / "eval" / "results.json").read_text())
        assert [m["label"] for m in results["models"]] == ["base", "updated"]
        assert len([q["predictions"]["updated"] for q in results["sets"]["eval_qa"]["questions"]]) == 3

        proc.send_signal(signal.SIGTERM)  # stops the server with it
        assert proc.wait(timeout=60) == 130
        with pytest.raises(OSError):
            _models(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
