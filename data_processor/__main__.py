"""``python -m data_processor [flags]``: documents -> QA JSONL (see ``--help``)."""
import sys

from .pipeline import main

sys.exit(main())
