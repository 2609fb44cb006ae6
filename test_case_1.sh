#!/usr/bin/env bash
# The time-budget test: three timed LoRA fine-tunings, one per dataset, judged against a budget.
#   bash test_case_1.sh                          # datasets/qa_pairs_00{1,2,3}.jsonl, 8 h budget
#   bash test_case_1.sh --small                  # default model + examples/datasets, 5 steps per run (CPU, minutes)
#   bash test_case_1.sh --budget_hours 6 --abort_on_projected_overrun
#   bash test_case_1.sh --model PATH --data_dir DIR --names a b c --output_dir OUT -- --num_train_epochs 3
# Exit 0: every run succeeded and the average duration is within the budget; 1 otherwise; 2 bad usage.
# CUDA_VISIBLE_DEVICES is passed through to the fine-tuning launcher, which derives GPUS_PER_NODE.
# The logic (runs, timing, table, verdict) lives in acceptance/time_budget.py; --help lists every flag.
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/shells/install.sh" >&2
exec python -m acceptance.time_budget "$@"
