"""The main job on a folder of PDFs (``bash shells/quickstart.sh --docs DIR``): the quickstart filters no
suffix; it hands the folder to the collector and to the reading baseline, which both read PDFs with the
collector's reader, and a changed PDF makes the collection stale."""
from __future__ import annotations

from pathlib import Path

from data_processor.stages.step1_read import read_folder
from quickstart.run import QuickstartArguments, _docs_key, collect_command, evaluate_command, make_plan

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PDF = ROOT / "examples" / "pdf" / "docs" / "gettysburg_address.pdf"


def test_a_folder_of_pdfs_goes_to_the_collector_and_the_reading_baseline(tmp_path):
    docs = tmp_path / "pdfs"
    docs.mkdir()
    (docs / "address.pdf").write_bytes(SAMPLE_PDF.read_bytes())
    args = QuickstartArguments(run_dir=str(tmp_path / "run"), docs=str(docs))
    plan = make_plan(args)
    collect = collect_command(args, plan)
    assert collect[collect.index("--data_path") + 1] == str(docs)
    plan.held_out.parent.mkdir(parents=True)
    plan.held_out.write_text('{"question": "Who spoke?", "answers": ["Lincoln"], "file_name": "address.pdf"}\n')
    evaluate = evaluate_command(args, plan)
    assert evaluate[evaluate.index("--open_book") + 1] == str(docs)
    read = read_folder(plan.docs)
    assert [d.name for d in read.docs] == ["address.pdf"] and read.problems == []
    assert "Four score and seven years ago" in read.docs[0].text
    key = _docs_key(plan.docs)
    assert [name for name, _ in key] == ["pdfs/address.pdf"]
    (docs / "address.pdf").write_bytes(SAMPLE_PDF.read_bytes() + b"\n")
    assert _docs_key(plan.docs) != key  # the stage stamp sees a changed PDF
