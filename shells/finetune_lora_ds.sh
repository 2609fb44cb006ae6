#!/usr/bin/env bash
# LoRA fine-tuning launcher: torchrun over every GPU of every node, or CPU processes here.
#
#   bash shells/finetune_lora_ds.sh                                   # default model, datasets/qa_pairs.jsonl
#   bash shells/finetune_lora_ds.sh -m default -d datasets/qa_pairs.jsonl --deepspeed configs/ds_zero2.json
#   bash shells/finetune_lora_ds.sh -m MODEL -d DATA -o output/run1 -- --num_train_epochs 3 --learning_rate 1e-4
#   bash shells/finetune_lora_ds.sh --help                            # every flag (finetuning/launch.py)
#
# Training settings come from configs/recipes/default.yaml (--recipe FILE picks another); flags after
# -- go to finetune.py and win over the recipe. Environment: NNODES, NODE_RANK, MASTER_ADDR,
# MASTER_PORT, GPUS_PER_NODE (finetuning/launch.py explains each).
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/install.sh" >/dev/null
exec python -m finetuning.launch "$@"
