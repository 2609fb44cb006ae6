"""Merge a LoRA adapter into its base model and save a plain checkpoint for serving (vLLM, llama.cpp).

    python -m finetuning.merge_lora --adapter output/qa_pairs --output output/qa_pairs-merged
    python -m finetuning.merge_lora --adapter ADAPTER --base default --dtype bfloat16 --output DIR

The base defaults to the one recorded in the adapter's adapter_config.json. The merged model and the
adapter's tokenizer (with its pad token and chat template) are written to a temporary sibling folder
and renamed into place, so an interrupted merge never leaves a half-written checkpoint.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="Folder with adapter_config.json (finetune.py --output_dir).")
    parser.add_argument("--output", required=True, help="Folder for the merged checkpoint (replaced if present).")
    parser.add_argument("--base", default=None, help="Base model ('default', folder or hub id); default: from the adapter.")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="Dtype of the merged weights.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        print(merge_lora(args.adapter, args.output, args.base, args.dtype))
    except FileNotFoundError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
