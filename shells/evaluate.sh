#!/usr/bin/env bash
# Closed-book knowledge evaluation: base model vs updated models on new-knowledge and control questions.
#   bash shells/evaluate.sh --adapters runs/quickstart-X/adapter                 # base vs one adapter
#   bash shells/evaluate.sh --qa_file my_qa.jsonl --control_file none -m default  # base only, no control
#   bash shells/evaluate.sh --help                                               # every flag (evaluate.py)
# Writes results.json, report.md and predictions/ under --output_dir (default runs/evaluate).
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/install.sh" >&2
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
echo "[evaluate] python -m evaluation $*" >&2
exec python -m evaluation "$@"
