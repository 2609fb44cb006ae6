"""llama-cpp-python's OpenAI-compatible server as a child process (tests, benchmarks, served evaluation).

    with LlamaServer(default_gguf_path(), log_path="server.log") as server:
        print(server.base_url)   # http://127.0.0.1:<free port>/v1

The server is llama.cpp compiled by ``shells/install.sh`` (test requirements) with portable flags,
see ``_ku_llama_cmake_args`` there.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on ``gguf``; started on ``__enter__``, stopped on ``__exit__``.

    Args:
        gguf: model file.
        log_path: the server's stdout+stderr (a file, not a pipe: it logs ~200 kB at start-up and
            would block on a full pipe).
        port: default a free one.
        threads: llama.cpp threads (default: llama.cpp's own choice).
        alias: the model name clients request.
        n_ctx: context length.
        start_timeout: seconds to wait for ``/v1/models`` to answer.
        env: environment of the server process (default: this one's), e.g. a PYTHONPATH that puts
            another llama-cpp-python build first (benchmarks/bench_llama_build.py).
    Raises (on enter):
        RuntimeError: the server exited or did not answer in time; the message names the log.
    """

    def __init__(self, gguf: str | Path, log_path: str | Path, *, port: int | None = None, threads: int | None = None,
                 alias: str = "default", n_ctx: int = 2048, start_timeout: float = 180.0,
                 env: dict | None = None):
        self.gguf, self.log_path = str(gguf), Path(log_path)
        self.port = port or free_port()
        self.threads, self.alias, self.n_ctx, self.start_timeout = threads, alias, n_ctx, start_timeout
        self.env = env
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf, "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--model_alias", self.alias]
        if self.threads:
            cmd += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        return cmd

    def __enter__(self) -> "LlamaServer":
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"llama_cpp.server did not answer on {self.base_url} within {self.start_timeout:.0f} s; "
                           f"see {self.log_path}")

    def check_alive(self) -> None:
        """Raise ``RuntimeError`` (exit code and log named) if the server process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            hint = " (illegal instruction: llama.cpp was built for a CPU this one is not)" if code in (-4, 132) else ""
            raise RuntimeError(f"llama_cpp.server exited with {code}{hint}; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
