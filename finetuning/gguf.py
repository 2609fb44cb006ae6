"""llama.cpp's GGUF converter: fetched once from the pinned llama-cpp-python sdist, run in a subprocess.

The converter scripts (``convert_hf_to_gguf.py``, ``convert_lora_to_gguf.py`` and their ``conversion/``
and ``gguf-py/`` packages) are taken from the sdist of the llama-cpp-python version pinned in
requirements-test.txt (the same llama.cpp that serves the file), downloaded once with pip
(:func:`finetuning.llama_server.llama_cpp_sdist`); only the converter files are kept, under
~/.cache/knowledge_update/llama_cpp_convert/<version>/ (``KU_CONVERTER_CACHE`` moves the folder;
``KU_LLAMA_CPP_SDIST=/path/to/llama_cpp_python-<version>.tar.gz`` uses a local copy on an offline
machine). They run with this interpreter; besides torch, transformers and numpy they need
``sentencepiece`` (requirements.txt), imported even for BPE tokenizers.

finetuning/export.py (merge, round-trip check, stamps, Modelfile) and finetuning/merge_lora.py
(``--gguf``) both convert through this module.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from finetuning.llama_server import llama_cpp_sdist, pinned_llama_cpp_version

logger = logging.getLogger(__name__)

GGUF_TYPES = ("q8_0", "f16", "f32")
CONVERTER_CACHE_ENV = "KU_CONVERTER_CACHE"
#: the converter files kept from the sdist's vendor/llama.cpp/ (the rest of the 76 MB is llama.cpp's C++)
CONVERTER_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "LICENSE")
CONVERTER_DIRS = ("conversion/", "gguf-py/gguf/")
_MARKER = ".ku_complete"


class ExportError(RuntimeError):
    """The conversion could not be done (the message names the file or the log)."""


def gguf_name(kind: str, gguf_type: str) -> str:
    """``model-q8_0.gguf``, ``base-f16.gguf``, ``adapter-q8_0.gguf``: the file names every writer uses."""
    return f"{kind}-{gguf_type}.gguf"


def llama_cpp_version(requirements: str | Path | None = None) -> str:
    """The llama-cpp-python version pinned in requirements-test.txt; :class:`ExportError` when there is none."""
    try:
        return pinned_llama_cpp_version(*([requirements] if requirements else []))
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def converter_cache_root() -> Path:
    override = os.environ.get(CONVERTER_CACHE_ENV)
    return Path(override).expanduser() if override else Path("~/.cache/knowledge_update/llama_cpp_convert").expanduser()


def _extract_converter(sdist: Path, staging: Path) -> None:
    """Copy the converter files of ``sdist``'s vendor/llama.cpp/ into ``staging`` (plain files only)."""
    kept = 0
    with tarfile.open(sdist) as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"] or not member.isfile():
                continue
            rel = "/".join(parts[3:])
            if ".." in parts or not (rel in CONVERTER_FILES or rel.startswith(CONVERTER_DIRS)):
                continue
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            kept += 1
    if not (staging / "convert_hf_to_gguf.py").is_file() or not (staging / "gguf-py" / "gguf").is_dir():
        raise ExportError(f"{sdist}: no vendor/llama.cpp/convert_hf_to_gguf.py with gguf-py/ in it")
    logger.info("kept %d converter files from %s", kept, sdist.name)


def ensure_converter(version: str | None = None) -> Path:
    """The folder holding llama.cpp's ``convert_hf_to_gguf.py`` for ``version`` (default: the pin),
    fetched and cached on first use. Raises :class:`ExportError` when it cannot be had."""
    version = version or llama_cpp_version()
    target = converter_cache_root() / version
    if (target / _MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{version}.", dir=target.parent) as tmp:
        staging = Path(tmp) / "converter"
        try:
            sdist = llama_cpp_sdist(version, Path(tmp), purpose="for llama.cpp's GGUF converter")
        except (RuntimeError, FileNotFoundError) as exc:
            raise ExportError(str(exc)) from None
        _extract_converter(sdist, staging)
        (staging / _MARKER).write_text(f"llama-cpp-python=={version}\n")
        if (target / _MARKER).is_file():  # another process finished first: keep its copy
            return target
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return target


def _run_converter(script: str, args: list[str], outfile: Path, log_path: Path) -> Path:
    """Run ``script`` of the converter writing ``outfile`` (via a temporary name); log to ``log_path``."""
    conv = ensure_converter()
    tmp_out = outfile.with_name(f".{outfile.name}.partial")
    cmd = [sys.executable, str(conv / script), *args, "--outfile", str(tmp_out)]
    logger.info("%s", " ".join(cmd))
    # NO_LOCAL_GGUF must be unset: the converter goes with its own gguf-py (newer than the gguf wheel).
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    if code != 0 or not tmp_out.is_file():
        tmp_out.unlink(missing_ok=True)
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise ExportError(f"{script} failed (exit {code}) writing {outfile}; full log: {log_path}\n{tail}")
    os.replace(tmp_out, outfile)
    return outfile


def convert_model(model_dir: str | Path, outfile: str | Path, gguf_type: str = "q8_0",
                  log_path: str | Path | None = None) -> Path:
    """An HF model folder (config.json + safetensors + tokenizer) -> one GGUF file."""
    outfile = Path(outfile)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path or outfile.parent / "export.log")
    return _run_converter("convert_hf_to_gguf.py", [str(model_dir), "--outtype", gguf_type], outfile, log_path)


def convert_lora(adapter: str | Path, base_dir: str | Path, outfile: str | Path, gguf_type: str = "q8_0",
                 log_path: str | Path | None = None) -> Path:
    """A PEFT LoRA adapter -> a GGUF LoRA that llama.cpp applies to ``base_dir``'s GGUF at load time."""
    outfile = Path(outfile)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path or outfile.parent / "export.log")
    return _run_converter("convert_lora_to_gguf.py", ["--base", str(base_dir), "--outtype", gguf_type, str(adapter)],
                          outfile, log_path)
