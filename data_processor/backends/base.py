"""The one protocol every LLM backend implements: a batch of chats in, a list of strings out.

Stages hand a backend *all* of their prompts at once; each backend batches, streams or runs
concurrent requests its own way. A backend never returns an empty string in place of an error:
failures raise :class:`BackendError`, which the pipeline counts and reports per item.
"""
from __future__ import annotations

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

    def to_dict(self) -> dict:
        return asdict(self)


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
