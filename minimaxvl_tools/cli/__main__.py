"""``python -m minimaxvl_tools.cli``: the ``minimaxvl`` command."""

import sys

from .app import main

sys.exit(main())
