"""Sharded collection: two processes, each a part of the documents, merged with python -m data_processor.merge,
give the rows of one process."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_processor.merge import main as merge_main
from tests.data_processor.test_kill_resume import FLAGS, SCRIPT, make_corpus

ROOT = Path(__file__).resolve().parents[2]


def rows(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


@pytest.mark.slow
@pytest.mark.integration
def test_two_shards_in_two_processes_merge_to_the_rows_of_one(tmp_path):
    docs = make_corpus(tmp_path / "docs")
    flags = ["--data_path", str(docs), *FLAGS, "--wh_spans_per_fact", "2", "--resolve_pronouns", "true"]
    one = tmp_path / "one" / "qa.jsonl"
    subprocess.run([sys.executable, str(SCRIPT), "--", *flags, "--save_path", str(one)], cwd=ROOT, check=True,
                   capture_output=True)
    sharded = tmp_path / "sharded" / "qa.jsonl"
    procs = [subprocess.Popen([sys.executable, str(SCRIPT), "--", *flags, "--save_path", str(sharded),
                               "--num_shards", "2", "--shard_index", str(i)], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    shard_files = sorted(p.name for p in sharded.parent.glob("qa.shard*of2.jsonl"))
    assert shard_files == ["qa.shard0of2.jsonl", "qa.shard1of2.jsonl"]

    assert merge_main(["--save_path", str(sharded), "--num_shards", "2"]) == 0
    assert rows(sharded) == rows(one) and len(rows(one)) > 20
    held_out = sharded.with_name("qa.eval.jsonl")
    assert rows(held_out) == rows(one.with_name("qa.eval.jsonl")) and rows(held_out)
    assert merge_main(["--save_path", str(sharded), "--num_shards", "2"]) == 0  # rebuilt, not appended
    assert rows(sharded) == rows(one)


def test_merge_names_a_missing_or_unfinished_shard(tmp_path, caplog):
    out = tmp_path / "qa.jsonl"
    assert merge_main(["--save_path", str(out), "--num_shards", "2"]) == 2
    assert "shard 0 of 2 not found" in caplog.text
    for i in range(2):
        tmp_path.joinpath(f"qa.shard{i}of2.jsonl").write_text("")
        tmp_path.joinpath(f"qa.shard{i}of2.summary.json").write_text(json.dumps({"summary": {"status": "interrupted"}}))
    assert merge_main(["--save_path", str(out), "--num_shards", "2"]) == 2
    assert "did not complete" in caplog.text
    assert merge_main(["--save_path", str(out), "--num_shards", "2", "--allow_incomplete", "True"]) == 0


def test_merge_keeps_text_rows_once(tmp_path):
    """Statement rows (``{"text": ...}``, no conversations) go through the merge's dedup by their text."""
    from data_processor.stages.step9_write import text_row, train_row

    def text(t, shard):
        return text_row(text=t, theme="t", role="statement", file_name=f"{shard}.txt", chunk_id=f"{shard}.txt#0")

    qa = train_row(question="Q?", answer="A.", fact="A.", theme="t", role="", file_name="0.txt", chunk_id="0.txt#0")
    shards = [[qa, text("T\n\nA. B.", 0), text("T\n\nB. A.", 0)], [text("T\n\nA. B.", 1), text("U\n\nC.", 1)]]
    for i, shard in enumerate(shards):
        tmp_path.joinpath(f"qa.shard{i}of2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shard))
        tmp_path.joinpath(f"qa.shard{i}of2.summary.json").write_text(json.dumps({"summary": {"status": "complete"}}))
    assert merge_main(["--save_path", str(tmp_path / "qa.jsonl"), "--num_shards", "2"]) == 0
    merged = [json.loads(line) for line in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert merged == [qa, *shards[0][1:], shards[1][1]]
