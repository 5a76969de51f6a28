"""``report``: the JSON summary of a database, the same as replay's (read-only)."""

import argparse
import json

from paper_trader.app.chores import report
from paper_trader.cli.command import console_logging
from paper_trader.settings import Settings


def report_command(settings: Settings, args: argparse.Namespace) -> int:
    """Print the summary of ``--db`` (default ``DB_PATH``)."""
    with console_logging(settings):
        summary = report(args.db or settings.db_path)
    print(json.dumps(summary.to_json(), indent=2))
    return 0
