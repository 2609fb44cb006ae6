"""The collector's real entry point (``python -m data_processor`` and ``shells/collect_data.sh``) when
things go wrong: every kind of bad input is named in one line while the other files go on; a clean
non-zero exit when nothing can be read; an API that fails for good stops with an error naming the
stage and item and keeps no empty result; Ctrl+C says how to resume; the API key appears in nothing
written. The generator is the fake OpenAI-compatible server (scripted replies): each run takes seconds.
"""
import ctypes
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.data_processor.conftest import read_jsonl
from tests.data_processor.fake_openai import FakeOpenAI
from tests.data_processor.stages.test_step1_read import make_docx

ROOT = Path(__file__).resolve().parents[2]
SMALL_CHUNKS = ["--chunk_size_by_token", "40", "--chunk_overlap_tokens", "8"]
RESUME_HINT = "run the same command again to resume"
SECRET = "sk-live-NEVER-WRITTEN-9f8e7d6c5b4a"


def collector_cmd(srv: FakeOpenAI, *flags: str) -> list[str]:
    return [sys.executable, "-m", "data_processor", "--model_type", "api", "--api_base", srv.base_url,
            "--api_model", "fake", "--tokenizer_name_or_path", "words", *SMALL_CHUNKS, *flags]


def run_env(**extra) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **extra}
    env.pop("OPENAI_API_KEY", None)
    return env


def run_collector(srv: FakeOpenAI, *flags: str, env: dict | None = None, cwd=ROOT, preexec_fn=None):
    return subprocess.run(collector_cmd(srv, *flags), cwd=cwd, env=env or run_env(), capture_output=True,
                          text=True, timeout=300, preexec_fn=preexec_fn)


def assert_no_traceback(proc) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


# -- permissions: root reads anything, so drop the capabilities that let it -----------------------
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _PR_CAPBSET_DROP = 1, 2, 24


def _drop_file_capabilities() -> None:
    """preexec_fn: the child (still root) then obeys file permission bits like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def unreadable_file_support(probe: Path):
    """``(supported, preexec_fn)``: whether a chmod-0 file is unreadable to the collector we start."""
    probe.write_text("x")
    probe.chmod(0)
    preexec = _drop_file_capabilities if os.geteuid() == 0 else None
    try:
        proc = subprocess.run([sys.executable, "-c", f"open({str(probe)!r}).read()"], capture_output=True,
                              preexec_fn=preexec, timeout=60)
    except subprocess.SubprocessError:  # prctl refused (no CAP_SETPCAP): cannot drop root's override
        return False, None
    finally:
        probe.unlink()
    return proc.returncode != 0 and b"PermissionError" in proc.stderr, preexec


# -- bad inputs --------------------------------------------------------------------------------------
def make_bad_corpus(d: Path) -> dict[str, str]:
    """A folder with good files and every kind of bad one; returns ``{bad name: expected reason}``."""
    d.mkdir()
    (d / "good.txt").write_text("The Ostrel bridge was opened in 1911. It is 340 metres long.")
    (d / "latin1.txt").write_bytes("Le café de Genève a été fondé en 1820 par Amélie Roux.".encode("latin-1"))
    (d / "utf16.txt").write_text("The Lune river is 212 kilometres long.", encoding="utf-16")  # with a BOM
    (d / "huge.txt").write_text(("The quick river carries boats past the mill " * 3000).strip() + ".")  # one line
    make_docx(d / "tables.docx", with_paragraphs=False)
    (d / "notes.pdf").write_bytes(b"%PDF-1.4 and nothing after the header")
    (d / "empty.txt").write_bytes(b"")
    (d / "blank.txt").write_text(" \n\n\t \n")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (d / "corrupt.docx").write_bytes((d / "tables.docx").read_bytes()[:300])  # a truncated zip
    (d / "loop").symlink_to(d, target_is_directory=True)
    (d / "self.txt").symlink_to(d / "self.txt")
    return {
        "empty.txt": "empty", "blank.txt": "empty", "binary.txt": "binary", "corrupt.docx": "not a valid .docx",
        "loop": "links back to a folder already read", "self.txt": "broken or looping link",
        "notes.pdf": "corrupt or truncated PDF",
    }


def test_a_text_pdf_gives_rows_and_a_scan_and_a_truncated_pdf_are_named(tmp_path):
    from tests.data_processor.stages.test_step1_formats import report_pdf, scanned_pdf

    d = tmp_path / "pdfs"
    d.mkdir()
    report_pdf(d / "report.pdf")
    scanned_pdf(d / "scan.pdf")
    whole = report_pdf(tmp_path / "whole.pdf").read_bytes()
    (d / "cut.pdf").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out" / "qa.jsonl"
    with FakeOpenAI() as srv:
        proc = run_collector(srv, "--data_path", str(d), "--save_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_no_traceback(proc)
    skipped = [line for line in proc.stderr.splitlines() if "skipped:" in line]
    assert len(skipped) == 2
    assert any("scan.pdf: no text layer: run OCR first, e.g. ocrmypdf" in line for line in skipped), skipped
    assert any("cut.pdf: corrupt or truncated PDF" in line for line in skipped), skipped
    summary = json.loads((tmp_path / "out" / "qa.summary.json").read_text())["summary"]
    assert summary["documents"] == ["report.pdf"]
    assert summary["files_skipped_by_reason"] == {"corrupt or truncated": 1, "no text layer": 1}
    assert "skipped by reason corrupt or truncated 1, no text layer 1" in proc.stdout
    rows = read_jsonl(out)
    assert rows and {r["file_name"] for r in rows} == {"report.pdf"}
    assert {r["chunk_id"].split("#")[1].split(".")[0] for r in rows} <= {"p1", "p2"}
    assert any("Fennick" in r["fact"] for r in rows) and any("399 euros" in r["fact"] for r in rows)


def test_every_kind_of_bad_input_is_named_and_the_other_files_go_on(tmp_path):
    d = tmp_path / "docs"
    bad = make_bad_corpus(d)
    locked_works, preexec = unreadable_file_support(tmp_path / "probe.txt")
    if locked_works:
        (d / "locked.txt").write_text("The Velka river is 80 kilometres long.")
        (d / "locked.txt").chmod(0)
        bad["locked.txt"] = "cannot read (Permission denied)"
    out = tmp_path / "out" / "qa.jsonl"
    with FakeOpenAI() as srv:
        proc = run_collector(srv, "--data_path", str(d), "--save_dir", str(out), preexec_fn=preexec)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_no_traceback(proc)
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line and "skipped:" in line]
    for name, reason in bad.items():  # one line per bad file, naming it and the reason
        assert [w for w in warnings if name in w and reason in w], f"no warning for {name}: {warnings}"
    summary = json.loads((tmp_path / "out" / "qa.summary.json").read_text())["summary"]
    assert summary["status"] == "complete"
    assert len(summary["files_skipped"]) == len(bad) == sum(summary["files_skipped_by_reason"].values())
    assert summary["documents"] == ["good.txt", "huge.txt", "latin1.txt", "tables.docx", "utf16.txt"]
    rows = read_jsonl(out)
    assert {r["file_name"] for r in rows} >= {"good.txt", "huge.txt", "latin1.txt", "utf16.txt"}
    assert any("Genève" in json.dumps(r, ensure_ascii=False) for r in rows)  # Latin-1 decoded, not mangled
    assert "files read        5 (%d skipped)" % len(bad) in proc.stdout
    assert locked_works or os.geteuid() == 0, "the permission case must run wherever permissions apply"


@pytest.mark.parametrize("case", ["no_matching_files", "missing_folder", "only_bad_files"])
def test_nothing_to_read_is_a_clean_non_zero_exit_through_the_launcher(tmp_path, case):
    d = tmp_path / "docs"
    if case == "no_matching_files":
        d.mkdir()
        (d / "report.pdf").write_bytes(b"%PDF-1.4")
        (d / "notes.rst").write_text("Some notes.")
        expected = f"no readable documents in {d}"
    elif case == "missing_folder":
        expected = f"{d}: no such file or folder"
    else:
        d.mkdir()
        (d / "empty.txt").write_bytes(b"")
        expected = "empty.txt: empty"
    out = tmp_path / "out" / "qa.jsonl"
    env = run_env(KU_NO_INSTALL="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(ROOT / "shells" / "collect_data.sh"), "--data_path", str(d),
                           "--save_dir", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    assert expected in proc.stderr and "ERROR" in proc.stderr
    assert_no_traceback(proc)
    assert not out.exists()


# -- API faults through the CLI ------------------------------------------------------------------------
def test_api_failing_for_good_names_stage_and_item_keeps_no_empty_result_and_resumes(collect, docs_dir, tmp_path):
    ref = tmp_path / "ref" / "qa.jsonl"
    rc, ref_backend = collect("--data_path", str(docs_dir), "--save_dir", str(ref))
    assert rc == 0
    out = tmp_path / "run" / "qa.jsonl"
    flags = ["--data_path", str(docs_dir), "--save_dir", str(out), "--max_concurrency", "1"]
    with FakeOpenAI(faults=["ok"] * 12, always="500") as srv:
        proc = run_collector(srv, *flags, "--max_retries", "1")
        assert proc.returncode == 1
        assert_no_traceback(proc)
        error = re.search(r"ERROR .*stage '([\w-]+)', item (\d+): gave up after 2 attempts \(HTTP 500\)", proc.stderr)
        assert error, proc.stderr[-3000:]
        assert error.group(1).split("-")[0] in {"theme", "facts", "qa", "roles", "diversify"}
        assert RESUME_HINT in proc.stderr
        # Only real replies were kept: every cached reply is one the server sent, none is empty.
        with sqlite3.connect(out.with_name("qa.jsonl.cache.sqlite")) as db:
            replies = [r for (r,) in db.execute("SELECT reply FROM results")]
        assert len(replies) == srv.served_ok == 12 and all(r.strip() for r in replies)
        for row in read_jsonl(out) if out.exists() else []:
            assert all(t["value"].strip() for t in row["conversations"])
        assert json.loads(out.with_name("qa.summary.json").read_text())["summary"]["status"] == "failed"
        # The same command once the server is healthy again (same server: the cache key names it)
        # finishes the run, and no finished reply is asked for again.
        srv.always, first_run_requests = "ok", len(srv.starts)
        proc = run_collector(srv, *flags)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_text() == ref.read_text()
    assert len(srv.starts) - first_run_requests == len(ref_backend.prompts) - 12


def test_ctrl_c_on_the_api_backend_stops_cleanly_and_says_how_to_resume(docs_dir, tmp_path):
    out = tmp_path / "qa.jsonl"
    with FakeOpenAI(latency=0.2) as srv:
        proc = subprocess.Popen(collector_cmd(srv, "--data_path", str(docs_dir), "--save_dir", str(out),
                                              "--max_concurrency", "2"),
                                cwd=ROOT, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while srv.served_ok < 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before Ctrl+C"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in stderr and RESUME_HINT in stderr
    assert "Traceback" not in stdout + stderr
    assert json.loads((tmp_path / "qa.summary.json").read_text())["summary"]["status"] == "interrupted"


def test_api_key_appears_in_nothing_written_and_limits_hold_at_the_server(docs_dir, tmp_path):
    """Every file the run writes (outputs, summary, cache, anything under HOME or TMPDIR) and every
    line it prints is searched for the key, with retries and DEBUG logging on; the concurrency and
    rate limits given as flags are measured at the server."""
    home, tmp, work = tmp_path / "home", tmp_path / "tmp", tmp_path / "work"
    for p in (home, tmp, work):
        p.mkdir()
    env = run_env(MY_COLLECTOR_KEY=SECRET, HOME=str(home), TMPDIR=str(tmp), XDG_CACHE_HOME=str(home / ".cache"))
    faults = ["500", "429", "reset", "429_no_retry_after", "503"]
    with FakeOpenAI(faults=faults, retry_after="0", latency=0.05) as srv:
        proc = run_collector(srv, "--api_key_env", "MY_COLLECTOR_KEY", "--data_path", str(docs_dir),
                             "--save_dir", "out/qa.jsonl", "--eval_fraction", "0.3", "--log_level", "DEBUG",
                             "--max_concurrency", "2", "--requests_per_minute", "1200", env=env, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(srv.auth_headers) == {f"Bearer {SECRET}"}  # the key was used ...
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    names = {p.name for p in written}
    assert {"qa.jsonl", "qa.eval.jsonl", "qa.summary.json", "qa.jsonl.cache.sqlite"} <= names
    for p in written:  # ... and is in no file ...
        assert SECRET.encode() not in p.read_bytes(), f"the API key leaked into {p}"
    assert SECRET not in proc.stdout + proc.stderr  # ... and in no log line
    assert "DEBUG" in proc.stderr  # (the DEBUG logs were on)
    # --max_concurrency 2 and --requests_per_minute 1200 (one start per 0.05 s), seen by the server.
    assert srv.max_in_flight == 2
    # Any 10 consecutive starts span >= 9 intervals, less one of slack for scheduling jitter on a busy
    # machine; without the limit 2 workers at 0.05 s latency start one request every ~0.025 s.
    starts = srv.starts
    assert len(starts) > 20
    assert min(b - a for a, b in zip(starts, starts[9:])) >= 8 * 0.05
