"""The one protocol every LLM backend implements: a batch of chats in, a list of strings out.

Stages hand a backend *all* of their prompts at once; each backend batches, streams or runs
concurrent requests its own way. A backend never returns an empty string in place of an error:
failures raise :class:`BackendError`, which the pipeline counts and reports per item.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Chat = list  # list[Message]
#: ``on_result(index, text)``: called as soon as the reply to ``chats[index]`` is known, so callers
#: can persist finished work before the whole batch is done (a crash then loses little).
ResultCallback = Callable[[int, str], None]


class BackendError(RuntimeError):
    """An LLM call failed for good (after the backend's own retries)."""


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings shared by all backends (part of the cache key of every call)."""

    temperature: float = field(default=0.7, metadata={"help": "0 means greedy decoding."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    max_new_tokens: int = field(default=256, metadata={"help": "Upper bound on generated tokens per reply."})
    seed: int = field(default=42, metadata={"help": "Sampling seed; the same seed gives the same data."})
    stop_repeated_lines: int = field(default=0, metadata={
        "help": "End a reply at the line that makes this many of its lines repeats of earlier ones "
                "(:func:`repeated_lines_end`; 0 = never). The hf backend stops decoding there; the "
                "others cut the reply once it is complete."})

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["stop_repeated_lines"]:  # unused, it leaves the cache keys of every other setting as they are
            del d["stop_repeated_lines"]
        return d


_LIST_MARKER = re.compile(r"^(?:[-*•]|\(?\d{1,3}[.)])\s*")  # "12." or "(3)", not a year: "1847: ..." stays


def _line_key(line: str) -> str:
    """A line as compared for repeats: without its list marker ("12.", "-", "(3)"), case and spacing."""
    return " ".join(_LIST_MARKER.sub("", line.strip()).lower().split())


def repeated_lines_end(text: str, limit: int) -> int | None:
    """Where a looping reply should end: the index just after the newline that closes the ``limit``-th
    line repeating an earlier line of ``text`` (blank lines and list numbers ignored), or None.

    Small generators loop: "9. She found tiny blue worms ...", "10. She found tiny blue worms ...", until
    the token cap. Only lines closed by a newline count, so a reply stopped at a newline token and the same
    reply cut after it is complete end at the same character.
    """
    if limit <= 0:
        return None
    seen: set[str] = set()
    repeats = 0
    start = 0
    while (end := text.find("\n", start)) >= 0:
        key = _line_key(text[start:end])
        start = end + 1
        if not key:
            continue
        if key in seen:
            repeats += 1
            if repeats >= limit:
                return start
        seen.add(key)
    return None


def cut_repeated_lines(text: str, limit: int) -> str:
    """``text`` up to :func:`repeated_lines_end` (stripped), or all of it."""
    end = repeated_lines_end(text, limit)
    return text if end is None else text[:end].strip()


@dataclass
class BackendStats:
    """Counters the run summary reports."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class LLMBackend(ABC):
    """Base class: ``load()`` once, then ``generate(chats, sampling)`` as often as needed."""

    #: a string naming the model, used in cache keys (set by subclasses in ``__init__``)
    model_id: str = ""

    def __init__(self) -> None:
        self.stats = BackendStats()

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights / open clients. Called lazily by the first ``generate``."""

    @abstractmethod
    def generate(
        self,
        chats: list[Chat],
        sampling: SamplingConfig,
        *,
        on_result: ResultCallback | None = None,
        desc: str = "generate",
    ) -> list[str]:
        """Return one completion per chat, in order. Raises :class:`BackendError` on failure.

        Args:
            chats: every prompt of a stage; the backend batches them its own way.
            sampling: decoding settings.
            on_result: optional ``(index, text)`` callback, called once per chat as results arrive.
            desc: what is being generated (the stage name); used in progress bars and error messages.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (GPU memory, HTTP pools)."""
