"""Stage 1, what every reader shares (step1_read.py and step1_formats.py): why a file is skipped, the
error that says so, and tables as sentences."""
from __future__ import annotations

# Why a file was skipped, as the run summary counts them (``files_skipped_by_reason``).
NO_TEXT_LAYER = "no text layer"
ENCRYPTED = "encrypted"
CORRUPT = "corrupt or truncated"
NO_MAIN_TEXT = "no main text"
WRONG_SUFFIX = "extension does not match content"
EMPTY = "empty"
BINARY = "binary"
ENCODING = "unknown encoding"
UNREADABLE = "cannot read"
BAD_LINK = "broken link or unreadable folder"


class ReadError(ValueError):
    """A document could not be read; the message starts with its path, ``reason`` is one of the
    categories above."""

    def __init__(self, message: str, reason: str = UNREADABLE) -> None:
        super().__init__(message)
        self.reason = reason


def _label(header: str) -> str:
    """A column header as it reads inside a sentence: "Peak temperature" -> "peak temperature"; an acronym
    ("GDP") keeps its case."""
    return header if header[:2].isupper() else header[:1].lower() + header[1:]


def table_text(rows: list[list[str]]) -> str:
    """A table as text the later stages can use.

    With a header row (two or more cells, none empty, no digits), each body row of the same width becomes
    one sentence that names every value by its column: "For model Emberlark Mini, the weight is 9 kg and
    the price is 399 euros." A fact taken from a bare row ("Emberlark Mini | 9 kg | 399 euros") would not
    say what its numbers are, so no question could be asked about them. Other rows, and every row of a
    table without such a header, stay ``a | b | c``.
    """
    def cells(row: list[str]) -> str:
        return " | ".join(c for c in row if c)

    rows = [[" ".join(c.split()) for c in row] for row in rows if any(c.strip() for c in row)]
    header = rows[0] if rows else []
    if len(rows) < 2 or len(header) < 2 or not all(header) or any(ch.isdigit() for h in header for ch in h):
        return "\n".join(cells(row) for row in rows)
    out = []
    for row in rows[1:]:
        values = [(_label(h), c) for h, c in zip(header[1:], row[1:]) if c and c not in ("-", "–", "—")]
        if len(row) != len(header) or not row[0] or not values:
            out.append(cells(row))
            continue
        said = [f"the {h} is {c.rstrip('.')}" for h, c in values]
        body = said[0] if len(said) == 1 else ", ".join(said[:-1]) + " and " + said[-1]
        out.append(f"For {_label(header[0])} {row[0]}, {body}.")
    return "\n".join(out)
