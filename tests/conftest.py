"""Shared fixtures.

``tiny_model_dir``: a 2-layer, 64-wide random Llama with the real SmolLM2 tokenizer (and chat
template), built from a config once per session. Most tests train or generate with it in seconds.
``default_model_dir``: the real embedded SmolLM2-135M (prepared once; tests using it are ``slow``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never talk to the hub or to wandb's servers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

requires_gpu = pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU; this machine has none"
)


@pytest.fixture(scope="session", autouse=True)
def _session_replay_cache(tmp_path_factory):
    """Replay rows made by tests (tiny random models, the smoke recipe) go to a folder of this session, not
    to the user's ~/.cache/knowledge_update/replay; subprocesses inherit the variable."""
    if "KU_REPLAY_CACHE" not in os.environ:
        os.environ["KU_REPLAY_CACHE"] = str(tmp_path_factory.mktemp("replay_cache"))
    yield


@pytest.fixture(autouse=True)
def _restore_environment():
    """Each test starts with the session's environment. Parsing finetune.py's arguments in this process sets
    WANDB_DIR (to the run's output folder), WANDB_MODE and WANDB_API_KEY, as it must for a real run; left
    behind, a later test's subprocess would inherit them and write its wandb files into another test's folder."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    from utils.default_model import prepare_default_model

    return prepare_default_model()


@pytest.fixture(scope="session")
def smollm2_tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


def build_tiny_model(out_dir: Path, tokenizer) -> Path:
    """Save a randomly initialised 2-layer Llama (hidden 64) with ``tokenizer`` into ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_tokenizer) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"), smollm2_tokenizer)


def still_running(pids: list[int], seconds: float) -> list[int]:
    """The processes of ``pids`` still running after waiting up to ``seconds`` for all to exit (Linux /proc:
    a zombie, exited but not yet reaped, counts as exited)."""
    import time

    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(") ", 1)[-1][0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + seconds
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if running(p)]
