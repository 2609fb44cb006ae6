"""finetuning.serve as an install option: the install.sh switch and the pyproject extra install the pinned
server, and the command names that one install command, before exporting anything, when it is missing.
(The server itself, started and asked: tests/finetuning/test_export.py and tests/quickstart/test_serve_hint.py.)"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import subprocess
import tomllib
from pathlib import Path

import pytest

from finetuning import serve

ROOT = Path(__file__).resolve().parents[2]


def _no_export(*args, **kwargs):
    raise AssertionError("exported although the server cannot start")


def test_serve_stops_before_exporting_and_names_the_install_command(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(serve, "server_import_error", lambda: "ModuleNotFoundError: No module named 'llama_cpp'")
    monkeypatch.setattr(serve, "export_gguf", _no_export)
    with caplog.at_level(logging.ERROR):
        assert serve.main(["--adapter", str(tmp_path)]) == 2
    assert serve.INSTALL_COMMAND == "KU_WITH_SERVE=1 bash shells/install.sh"
    assert serve.INSTALL_COMMAND in caplog.text and "No module named 'llama_cpp'" in caplog.text


def test_server_import_error_reports_a_missing_server_module(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_server(name, *args):
        if name.startswith("llama_cpp"):
            raise ModuleNotFoundError("No module named 'fastapi'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_server)
    assert serve.server_import_error() == "ModuleNotFoundError: No module named 'fastapi'"


def test_pyproject_serve_extra_pins_the_server_of_requirements_test():
    from finetuning.llama_server import pinned_llama_cpp_version

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    assert extra == [f"llama-cpp-python[server]=={pinned_llama_cpp_version()}"]


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A venv whose python records every command (and its CMAKE_ARGS) instead of running it, with the main
    requirements' stamp current, so install.sh goes straight to the optional parts."""
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'export PATH="{venv / "bin"}:$PATH"\n')
    python = venv / "bin" / "python"
    python.write_text('#!/usr/bin/env bash\nif [[ "$1" == "-c" ]]; then echo "$FAKE_PREFIX"; exit 0; fi\n'
                      'echo "CMAKE_ARGS=${CMAKE_ARGS:-} $*" >> "$FAKE_LOG"\n')
    python.chmod(0o755)
    main = b"".join((ROOT / f).read_bytes() for f in ("requirements.txt", "requirements-deepspeed.txt", "pyproject.toml"))
    (venv / ".ku_install_stamp").write_text(hashlib.sha256(main).hexdigest() + "\n")
    return venv, log


def _install(venv: Path, log: Path, **switches: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KU_")}
    env.update(KU_VENV=str(venv), KU_SKIP_MODEL="1", FAKE_PREFIX=str(venv), FAKE_LOG=str(log), **switches)
    done = subprocess.run(["bash", str(ROOT / "shells" / "install.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines() if log.is_file() else []
    log.unlink(missing_ok=True)
    return calls


def test_install_switch_builds_the_pinned_server_once_with_portable_flags(tmp_path):
    from finetuning.llama_server import pinned_llama_cpp_version

    venv, log = _fake_venv(tmp_path)
    req = f"llama-cpp-python[server]=={pinned_llama_cpp_version()}"
    flags = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
             if platform.machine() == "x86_64" else "-DGGML_NATIVE=OFF")
    assert _install(venv, log) == []  # no switch: no server
    assert _install(venv, log, KU_WITH_SERVE="1") == [
        f"CMAKE_ARGS={flags} -m pip install --quiet --no-cache-dir --force-reinstall --no-deps {req}",
        f"CMAKE_ARGS= -m pip install --quiet {req}"]  # then the server's dependencies, nothing rebuilt
    assert _install(venv, log, KU_WITH_SERVE="1") == []  # built once
    # The test requirements reuse that build; other build flags rebuild it.
    assert _install(venv, log, KU_WITH_TEST_DEPS="1") == [
        f"CMAKE_ARGS= -m pip install --quiet -r {ROOT / 'requirements-test.txt'}"]
    assert _install(venv, log, KU_WITH_SERVE="1", KU_LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF")[0].startswith(
        "CMAKE_ARGS=-DGGML_NATIVE=OFF -m pip install")


@pytest.mark.parametrize("installed", [True, False])
def test_quickstart_hint_says_how_to_install_the_server_only_when_missing(tmp_path, monkeypatch, installed):
    from quickstart.run import serve_hint

    monkeypatch.setattr(serve, "server_import_error", lambda: None if installed else "ImportError: x")
    monkeypatch.chdir(ROOT)
    (tmp_path / "adapter_config.json").write_text("{}")
    first, second = serve_hint(tmp_path)
    assert first.endswith(": source shells/install.sh" if installed else ": KU_WITH_SERVE=1 source shells/install.sh")
    assert second == f"then: python -m finetuning.serve --adapter {tmp_path}"


def test_serve_refuses_a_port_another_server_holds(tmp_path, monkeypatch, caplog):
    import socket

    monkeypatch.setattr(serve, "server_import_error", lambda: None)
    monkeypatch.setattr(serve, "export_gguf", _no_export)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            assert serve.main(["--adapter", str(tmp_path), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}" in caplog.text and "--port" in caplog.text
