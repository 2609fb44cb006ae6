#!/usr/bin/env bash
# Idempotent setup, shared by every entry point and by CI:
#   bash shells/install.sh            # venv + requirements + DeepSpeed + the default model
#   source shells/install.sh          # the same, and leaves the venv activated in your shell
# Re-running it costs a few seconds: a stamp records the hash of the requirement files, so pip runs
# only when they change. Environment:
#   KU_VENV=path           where the virtual environment lives (default: <repo>/.venv)
#   KU_SKIP_MODEL=1        do not prepare the embedded default model
#   KU_USE_CURRENT_ENV=1   install into the active Python instead of creating a venv
#   KU_WITH_TEST_DEPS=1    also install requirements-test.txt (run_tests.sh sets it; llama-cpp-python
#                          builds from source once, about 4 minutes on 2 cores)
_ku_install() {
  set -e
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local venv="${KU_VENV:-$root/.venv}"
  local py="${KU_PYTHON:-python3}"
  if [[ "${KU_USE_CURRENT_ENV:-0}" != "1" ]]; then
    if [[ ! -x "$venv/bin/python" ]]; then
      echo "[install] creating virtual environment $venv"
      "$py" -m venv "$venv"
    fi
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
  fi
  local stamp_file; stamp_file="$(python -c 'import sys; print(sys.prefix)')/.ku_install_stamp"
  local stamp; stamp="$(cat "$root/requirements.txt" "$root/requirements-deepspeed.txt" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp_file" || "$(cat "$stamp_file")" != "$stamp" ]]; then
    echo "[install] installing requirements (first run: about 2 minutes)"
    python -m pip install --quiet --upgrade pip
    # torch first, alone: on the CPU dev machines pip takes the local CPU build of this exact version.
    python -m pip install --quiet "$(grep -E '^torch==' "$root/requirements.txt")"
    python -m pip install --quiet -r "$root/requirements.txt"
    # DeepSpeed compiles nothing with DS_BUILD_OPS=0 (ops are JIT-built on demand on GPUs); without
    # build isolation its setup.py sees the torch installed above instead of downloading another.
    DS_BUILD_OPS=0 python -m pip install --quiet --no-build-isolation -r "$root/requirements-deepspeed.txt"
    echo "$stamp" > "$stamp_file"
  else
    echo "[install] requirements up to date ($(python -c 'import sys; print(sys.prefix)'))"
  fi
  if [[ "${KU_WITH_TEST_DEPS:-0}" == "1" && -f "$root/requirements-test.txt" ]]; then
    local tstamp_file; tstamp_file="$(python -c 'import sys; print(sys.prefix)')/.ku_test_stamp"
    local tstamp; tstamp="$(sha256sum "$root/requirements-test.txt" | cut -d' ' -f1)"
    if [[ ! -f "$tstamp_file" || "$(cat "$tstamp_file")" != "$tstamp" ]]; then
      echo "[install] installing test requirements (llama-cpp-python compiles once: about 4 minutes)"
      python -m pip install --quiet -r "$root/requirements-test.txt"
      echo "$tstamp" > "$tstamp_file"
    fi
  fi
  if [[ "${KU_SKIP_MODEL:-0}" != "1" ]]; then
    (cd "$root" && python -m utils.default_model)
  fi
  set +e
}

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  set -euo pipefail
  _ku_install
else
  _ku_install
fi
