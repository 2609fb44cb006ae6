"""One resume mechanism for derived files: an output is current when a stamp beside it records the
fingerprint of everything it was made from (inputs, settings, model weights).

Used by the replay rows, the evaluation's cached replies and the main job's stages. Two other resume
mechanisms are each the right tool for their job and stay apart: the collector's SQLite cache (one
row per LLM reply, so a run resumes mid-stage) and the Trainer's checkpoints (optimizer state).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from utils.io_utils import atomic_write_json


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
