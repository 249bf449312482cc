"""``python -m src ...``: the course's single entry point (see ``src/cli.py``)."""
import sys

from .cli import main

sys.exit(main())
