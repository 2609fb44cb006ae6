"""The sample PDF (examples/pdf/docs/): it is what examples/make_sample_pdf.py builds, and the collector reads it end
to end, with the scripted generator (fast) and with a tiny random model through the real hf backend (slow)."""
from pathlib import Path

import pytest

from tests.data_processor.conftest import collect_with_model, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "pdf" / "docs"


def test_the_committed_pdf_is_what_its_script_builds(tmp_path):
    from examples.make_sample_pdf import build

    assert build(tmp_path / "g.pdf").read_bytes() == (SAMPLE / "gettysburg_address.pdf").read_bytes()


def test_collector_on_the_sample_pdf_with_the_scripted_generator(collect, tmp_path):
    out = tmp_path / "qa.jsonl"
    rc, _ = collect("--data_path", str(SAMPLE), "--save_dir", str(out))
    assert rc == 0
    rows = read_jsonl(out)
    assert {r["file_name"] for r in rows} == {"gettysburg_address.pdf"}
    pages = {r["chunk_id"].split("#")[1].split(".")[0] for r in rows}
    assert pages == {"p1", "p2"}
    facts = " ".join(r["fact"] for r in rows)
    assert "Four score and seven years ago" in facts and "the date is 19 November 1863" in facts
    assert "Page 1" not in facts and "(1863)" not in facts  # running header and page numbers are gone


@pytest.mark.slow
def test_collector_on_the_sample_pdf_with_a_tiny_model(tiny_model_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    rc, summary = collect_with_model(tiny_model_dir, SAMPLE, out, "--chunk_size_by_token", "128",
                                     "--chunk_overlap_tokens", "16")
    assert rc == 0
    assert summary["status"] == "complete" and summary["documents"] == ["gettysburg_address.pdf"]
    assert summary["files_skipped"] == [] and summary["chunks"] >= 3 and summary["llm_calls"] > 0
    for row in read_jsonl(out) if out.exists() else []:  # random weights: whatever got through names its page
        assert row["chunk_id"].startswith("gettysburg_address.pdf#p")
