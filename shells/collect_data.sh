#!/usr/bin/env bash
# Documents -> fact-based, role-diversified QA pairs (JSONL, sharegpt "conversations" rows).
#   bash shells/collect_data.sh                                   # examples/docs -> datasets/qa_pairs.jsonl
#   bash shells/collect_data.sh --data_path my_docs --save_dir datasets/mine.jsonl
#   bash shells/collect_data.sh --model_type api --api_base http://127.0.0.1:8000/v1 --api_model NAME
#   bash shells/collect_data.sh --model_type vllm --model_name_or_path Qwen/Qwen2.5-7B-Instruct   # CUDA
#   bash shells/collect_data.sh --help                            # every flag, with its default
# An interrupted run resumes when given the same command (every LLM reply is cached beside the
# output). The API key is read from $OPENAI_API_KEY, or from the variable named by --api_key_env.
# Environment: KU_NO_INSTALL=1 skips the (idempotent) install step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${KU_NO_INSTALL:-0}" != "1" ]]; then
  # shellcheck disable=SC1091
  source "$ROOT/shells/install.sh"
  set -euo pipefail  # install.sh turns errexit off when it returns
fi
export TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # relative paths stay relative to where you are
echo "[collect] python -m data_processor $*"
exec python -m data_processor "$@"
