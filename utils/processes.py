"""Process helpers every flow shares: a free local port, and a child process that ends with its parent."""
from __future__ import annotations

import os
import socket
import threading
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (torchrun's rendezvous, local servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent(parent: int | None = None, interval_s: float = 1.0) -> None:
    """Exit this process (status 1) within ``interval_s`` of its parent's death.

    A child otherwise outlives a parent killed by SIGKILL (an out-of-memory kill, ``kill -9``): a pool
    worker waits on its task queue forever with its copy of the model, a torchrun worker waits in a
    collective, holding its core, until the collective times out. A daemon thread watches the parent
    (the parent's death reparents this process, so ``getppid`` changes) rather than Linux's
    ``PR_SET_PDEATHSIG``, which fires when the *thread* that started the child ends (a pool started from a
    short-lived thread would lose its workers) and exists on Linux only.

    Args:
        parent: the pid to outlive no longer than ``interval_s`` (default: the current parent).
        interval_s: seconds between checks.
    """
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
