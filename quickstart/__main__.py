"""``python -m quickstart``: the main job (see quickstart/run.py)."""
import sys

from quickstart.run import main

sys.exit(main())
