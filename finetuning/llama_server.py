"""llama.cpp OpenAI-compatible servers as child processes (finetuning.serve, served evaluation, tests, benchmarks).

    with LlamaServer(default_gguf_path(), log_path="server.log") as server:
        print(server.base_url)   # http://127.0.0.1:<free port>/v1

Two servers, one start/stop/health-check:

- :class:`LlamaServer`: llama-cpp-python's ``python -m llama_cpp.server``, llama.cpp compiled by
  ``shells/install.sh`` (test requirements) with portable flags, see ``_ku_llama_cmake_args`` there.
  It decodes one request at a time.
- :class:`LlamaCppServer`: llama.cpp's own C++ ``llama-server`` with ``--parallel`` slots and
  continuous batching, what a CPU user serving many requests runs. The binary is built once from the
  llama.cpp sources vendored in the llama-cpp-python sdist of the version pinned in
  ``requirements-test.txt`` (same portable flags) and cached under
  ``~/.cache/knowledge_update/llama-server/<version>/``:

    python -m finetuning.llama_server     # builds it if missing (about 10-15 minutes on 2 cores), prints its path
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from utils.default_model import pip_download
from utils.logging_utils import setup_logging
from utils.processes import free_port

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "KU_LLAMA_SERVER_CACHE"
SDIST_ENV = "KU_LLAMA_CPP_SDIST"  # a local llama-cpp-python sdist, for offline machines
CMAKE_ARGS_ENV = "KU_LLAMA_CMAKE_ARGS"  # the same override shells/install.sh honours
BINARY_NAME = "llama-server"
# What llama-server needs and nothing else: a static binary (no libllama.so to find at run time), no
# tests/examples, no web UI (its assets would be fetched from the Hugging Face hub), no HTTPS (no
# OpenSSL headers needed).
SERVER_CMAKE_ARGS = [
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_COMMON=ON", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF",
]


def chat_completion(base_url: str, prompt: str, *, model: str = "default", max_tokens: int = 8,
                    timeout: float = 600) -> dict:
    """One greedy chat completion from an OpenAI-compatible server (plain HTTP, no client library): the
    server's JSON reply, ``choices`` and ``usage`` included."""
    body = json.dumps({"model": model, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    req = urllib.request.Request(base_url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class LlamaServer:
    """``python -m llama_cpp.server`` on ``gguf``; started on ``__enter__``, stopped on ``__exit__``.

    Args:
        gguf: model file.
        log_path: the server's stdout+stderr (a file, not a pipe: it logs ~200 kB at start-up and
            would block on a full pipe).
        port: default a free one.
        threads: llama.cpp threads (default: llama.cpp's own choice).
        alias: the model name clients request.
        n_ctx: context length (of each request).
        start_timeout: seconds to wait for ``/v1/models`` to answer.
        env: environment of the server process (default: this one's), e.g. a PYTHONPATH that puts
            another llama-cpp-python build first (benchmarks/bench_llama_build.py).
    Raises (on enter):
        RuntimeError: the server exited or did not answer in time; the message names the log.
    """

    name = "llama_cpp.server"  # in error messages

    def __init__(self, gguf: str | Path, log_path: str | Path, *, port: int | None = None, threads: int | None = None,
                 alias: str = "default", n_ctx: int = 2048, start_timeout: float = 180.0,
                 env: dict | None = None):
        self.gguf, self.log_path = str(gguf), Path(log_path)
        self.port = port or free_port()
        self.threads, self.alias, self.n_ctx, self.start_timeout = threads, alias, n_ctx, start_timeout
        self.env = env
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf, "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--model_alias", self.alias]
        if self.threads:
            cmd += ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]
        return cmd

    def __enter__(self):
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:  # not listening yet, or 503 while the model loads
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"{self.name} did not answer on {self.base_url} within {self.start_timeout:.0f} s; "
                           f"see {self.log_path}")

    def check_alive(self) -> None:
        """Raise ``RuntimeError`` (exit code and log named) if the server process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            hint = " (illegal instruction: llama.cpp was built for a CPU this one is not)" if code in (-4, 132) else ""
            raise RuntimeError(f"{self.name} exited with {code}{hint}; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()


class LlamaCppServer(LlamaServer):
    """llama.cpp's C++ ``llama-server`` on ``gguf``, with ``parallel`` slots and continuous batching.

    Same start/stop and health check as :class:`LlamaServer`; only the command differs.

    Args:
        binary: the ``llama-server`` executable (default: the cached build, :func:`find_llama_server`).
        parallel: decoding slots, i.e. requests decoded together in one batch (``--parallel``); point
            a client at it with as many requests in flight (the api backend's ``max_concurrency``).
        cont_batching: let a new request join the running batch as soon as a slot frees up, instead of
            waiting for the whole batch to finish (``--cont-batching``).
        n_ctx: context length of *each* slot; llama-server divides ``--ctx-size`` among its slots, so
            it gets ``n_ctx * parallel``.
        extra_args: more llama-server flags, appended.
        Others: as :class:`LlamaServer` (``threads`` sets both ``--threads`` and ``--threads-batch``).
    Raises:
        FileNotFoundError: no ``binary`` given and none built (the message says how to build it).
    """

    name = BINARY_NAME

    def __init__(self, gguf: str | Path, log_path: str | Path, *, binary: str | Path | None = None, parallel: int = 1,
                 cont_batching: bool = True, extra_args: list[str] | tuple = (), **kwargs):
        super().__init__(gguf, log_path, **kwargs)
        if binary is None:
            binary = find_llama_server()
            if binary is None:
                raise FileNotFoundError(f"no {BINARY_NAME} binary built for llama-cpp-python=="
                                        f"{pinned_llama_cpp_version()}; build it with: python -m finetuning.llama_server")
        self.binary = str(binary)
        self.parallel, self.cont_batching, self.extra_args = max(1, int(parallel)), cont_batching, list(extra_args)

    def command(self) -> list[str]:
        cmd = [self.binary, "--model", self.gguf, "--host", "127.0.0.1", "--port", str(self.port),
               "--alias", self.alias, "--ctx-size", str(self.n_ctx * self.parallel), "--parallel", str(self.parallel),
               "--cont-batching" if self.cont_batching else "--no-cont-batching", "--no-webui"]
        if self.threads:
            cmd += ["--threads", str(self.threads), "--threads-batch", str(self.threads)]
        return cmd + self.extra_args


# -- the llama-server binary: built once per llama-cpp-python version and build flags ---------------------
def pinned_llama_cpp_version(requirements: str | Path = ROOT / "requirements-test.txt") -> str:
    """The llama-cpp-python version pinned in ``requirements`` (``llama-cpp-python[server]==X``): the one
    source of that number for the test server, the llama-server build and the GGUF converter.

    Raises ``ValueError`` naming the file when it cannot be read or has no such pin.
    """
    try:
        text = Path(requirements).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{requirements}: cannot read the llama-cpp-python pin ({exc})") from None
    m = re.search(r"^\s*llama[-_]cpp[-_]python(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)", text, re.M | re.I)
    if not m:
        raise ValueError(f"{requirements}: no 'llama-cpp-python==VERSION' pin")
    return m.group(1)


def portable_cmake_args() -> list[str]:
    """The flags shells/install.sh builds llama.cpp with (``_ku_llama_cmake_args``): no ``-march=native``,
    whose AVX-512/AMX code dies with SIGILL on hosts that advertise more than they execute."""
    override = os.environ.get(CMAKE_ARGS_ENV)
    if override:
        return shlex.split(override)
    if platform.machine() == "x86_64":
        return ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"]
    return ["-DGGML_NATIVE=OFF"]


def server_cache_dir(version: str | None = None) -> Path:
    """``~/.cache/knowledge_update/llama-server/<version>`` (``$KU_LLAMA_SERVER_CACHE`` replaces the parent)."""
    base = Path(os.environ.get(CACHE_ENV) or "~/.cache/knowledge_update/llama-server").expanduser()
    return base / (version or pinned_llama_cpp_version())


def cmake_command(source: str | Path, build: str | Path, flags: list[str] | None = None) -> list[str]:
    """The CMake configure command for llama-server from the llama.cpp folder ``source``."""
    flags = portable_cmake_args() if flags is None else list(flags)
    return ["cmake", "-S", str(source), "-B", str(build), *(["-G", "Ninja"] if shutil.which("ninja") else []),
            *flags, *SERVER_CMAKE_ARGS]


def find_llama_server(version: str | None = None, flags: list[str] | None = None) -> Path | None:
    """The cached ``llama-server`` built for ``version`` with ``flags`` (default: the portable ones), or None."""
    folder = server_cache_dir(version)
    binary, stamp = folder / BINARY_NAME, folder / "build.json"
    if not (binary.is_file() and os.access(binary, os.X_OK) and stamp.is_file()):
        return None
    try:
        built = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    want = portable_cmake_args() if flags is None else list(flags)
    return binary if built.get("flags") == want else None  # other flags: rebuild, as install.sh does


def _llama_cpp_dir(source: Path) -> Path:
    """The llama.cpp folder inside an extracted sdist, or ``source`` itself."""
    for cand in (source / "vendor" / "llama.cpp", source):
        if (cand / "CMakeLists.txt").is_file() and (cand / "tools" / "server").is_dir():
            return cand
    raise FileNotFoundError(f"{source} holds neither a llama.cpp source tree nor an sdist with vendor/llama.cpp")


def _extract(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")  # no absolute paths or links out of dest
        else:  # pragma: no cover - Python < 3.11.4
            tf.extractall(dest)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise RuntimeError(f"{sdist}: expected one top folder, found {[p.name for p in tops]}")
    return tops[0]


def llama_cpp_sdist(version: str, dest: Path, purpose: str = "") -> Path:
    """The llama-cpp-python ``version`` sdist (llama.cpp's sources and GGUF converter under
    vendor/llama.cpp/): ``$KU_LLAMA_CPP_SDIST`` if set, else downloaded into ``dest`` with pip.
    The llama-server build and the GGUF converter (finetuning/gguf.py) both take llama.cpp from here.

    Raises:
        FileNotFoundError: ``$KU_LLAMA_CPP_SDIST`` names no file.
        RuntimeError: pip failed (the message says how to work offline).
    """
    return pip_download(f"llama-cpp-python=={version}", dest, pattern="llama_cpp_python-*.tar.gz",
                        local_env=SDIST_ENV, what=", ".join(filter(None, ["about 76 MB, once", purpose])), sdist=True)


def _run_logged(cmd: list[str], log, what: str) -> None:
    log.write(f"$ {shlex.join(cmd)}\n")
    log.flush()
    res = subprocess.run(cmd, check=False, stdout=log, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        log.flush()
        tail = Path(log.name).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{what} failed (exit {res.returncode}); see {log.name}:\n{tail}")


def build_llama_server(version: str | None = None, *, source: str | Path | None = None,
                       flags: list[str] | None = None, jobs: int = 0, force: bool = False) -> Path:
    """Build llama.cpp's ``llama-server`` once and return the cached binary.

    Args:
        version: llama-cpp-python version whose vendored llama.cpp to build (default: the pin).
        source: an sdist ``.tar.gz``, an extracted sdist or a llama.cpp folder (default: the sdist of
            ``version`` from :func:`llama_cpp_sdist`).
        flags: ggml CMake flags (default: :func:`portable_cmake_args`).
        jobs: compile jobs (0: every core).
        force: rebuild even if a binary with these flags is cached.
    Raises:
        RuntimeError: download, configure or compile failed (the message has the log's tail).
    """
    import fcntl

    version = version or pinned_llama_cpp_version()
    flags = portable_cmake_args() if flags is None else list(flags)
    folder = server_cache_dir(version)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build and then reuses it
        if not force and (found := find_llama_server(version, flags)) is not None:
            return found
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="build_", dir=folder) as tmp, open(folder / "build.log", "w") as log:
            tmp = Path(tmp)
            src = Path(source) if source else llama_cpp_sdist(version, tmp, "to build llama-server")
            if src.is_file():
                src = _extract(src, tmp / "src")
            llama_dir = _llama_cpp_dir(src)
            build = tmp / "build"
            logger.info("building %s from %s with %s (compiles once: about 10-15 minutes on 2 cores); log: %s",
                        BINARY_NAME, llama_dir, " ".join(flags), log.name)
            _run_logged(cmake_command(llama_dir, build, flags), log, "cmake configure")
            _run_logged(["cmake", "--build", str(build), "--target", BINARY_NAME, "--config", "Release",
                         "-j", str(jobs or os.cpu_count() or 1)], log, "cmake build")
            built = build / "bin" / BINARY_NAME
            if not built.is_file():
                raise RuntimeError(f"the build finished without {built}; see {log.name}")
            staging = folder / f".{BINARY_NAME}.tmp"
            shutil.copy2(built, staging)
            os.replace(staging, folder / BINARY_NAME)  # never a half-copied binary under the real name
        (folder / "build.json").write_text(json.dumps({
            "version": version, "flags": flags, "server_cmake_args": SERVER_CMAKE_ARGS, "source": str(source or "pip"),
            "machine": platform.machine(), "seconds": round(time.time() - t0)}, indent=1) + "\n")
        logger.info("%s ready in %s (%.0f s)", BINARY_NAME, folder, time.time() - t0)
        return folder / BINARY_NAME


def ensure_llama_server(version: str | None = None, **kwargs) -> Path:
    """The cached ``llama-server``, built first if missing (see :func:`build_llama_server`)."""
    return find_llama_server(version, kwargs.get("flags")) or build_llama_server(version, **kwargs)


@dataclass
class BuildServerArguments:
    version: str | None = field(default=None, metadata={
        "help": "llama-cpp-python version whose vendored llama.cpp to build (default: the pin in requirements-test.txt)."})
    source: str | None = field(default=None, metadata={
        "help": f"An sdist .tar.gz, an extracted sdist or a llama.cpp folder (default: ${SDIST_ENV}, else pip "
                "download the sdist)."})
    jobs: int = field(default=0, metadata={"help": "Compile jobs (0: every core)."})
    force: bool = field(default=False, metadata={"help": "Rebuild even if a binary with these flags is cached."})
    print_path: bool = field(default=False, metadata={"help": "Only print the cached binary's path; exit 1 if none."})


def main(argv: list[str] | None = None) -> int:
    """Build (or, with ``--print_path``, only find) the cached llama-server; print its path. Exit 1 on failure."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BuildServerArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=f"Build flags: ${CMAKE_ARGS_ENV} (as for shells/install.sh), else {' '.join(portable_cmake_args())}; "
                                     f"cache: ${CACHE_ENV}, else ~/.cache/knowledge_update/llama-server.")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    setup_logging()
    if args.print_path:
        found = find_llama_server(args.version)
        if found is None:
            return 1
        print(found)
        return 0
    try:
        print(build_llama_server(args.version, source=args.source, jobs=args.jobs, force=args.force))
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
