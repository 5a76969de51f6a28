#!/usr/bin/env python3
"""paper-trader's command line: ``python run_paper_trader.py --help``."""

import sys

from paper_trader.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
