"""The external dev corpus (examples/external_dev: SQuAD 2.0 paragraphs and their crowd-written questions)
is read by evaluate.py as shipped, and every gold answer is a span of the document its question names."""
from __future__ import annotations

import json
from pathlib import Path

from evaluation.runner import load_qa_file

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "external_dev"


def test_external_dev_rows_load_and_answers_are_spans_of_their_document():
    rows = load_qa_file(str(CORPUS / "eval_qa.jsonl"))
    raw = [json.loads(line) for line in (CORPUS / "eval_qa.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(raw) == 109
    docs = {p.name: p.read_text(encoding="utf-8") for p in (CORPUS / "docs").iterdir()}
    assert {r["doc"] for r in rows} == set(docs), "every document gets questions, and only those"
    for row, src in zip(rows, raw):
        assert row["answers"] == src["answers"] and len(row["answers"]) >= 1
        assert src["squad_id"], row["source"]
        for answer in row["answers"]:
            assert answer in docs[row["doc"]], (row["source"], answer)


def test_external_dev_keeps_its_attribution():
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert "SQuAD 2.0" in readme and "CC BY-SA 4.0" in readme and "Rajpurkar" in readme
