"""``backup``: copy the database with SQLite's online backup API (safe while the daemon runs)."""

import argparse
import json

from paper_trader.app.chores import backup
from paper_trader.cli.command import console_logging
from paper_trader.settings import Settings


def backup_command(settings: Settings, args: argparse.Namespace) -> int:
    """Copy ``--db`` (default ``DB_PATH``) to ``--out``; print what was copied as JSON."""
    with console_logging(settings):
        result = backup(args.db or settings.db_path, args.out, overwrite=args.force)
    print(
        json.dumps(
            {
                "out": str(result.out),
                "bytes": result.bytes,
                "pages": result.pages,
                "seconds": round(result.seconds, 3),
            }
        )
    )
    return 0
