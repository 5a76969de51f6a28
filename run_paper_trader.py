#!/usr/bin/env python3
"""paper-trader's command line: ``python run_paper_trader.py --help``."""

from paper_trader.cli.main import run_as_process

if __name__ == "__main__":
    run_as_process()
