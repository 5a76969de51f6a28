"""``python -m paper_trader``: the same command line as ``run_paper_trader.py``."""

import sys

from paper_trader.cli.main import main

sys.exit(main())
