"""``python -m data_processor [flags]``: documents -> QA JSONL (see ``--help``)."""
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .pipeline import main  # noqa: E402

sys.exit(main())
