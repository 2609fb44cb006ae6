"""Every LLM reply, cached in SQLite by a hash of (model, chat, sampling), written as it arrives.

This is what makes a run resumable: after a crash, a kill or Ctrl+C, the same command finds every
reply it already paid for and sends only the rest; a second identical run makes no LLM call at all.
The API key is never part of a key or a row (the model id names the server and model only).
"""
from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

from generation.base import Chat, LLMBackend, SamplingConfig

logger = logging.getLogger(__name__)


def cache_key(model_id: str, chat: Chat, sampling: SamplingConfig) -> str:
    """Content hash of one request: same model, same messages, same decoding -> same key."""
    payload = json.dumps({"model": model_id, "chat": chat, "sampling": sampling.to_dict()},
                         ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResultCache:
    """A key -> reply table in one SQLite file (WAL mode: a kill never corrupts it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: each commit survives a process kill; only a power cut can lose the last few.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, stage TEXT, reply TEXT NOT NULL, created REAL)"
        )
        self.conn.commit()

    def get_many(self, keys) -> dict[str, str]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                marks = ",".join("?" * len(part))
                for k, reply in self.conn.execute(f"SELECT key, reply FROM results WHERE key IN ({marks})", part):
                    found[k] = reply
        return found

    def put(self, key: str, stage: str, reply: str) -> None:
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", (key, stage, reply, time.time()))
            self.conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self.conn.close()


class CachedLLM:
    """A backend behind the cache: only prompts without a cached reply reach the backend.

    Args:
        backend: any :class:`LLMBackend`.
        cache: where replies are kept.
        sampling: decoding settings.
        stage_sampling: per-stage changes, e.g. ``{"theme": {"max_new_tokens": 32}}``; a
            ``max_new_tokens`` there is a cap (replies are short; this saves time when a small model
            rambles), other fields replace the run's value.
    """

    def __init__(self, backend: LLMBackend, cache: ResultCache, sampling: SamplingConfig,
                 stage_sampling: dict[str, dict] | None = None) -> None:
        self.backend = backend
        self.cache = cache
        self.sampling = sampling
        self.stage_sampling = stage_sampling or {}
        self.calls = 0  # prompts sent to the backend
        self.cache_hits = 0

    def sampling_for(self, stage: str) -> SamplingConfig:
        changes = dict(self.stage_sampling.get(stage, {}))
        if "max_new_tokens" in changes:
            changes["max_new_tokens"] = min(changes["max_new_tokens"], self.sampling.max_new_tokens)
        return replace(self.sampling, **changes) if changes else self.sampling

    def generate(self, label: str, chats: list[Chat], stage: str | None = None) -> list[str]:
        """Replies for ``chats``, from the cache where possible; new replies are cached one by one.

        Identical chats in one batch are sent once. ``label`` names the batch in progress bars and
        errors; ``stage`` picks the per-stage sampling (default: ``label``).
        """
        if not chats:
            return []
        sampling = self.sampling_for(stage or label)
        keys = [cache_key(self.backend.model_id, c, sampling) for c in chats]
        found = self.cache.get_many(keys)
        todo: dict[str, Chat] = {}
        for k, c in zip(keys, chats):
            if k not in found and k not in todo:
                todo[k] = c
        self.cache_hits += len(chats) - len(todo)
        if todo:
            todo_keys = list(todo)

            def on_result(j: int, reply: str) -> None:
                self.cache.put(todo_keys[j], label, reply)
                found[todo_keys[j]] = reply
                self.calls += 1

            logger.info("%s: %d prompts (%d cached)", label, len(todo), len(chats) - len(todo))
            replies = self.backend.generate(list(todo.values()), sampling, on_result=on_result, desc=label)
            for k, reply in zip(todo_keys, replies):
                if k not in found:  # a backend that does not call on_result
                    self.cache.put(k, label, reply)
                    found[k] = reply
                    self.calls += 1
        return [found[k] for k in keys]
