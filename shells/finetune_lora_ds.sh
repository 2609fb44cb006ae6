#!/usr/bin/env bash
# LoRA fine-tuning launcher: torchrun over every GPU of every node, or CPU processes here.
#
#   bash shells/finetune_lora_ds.sh                                   # default model, datasets/qa_pairs.jsonl
#   bash shells/finetune_lora_ds.sh -m default -d datasets/qa_pairs.jsonl --deepspeed configs/ds_zero2.json
#   bash shells/finetune_lora_ds.sh -m MODEL -d DATA -o output/run1 -- --num_train_epochs 3 --learning_rate 1e-4
#
# Flags:
#   -m, --model PATH        base model: "default" (embedded SmolLM2-135M-Instruct), folder or hub id
#   -d, --data FILE         training JSONL (default datasets/qa_pairs.jsonl; make it with shells/collect_data.sh)
#   -o, --output_dir DIR    adapter + checkpoints (default output/<data file stem>)
#   --deepspeed CONFIG      a DeepSpeed JSON from configs/ (see configs/README.md)
#   --wandb_key KEY         log to wandb online; the key goes to wandb through WANDB_API_KEY, never printed
#   --nproc N               processes per node when no GPU is visible (default 2, 1 thread each)
#   --bf16                  train in bfloat16 (GPU with bf16 support, or recent CPUs)
#   -- ARGS                 everything after -- goes to finetune.py (any TrainingArguments flag)
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500), GPUS_PER_NODE
# (detected: CUDA devices visible, honouring CUDA_VISIBLE_DEVICES).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODEL="default"; DATA="datasets/qa_pairs.jsonl"; OUTPUT=""; DS_CONFIG=""; NPROC=""; BF16=0; EXTRA=()
usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model|--model_name_or_path) MODEL="$2"; shift 2 ;;
    -d|--data|--data_path) DATA="$2"; shift 2 ;;
    -o|--output_dir) OUTPUT="$2"; shift 2 ;;
    --deepspeed) DS_CONFIG="$2"; shift 2 ;;
    --wandb_key) export WANDB_API_KEY="$2"; shift 2 ;;
    --nproc) NPROC="$2"; shift 2 ;;
    --bf16) BF16=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown flag $1 (finetune.py flags go after --)" >&2; usage >&2; exit 2 ;;
  esac
done

IFS=',' read -r -a DATA_FILES <<< "$DATA"   # -d a.jsonl,b.jsonl mixes files (e.g. QA + replay)
for f in "${DATA_FILES[@]}"; do
  if [[ ! -f "$f" ]]; then
    echo "Training data $f not found. Make it with: bash shells/collect_data.sh  (or pass -d FILE)" >&2
    exit 2
  fi
done
if [[ -n "$DS_CONFIG" && ! -f "$DS_CONFIG" ]]; then
  echo "DeepSpeed config $DS_CONFIG not found; choose one of: $(ls configs/ds_*.json | tr '\n' ' ')" >&2
  exit 2
fi
# shellcheck disable=SC1091
source shells/install.sh >/dev/null
set -euo pipefail  # install.sh turns errexit off when it returns

if [[ -z "${GPUS_PER_NODE:-}" ]]; then
  GPUS_PER_NODE="$(python -c 'import torch; print(torch.cuda.device_count())')"
fi
if [[ "$GPUS_PER_NODE" == "0" ]]; then
  # CPU: default 2 processes of 1 thread each. Measured on the 2-core dev machine (SmolLM2-135M, LoRA,
  # global batch 4, other jobs running): 2 procs x 1 thread 2.5 s/step, 1 proc x 1 thread 4.9 s/step,
  # 1 proc x 2 threads 50 s/step (OpenMP threads stall whenever a core is taken by another job).
  CORES="$(nproc)"
  GPUS_PER_NODE="${NPROC:-$(( CORES >= 2 ? 2 : 1 ))}"
  export DS_ACCELERATOR=cpu OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( CORES / GPUS_PER_NODE > 0 ? CORES / GPUS_PER_NODE : 1 ))}"
fi
NNODES="${NNODES:-1}"; NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"; MASTER_PORT="${MASTER_PORT:-29500}"
OUTPUT="${OUTPUT:-output/$(basename "${DATA%.*}")}"

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
if [[ -z "${WANDB_API_KEY:-}" ]]; then export WANDB_MODE="${WANDB_MODE:-offline}"; fi

ARGS=(--model_name_or_path "$MODEL" --data_path "$DATA" --output_dir "$OUTPUT")
[[ -n "$DS_CONFIG" ]] && ARGS+=(--deepspeed "$DS_CONFIG")
[[ "$BF16" == "1" ]] && ARGS+=(--bf16 True)
DISTRIBUTED_ARGS=(--nproc_per_node "$GPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK"
                  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT")

echo "[finetune] GPUS_PER_NODE=$GPUS_PER_NODE NNODES=$NNODES NODE_RANK=$NODE_RANK MASTER=$MASTER_ADDR:$MASTER_PORT" \
     "wandb=$([[ -n "${WANDB_API_KEY:-}" ]] && echo online || echo "offline ($OUTPUT/wandb)")"
SHOWN=(); hide=0  # the command as printed: any --key value replaced, secrets never reach a log
for a in "${EXTRA[@]}"; do
  if [[ "$hide" == "1" ]]; then SHOWN+=("***"); hide=0
  elif [[ "$a" == --key=* ]]; then SHOWN+=("--key=***")
  else SHOWN+=("$a"); fi
  [[ "$a" == "--key" ]] && hide=1
done
echo "[finetune] torchrun ${DISTRIBUTED_ARGS[*]} finetune.py ${ARGS[*]} ${SHOWN[*]:-}"
exec torchrun "${DISTRIBUTED_ARGS[@]}" finetune.py "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
