"""Reading plus chunking speed and memory on a long generated PDF (stage 1 and 2 of the collector).

    python -m benchmarks.bench_read                      # 300 pages, the default model's tokenizer
    python -m benchmarks.bench_read --pages 50 --tokenizer words

The PDF is typeset with fpdf2 (a test requirement) into --output_dir: a report of --pages pages, each with
a running header, a page-number footer, three paragraphs of about 80 words and, every tenth page, a small
table. It is made before the clock starts; then a fresh Python process reads it with the collector's own
reader (``read_pages``) and chunks it (``chunk_text``, 256 tokens, overlap 32: the collector's defaults),
and reports pages/s and its peak RSS (``ru_maxrss``), which includes the interpreter, torch-free imports
and the tokenizer. A second fresh process that only imports and loads the tokenizer gives the baseline.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

WORDS = ("glacier river harbour festival engineer survey measured annual report committee station valley "
         "northern coast bridge tonnes kilometres recorded season archive council village summit").split()


def make_long_pdf(path: Path, pages: int, seed: int = 0) -> Path:
    """A report of ``pages`` pages with varied text, a running header, page numbers and some tables."""
    from fpdf import FPDF

    rng = random.Random(seed)

    class Report(FPDF):
        def header(self):
            self.set_font("helvetica", size=8)
            self.cell(0, 6, "Annual survey of the northern valleys - 2024", align="C")
            self.ln(8)

        def footer(self):
            self.set_y(-12)
            self.set_font("helvetica", size=8)
            self.cell(0, 6, f"Page {self.page_no()} of {pages}", align="C")

    pdf = Report()
    pdf.set_auto_page_break(False)
    for p in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", size=10)
        for k in range(3):
            words = [rng.choice(WORDS) for _ in range(80)]
            for i in range(0, 80, 12):  # sentences of 12 words
                words[i] = words[i].capitalize()
                words[min(i + 11, 79)] += "."
            text = f"Section {p}.{k + 1}. " + " ".join(words) + f" The figure for page {p} is {rng.randint(10, 999)}."
            pdf.multi_cell(0, 5, text)
            pdf.ln(3)
        if p % 10 == 0:
            with pdf.table(width=120, col_widths=(50, 35, 35)) as table:
                for row in (("Station", "Depth", "Flow"), (f"Station {p}", f"{p % 97} m", f"{p % 13} m/s"),
                            (f"Station {p + 1}", f"{p % 89} m", f"{p % 11} m/s")):
                    cells = table.row()
                    for c in row:
                        cells.cell(c)
    pdf.output(str(path))
    return path


def _counter(name: str):
    from data_processor.stages.step2_chunk import HFTokenCounter, WordCounter

    if name == "words":
        return WordCounter()
    from transformers import AutoTokenizer

    from utils.default_model import resolve_model_path

    return HFTokenCounter(AutoTokenizer.from_pretrained(resolve_model_path(name)))


def measure(pdf: str, tokenizer: str, baseline: bool) -> dict:
    """Run in a fresh process: read + chunk ``pdf`` (or, with ``baseline``, only load the tokenizer)."""
    from data_processor.stages.step1_read import read_pages
    from data_processor.stages.step2_chunk import chunk_text

    counter = _counter(tokenizer)
    result: dict = {"peak_rss_mb": 0.0}
    if not baseline:
        t0 = time.perf_counter()
        text, pages = read_pages(pdf)
        t_read = time.perf_counter() - t0
        chunks = chunk_text(text, counter, 256, 32, Path(pdf).name, pages)
        seconds = time.perf_counter() - t0
        result.update(pages=len(pages), chunks=len(chunks), chars=len(text), read_seconds=round(t_read, 2),
                      seconds=round(seconds, 2), pages_per_second=round(len(pages) / seconds, 1),
                      last_chunk_id=chunks[-1].chunk_id)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
    return result


def _child(pdf: Path, tokenizer: str, baseline: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_read", "--measure", str(pdf), "--tokenizer", tokenizer]
    out = subprocess.run(cmd + (["--baseline"] if baseline else []), capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--tokenizer", default="default", help="'default' (the default model's), a path, or 'words'")
    ap.add_argument("--output_dir", default="benchmarks/results/read")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.tokenizer, args.baseline)))
        return 0
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pdf = out / f"report_{args.pages}p.pdf"
    t0 = time.perf_counter()
    make_long_pdf(pdf, args.pages)
    print(f"generated {pdf} ({pdf.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s", flush=True)
    run = _child(pdf, args.tokenizer, baseline=False)
    base = _child(pdf, args.tokenizer, baseline=True)
    run["baseline_rss_mb"] = base["peak_rss_mb"]
    print(f"{run['pages']} pages -> {run['chunks']} chunks in {run['seconds']} s (reading {run['read_seconds']} s): "
          f"{run['pages_per_second']} pages/s; peak RSS {run['peak_rss_mb']} MB "
          f"({base['peak_rss_mb']} MB for the imports and tokenizer alone)")
    (out / "results.json").write_text(json.dumps(run, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
