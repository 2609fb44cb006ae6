"""Stage 1, the formats with pages or markup: PDF (pypdf), HTML (trafilatura) and PPTX (python-pptx).

PDF and PPTX readers return one ``(label, text)`` segment per page (``p12``) or slide (``s3``);
:func:`join_pages` makes them one text and remembers where each page starts, so that chunk ids name
the page (``report.pdf#p12``). The text clean-up of PDF pages is pure functions over strings
(:func:`clean_pdf_pages`), tested without a PDF. Why these libraries: docs/collection.md.
"""
from __future__ import annotations

import logging
import re
import zipfile
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from .step1_common import CORRUPT, ENCRYPTED, NO_MAIN_TEXT, NO_TEXT_LAYER, ReadError, table_text

logger = logging.getLogger(__name__)
# pypdf logs each repair it attempts ("EOF marker not found", ...) as a warning; the reader reports the
# outcome in one line naming the file instead.
logging.getLogger("pypdf").setLevel(logging.ERROR)

PROGRESS_MIN_PAGES = 20  # a progress bar for PDFs of at least this many pages
OCR_HINT = "no text layer: run OCR first, e.g. ocrmypdf"


# -- joining pages ---------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"[.!?:;。！？)\]\"'”’]\s*$")


def join_pages(segments: list[tuple[str, str]], continued: bool = False) -> tuple[str, tuple[tuple[int, str], ...]]:
    """Join ``(label, text)`` segments with a blank line; returns the text and ``((offset, label), ...)``.

    With ``continued`` (PDF pages), a page whose last line stops mid-sentence and a next page that starts
    in lower case are joined by a space (``vil-`` + ``lages`` by nothing), so the page break does not
    become a paragraph break inside a sentence. Empty segments are left out.
    """
    out, pages = "", []
    for label, text in segments:
        text = text.strip()
        if not text:
            continue
        if out and continued and text[:1].islower() and not _SENTENCE_END.search(out):
            out = _join(out, text, " ")
            pages.append((len(out) - len(text), label))  # the page starts at its first character, after the join
            continue
        if out:
            out += "\n\n"
        pages.append((len(out), label))
        out += text
    return out, tuple(pages)


# -- PDF: clean-up of the extracted text (pure) --------------------------------------------------------
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—(\[]*(?:page|p\.|seite|pág\.?)?\s*(?:\d{1,5}|[ivx]{1,6})(?:\s*(?:of|/|von|de)\s*\d{1,5})?[\s\-–—)\]]*$",
    re.I)
_CELL_GAP = re.compile(r"\s{3,}")  # layout mode separates table columns by runs of spaces


def _key(line: str) -> str:
    """A header/footer line compared across pages: case, spacing and numbers (dates, page numbers) ignored."""
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _edges(lines: list[str], n: int = 2) -> list[int]:
    """Indices of the first and last ``n`` non-blank lines: where running headers and footers sit."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:n] + filled[-n:]))


def strip_headers_footers(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers at the top or bottom of a page, and lines found there on most pages (running
    headers and footers, whatever number they carry)."""
    with_text = [p for p in pages if any(line.strip() for line in p)]
    # Only short lines: a running header is a title or a date, and a long body line that merely starts
    # every page alike (generated reports) must stay.
    counts = Counter(k for p in with_text for k in {_key(p[i]) for i in _edges(p) if len(p[i].split()) <= 15})
    repeated = {k for k, c in counts.items() if len(with_text) >= 2 and c >= 2 and c >= 0.6 * len(with_text)}
    out = []
    for p in pages:
        drop = {i for i in _edges(p) if _key(p[i]) in repeated or _PAGE_NUMBER.match(p[i])}
        out.append([line for i, line in enumerate(p) if i not in drop])
    return out


def _cells(line: str) -> list[str]:
    return [c for c in _CELL_GAP.split(line.strip()) if c]


def is_multicolumn(lines: list[str]) -> bool:
    """Whether layout-mode lines are two columns of prose side by side (most lines split in two long parts);
    such a page is read in the PDF's content order instead, which keeps each column whole."""
    filled = [line for line in lines if line.strip()]
    split = [c for c in (_cells(line) for line in filled) if len(c) == 2]
    if len(filled) < 6 or len(split) < 0.6 * len(filled):
        return False
    return sum(len(a) + len(b) for a, b in split) / (2 * len(split)) >= 25


def join_lines(lines: list[str]) -> str:
    """The lines of one paragraph as one line: a word hyphenated across lines is joined ("vil-" "lages")."""
    out = ""
    for line in (" ".join(line.split()) for line in lines):
        if not line:
            continue
        out = _join(out, line, " ") if out else line
    return out


def _join(before: str, after: str, sep: str) -> str:
    """``before`` + ``after`` across a line or page break: a word cut by a hyphen before a lower-case letter
    is joined ("vil-" "lages"); any other hyphen after a letter or digit is kept, without a space
    ("Norrgaard-" "Quint", "1902-" "03")."""
    if re.search(r"\w-$", before):
        return (before[:-1] if after[:1].islower() and before[-2].isalpha() else before) + after
    return before + sep + after


def _table_at(lines: list[str], i: int) -> tuple[list[list[str]], int]:
    """The table (rows of cells) whose first row is ``lines[i]``, and the index after it; no table: ``([], i)``.

    A table is two or more rows with the same number (2+) of cells separated by wide gaps; blank lines
    between rows are allowed (layout mode keeps the row height). Long cells mean prose, not a table.
    """
    first = _cells(lines[i])
    if len(first) < 2:
        return [], i
    rows, j, end = [first], i + 1, i + 1
    while j < len(lines):
        if not lines[j].strip():
            j += 1
            continue
        cells = _cells(lines[j])
        if len(cells) != len(first):
            break
        rows.append(cells)
        j = end = j + 1
    if len(rows) < 2 or sum(map(len, (c for r in rows for c in r))) / (len(rows) * len(first)) > 40:
        return [], i
    return rows, end


def page_blocks(lines: list[str]) -> list[str]:
    """One page's layout-mode lines as blocks: paragraphs (split at blank lines, lines joined) and tables
    (as :func:`table_text` sentences)."""
    blocks, para, i = [], [], 0
    while i < len(lines):
        rows, end = _table_at(lines, i)
        if rows:
            blocks.append(join_lines(para))
            blocks.append(table_text(rows))
            para, i = [], end
            continue
        if lines[i].strip():
            para.append(lines[i])
        else:
            blocks.append(join_lines(para))
            para = []
        i += 1
    blocks.append(join_lines(para))
    return [b for b in blocks if b]


def clean_pdf_pages(pages: list[str]) -> list[str]:
    """Layout-mode text of each page -> clean text of each page: headers, footers and page numbers out,
    paragraphs one line each with hyphenated words joined, tables as sentences."""
    lines = strip_headers_footers([p.splitlines() for p in pages])
    return ["\n\n".join(page_blocks(p)) for p in lines]


# -- PDF: the reader --------------------------------------------------------------------------------
def read_pdf(path: Path, label: str) -> list[tuple[str, str]]:
    """``[("p1", text), ...]`` of a PDF with a text layer, one page at a time (pypdf parses a page when it
    is asked for it, so memory stays small for long reports).

    Raises:
        ReadError: encrypted, corrupt or truncated, or without any text (a scan).
    """
    import pypdf
    from pypdf.errors import DependencyError

    try:
        reader = pypdf.PdfReader(path)  # strict=False: small damage is repaired, as viewers do
        if reader.is_encrypted:
            try:  # a PDF with only an owner password (no printing, no copying) opens with the empty one
                opened = reader.decrypt("")
            except DependencyError:  # AES needs the cryptography package
                opened = 0
            if not opened:
                raise ReadError(f"{label}: encrypted PDF (it needs a password); save an unprotected copy, "
                                "e.g. qpdf --decrypt", ENCRYPTED)
        n = len(reader.pages)
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds (PdfReadError, ValueError, ...)
        raise ReadError(f"{label}: corrupt or truncated PDF ({type(exc).__name__}: {exc})", CORRUPT) from exc
    raw, failed = [], []
    for i in tqdm(range(n), desc=f"reading {label}", unit="page", disable=n < PROGRESS_MIN_PAGES, leave=False):
        try:
            page = reader.pages[i]
            text = page.extract_text(extraction_mode="layout")
            if is_multicolumn(text.splitlines()):
                text = page.extract_text()
        except Exception as exc:  # noqa: BLE001 - one damaged page should not lose the others
            failed.append(f"{i + 1} ({type(exc).__name__})")
            text = ""
        raw.append(text)
    if failed and len(failed) == n:
        raise ReadError(f"{label}: corrupt or truncated PDF (no page could be read: {', '.join(failed[:3])})", CORRUPT)
    if failed:
        logger.warning("%s: %d of %d pages could not be read and were left out: %s", label, len(failed), n,
                       ", ".join(failed[:10]))
    texts = clean_pdf_pages(raw)
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    if len(empty) == n:
        raise ReadError(f"{label}: {OCR_HINT} (none of its {n} pages has text)", NO_TEXT_LAYER)
    if empty:
        logger.warning("%s: pages %s have no text (blank, or scanned: run OCR first, e.g. ocrmypdf)", label,
                       ", ".join(map(str, empty[:20])) + (" ..." if len(empty) > 20 else ""))
    return [(f"p{i + 1}", t) for i, t in enumerate(texts)]


# -- HTML ---------------------------------------------------------------------------------------------
def html_blocks(xml: str) -> list[str]:
    """The blocks of trafilatura's XML output: headings, paragraphs, list items, quotes, and tables as
    :func:`table_text`."""
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    blocks: list[str] = []
    if main is None:
        return blocks

    def text_of(el) -> str:
        return " ".join("".join(el.itertext()).split())

    for el in main.iter("head", "p", "item", "quote", "code", "table"):
        if any(a.tag in ("table", "item", "quote") for a in el.iterancestors()) and el.tag != "table":
            continue  # its text is part of the enclosing table, list item or quote
        if el.tag == "table":
            rows = [[text_of(c) for c in row.iter("cell")] for row in el.iter("row")]
            text = table_text([r for r in rows if any(r)])
        else:
            text = text_of(el)
        if text:
            blocks.append(text)
    return blocks


def read_html(path: Path, label: str) -> str:
    """The main text of an HTML page, without navigation, scripts or boilerplate (trafilatura).

    Raises:
        ReadError: no main text found.
    """
    import trafilatura

    data = path.read_bytes()  # bytes: trafilatura honours the page's <meta charset>
    # favor_precision: on a page with little text, the default mode glued the navigation links to the
    # first paragraph ("Home Shop About us Le café ..."); precision mode left them out (tests).
    xml = trafilatura.extract(data, output_format="xml", include_tables=True, include_comments=False,
                              include_images=False, include_links=False, with_metadata=False, favor_precision=True)
    blocks = html_blocks(xml) if xml else []
    if not blocks:
        raise ReadError(f"{label}: no main text in this HTML page (only navigation, scripts or boilerplate)",
                        NO_MAIN_TEXT)
    return "\n\n".join(blocks)


# -- PPTX ---------------------------------------------------------------------------------------------
def _shape_blocks(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [b for s in _reading_order(shape.shapes) for b in _shape_blocks(s)]
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[" ".join(c.text.split()) for c in row.cells] for row in shape.table.rows]
        return [table_text(rows)] if rows else []
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return [t for t in (" ".join(p.text.split()) for p in shape.text_frame.paragraphs) if t]
    return []


def _reading_order(shapes) -> list:
    """Top to bottom, then left to right: the order a reader takes, not the order shapes were added."""
    return sorted(shapes, key=lambda s: ((s.top or 0), (s.left or 0)))


def read_pptx(path: Path, label: str) -> list[tuple[str, str]]:
    """``[("s1", text), ...]``: each slide's text (titles, text boxes, tables as sentences), then its notes.

    Raises:
        ReadError: not a valid .pptx.
    """
    from pptx import Presentation

    try:
        deck = Presentation(str(path))
        slides = []
        for i, slide in enumerate(deck.slides, start=1):
            blocks = [b for s in _reading_order(slide.shapes) for b in _shape_blocks(s)]
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.paragraphs
                blocks += [t for t in (" ".join(p.text.split()) for p in notes) if t]
            slides.append((f"s{i}", "\n\n".join(blocks)))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ReadError(f"{label}: not a valid .pptx file ({type(exc).__name__}: {exc})", CORRUPT) from exc
    except Exception as exc:  # noqa: BLE001 - lxml/python-pptx raise many kinds for corrupt files
        raise ReadError(f"{label}: cannot read .pptx ({type(exc).__name__}: {exc})", CORRUPT) from exc
    return slides
