"""The operational chores: the report of a database, its backup, and candle downloads."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from paper_trader.app.configs import venue_adapter
from paper_trader.clock import SystemClock
from paper_trader.control.report import Report, build_report
from paper_trader.domain import Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.download import DownloadResult, download
from paper_trader.exchange.wire import Subscription
from paper_trader.settings import Settings
from paper_trader.storage import BackupResult, backup_database, open_reader


async def report_database(db_path: Path, *, monte_carlo_runs: int) -> Report:
    """Open ``db_path`` read-only and summarise it (``MONTE_CARLO_RUNS``: the runs)."""
    reader = await open_reader(db_path)
    try:
        return await build_report(reader, db_path, monte_carlo_runs=monte_carlo_runs)
    finally:
        await reader.close()


def report(db_path: Path, *, monte_carlo_runs: int) -> Report:
    """Summarise the database at ``db_path`` (read-only)."""
    return asyncio.run(report_database(db_path, monte_carlo_runs=monte_carlo_runs))


def backup(db_path: Path, out: Path, *, overwrite: bool) -> BackupResult:
    """Copy the database with SQLite's online backup API (safe while the daemon runs)."""
    return asyncio.run(backup_database(db_path, out, overwrite=overwrite))


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadRequest:
    """What ``download`` was asked to fetch."""

    venue: Venue
    symbol: str
    interval: Interval
    days: float
    out: Path


def download_candles(settings: Settings, request: DownloadRequest) -> DownloadResult:
    """Fetch the last ``days`` of closed candles into a CSV, continuing an existing file."""
    sub = Subscription(parse_pair(request.symbol), request.interval)
    adapter = venue_adapter(settings, request.venue, [sub])
    return asyncio.run(
        download(adapter, sub, days=request.days, out=request.out, clock=SystemClock())
    )
