"""Read-side queries on a real SQLite file, written without the writer task."""

from pathlib import Path

import aiosqlite
import pytest
from fakes.candles import candle
from fakes.storage import run_start

from paper_trader.domain import Event, EventKind, Interval, Severity, Venue
from paper_trader.errors import DataIntegrityError, FatalError
from paper_trader.storage import (
    LATEST_VERSION,
    AppendOutbox,
    RecordRunStop,
    SeriesSummary,
    UpsertCandles,
    apply_transaction,
    load_candles,
    open_database,
    open_reader,
    outbox_entries,
    runs,
    schema_version,
    series_summaries,
    start_run,
)


async def test_series_summaries_count_missing_candles(conn: aiosqlite.Connection) -> None:
    """Each series reports its span and the candles missing inside it, ordered by key."""
    btc = [candle(i, "BTCUSDT", interval=Interval.M1, venue=Venue.BINANCE) for i in (0, 1, 2, 5)]
    eth = [candle(i, "ETHUSDT", interval=Interval.H1, venue=Venue.BINANCE) for i in (3, 4)]
    xbt = [candle(7, "BTC-EUR", interval=Interval.M5, venue=Venue.BITVAVO)]
    await apply_transaction(conn, [UpsertCandles(candles=tuple(xbt + eth + btc))])

    summaries = await series_summaries(conn)

    assert summaries == [
        SeriesSummary(
            venue="binance",
            symbol="BTCUSDT",
            interval="1m",
            candles=4,
            first_open_time_ms=0,
            last_open_time_ms=5 * 60_000,
            missing_candles=2,
        ),
        SeriesSummary(
            venue="binance",
            symbol="ETHUSDT",
            interval="1h",
            candles=2,
            first_open_time_ms=3 * 3_600_000,
            last_open_time_ms=4 * 3_600_000,
            missing_candles=0,
        ),
        SeriesSummary(
            venue="bitvavo",
            symbol="BTC-EUR",
            interval="5m",
            candles=1,
            first_open_time_ms=7 * 300_000,
            last_open_time_ms=7 * 300_000,
            missing_candles=0,
        ),
    ]


async def test_load_candles_ascending_from_since_with_limit(conn: aiosqlite.Connection) -> None:
    """Candles come back in time order, from since_ms on, at most limit of them."""
    series = [candle(i, "XBTUSD", interval=Interval.M1, venue=Venue.KRAKEN) for i in range(10)]
    other = candle(3, "ETHUSD", interval=Interval.M1, venue=Venue.KRAKEN)
    await apply_transaction(conn, [UpsertCandles(candles=(*reversed(series), other))])

    everything = await load_candles(conn, Venue.KRAKEN, "XBTUSD", Interval.M1)
    window = await load_candles(conn, "kraken", "XBTUSD", "1m", since_ms=4 * 60_000, limit=3)

    assert everything == series
    assert window == series[4:7]


async def test_runs_are_recorded_start_to_stop(tmp_path: Path, conn: aiosqlite.Connection) -> None:
    """start_run returns increasing ids; a reader sees both runs and the stop of the first."""
    start = run_start(started_at_ms=10, mode="demo", pid=1, config_hash="c")
    first = await start_run(conn, start)
    second = await start_run(conn, start)
    await apply_transaction(conn, [RecordRunStop(run_id=first, stopped_at_ms=20, exit_code=1)])

    reader = await open_reader(tmp_path / "paper_trader.db")
    try:
        recorded = await runs(reader)
        version = await schema_version(reader)
    finally:
        await reader.close()

    assert second > first
    assert [(r.id, r.mode, r.stopped_at_ms, r.exit_code) for r in recorded] == [
        (first, "demo", 20, 1),
        (second, "demo", None, None),
    ]
    assert version == LATEST_VERSION


async def test_outbox_entries_filter_by_status(conn: aiosqlite.Connection) -> None:
    """Entries come back in insertion order; a status filter keeps only matching rows."""
    events = [
        Event(kind=EventKind.DAEMON_STARTED, severity=Severity.INFO, message=m, at_ms=1, source="a")
        for m in ("one", "two")
    ]
    await apply_transaction(conn, [AppendOutbox(event=e) for e in events])
    await conn.execute("UPDATE notification_outbox SET status = 'sent' WHERE message = 'one'")

    everything = await outbox_entries(conn)
    pending = await outbox_entries(conn, status="pending")

    assert [(e.message, e.status, e.data_json) for e in everything] == [
        ("one", "sent", "{}"),
        ("two", "pending", "{}"),
    ]
    assert [e.message for e in pending] == ["two"]


async def test_query_on_unmigrated_database_is_a_project_error(tmp_path: Path) -> None:
    """A sqlite error in a query surfaces as DataIntegrityError, not as a sqlite3 exception."""
    conn = await open_database(tmp_path / "empty.db")
    try:
        with pytest.raises(DataIntegrityError, match="no such table"):
            await series_summaries(conn)
        with pytest.raises(FatalError, match="no such table"):
            await apply_transaction(conn, [RecordRunStop(run_id=1, stopped_at_ms=1, exit_code=0)])
        assert not conn.in_transaction
    finally:
        await conn.close()
