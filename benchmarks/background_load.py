"""A synthetic background load: one busy-loop process pinned to one core, a stand-in for another user's job.

    with BackgroundLoad() as load:      # the last core this process may run on
        ...                             # measure under load
    print(load.cpu_share)               # cores the loop actually used over its life (about 1.0)

The loop is a separate Python process (its own interpreter, no GIL shared with the measured code) pinned
with ``os.sched_setaffinity`` where the OS has it; elsewhere it runs unpinned and the scheduler places it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

# Pins itself (when it can) before spinning, so it never lands on another core first. Every million
# iterations (tens of milliseconds) it checks its parent: a benchmark killed before stop() must not
# leave a core spinning.
_BUSY_LOOP = (
    "import os, sys\n"
    "cpu, parent = int(sys.argv[1]), int(sys.argv[2])\n"
    "if cpu >= 0 and hasattr(os, 'sched_setaffinity'):\n"
    "    os.sched_setaffinity(0, {cpu})\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(1_000_000):\n"
    "        pass\n"
)


def default_load_cpu() -> int:
    """The highest-numbered core this process may use (-1 where affinity is not available)."""
    if hasattr(os, "sched_getaffinity"):
        return max(os.sched_getaffinity(0))
    return -1


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class BackgroundLoad:
    """One busy-looping child process, pinned to ``cpu`` (default :func:`default_load_cpu`; -1 = unpinned).

    ``start()`` / ``stop()`` (or ``with``); ``stop()`` records ``cpu_share``: CPU seconds the loop got over
    its wall time, i.e. how much of a core it really took (``None`` without /proc).
    """

    def __init__(self, cpu: int | None = None):
        self.cpu = default_load_cpu() if cpu is None else cpu
        self.proc: subprocess.Popen | None = None
        self.cpu_share: float | None = None
        self._t0 = 0.0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> Self:
        if self.running:
            return self
        self.proc = subprocess.Popen([sys.executable, "-c", _BUSY_LOOP, str(self.cpu), str(os.getpid())],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._t0 = time.monotonic()
        self.cpu_share = None
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            used = _cpu_seconds(self.proc.pid)
            wall = time.monotonic() - self._t0
            if used is not None and wall > 0:
                self.cpu_share = round(used / wall, 3)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
