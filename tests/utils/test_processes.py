"""utils/processes.py: the free port, and children that end with their parent (the hf backend's CPU workers
and finetune.py's torchrun workers use it); the one logging setup of every entry point."""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import still_running
from utils.logging_utils import setup_logging
from utils.processes import free_port

ROOT = Path(__file__).resolve().parents[2]

# The parent starts a child that calls die_with_parent, prints the child's pid once the child is watching,
# then waits to be killed.
_PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == "watching"
print(child.pid, flush=True)
time.sleep(120)
"""
_CHILD = """
import time
from utils.processes import die_with_parent
die_with_parent(interval_s=0.1)
print("watching", flush=True)
time.sleep(120)
"""


def test_free_port_can_be_bound_at_once():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_child_outlives_its_parent_by_no_more_than_the_interval():
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, _CHILD], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    child = int(parent.stdout.readline())
    try:
        assert still_running([child], 0.5) == [child]  # a living parent: the child stays
        os.kill(parent.pid, signal.SIGKILL)  # no chance to stop its child itself
        parent.wait(10)
        assert still_running([child], 5) == []
    finally:
        parent.kill()
        parent.wait(10)
        if still_running([child], 0):
            os.kill(child, signal.SIGKILL)


def test_a_named_parent_that_is_not_ours_ends_the_process_at_once():
    code = ("import time\nfrom utils.processes import die_with_parent\n"
            "die_with_parent(parent=1, interval_s=0.1)\ntime.sleep(60)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=30)
    assert proc.returncode == 1


def test_setup_logging_is_info_on_rank_0_and_warning_on_the_others(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # basicConfig only configures a root logger without handlers
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setenv("RANK", "0")
    setup_logging(logging.WARNING)
    assert root.level == logging.WARNING
    root.handlers = []
    monkeypatch.setenv("RANK", "1")
    setup_logging()
    assert root.level == logging.WARNING
    root.handlers = []
    monkeypatch.setenv("RANK", "0")
    setup_logging()
    assert root.level == logging.INFO
