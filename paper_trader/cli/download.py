"""``download``: closed candles over REST into a CSV that ``replay`` reads (resumable)."""

import argparse
import json

from paper_trader.app.chores import DownloadRequest, download_candles
from paper_trader.cli.command import console_logging, symbol_argument
from paper_trader.settings import Settings

MAX_DAYS = 3650


def positive_days(text: str) -> float:
    """Return ``--days`` as a number; raise ``ArgumentTypeError`` outside (0, 3650]."""
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected more than 0 and at most {MAX_DAYS} days"
        )
    return days


def download_command(settings: Settings, args: argparse.Namespace) -> int:
    """Download into ``--out``, continuing it; print what was fetched as JSON."""
    request = DownloadRequest(
        venue=args.exchange or settings.exchange,
        symbol=symbol_argument(args.symbol),
        interval=args.interval or settings.interval,
        days=args.days,
        out=args.out,
    )
    with console_logging(settings):
        result = download_candles(settings, request)
    print(
        json.dumps(
            {
                "out": str(result.out),
                "from_ms": result.start_ms,
                "to_ms": result.end_ms,
                "rows_before": result.existing_rows,
                "written": result.written,
                "missing_at_venue": result.missing,
                "requests": result.requests,
            }
        )
    )
    return 0
