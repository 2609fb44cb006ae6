"""``python -m evaluation``: the same as ``python evaluate.py``."""
import sys

from evaluation.runner import main

sys.exit(main())
