"""Stage 1: find the documents and read them as plain text (.txt, .md, .docx, .pdf, .html, .pptx).

Every failure is a :class:`ReadError` whose message names the file and the reason; the pipeline
reports it, counts it by :attr:`ReadError.reason`, and goes on with the other files. The readers of
PDF, HTML and PPTX are in :mod:`.step1_formats`; what both modules share (the skip reasons,
:class:`ReadError`, tables as sentences) is in :mod:`.step1_common`.
"""
from __future__ import annotations

import logging
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import step1_formats as formats
# Every skip reason, also those only step1_formats raises: callers read them all from this module, the stage's door.
from .step1_common import (BAD_LINK, BINARY, CORRUPT, EMPTY, ENCODING, ENCRYPTED, NO_MAIN_TEXT,  # noqa: F401
                           NO_TEXT_LAYER, UNREADABLE, WRONG_SUFFIX, ReadError, table_text)

logger = logging.getLogger(__name__)

SUFFIXES = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".docx": "docx", ".pdf": "pdf",
            ".html": "html", ".htm": "html", ".pptx": "pptx"}
FILE_TYPES = ("auto", "txt", "md", "docx", "pdf", "html", "pptx")

_BOMS = [  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
]


@dataclass(frozen=True)
class Document:
    path: Path
    name: str  # path relative to the data folder, with "/" separators: stable across machines
    text: str
    # A paged document (PDF, PPTX): ``(offset, label)`` where each page or slide starts in ``text``, label
    # "p12" or "s3"; chunks are named after them. Empty for the formats without pages.
    pages: tuple[tuple[int, str], ...] = ()


# -- discovery -----------------------------------------------------------------------------------
def discover_files(data_path: str | os.PathLike, file_type: str = "auto") -> tuple[list[Path], list[str]]:
    """Walk ``data_path`` recursively (following symlinks, each real folder once) for documents.

    Args:
        data_path: a folder, or a single file.
        file_type: ``auto`` (every known suffix) or one of :data:`FILE_TYPES` (``txt``, ``md``, ``docx``, ``pdf``,
            ``html``, ``pptx``).
    Returns:
        ``(files, problems)``: files sorted by relative path; ``problems`` are messages about
        entries that could not be visited (symlink loops, unreadable folders).
    Raises:
        ReadError: if ``data_path`` does not exist.
    """
    if file_type not in FILE_TYPES:
        raise ValueError(f"file_type must be one of {FILE_TYPES}, got {file_type!r}")
    root = Path(data_path)
    if not root.exists():
        raise ReadError(f"{root}: no such file or folder")
    wanted = {s for s, t in SUFFIXES.items() if file_type in ("auto", t)}
    if root.is_file():
        return ([root] if root.suffix.lower() in wanted else []), []
    files: list[Path] = []
    problems: list[str] = []
    seen_dirs: set[str] = set()

    def onerror(exc: OSError) -> None:
        problems.append(f"{exc.filename}: cannot list folder ({exc.strerror})")

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:  # a symlink loop or a second link to a folder already walked
            problems.append(f"{dirpath}: skipped, links back to a folder already read ({real})")
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix.lower() not in wanted or name.startswith("~$"):  # ~$x.docx: Word lock files
                continue
            try:
                if not path.is_file():  # broken or looping symlink
                    problems.append(f"{path}: skipped, not a readable file (broken or looping link)")
                    continue
            except OSError as exc:
                problems.append(f"{path}: skipped ({exc.strerror or exc})")
                continue
            files.append(path)
    files.sort(key=lambda p: relative_name(p, root))
    return files, problems


def relative_name(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix() if Path(root).is_dir() else Path(path).name
    except ValueError:
        return Path(path).name


# -- readers -------------------------------------------------------------------------------------
def decode_text(data: bytes, name: str = "<bytes>") -> str:
    """Decode bytes of a text file: BOM, then UTF-8, then the best legacy encoding guess.

    Raises:
        ReadError: for data that looks binary or has no plausible encoding.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _check_text(data.decode(encoding, errors="replace"), name)
    if b"\x00" in data[:4096]:
        # Without a BOM, NUL bytes mean UTF-16/32 or binary; only trust a confident guess.
        guess = _guess_encoding(data)
        if guess and guess.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
            return _check_text(data.decode(guess, errors="replace"), name)
        raise ReadError(f"{name}: looks like a binary file, not text (contains NUL bytes)", BINARY)
    try:
        return _check_text(data.decode("utf-8"), name)
    except UnicodeDecodeError:
        pass
    guess = _guess_encoding(data)
    if guess is None:
        _check_text(data[:20_000].decode("latin-1"), name)  # binary? say so
        raise ReadError(f"{name}: not UTF-8 and no legacy encoding fits; convert it to UTF-8", ENCODING)
    logger.info("%s: not UTF-8, reading it as %s", name, guess)
    return _check_text(data.decode(guess, errors="replace"), name)


_WESTERN = ("cp1252", "latin_1", "iso8859_15")


def _guess_encoding(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(data[:200_000])
    best = matches.best()
    if best is None:
        return None
    # Short Western European texts decode equally cleanly as cp1250/cp1257/...; charset_normalizer
    # then picks one arbitrarily and "café" becomes "cafč". Among equally clean candidates, prefer
    # cp1252 (a superset of Latin-1's printable range), by far the most common legacy encoding.
    for m in matches:
        if m.chaos <= best.chaos + 0.01 and any(e in _WESTERN for e in [m.encoding, *m.could_be_from_charset]):
            return "cp1252"
    return best.encoding


def _check_text(text: str, name: str) -> str:
    sample = text[:20_000]
    if sample:
        control = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
        if control / len(sample) > 0.05:
            raise ReadError(f"{name}: looks like a binary file, not text ({control} control characters)", BINARY)
    return text


_MD_RULES = [
    (re.compile(r"<!--.*?-->", re.S), ""),  # comments
    (re.compile(r"\A---\n.*?\n---\n", re.S), ""),  # YAML front matter
    (re.compile(r"^```.*?$", re.M), ""),  # fence lines (the code itself stays)
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> their text
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.M), ""),  # heading markers
    (re.compile(r"^\s{0,3}>\s?", re.M), ""),  # block quotes
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"\1"),  # italics
    (re.compile(r"`([^`]+)`"), r"\1"),  # inline code
    (re.compile(r"^\s*[-*_]{3,}\s*$", re.M), ""),  # horizontal rules
]
#: the ``|---|:---:|`` line under a markdown table's header
_MD_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$", re.M)


def _md_cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _md_tables(text: str) -> str:
    """Each markdown table (a header line, a ``|---|`` line, body lines with ``|``) as :func:`table_text`."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if "|" in lines[i] and i + 1 < len(lines) and _MD_SEPARATOR.fullmatch(lines[i + 1]):
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                j += 1
            out.append(table_text([_md_cells(ln) for ln in [lines[i], *lines[i + 2: j]]]))
            i = j
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def markdown_to_text(text: str) -> str:
    """Drop markdown syntax that would confuse the generator; keep all the words (tables as
    :func:`table_text`)."""
    text = text.replace("\r\n", "\n")
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    # Tables after the inline markup (a header "**Price**" reads "price"), before stray separators go.
    return _MD_SEPARATOR.sub("", _md_tables(text))


def read_docx(path: Path) -> str:
    """Paragraphs and tables of a .docx in document order; a table becomes :func:`table_text`."""
    from docx import Document as open_docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    if not zipfile.is_zipfile(path):
        raise ReadError(f"{path}: not a valid .docx file (corrupt or truncated: not a zip archive)", CORRUPT)
    try:
        doc = open_docx(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ReadError(f"{path}: not a valid .docx file ({type(exc).__name__}: {exc})", CORRUPT) from exc
    except Exception as exc:  # noqa: BLE001 - lxml/python-docx raise many kinds for corrupt files
        raise ReadError(f"{path}: cannot read .docx ({type(exc).__name__}: {exc})", CORRUPT) from exc
    blocks: list[str] = []
    for item in doc.iter_inner_content():
        if isinstance(item, Paragraph):
            if item.text.strip():
                blocks.append(item.text.strip())
        elif isinstance(item, Table):
            rows = []
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:  # merged cells repeat: keep each text once per row
                    t = " ".join(cell.text.split())
                    if t and (not cells or cells[-1] != t):
                        cells.append(t)
                if cells:
                    rows.append(cells)
            if rows:
                blocks.append(table_text(rows))
    return "\n\n".join(blocks)


def sniff(head: bytes) -> str:
    """What the first bytes of a file look like: ``pdf``, ``zip`` (.docx, .pptx, ...), ``html``, ``text`` or
    ``binary``."""
    at = head.find(b"%PDF-", 0, 1024)
    # Readers accept a PDF header after a few bytes of binary junk; a text that merely mentions "%PDF-" is text.
    if at == 0 or (at > 0 and any(b < 9 or b > 127 for b in head[:at])):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    lower = head[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<?xml")) or re.search(rb"<(html|head|body|p|div)[\s>]", lower):
        return "html"
    sample = head[:4096]
    control = sum(1 for b in sample if b < 32 and b not in b"\n\r\t\f")
    return "binary" if b"\x00" in sample or (sample and control / len(sample) > 0.05) else "text"


#: what a file of each kind may contain, by :func:`sniff` (text files are checked by the decoder)
_EXPECTED = {"pdf": {"pdf"}, "docx": {"zip"}, "pptx": {"zip"}, "html": {"html", "text"},
             "txt": {"html", "text", "binary"}, "md": {"html", "text", "binary"}}
_LOOKS_LIKE = {"pdf": "a PDF", "zip": "a zip archive", "html": "HTML", "text": "plain text", "binary": "binary data"}
#: the folder inside the zip archive that each Office format keeps its content in
_OFFICE_FOLDERS = {"docx": "word/", "pptx": "ppt/", "xlsx": "xl/"}


def check_content(path: Path, kind: str, label: str) -> None:
    """Raise :class:`ReadError` (reason :data:`WRONG_SUFFIX`) when the file's content is not what its
    suffix says, e.g. a ``.pdf`` that is an HTML page saved under the wrong name."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise ReadError(f"{label}: empty (no text to learn from)", EMPTY)
    found = sniff(head)
    looks_like = _LOOKS_LIKE[found]
    if found == "zip" and kind in ("docx", "pptx") and zipfile.is_zipfile(path):  # a truncated zip: the reader says
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        formats = [k for k, folder in _OFFICE_FOLDERS.items() if any(n.startswith(folder) for n in names)]
        if kind in formats:
            return
        looks_like = f"a .{formats[0]} file" if formats else "a zip archive of another kind"
    elif found in _EXPECTED[kind]:
        return
    raise ReadError(f"{label}: not a .{kind} file although named so: its content looks like {looks_like}", WRONG_SUFFIX)


#: reference marks glued to the word or stop before them, as encyclopedia text carries them: "Latin Rhenus.[note 3]",
#: "in 1939[12][13]", "[citation needed]", "[a]". Left in, "Rhenus.[note 3] The" is no sentence end, so two
#: sentences become one too long to be a fact, and "[12]" would be asked about as a number.
REFERENCE_MARK = re.compile(r"(?<=\S)\[(?:\d{1,3}|(?:note|nb|n) \d{1,3}|[a-z]|citation needed|clarification needed)\]")


def strip_reference_marks(text: str) -> str:
    """``text`` without encyclopedia reference marks (:data:`REFERENCE_MARK`); a bracket after a space, or
    with anything else inside ("[sic]", "[0, 1]"), stays. An index glued to a name in code ("arr[2]") goes
    too: the collector reads prose."""
    return REFERENCE_MARK.sub("", text)


def _clean(text: str) -> str:
    return strip_reference_marks(text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", ""))


def read_pages(path: str | os.PathLike, file_type: str = "auto",
               name: str | None = None) -> tuple[str, tuple[tuple[int, str], ...]]:
    """The text of one document, and where its pages or slides start (see :attr:`Document.pages`).

    Args:
        path: the file.
        file_type: ``auto`` (by suffix) or one of :data:`FILE_TYPES`.
        name: how to call the file in messages (default: the path).
    Raises:
        ReadError: unreadable, binary, corrupt, encrypted, mislabelled or empty (whitespace only) files.
    """
    path = Path(path)
    label = name or str(path)
    kind = SUFFIXES.get(path.suffix.lower(), "txt") if file_type == "auto" else file_type
    pages: tuple[tuple[int, str], ...] = ()
    try:
        check_content(path, kind, label)
        if kind in ("pdf", "pptx"):
            segments = formats.read_pdf(path, label) if kind == "pdf" else formats.read_pptx(path, label)
            text, pages = formats.join_pages([(page, _clean(t)) for page, t in segments], continued=kind == "pdf")
        elif kind == "html":
            text = formats.read_html(path, label)
        elif kind == "docx":
            text = read_docx(path)
        else:
            text = decode_text(path.read_bytes(), label)
            if kind == "md":
                text = markdown_to_text(text)
    except ReadError:
        raise
    except OSError as exc:
        raise ReadError(f"{label}: cannot read ({exc.strerror or exc})") from exc
    if not pages:
        text = _clean(text)
    if not text.strip():
        raise ReadError(f"{label}: empty (no text to learn from)", EMPTY)
    return text, pages


def read_document(path: str | os.PathLike, file_type: str = "auto", name: str | None = None) -> str:
    """The text of one document (:func:`read_pages` without the page offsets)."""
    return read_pages(path, file_type, name)[0]


@dataclass
class ReadResult:
    """What stage 1 found: the readable documents, one message per skipped file or folder, and the
    skipped files counted by :attr:`ReadError.reason`."""

    docs: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)


def read_folder(data_path: str | os.PathLike, file_type: str = "auto", num_shards: int = 1,
                shard_index: int = 0) -> ReadResult:
    """Discover and read the documents of one shard; a file that cannot be read is skipped and counted."""
    files, problems = discover_files(data_path, file_type)
    reasons = Counter({BAD_LINK: len(problems)} if problems else {})
    root = Path(data_path)
    files = [f for i, f in enumerate(files) if i % num_shards == shard_index]
    docs: list[Document] = []
    for f in files:
        name = relative_name(f, root)
        try:
            text, pages = read_pages(f, file_type, name=name)
            docs.append(Document(path=f, name=name, text=text, pages=pages))
        except ReadError as exc:
            problems.append(str(exc))
            reasons[exc.reason] += 1
    return ReadResult(docs, problems, dict(sorted(reasons.items())))


def load_documents(
    data_path: str | os.PathLike, file_type: str = "auto", num_shards: int = 1, shard_index: int = 0
) -> tuple[list[Document], list[str]]:
    """Discover and read the documents of one shard.

    Returns:
        ``(documents, problems)``: readable documents, and one message per skipped file or folder.
    """
    result = read_folder(data_path, file_type, num_shards, shard_index)
    return result.docs, result.problems
