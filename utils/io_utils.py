"""File helpers shared by every stage: atomic writes and JSONL reading that names file and line."""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class DataFileError(ValueError):
    """A data file is unreadable or malformed; the message names the file (and line)."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the final file the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def iter_jsonl(path: str | os.PathLike, *, skip_bad: bool = False, bad_lines: list | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file.

    Raises :class:`DataFileError` naming ``file:line`` for a line that is not a JSON object, unless
    ``skip_bad`` is set, in which case the ``(line, reason)`` pair is appended to ``bad_lines``.
    """
    path = Path(path)
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    with fh:
        lineno = 0
        while True:
            lineno += 1
            try:
                line = fh.readline()
            except UnicodeDecodeError as exc:
                raise DataFileError(f"{path}:{lineno}: not UTF-8 text ({exc.reason})") from exc
            if not line:
                break
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            except ValueError as exc:
                reason = f"{path}:{lineno}: not a JSON object ({exc})"
                if not skip_bad:
                    raise DataFileError(reason) from None
                if bad_lines is not None:
                    bad_lines.append((lineno, reason))
                continue
            yield lineno, obj
