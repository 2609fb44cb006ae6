#!/usr/bin/env bash
# The main job, end to end: teach a model the sample documents and measure what it learned and forgot.
#
#   bash shells/quickstart.sh                                # default model, examples/docs, full run
#   bash shells/quickstart.sh --run_dir runs/quickstart-X    # resume an interrupted run
#   bash shells/quickstart.sh --docs mydocs                  # your documents (held-out questions made for you)
#   bash shells/quickstart.sh --help                         # every flag (quickstart/run.py)
#
# Installs what is missing (idempotent), then runs python -m quickstart: collect -> fine-tune ->
# evaluate with the settings of configs/recipes/default.yaml, the recipe the bare commands use too.
set -euo pipefail
# shellcheck disable=SC1091
KU_SKIP_MODEL=1 source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
exec python -m quickstart "$@"
