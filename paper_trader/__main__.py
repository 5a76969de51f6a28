"""``python -m paper_trader``: the same command line as ``run_paper_trader.py``."""

from paper_trader.cli.main import run_as_process

run_as_process()
