#!/usr/bin/env bash
# The time-budget test: three timed LoRA fine-tunings, one per dataset, judged against a budget.
#   bash test_case_1.sh                          # seed settings on datasets/qa_pairs_00{1,2,3}.jsonl, 8 h budget
#   bash test_case_1.sh --small                  # default model + examples/datasets, 5 steps per run (CPU, minutes)
#   bash test_case_1.sh --budget_hours 6 --abort_on_projected_overrun
#   bash test_case_1.sh --model PATH --data_dir DIR --names a b c --output_dir OUT -- --num_train_epochs 3
# Exit 0: every run succeeded and the average duration is within the budget; 1 otherwise; 2 bad usage.
# CUDA_VISIBLE_DEVICES is passed through to shells/finetune_lora_ds.sh, which derives GPUS_PER_NODE.
# The logic (runs, timing, table, verdict) lives in utils/time_budget.py; --help lists every flag.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
source "$ROOT/shells/install.sh" >&2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec python -m utils.time_budget "$@"
