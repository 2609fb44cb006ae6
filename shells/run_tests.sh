#!/usr/bin/env bash
# Install (idempotent) and run the test suite. CI runs exactly this.
#   bash shells/run_tests.sh                 # whole suite (its time on 2 CPU cores: README, "Start here")
#   bash shells/run_tests.sh -m "not slow"   # fast subset; any pytest arguments pass through
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
KU_WITH_TEST_DEPS=1 source shells/install.sh
export HF_HUB_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false
exec python -m pytest "$@"
