"""File helpers shared by every flow: atomic writes, JSONL reading that names file and line, and stamps.

Stamps are the one resume mechanism for derived files: an output is current when a stamp beside it records
the fingerprint of everything it was made from (inputs, settings, model weights). Used by the replay rows,
the evaluation's cached replies, the GGUF export and the main job's stages. Two other resume mechanisms are
each the right tool for their job and stay apart: the collector's SQLite cache (one row per LLM reply, so a
run resumes mid-stage) and the Trainer's checkpoints (optimizer state).
"""
from __future__ import annotations

import hashlib
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


# -- stamps ---------------------------------------------------------------------------------------
def fingerprint(obj) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_stamp(folder: str | os.PathLike | None) -> list:
    """Name, size and mtime of the weight files in ``folder`` (``[]`` for a hub id or no folder), so a
    model retrained into the same folder counts as a different model."""
    if not folder or not Path(folder).is_dir():
        return []
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                  for f in Path(folder).iterdir() if f.suffix in (".safetensors", ".bin", ".gguf"))


def stamp_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".stamp.json")


def is_current(output: str | os.PathLike, key) -> bool:
    """``output`` exists and was made from ``key`` (see :func:`mark_current`)."""
    stamp = stamp_path(output)
    if not Path(output).exists() or not stamp.is_file():
        return False
    try:
        return json.loads(stamp.read_text(encoding="utf-8")).get("fingerprint") == fingerprint(key)
    except (OSError, ValueError):
        return False


def mark_current(output: str | os.PathLike, key) -> None:
    """Record that ``output`` (already written) was made from ``key``. Written after the output, so a
    crash in between leaves an output without a stamp: redone, never trusted."""
    atomic_write_json(stamp_path(output), {"fingerprint": fingerprint(key), "key": key})
