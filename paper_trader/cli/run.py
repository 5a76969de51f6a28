"""``run``, ``replay`` and ``check-config``: the daemon on the live feed or on recorded candles."""

import argparse
import json
import sys
from pathlib import Path

from paper_trader.app.daemon import run_daemon
from paper_trader.app.ledger import fresh_replay_database
from paper_trader.app.replay import ReplayRequest, run_replay
from paper_trader.cli.command import symbol_argument
from paper_trader.clock import SystemClock
from paper_trader.errors import CannotProceed
from paper_trader.settings import Settings


def run_command(settings: Settings, _args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT or a fatal error."""
    return run_daemon(settings)


def check_config_command(settings: Settings, _args: argparse.Namespace) -> int:
    """Print the effective settings, secrets masked (loading them validated them)."""
    print("configuration ok")
    shown = settings.effective()
    if settings.fee_rate is None:
        shown["FEE_RATE"] = f"{settings.taker_fee}  # unset: {settings.exchange}'s taker fee"
    for name, value in shown.items():
        print(f"{name}={value}")
    return 0


def replay_command(settings: Settings, args: argparse.Namespace) -> int:
    """Replay the CSVs into a database; print (and with ``--report`` write) the summary."""
    symbols = (
        tuple(symbol_argument(s) for s in args.symbol) if args.symbol else tuple(settings.symbols)
    )
    request = ReplayRequest(
        csvs=tuple(args.csv),
        symbols=symbols,
        interval=args.interval,
        venue=args.venue or settings.exchange,
        db_path=args.db or fresh_replay_database(settings, SystemClock().now_ms()),
    )
    result = run_replay(settings, request)
    text = json.dumps(result.to_json(), indent=2)
    if args.report is not None:
        _write_atomically(args.report, text + "\n")
    print(text)
    if result.run.interrupted_by is not None:
        print(
            f"paper-trader: replay interrupted by {result.run.interrupted_by}: the summary is "
            f"partial ({result.run.engine.candles_processed} candles handled)",
            file=sys.stderr,
        )
    return result.run.exit_code


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (a temporary file renamed over it)."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise CannotProceed(f"--report {path}: cannot write ({exc.strerror})") from None
