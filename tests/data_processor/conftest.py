"""Fixtures for the collector's tests: small documents and a runner with the scripted backend."""
from __future__ import annotations

import json

import pytest

from data_processor.pipeline import main as collector_main
from data_processor.stages.step2_chunk import WordCounter
from tests.data_processor.scripted import ScriptedBackend

DOCS = {
    "veloria.txt": (
        "The Republic of Veloria is a small island nation. Its capital is Port Amsel, founded in 1742 by "
        "the navigator Hendrik Amsel. Veloria has about 310,000 inhabitants.\n\n"
        "The island exports blue saffron, a rare spice from the slopes of Mount Teral. In 2019 Veloria "
        "exported 42 tonnes of blue saffron, mostly to Japan and Germany."
    ),
    "sub/ostrel.md": (
        "# The Ostrel bridge\n\nThe Ostrel bridge crosses the river Lune at Castelbrook. It was opened in "
        "1911 and is 340 metres long. Its engineer was **Ada Pellingham**, who also built the Castelbrook "
        "tram depot.\n"
    ),
}


@pytest.fixture
def docs_dir(tmp_path):
    root = tmp_path / "docs"
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def read_jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def collect_with_model(model_dir, data_path, out, *flags) -> tuple[int, dict | None]:
    """The collector's ``main`` with the hf backend on ``model_dir`` (a tiny random model: short replies, one
    question and one persona per fact, so a run takes seconds); returns the exit code and the run summary."""
    from pathlib import Path

    rc = collector_main(["--model_name_or_path", str(model_dir), "--data_path", str(data_path), "--save_dir", str(out),
                         "--max_new_tokens", "12", "--qa_amount_per_fact", "1", "--role_amount_per_fact", "1",
                         "--max_facts_per_chunk", "3", *flags])
    summary = Path(out).with_name(Path(out).stem + ".summary.json")
    return rc, json.loads(summary.read_text())["summary"] if summary.exists() else None


@pytest.fixture
def collect(tmp_path):
    """``collect(*flags, backend=...)`` -> (exit code, backend); small chunks so there are several."""

    def run(*flags, backend=None, **backend_kwargs):
        backend = backend or ScriptedBackend(**backend_kwargs)
        argv = ["--chunk_size_by_token", "40", "--chunk_overlap_tokens", "8", *flags]
        return collector_main(argv, backend=backend, counter=WordCounter()), backend

    return run
