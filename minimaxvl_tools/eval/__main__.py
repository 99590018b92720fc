"""``python -m minimaxvl_tools.eval TASK DATA [...]``: the ``minimaxvl eval`` command, stand-alone."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
