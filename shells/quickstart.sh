#!/usr/bin/env bash
# The main job, end to end: teach a model the sample documents and measure what it learned and forgot.
#
#   bash shells/quickstart.sh                              # default model, examples/docs, full run
#   bash shells/quickstart.sh --run_dir runs/quickstart-X  # resume an interrupted run (done stages skip)
#   bash shells/quickstart.sh --generator_type api --generator gpt-4o-mini --collect_args "--api_base URL"
#   bash shells/quickstart.sh --small --model PATH --docs DIR   # reduced smoke run (tests)
#
# Stages: install (idempotent) -> prepare the default model -> collect QA from the documents
# (shells/collect_data.sh) -> LoRA fine-tune (shells/finetune_lora_ds.sh) -> evaluate base vs updated on
# the held-out questions and the control set (evaluate.py) -> print the before/after table.
# Everything goes under one run folder: data/ (QA + collector cache), adapter/, losses/, eval/
# (results.json, report.md), quickstart.log. A stage whose .stages/<name>.done marker exists is skipped;
# delete the marker to redo it. evaluate.py caches its replies, so re-running only reprints the table.
#
# Flags:
#   --run_dir DIR          run folder (default runs/quickstart-<timestamp>)
#   --model M              model to update: "default" (embedded SmolLM2-135M-Instruct), folder or hub id
#   --generator M          model that writes the QA data (default: the same as --model)
#   --generator_type T     collection backend: hf (default), vllm (CUDA) or api (OpenAI-compatible server)
#   --docs DIR             documents to learn (default examples/docs)
#   --train_data FILE      skip collection and fine-tune on this QA JSONL (collector format)
#   --eval_qa FILE         held-out questions (default examples/eval_qa.jsonl)
#   --control FILE|none    general-knowledge questions for forgetting (default examples/control_qa.jsonl)
#   --replay_prompts F|none general prompts whose base-model answers are mixed into training so the
#                          update does not erase general knowledge (default examples/replay_prompts.txt)
#   --small                reduced mode: 1 QA and 1 role per fact, 2 training steps, 5 questions per set
#   --collect_args "..."   extra flags for collect_data.sh (e.g. "--api_base http://host:8000/v1")
#   --finetune_args "..."  extra flags for finetune.py (e.g. "--num_train_epochs 3 --learning_rate 1e-4")
#   --eval_args "..."      extra flags for evaluate.py (e.g. "--batch_size 32")
# Environment: KU_NO_INSTALL=1 skips the install stage (an already prepared environment).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

RUN=""; MODEL="default"; GENERATOR=""; GEN_TYPE="hf"; DOCS="$ROOT/examples/docs"; TRAIN_DATA=""
EVAL_QA="$ROOT/examples/eval_qa.jsonl"; CONTROL="$ROOT/examples/control_qa.jsonl"; SMALL=0
REPLAY_PROMPTS="$ROOT/examples/replay_prompts.txt"
COLLECT_ARGS=""; FINETUNE_ARGS=""; EVAL_ARGS=""
usage() { sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
abspath() { if [[ "$1" == none ]]; then echo none; else python3 -c 'import os,sys; print(os.path.abspath(sys.argv[1]))' "$1"; fi; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --run_dir) RUN="$2"; shift 2 ;;
    --model|-m) MODEL="$2"; shift 2 ;;
    --generator) GENERATOR="$2"; shift 2 ;;
    --generator_type) GEN_TYPE="$2"; shift 2 ;;
    --docs) DOCS="$2"; shift 2 ;;
    --train_data) TRAIN_DATA="$2"; shift 2 ;;
    --eval_qa) EVAL_QA="$2"; shift 2 ;;
    --control) CONTROL="$2"; shift 2 ;;
    --small) SMALL=1; shift ;;
    --replay_prompts) REPLAY_PROMPTS="$2"; shift 2 ;;
    --collect_args) COLLECT_ARGS="$2"; shift 2 ;;
    --finetune_args) FINETUNE_ARGS="$2"; shift 2 ;;
    --eval_args) EVAL_ARGS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
done
GENERATOR="${GENERATOR:-$MODEL}"
RUN="$(abspath "${RUN:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}")"
DOCS="$(abspath "$DOCS")"; EVAL_QA="$(abspath "$EVAL_QA")"; CONTROL="$(abspath "$CONTROL")"
[[ -n "$TRAIN_DATA" ]] && TRAIN_DATA="$(abspath "$TRAIN_DATA")"
# A local model folder is passed on absolute (the launchers cd to the repository); names stay as they are.
[[ -e "$MODEL" ]] && MODEL="$(abspath "$MODEL")"
[[ -e "$GENERATOR" ]] && GENERATOR="$(abspath "$GENERATOR")"
for f in "$EVAL_QA" "$CONTROL"; do
  if [[ "$f" != none && ! -f "$f" ]]; then echo "[quickstart] no such QA file: $f" >&2; exit 2; fi
done
if [[ -z "$TRAIN_DATA" && ! -d "$DOCS" ]]; then echo "[quickstart] no such documents folder: $DOCS" >&2; exit 2; fi

mkdir -p "$RUN/.stages" "$RUN/data" "$RUN/losses"
exec > >(tee -a "$RUN/quickstart.log") 2>&1
T_START=$SECONDS
echo "[quickstart] run folder $RUN (resume an interrupted run with: bash shells/quickstart.sh --run_dir $RUN)"
echo "[quickstart] model=$MODEL generator=$GENERATOR ($GEN_TYPE) docs=$DOCS small=$SMALL"
printf '%q ' "$0" --run_dir "$RUN" --model "$MODEL" --generator "$GENERATOR" --generator_type "$GEN_TYPE" \
  --docs "$DOCS" --eval_qa "$EVAL_QA" --control "$CONTROL" > "$RUN/command.txt"; echo >> "$RUN/command.txt"

stage() {  # stage N NAME: print a header; return 1 (skip) when its marker exists
  STAGE_T0=$SECONDS
  if [[ -f "$RUN/.stages/$2.done" ]]; then
    echo "[quickstart] ($1/5) $2: already done, skipping (delete $RUN/.stages/$2.done to redo)"; return 1
  fi
  echo "[quickstart] ($1/5) $2 ..."
}
done_stage() { touch "$RUN/.stages/$1.done"; echo "[quickstart] $1 done in $((SECONDS - STAGE_T0)) s"; }

# -- 1. install (idempotent: seconds when nothing changed) ---------------------------------------
if [[ "${KU_NO_INSTALL:-0}" == "1" ]]; then
  echo "[quickstart] (1/5) install: skipped (KU_NO_INSTALL=1)"
else
  echo "[quickstart] (1/5) install ..."
  # shellcheck disable=SC1091
  KU_SKIP_MODEL=1 source "$ROOT/shells/install.sh"
  set -euo pipefail  # install.sh turns errexit off when it returns
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false WANDB_MODE="${WANDB_MODE:-offline}"

# -- 2. the default model --------------------------------------------------------------------------
if [[ "$MODEL" == default || "$GENERATOR" == default ]]; then
  echo "[quickstart] (2/5) prepare the default model ..."
  (cd "$ROOT" && python -m utils.default_model)
else
  echo "[quickstart] (2/5) prepare the default model: not needed (model $MODEL)"
fi

# -- 3. collect QA ---------------------------------------------------------------------------------
QA="$RUN/data/qa_pairs.jsonl"
if stage 3 collect; then
  if [[ -n "$TRAIN_DATA" ]]; then
    echo "[quickstart] using the given training data $TRAIN_DATA"
    cp "$TRAIN_DATA" "$QA"
  else
    small=(); [[ "$SMALL" == 1 ]] && small=(--qa_amount_per_fact 1 --role_amount_per_fact 1)
    # shellcheck disable=SC2086  # *_ARGS are flag lists: word splitting is intended
    bash "$ROOT/shells/collect_data.sh" --model_type "$GEN_TYPE" --model_name_or_path "$GENERATOR" \
      --data_path "$DOCS" --save_dir "$QA" ${small[@]+"${small[@]}"} $COLLECT_ARGS
  fi
  rows=0; [[ -f "$QA" ]] && rows="$(grep -c . "$QA" || true)"
  if [[ "$rows" == 0 ]]; then
    echo "[quickstart] collection produced no QA pairs in $QA; see the collector's summary above." \
         "A stronger generator usually helps: --generator_type api|vllm --generator MODEL" >&2
    exit 1
  fi
  echo "[quickstart] $rows QA pairs in $QA"
  done_stage collect
fi
# Self-distillation replay: the base model's own answers to general prompts, mixed into training.
TRAIN_FILES="$QA"
if [[ "$REPLAY_PROMPTS" != none ]]; then
  REPLAY="$RUN/data/replay.jsonl"
  small=(); [[ "$SMALL" == 1 ]] && small=(--max_new_tokens 16)
  (cd "$ROOT" && python -m utils.self_distill --model_name_or_path "$MODEL" --prompts "$REPLAY_PROMPTS" \
     --output "$REPLAY" ${small[@]+"${small[@]}"})
  [[ -s "$REPLAY" ]] && TRAIN_FILES="$QA,$REPLAY"
fi

# -- 4. fine-tune ----------------------------------------------------------------------------------
ADAPTER="$RUN/adapter"
if stage 4 finetune; then
  # The default recipe (README "Results"): measured on the sample corpus with the default model.
  # lr 2e-3 stores about twice as many facts as 1e-3 in 4 epochs; the replay rows keep the control set.
  recipe=(--num_train_epochs 4 --learning_rate 2e-3 --per_device_train_batch_size 8 --save_strategy epoch
          --save_total_limit 1)
  small=(); [[ "$SMALL" == 1 ]] && small=(--max_steps 2)
  if [[ -z "${MASTER_PORT:-}" && "${NNODES:-1}" == 1 ]]; then
    # One node: any free port, so a quickstart never collides with another torchrun on 29500.
    MASTER_PORT="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export MASTER_PORT
  fi
  # "latest" resumes from the newest checkpoint in the adapter folder when a run was interrupted.
  # shellcheck disable=SC2086
  bash "$ROOT/shells/finetune_lora_ds.sh" -m "$MODEL" -d "$TRAIN_FILES" -o "$ADAPTER" -- \
    --run_name quickstart --loss_dir "$RUN/losses" --resume_from_checkpoint latest \
    "${recipe[@]}" ${small[@]+"${small[@]}"} $FINETUNE_ARGS
  if [[ ! -f "$ADAPTER/adapter_config.json" ]]; then
    echo "[quickstart] fine-tuning wrote no adapter to $ADAPTER" >&2; exit 1
  fi
  done_stage finetune
fi

# -- 5. evaluate (always runs: its cached replies make a re-run instant) ---------------------------
echo "[quickstart] (5/5) evaluate base vs updated ..."
STAGE_T0=$SECONDS
small=(); [[ "$SMALL" == 1 ]] && small=(--max_questions 5 --max_new_tokens 8)
# shellcheck disable=SC2086
python "$ROOT/evaluate.py" --model_name_or_path "$MODEL" --qa_file "$EVAL_QA" --control_file "$CONTROL" \
  --adapters "updated=$ADAPTER" --output_dir "$RUN/eval" ${small[@]+"${small[@]}"} $EVAL_ARGS
done_stage evaluate
echo "[quickstart] finished in $((SECONDS - T_START)) s. Report: $RUN/eval/report.md  Scores: $RUN/eval/results.json"
