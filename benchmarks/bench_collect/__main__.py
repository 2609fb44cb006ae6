"""``python -m benchmarks.bench_collect``: see the package's docstring or ``--help``."""
import sys

from benchmarks.bench_collect.cli import main

sys.exit(main())
