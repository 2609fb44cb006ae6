"""The collection stages, in the order a document goes through them (``ls`` shows it).

Every stage that works on a wave of chunks has the same contract: ``run(llm, ..., ) -> StageResult``,
whose ``items`` feed the next stage and whose ``counters`` (named counts: parse failures, items
dropped, items made) the pipeline adds to the run summary under the stage's name, the same way for
every stage. Reading (1) and chunking (2) work on whole documents before the waves start; writing (9)
is the output side.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class StageResult(Generic[T]):
    """What a stage returns: its output and its counters."""

    items: T
    counters: Counter = field(default_factory=Counter)
