#!/usr/bin/env bash
# The convergence test: does every loss curve in a folder satisfy the Cauchy criterion?
#   bash cauchy_test.sh                                   # losses/*.npy, threshold 0.001
#   bash cauchy_test.sh -f losses -t 0.001 -s cauchy_test.py
#   bash cauchy_test.sh --folder losses --threshold 0.005 --window 30 --tail_fraction 0.2
# -f|--folder      folder of <run>.npy files (default: losses)
# -t|--threshold   epsilon: max - min of the smoothed tail must be below it (default: 0.001)
# -s|--script      the Python script to run (default: cauchy_test.py next to this file)
# Any other flag goes to the script unchanged (python cauchy_test.py --help explains the criterion).
# Exit 0: all converged; 1: some curve did not converge or a file is bad; 2: no folder / no .npy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
folder="losses"
threshold="0.001"
script="$ROOT/cauchy_test.py"
passthrough=()
usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
need() { [[ $# -ge 2 && -n "$2" ]] || { echo "cauchy_test.sh: $1 needs a value" >&2; usage >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -f|--folder|--loss_folder) need "$@"; folder="$2"; shift 2 ;;
    --folder=*|--loss_folder=*) folder="${1#*=}"; shift ;;
    -t|--threshold) need "$@"; threshold="$2"; shift 2 ;;
    --threshold=*) threshold="${1#*=}"; shift ;;
    -s|--script) need "$@"; script="$2"; shift 2 ;;
    --script=*) script="${1#*=}"; shift ;;
    -h|--help) usage; echo; passthrough+=("--help"); shift ;;
    *) passthrough+=("$1"); shift ;;
  esac
done
[[ -f "$script" ]] || { echo "cauchy_test.sh: script $script not found" >&2; exit 2; }
# shellcheck disable=SC1091
source "$ROOT/shells/install.sh" >&2
echo "+ python $script --loss_folder $folder --threshold $threshold ${passthrough[*]}" >&2
exec python "$script" --loss_folder "$folder" --threshold "$threshold" "${passthrough[@]}"
