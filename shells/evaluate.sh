#!/usr/bin/env bash
# Closed-book knowledge evaluation: base model vs updated models on new-knowledge and control questions.
#   bash shells/evaluate.sh --adapters runs/quickstart-X/adapter                 # base vs one adapter
#   bash shells/evaluate.sh --qa_file my_qa.jsonl --control_file none -m default  # base only, no control
#   bash shells/evaluate.sh --help                                               # every flag (evaluate.py)
# -m MODEL is a short form of --model_name_or_path. Everything else is passed to evaluate.py unchanged.
# Writes results.json, report.md and predictions/ under --output_dir (default runs/evaluate).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m) args+=(--model_name_or_path "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [[ "${KU_NO_INSTALL:-0}" != "1" ]]; then
  # shellcheck disable=SC1091
  source "$ROOT/shells/install.sh" >&2
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
echo "[evaluate] python $ROOT/evaluate.py ${args[*]}" >&2
exec python "$ROOT/evaluate.py" "${args[@]}"
