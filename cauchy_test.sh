#!/usr/bin/env bash
# The convergence test: does every loss curve in a folder satisfy the Cauchy criterion?
#   bash cauchy_test.sh                                   # losses/*.npy, threshold 0.001
#   bash cauchy_test.sh -f losses -t 0.001
#   bash cauchy_test.sh --folder losses --threshold 0.005 --window 30 --tail_fraction 0.2
#   bash cauchy_test.sh -s my_criterion.py -f losses      # run another script on the same flags
# Every flag but -s goes to cauchy_test.py (--help explains the criterion and lists them all).
# Exit 0: all converged; 1: some curve did not converge or a file is bad; 2: no folder / no .npy.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$ROOT/cauchy_test.py"
if [[ "${1:-}" == "-s" || "${1:-}" == "--script" ]]; then
  [[ $# -ge 2 ]] || { echo "cauchy_test.sh: $1 needs a file" >&2; exit 2; }
  script="$2"; shift 2
fi
[[ -f "$script" ]] || { echo "cauchy_test.sh: script $script not found" >&2; exit 2; }
# shellcheck disable=SC1091
source "$ROOT/shells/install.sh" >&2
echo "+ python $script $*" >&2
exec python "$script" "$@"
