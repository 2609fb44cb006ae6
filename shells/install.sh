#!/usr/bin/env bash
# Idempotent setup, shared by every entry point and by CI:
#   bash shells/install.sh            # venv + requirements + DeepSpeed + this repository (editable) + the default model
#   source shells/install.sh          # the same, and leaves the venv activated in your shell
# Re-running it costs a few seconds: a stamp records the hash of the requirement files, so pip runs
# only when they change. Sourcing it never changes your shell's options (set -e etc.): the work runs
# in a subshell and only the venv activation happens in yours. Environment:
#   KU_VENV=path           where the virtual environment lives (default: <repo>/.venv)
#   KU_NO_INSTALL=1        install nothing; only activate the venv when there is one (a prepared environment)
#   KU_SKIP_MODEL=1        do not prepare the embedded default model
#   KU_USE_CURRENT_ENV=1   install into the active Python instead of creating a venv
#   KU_WITH_SERVE=1        also install llama-cpp-python[server], what `python -m finetuning.serve` runs
#                          (llama.cpp builds from source once, about 5 minutes on 2 cores)
#   KU_WITH_TEST_DEPS=1    also install requirements-test.txt (run_tests.sh sets it; includes the server above)
#   KU_LLAMA_CMAKE_ARGS    llama.cpp build flags for that build (default: portable AVX2, see below)

# llama.cpp's CMake flags for llama-cpp-python (serving and tests). Its default, -march=native, dies
# with SIGILL on virtual machines whose CPUID advertises AVX-512/AMX the guest cannot execute; its
# runtime CPU-variant dispatch (GGML_CPU_ALL_VARIANTS) trusts the same CPUID bits, so it is no cure.
# x86-64 builds for AVX2+FMA+F16C (every x86 server since 2015); other CPUs get the generic build.
_ku_llama_cmake_args() {
  if [[ -n "${KU_LLAMA_CMAKE_ARGS:-}" ]]; then echo "$KU_LLAMA_CMAKE_ARGS"
  elif [[ "$(uname -m)" == x86_64 ]]; then
    echo "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  else echo "-DGGML_NATIVE=OFF"; fi
}

_ku_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_ku_venv="${KU_VENV:-$_ku_root/.venv}"

# Everything that installs runs here, in a subshell with errexit: a failure stops the install and
# is returned to the caller as a non-zero status, whatever the caller's own shell options are.
_ku_install() (
  set -euo pipefail
  local root="$_ku_root" venv="$_ku_venv" py="${KU_PYTHON:-python3}"
  if [[ "${KU_USE_CURRENT_ENV:-0}" != "1" ]]; then
    if [[ ! -x "$venv/bin/python" ]]; then
      echo "[install] creating virtual environment $venv"
      "$py" -m venv "$venv"
    fi
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
  fi
  local prefix; prefix="$(python -c 'import sys; print(sys.prefix)')"
  local stamp; stamp="$(cat "$root/requirements.txt" "$root/requirements-deepspeed.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$prefix/.ku_install_stamp" || "$(cat "$prefix/.ku_install_stamp")" != "$stamp" ]]; then
    echo "[install] installing requirements (first run: about 2 minutes)"
    python -m pip install --quiet --upgrade pip
    # torch first, alone: on the CPU dev machines pip takes the local CPU build of this exact version.
    python -m pip install --quiet "$(grep -E '^torch==' "$root/requirements.txt")"
    python -m pip install --quiet -r "$root/requirements.txt"
    # DeepSpeed compiles nothing with DS_BUILD_OPS=0 (ops are JIT-built on demand on GPUs); without
    # build isolation its setup.py sees the torch installed above instead of downloading another.
    DS_BUILD_OPS=0 python -m pip install --quiet --no-build-isolation -r "$root/requirements-deepspeed.txt"
    # This repository as an editable package: its modules import from anywhere, and the ku-* commands exist.
    python -m pip install --quiet --no-deps --no-build-isolation -e "$root"
    echo "$stamp" > "$prefix/.ku_install_stamp"
  else
    echo "[install] requirements up to date ($prefix)"
  fi
  if [[ "${KU_WITH_SERVE:-0}" == "1" || "${KU_WITH_TEST_DEPS:-0}" == "1" ]]; then
    # The one llama-cpp-python pin (pyproject.toml's `serve` extra repeats it; a test keeps them equal).
    local llama_req; llama_req="$(grep -E '^llama-cpp-python' "$root/requirements-test.txt")"
    local llama_args; llama_args="$(_ku_llama_cmake_args)"
    # The build flags are part of the stamp: changing KU_LLAMA_CMAKE_ARGS rebuilds llama.cpp, once.
    local lstamp; lstamp="$(echo "$llama_req $llama_args" | sha256sum | cut -d' ' -f1)"
    if [[ ! -f "$prefix/.ku_llama_stamp" || "$(cat "$prefix/.ku_llama_stamp")" != "$lstamp" ]]; then
      echo "[install] building $llama_req with CMAKE_ARGS=\"$llama_args\" (compiles once: about 5 minutes)"
      # --no-cache-dir: pip would otherwise reuse the wheel it built earlier whatever CMAKE_ARGS says.
      CMAKE_ARGS="$llama_args" python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "$llama_req"
      # Then the server's own dependencies (fastapi, uvicorn, ...): the build above is already the pinned
      # version, so pip only adds what is missing and builds nothing.
      python -m pip install --quiet "$llama_req"
      echo "$lstamp" > "$prefix/.ku_llama_stamp"
    fi
  fi
  if [[ "${KU_WITH_TEST_DEPS:-0}" == "1" && -f "$root/requirements-test.txt" ]]; then
    local tstamp; tstamp="$(sha256sum "$root/requirements-test.txt" | cut -d' ' -f1)"
    if [[ ! -f "$prefix/.ku_test_stamp" || "$(cat "$prefix/.ku_test_stamp")" != "$tstamp" ]]; then
      echo "[install] installing test requirements"
      python -m pip install --quiet -r "$root/requirements-test.txt"
      echo "$tstamp" > "$prefix/.ku_test_stamp"
    fi
  fi
  if [[ "${KU_SKIP_MODEL:-0}" != "1" ]]; then
    (cd "$root" && python -m utils.default_model)
  fi
)

_ku_status=0
if [[ "${KU_NO_INSTALL:-0}" == "1" ]]; then
  echo "[install] skipped (KU_NO_INSTALL=1)"
else
  _ku_install || _ku_status=$?
fi
if [[ "$_ku_status" == 0 && "${KU_USE_CURRENT_ENV:-0}" != "1" && -x "$_ku_venv/bin/python" ]]; then
  # shellcheck disable=SC1091
  source "$_ku_venv/bin/activate"
fi
if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
  exit "$_ku_status"
else
  return "$_ku_status"
fi
