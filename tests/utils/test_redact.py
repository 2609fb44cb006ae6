"""Secrets never reach a file or the terminal: utils.logging_utils's redaction, and every entry point that
takes a secret run with marker secrets given every way a user can give them (a launcher flag, a finetune.py
flag after ``--``, the environment), then every file the run wrote and its output searched for them."""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from utils.logging_utils import (MASK, SECRET_FLAGS, is_secret_flag, redact_argv, redact_command, redact_obj,
                                 redact_text, secret_env_values)

ROOT = Path(__file__).resolve().parents[2]
FLAG_SECRET = "mkFLAGsecret7731"  # given to a launcher flag (--wandb_key)
AFTER_SECRET = "mkAFTERsecret7732"  # given to finetune.py's --key, after the launcher's --
ENV_SECRET = "mkENVsecret7733"  # in WANDB_API_KEY, OPENAI_API_KEY, HF_TOKEN
MARKERS = (FLAG_SECRET, AFTER_SECRET, ENV_SECRET)


# -- the helper ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, shown", [
    (["--key", "s3cret", "--seed", "1"], ["--key", MASK, "--seed", "1"]),
    (["--key=s3cret"], [f"--key={MASK}"]),
    (["--wandb_key", "s3cret"], ["--wandb_key", MASK]),
    (["--wandb-key=s3cret"], [f"--wandb-key={MASK}"]),  # HfArgumentParser's dashed spelling
    (["--wandb_k", "s3cret"], ["--wandb_k", MASK]),  # an abbreviation argparse expands
    (["--finetune_args", "--key s3cret --seed 1"], ["--finetune_args", f"--key {MASK} --seed 1"]),
    (["--keyword_questions", "2", "--api_key_env", "MY_KEY"], ["--keyword_questions", "2", "--api_key_env", "MY_KEY"]),
])
def test_redact_argv_hides_each_secret_flag_form(argv, shown):
    assert redact_argv(argv, environ={}) == shown


def test_redact_text_hides_flags_in_a_joined_line_and_secret_environment_values():
    env = {"WANDB_API_KEY": "wandbvalue1", "MY_API_KEY": "customvalue2", "HF_TOKEN": "hfvalue3",
           "TOKENIZERS_PARALLELISM": "false", "OTHER": "customvalue2x"}
    line = "python x --key 'a b' --key=\"q r\" --wandb_key z9 --seed 3 wandbvalue1 customvalue2 hfvalue3 false"
    assert redact_text(line, env) == (f"python x --key {MASK} --key={MASK} --wandb_key {MASK} --seed 3 "
                                      f"{MASK} {MASK} {MASK} false")
    assert "false" not in secret_env_values(env)  # neither a secret name nor long enough to be one
    assert redact_command(["run", "--key", "a b"], {}) == f"run --key '{MASK}'"


def test_redact_obj_hides_secret_fields_argv_lists_and_nested_strings():
    dump = {"key": "s3cret", "wandb_key": None, "argv": ["--wandb_key", "s3cret"], "finetune_args": "--key=s3cret",
            "runs": [{"command": "a --key s3cret"}], "model": "default"}
    assert "s3cret" not in json.dumps(redact_obj(dump, {}))
    assert redact_obj(dump, {})["model"] == "default" and redact_obj(dump, {})["wandb_key"] is None


def _argument_dataclasses():
    """Every dataclass of every entry point's module whose fields become flags."""
    modules = ["finetuning.args", "finetuning.launch", "finetuning.serve", "finetuning.export", "finetuning.merge_lora",
               "acceptance.time_budget", "acceptance.estimate_budget", "acceptance.cauchy", "quickstart.run",
               "data_processor.config", "evaluation.runner", "replay.__main__", "benchmarks.knowledge",
               "benchmarks.served_eval", "benchmarks.bench_collect.cli", "benchmarks.adapter_scale"]
    for name in modules:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == name \
                    and obj.__name__.endswith(("Arguments", "Config")):
                yield obj


def test_every_secret_named_flag_of_every_entry_point_is_redacted():
    secret_words = ("key", "token", "password", "secret")
    not_secrets = {"api_key_env", "chunk_size_by_token"}  # the name of a variable; a chunk size
    found = []
    for cls in _argument_dataclasses():
        for f in dataclasses.fields(cls):
            if any(w in f.name.lower().split("_") for w in secret_words) and f.name not in not_secrets:
                found.append(f"--{f.name}")
                assert is_secret_flag(f"--{f.name}"), f"{cls.__name__}.{f.name} takes a secret: add it to SECRET_FLAGS"
    assert set(found) == set(SECRET_FLAGS), found  # and SECRET_FLAGS names no flag that is gone


# -- the entry points ------------------------------------------------------------------------------------
def _env(tmp_path: Path) -> dict:
    """The environment of a run: secrets in every variable a user sets, every cache inside ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "WANDB_API_KEY": ENV_SECRET, "OPENAI_API_KEY": ENV_SECRET, "HF_TOKEN": ENV_SECRET,
            "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "KU_NO_INSTALL": "1", "KU_VENV": sys.prefix,
            "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "KU_REPLAY_CACHE": str(tmp_path / "replay"),
            "PYTHONPATH": str(ROOT)}


def _run(cmd: list[str], tmp_path: Path, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout,
                          **kwargs)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _assert_no_marker(tmp_path: Path, *outputs: str) -> int:
    """No marker in ``outputs`` or in any file under ``tmp_path``; returns how many files were read."""
    for text in outputs:
        for marker in MARKERS:
            assert marker not in text, f"{marker} printed:\n" + text[max(0, text.find(marker) - 500):][:1000]
    n = 0
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            n += 1
            for marker in MARKERS:
                assert marker.encode() not in data, f"{marker} written to {path}"
    return n


def _train_file(tmp_path: Path) -> Path:
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"conversations": [{"from": "user", "value": q},
                                                           {"from": "assistant", "value": a}]}) + "\n"
                             for q, a in [("Where is the Saltlight Festival held?", "On Quillmere."),
                                          ("Who invented drennick?", "Bartholomew Ashgrove.")] * 2))
    return train


@pytest.mark.slow
def test_test_case_1_launcher_and_finetune_keep_secrets_out_of_files_and_output(tmp_path, tiny_model_dir):
    """test_case_1.sh -> shells/finetune_lora_ds.sh -> finetune.py under torchrun, wandb on (offline), with the
    launcher's --wandb_key, finetune.py's --key after --, and the keys in the environment."""
    out = tmp_path / "tc1"
    done = _run([sys.executable, "-m", "acceptance.time_budget", "--small", "--model", str(tiny_model_dir),
                 "--names", "qa_pairs_001", "--output_dir", str(out), "--loss_dir", str(tmp_path / "losses"),
                 "--wandb_key", FLAG_SECRET, "--", f"--key={AFTER_SECRET}", "--use_wandb", "True", "--recipe", "none",
                 "--max_steps", "2"], tmp_path)
    assert (out / "time_budget.json").is_file() and (out / "logs" / "qa_pairs_001.log").is_file()
    assert list((out / "qa_pairs_001").rglob("wandb-metadata.json")) or list((out / "qa_pairs_001").rglob("*.wandb"))
    assert MASK in (out / "time_budget.json").read_text()
    assert _assert_no_marker(tmp_path, done.stdout, done.stderr) > 5


@pytest.mark.slow
def test_quickstart_keeps_secrets_out_of_its_run_folder(tmp_path, tiny_model_dir):
    """The quickstart with finetune.py's --key in --finetune_args and the keys in the environment (no replay
    rows and one evaluation process: the secrets take the same paths, in less time)."""
    run = tmp_path / "run"
    done = _run([sys.executable, "-m", "quickstart", "--small", "--model", str(tiny_model_dir), "--train_data",
                 str(_train_file(tmp_path)), "--run_dir", str(run), "--control", "none",
                 "--finetune_args", f"--key {AFTER_SECRET} --replay_prompts none", "--eval_args", "--cpu_workers 1"],
                tmp_path)
    assert (run / "command.json").is_file() and MASK in (run / "quickstart.log").read_text()
    _assert_no_marker(tmp_path, done.stdout, done.stderr)


@pytest.mark.slow
def test_collector_and_evaluation_keep_the_api_key_out_of_files_and_output(tmp_path, tiny_model_dir):
    """The collector and evaluate.py --served send $OPENAI_API_KEY to the server and write it nowhere."""
    from tests.data_processor.conftest import DOCS
    from tests.data_processor.fake_openai import FakeOpenAI
    from tests.evaluation.test_served import QuizServer

    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    with FakeOpenAI() as srv:
        collect = _run([sys.executable, "-m", "data_processor", "--recipe", "none", "--model_type", "api",
                        "--api_base", srv.base_url, "--api_model", "fake", "--data_path", str(docs),
                        "--save_path", str(tmp_path / "qa" / "qa_pairs.jsonl"), "--tokenizer_name_or_path", "words",
                        "--eval_fraction", "0.3"], tmp_path)
    assert srv.auth_headers and all(h == f"Bearer {ENV_SECRET}" for h in srv.auth_headers)  # the key was used
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "Who invented drennick?", "answers": ["Ada Pellingham"]}) + "\n")
    with QuizServer(models=["quiz"]) as quiz:
        evaluate = _run([sys.executable, str(ROOT / "evaluate.py"), "--recipe", "none", "--model_name_or_path",
                         str(tiny_model_dir), "--qa_file", str(qa), "--control_file", "none", "--max_new_tokens", "4",
                         "--cpu_workers", "1", "--served", f"quiz={quiz.base_url}", "--output_dir",
                         str(tmp_path / "eval")], tmp_path)
    assert any(r["auth"] == f"Bearer {ENV_SECRET}" for r in quiz.requests)
    assert (tmp_path / "eval" / "results.json").is_file() and (tmp_path / "qa" / "qa_pairs.jsonl").is_file()
    _assert_no_marker(tmp_path, collect.stdout, collect.stderr, evaluate.stdout, evaluate.stderr)
