"""Merge a LoRA adapter into its base model and save a plain checkpoint for serving (vLLM, llama.cpp).

    python -m finetuning.merge_lora --adapter output/qa_pairs --output output/qa_pairs-merged
    python -m finetuning.merge_lora --adapter ADAPTER --base default --dtype bfloat16 --output DIR
    python -m finetuning.merge_lora --adapter ADAPTER --output DIR --gguf [q8_0|f16|f32]   # + DIR/model-q8_0.gguf

The base defaults to the one recorded in the adapter's adapter_config.json. The merged model and the
adapter's tokenizer (with its pad token and chat template) are written to a temporary sibling folder
and renamed into place, so an interrupted merge never leaves a half-written checkpoint. ``--gguf`` also
converts the merged folder to GGUF for llama.cpp with llama.cpp's own converter (finetuning/gguf.py);
finetuning/export.py adds the round-trip check, the GGUF LoRA and the stamps.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from finetuning.gguf import GGUF_TYPES, ExportError, convert_model, gguf_name
from utils.logging_utils import setup_logging

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class MergeArguments:
    adapter: str = field(metadata={"help": "Folder with adapter_config.json (finetune.py --output_dir)."})
    output: str = field(metadata={"help": "Folder for the merged checkpoint (replaced if present)."})
    base: str | None = field(default=None, metadata={
        "aliases": ["--model_name_or_path"],
        "help": "Base model ('default', folder or hub id); default: from the adapter."})
    dtype: str = field(default="float32", metadata={"choices": list(DTYPES), "help": "Dtype of the merged weights."})
    gguf: str | None = field(default=None, metadata={
        "nargs": "?", "const": "q8_0", "choices": list(GGUF_TYPES),
        "help": "Also write OUTPUT/model-<type>.gguf for llama.cpp (bare --gguf: q8_0); see finetuning/gguf.py."})


def merge_lora(adapter: str | Path, output: str | Path, base: str | None = None, dtype: str = "float32") -> Path:
    """Merge ``adapter`` into ``base`` (default: the adapter's recorded base) and save to ``output``.

    Raises ``FileNotFoundError`` if ``adapter`` holds no ``adapter_config.json``.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from utils.default_model import resolve_model_path

    adapter, output = Path(adapter), Path(output)
    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: not found; --adapter must be a finetune.py output folder")
    base = resolve_model_path(base or json.loads(config_file.read_text())["base_model_name_or_path"])
    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter if (adapter / "tokenizer_config.json").is_file() else base)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as tmp:
        staging = Path(tmp) / "merged"
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    logger.info("merged %s into %s -> %s", adapter, base, output)
    return output


def parse_args(argv: list[str] | None = None) -> MergeArguments:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(MergeArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Entry points: python -m finetuning.merge_lora | ku-merge-lora")
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Merge as the flags say; print the merged folder (and the GGUF). Exit 0, or 2 when the adapter folder
    is not one or the GGUF conversion failed."""
    args = parse_args(argv)
    setup_logging()
    try:
        merged = merge_lora(args.adapter, args.output, args.base, args.dtype)
        print(merged)
        if args.gguf:
            print(convert_model(merged, merged / gguf_name("model", args.gguf), args.gguf))
    except (FileNotFoundError, ExportError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
