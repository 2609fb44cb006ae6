"""Scale a trained LoRA adapter's update: W = W0 + s * (B A) * alpha / r, written as a new adapter folder.

    python -m finetuning.scale --adapter output/qa_pairs --scale 0.7 --output output/qa_pairs-s0.7

Scaling the update between the base (s = 0) and the trained adapter (s = 1) is weight-space interpolation
between the two models (WiSE-FT, Wortsman et al. 2109.01903): a fine-tuned model forgets less of what the
base knew when it is pulled part of the way back, and keeps most of what it learned when the new facts sit
in the direction of the update. For LoRA the interpolation is exact and costs nothing: only the B
matrices are multiplied by s, so every consumer of the adapter (evaluate.py, merge_lora, vLLM LoRA serving,
the GGUF export) sees the scaled model without knowing about it. ``finetune.py --adapter_scale`` applies it
to the adapter it saves. The scale is recorded in the folder (adapter_scale.json); scaling a scaled adapter
multiplies the two.
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

from utils.io_utils import atomic_write_bytes, atomic_write_json
from utils.logging_utils import setup_logging

logger = logging.getLogger(__name__)

WEIGHTS = "adapter_model.safetensors"
STAMP = "adapter_scale.json"
#: what a finetune.py output folder holds besides the adapter that a scaled copy does not need
SKIPPED = ("checkpoint-", "wandb", "runs")


@dataclass
class ScaleArguments:
    adapter: str = field(metadata={"help": "Folder with adapter_config.json and adapter_model.safetensors."})
    scale: float = field(metadata={"help": "Factor s on the adapter's update: 0 = the base model, 1 = unchanged."})
    output: str | None = field(default=None, metadata={
        "help": "Folder for the scaled adapter (replaced if present); default: scale ADAPTER in place."})


def adapter_scale(adapter: str | Path) -> float:
    """The factor an adapter folder's update has been scaled by (1.0 when it never was)."""
    stamp = Path(adapter) / STAMP
    return float(json.loads(stamp.read_text())["scale"]) if stamp.is_file() else 1.0


def scale_adapter(adapter: str | Path, scale: float, output: str | Path | None = None) -> Path:
    """Write ``adapter`` with every LoRA B matrix multiplied by ``scale`` to ``output`` (default: in place).

    A new folder is written beside the target and renamed into place; in place, only the weights file
    and the stamp are replaced, each by rename. Either way an interrupted run leaves the old adapter or the
    new one, never a mix within a file.

    Raises:
        FileNotFoundError: ``adapter`` has no adapter_config.json or no adapter_model.safetensors.
        ValueError: a negative scale, or an adapter whose update is not B A alone (DoRA, modules_to_save,
            trainable tokens), where multiplying B would not scale the update.
    """
    from safetensors.torch import load_file, save

    adapter = Path(adapter)
    output = Path(output) if output is not None else adapter
    config_file, weights_file = adapter / "adapter_config.json", adapter / WEIGHTS
    for f in (config_file, weights_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: not found; --adapter must be a LoRA adapter folder (finetune.py --output_dir)")
    if scale < 0:
        raise ValueError(f"scale {scale}: must be >= 0 (0 = the base model, 1 = the adapter unchanged)")
    config = json.loads(config_file.read_text())
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        raise ValueError(f"{config_file}: only plain LoRA adapters can be scaled by their B matrices "
                         f"(peft_type {config.get('peft_type')}, use_dora {config.get('use_dora')})")
    weights = load_file(str(weights_file))
    lora_b = [k for k in weights if ".lora_B." in k]
    other = [k for k in weights if ".lora_A." not in k and ".lora_B." not in k]
    if not lora_b or other:
        raise ValueError(f"{weights_file}: {len(lora_b)} LoRA B matrices and {len(other)} other tensors "
                         f"(e.g. {other[:2]}); only an update made of LoRA A and B matrices can be scaled")
    for k in lora_b:
        weights[k] = weights[k] * scale
    total = adapter_scale(adapter) * scale
    data, stamp = save(weights, metadata={"format": "pt"}), {"scale": total, "source": str(adapter.resolve())}
    if output.resolve() == adapter.resolve():
        # in place: only the weights and the stamp change (checkpoints and logs beside them stay)
        atomic_write_bytes(adapter / WEIGHTS, data)
        atomic_write_json(adapter / STAMP, stamp)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as tmp:
            staging = Path(tmp) / "scaled"
            shutil.copytree(adapter, staging, ignore=lambda _d, names: [n for n in names if n.startswith(SKIPPED)])
            atomic_write_bytes(staging / WEIGHTS, data)
            atomic_write_json(staging / STAMP, stamp)
            if output.exists():
                shutil.rmtree(output)
            staging.rename(output)
    logger.info("scaled %d LoRA B matrices of %s by %g (total %g) -> %s", len(lora_b), adapter, scale, total, output)
    return output


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    setup_logging()
    parser = HfArgumentParser(ScaleArguments, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    try:
        out = scale_adapter(args.adapter, args.scale, args.output)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
