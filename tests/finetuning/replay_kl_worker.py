"""Worker of test_replay_loss.py's multi-process test (run by torchrun, not collected by pytest).

``python -m torch.distributed.run ... replay_kl_worker.py REPLAY.jsonl FINETUNE_FLAGS...``: finetune.main with the
replay rows of REPLAY.jsonl (instead of generating them) and, at every step, the loss of the batch's replay tokens
alone printed as ``replay-kl <rank> <step> <value>``: 0 at the first step (fresh adapter: the updated model is the
base), above 0 once the adapter has moved (so the base pass really ran without it).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

import finetuning.trainer as trainer_module
import replay.build

replay.build.ensure_replay = lambda *args, **kwargs: Path(sys.argv[1])
real = trainer_module.replay_distill_loss
steps = []


def spy(model, base_model, inputs, *args, **kwargs):
    rows = inputs["distill"].any(dim=1)
    sub = {key: value[rows] for key, value in inputs.items()}
    sub["labels"] = sub["labels"].masked_fill(~sub["distill"], -100)  # a shared-prefix sequence also holds QA rows
    with torch.no_grad():
        print(f"replay-kl {os.environ.get('RANK', 0)} {len(steps)} {float(real(model, base_model, sub)):.6f}", flush=True)
    steps.append(1)
    return real(model, base_model, inputs, *args, **kwargs)


trainer_module.replay_distill_loss = spy

if __name__ == "__main__":
    import finetune

    sys.exit(finetune.main(sys.argv[2:]))
