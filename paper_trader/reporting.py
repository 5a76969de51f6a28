"""The run summary that ``replay`` prints and ``report`` rebuilds from a database.

It grows with the daemon: today it describes the stored candle series and the gaps the
exchange could not fill; the trading issues add signals, trades, metrics and the ledger digest.
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from paper_trader.storage import gap_records, runs, schema_version, series_summaries


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesReport:
    """One stored candle series."""

    venue: str
    symbol: str
    interval: str
    candles: int
    first_open_time: str
    last_open_time: str
    missing_candles: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GapReport:
    """Candles of one series that could not be filled, and why."""

    venue: str
    symbol: str
    interval: str
    start: str
    end: str
    missing: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a database holds."""

    db: str
    schema_version: int
    runs: int
    candles: int
    series: tuple[SeriesReport, ...]
    gaps: tuple[GapReport, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready values."""
        return asdict(self)


def iso_ms(ms: int) -> str:
    """Return a Unix-ms time as ISO-8601 UTC with a ``Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


async def build_report(conn: aiosqlite.Connection, db_path: Path) -> Report:
    """Summarise the database behind ``conn``."""
    series = tuple(
        SeriesReport(
            venue=s.venue,
            symbol=s.symbol,
            interval=s.interval,
            candles=s.candles,
            first_open_time=iso_ms(s.first_open_time_ms),
            last_open_time=iso_ms(s.last_open_time_ms),
            missing_candles=s.missing_candles,
        )
        for s in await series_summaries(conn)
    )
    gaps = tuple(
        GapReport(
            venue=g.venue,
            symbol=g.symbol,
            interval=g.interval,
            start=iso_ms(g.start_ms),
            end=iso_ms(g.end_ms),
            missing=g.missing,
            reason=g.reason,
            detail=g.detail,
        )
        for g in await gap_records(conn)
    )
    return Report(
        db=str(db_path),
        schema_version=await schema_version(conn),
        runs=len(await runs(conn)),
        candles=sum(s.candles for s in series),
        series=series,
        gaps=gaps,
    )
