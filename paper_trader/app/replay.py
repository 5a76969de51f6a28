"""``replay``: recorded candles through the same supervised daemon, then the database's report."""

import asyncio
from dataclasses import dataclass
from pathlib import Path

from paper_trader.app.chores import report_database
from paper_trader.app.configs import log_config
from paper_trader.app.daemon import DaemonRun, run_supervised
from paper_trader.control.report import Report
from paper_trader.domain import Interval, Venue
from paper_trader.errors import ConfigError
from paper_trader.features.engine import SeriesKey
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.market.csv_replay import CsvReplaySource
from paper_trader.runtime.logs import LoggingHandle, configure_logging, get_logger
from paper_trader.settings import Settings

log = get_logger("app")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRequest:
    """What ``replay`` was asked to do: one CSV per symbol, in the same order."""

    csvs: tuple[Path, ...]
    symbols: tuple[str, ...]
    interval: Interval
    venue: Venue
    db_path: Path

    def series(self) -> list[SeriesKey]:
        """Return the replayed series."""
        return [(self.venue, symbol, self.interval) for symbol in self.symbols]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """The outcome of a replay and the summary of its database."""

    run: DaemonRun
    report: Report

    def to_json(self) -> dict[str, object]:
        """Return the replay summary: the report plus this run's figures."""
        engine = self.run.engine
        elapsed = self.run.elapsed_s
        return {
            **self.report.to_json(),
            "replay": {
                "candles_processed": engine.candles_processed,
                "candles_dropped": engine.candles_dropped,
                "candles_rejected": engine.candles_rejected,
                "elapsed_s": round(elapsed, 3),
                "candles_per_s": round(engine.candles_processed / elapsed) if elapsed else None,
                "partial": self.run.interrupted_by is not None,
                "interrupted_by": self.run.interrupted_by,
                "exit_code": self.run.exit_code,
            },
        }


def run_replay(settings: Settings, request: ReplayRequest) -> ReplayResult:
    """Validate the CSVs, stream them merged by time through the daemon, summarise the database.

    Raise ``ConfigError`` if the CSV and symbol counts differ.
    """
    if len(request.csvs) != len(request.symbols):
        raise ConfigError(
            f"{len(request.csvs)} --csv file(s) but {len(request.symbols)} --symbol(s): "
            "give one symbol per file, in the same order"
        )
    csvs = [
        CandleCsv(path, venue=request.venue, symbol=symbol, interval=request.interval)
        for path, symbol in zip(request.csvs, request.symbols, strict=True)
    ]
    logs = configure_logging(log_config(settings))
    try:
        for csv, path in zip(csvs, request.csvs, strict=True):
            rows = csv.validate()
            log.info("replay_validated", component="replay", csv=str(path), rows=rows)
        return asyncio.run(_replay(settings, request, csvs, logs))
    finally:
        logs.close()


async def _replay(
    settings: Settings, request: ReplayRequest, csvs: list[CandleCsv], logs: LoggingHandle
) -> ReplayResult:
    run = await run_supervised(
        settings,
        request.db_path,
        "replay",
        logs,
        source=lambda out: CsvReplaySource(csvs, out),
        series=request.series(),
    )
    summary = await report_database(request.db_path, monte_carlo_runs=settings.monte_carlo_runs)
    return ReplayResult(run=run, report=summary)
