"""Closed-book knowledge evaluation: base model vs updated models (see evaluation/runner.py).

    python evaluate.py --adapters runs/x/adapter
    python evaluate.py --help
"""
import sys

from evaluation.runner import main

if __name__ == "__main__":
    sys.exit(main())
