#!/usr/bin/env bash
# Documents -> fact-based, role-diversified QA pairs (JSONL, sharegpt "conversations" rows).
#   bash shells/collect_data.sh                                   # examples/docs -> datasets/qa_pairs.jsonl
#   bash shells/collect_data.sh --data_path my_docs --save_path datasets/mine.jsonl
#   bash shells/collect_data.sh --model_type api --api_base http://127.0.0.1:8000/v1 --api_model NAME
#   bash shells/collect_data.sh --model_type vllm --model_name_or_path Qwen/Qwen2.5-7B-Instruct   # CUDA
#   bash shells/collect_data.sh --help                            # every flag, with its default
# Settings come from configs/recipes/default.yaml (section collect; --recipe FILE picks another), then
# the command line. An interrupted run resumes when given the same command (every LLM reply is cached
# beside the output). The API key is read from $OPENAI_API_KEY, or from the variable --api_key_env names.
set -euo pipefail
# shellcheck disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
export TOKENIZERS_PARALLELISM=false
echo "[collect] python -m data_processor $*"
exec python -m data_processor "$@"
