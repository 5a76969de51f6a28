"""The single storage writer against a real SQLite file."""

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path

import aiosqlite
import pytest
from conftest import eventually
from fakes.candles import candle
from fakes.storage import run_start, running_writer

from paper_trader.domain import Candle, Event, EventKind, HealthStatus, Interval, Severity, Venue
from paper_trader.errors import FatalError
from paper_trader.runtime.service import Readiness
from paper_trader.storage import (
    AppendOutbox,
    Durability,
    RecordRunStop,
    SetMetadata,
    Statement,
    StorageWriter,
    UpsertCandles,
    load_candles,
    outbox_entries,
    runs,
    start_run,
)

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


class OrphanPosition:
    """A FAST op whose row references a fill that does not exist (a foreign-key violation)."""

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    def prepare(self) -> list[Statement]:
        """Insert a position pointing at fill 999."""
        orphan = Statement(
            "INSERT INTO positions (symbol, side, quantity, entry_price, opened_candle_ms, "
            "entry_fill_id) VALUES ('BTCUSDT', 'long', '1', '100', 0, 999)"
        )
        return [orphan]


async def count(conn: aiosqlite.Connection, table: str) -> int:
    """Return the number of rows in table."""
    rows = list(await conn.execute_fetchall(f"SELECT count(*) FROM {table}"))
    return int(rows[0][0])


async def test_consecutive_fast_ops_share_transactions(conn: aiosqlite.Connection) -> None:
    """1000 queued candle ops are all stored in far fewer transactions than ops."""
    writer = StorageWriter(conn)
    async with running_writer(writer):
        for i in range(1000):
            await writer.submit(UpsertCandles(candles=(candle(i),)))
        await writer.write(SetMetadata(key="barrier", value="1"))

    assert await count(conn, "candles") == 1000
    stats = writer.stats()
    assert stats.committed_ops == 1001
    assert stats.transactions < 1000 / 100


async def test_write_returns_after_commit_visible_to_reader(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection
) -> None:
    """A separate reader sees the row as soon as write() returns."""
    writer = StorageWriter(conn)
    async with running_writer(writer):
        await writer.write(UpsertCandles(candles=(candle(0),)))

        stored = await load_candles(reader, Venue.BINANCE, "BTCUSDT", Interval.M1)

    assert stored == [candle(0)]


async def test_ledger_ops_commit(conn: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
    """Outbox and run-stop ops are committed."""
    run_id = await start_run(conn, run_start(started_at_ms=1, mode="run", pid=7, config_hash="h"))
    event = Event(
        kind=EventKind.DAEMON_STARTED,
        severity=Severity.INFO,
        message="started",
        at_ms=5,
        source="app",
        data={"symbols": "BTCUSDT", "count": 2},
    )
    writer = StorageWriter(conn)
    async with running_writer(writer):
        await writer.write(AppendOutbox(event=event))
        await writer.write(RecordRunStop(run_id=run_id, stopped_at_ms=9, exit_code=0))

        entries = await outbox_entries(reader, status="pending")
        recorded = await runs(reader)

    assert [(e.kind, e.message, e.data_json, e.attempts) for e in entries] == [
        ("daemon_started", "started", '{"count":2,"symbols":"BTCUSDT"}', 0)
    ]
    assert [(r.id, r.stopped_at_ms, r.exit_code) for r in recorded] == [(run_id, 9, 0)]


async def test_cancel_flushes_everything_already_queued(conn: aiosqlite.Connection) -> None:
    """Ops queued when the writer is cancelled are committed before it stops."""
    writer = StorageWriter(conn)
    ready = Readiness()
    task = asyncio.create_task(writer.run(ready))
    await ready.wait()
    for i in range(2000):
        await writer.submit(UpsertCandles(candles=(candle(i),)))
    await writer.submit(SetMetadata(key="last", value="yes"))

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await count(conn, "candles") == 2000
    assert await count(conn, "metadata") == 1
    with pytest.raises(FatalError, match="stopped"):
        await writer.submit(SetMetadata(key="late", value="no"))


async def test_failing_op_fails_its_write_and_stops_writer(conn: aiosqlite.Connection) -> None:
    """A constraint violation fails the caller's write() and the writer raises FatalError."""
    writer = StorageWriter(conn)
    ready = Readiness()
    task = asyncio.create_task(writer.run(ready))
    await ready.wait()
    await writer.write(SetMetadata(key="before", value="kept"))

    with pytest.raises(FatalError, match="storage write failed") as caught:
        await writer.write(OrphanPosition())
    with pytest.raises(FatalError):
        await task

    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert writer.health().status is HealthStatus.CRITICAL
    assert await count(conn, "positions") == 0
    assert await count(conn, "metadata") == 1
    assert not conn.in_transaction


async def test_upsert_replaces_candle_with_same_key(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection
) -> None:
    """A second candle with the same key replaces the first instead of duplicating it."""
    writer = StorageWriter(conn)
    async with running_writer(writer):
        await writer.write(UpsertCandles(candles=(candle(0, close=Decimal("1")),)))
        await writer.write(UpsertCandles(candles=(candle(0, close=Decimal("2")),)))

    stored = await load_candles(reader, Venue.BINANCE, "BTCUSDT", Interval.M1)
    assert [c.close for c in stored] == [Decimal("2")]


async def test_open_read_transaction_does_not_block_writer(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection
) -> None:
    """A reader holding a snapshot open does not stop the writer from committing."""
    writer = StorageWriter(conn)
    async with running_writer(writer):
        await writer.write(UpsertCandles(candles=(candle(0),)))
        await reader.execute("BEGIN")
        assert await count(reader, "candles") == 1

        # Shorter than the 5 s busy timeout: a blocked writer fails here instead of waiting.
        async with asyncio.timeout(4):
            await writer.write(UpsertCandles(candles=tuple(candle(i) for i in range(1, 50))))

        assert await count(reader, "candles") == 1
        await reader.execute("COMMIT")
        assert await count(reader, "candles") == 50


async def test_decimals_round_trip_exactly(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection
) -> None:
    """Tiny and trailing-zero decimals come back exactly as stored."""
    tiny = Candle(
        venue=Venue.KRAKEN,
        symbol="XBTUSD",
        interval=Interval.H1,
        open_time_ms=T0,
        open=Decimal("0.00000001"),
        high=Decimal("65432.10"),
        low=Decimal("1E-8"),
        close=Decimal("12345678901234567890.123456789"),
        volume=Decimal("0"),
    )
    writer = StorageWriter(conn)
    async with running_writer(writer):
        await writer.write(UpsertCandles(candles=(tiny,)))

    [stored] = await load_candles(reader, "kraken", "XBTUSD", "1h")
    assert stored == tiny
    assert [field.as_tuple() for field in (stored.open, stored.high, stored.close)] == [
        field.as_tuple() for field in (tiny.open, tiny.high, tiny.close)
    ]
    texts = list(await reader.execute_fetchall("SELECT open, low FROM candles"))
    assert texts == [("0.00000001", "0.00000001")]


async def test_full_queue_blocks_producer_and_reports_degraded(conn: aiosqlite.Connection) -> None:
    """Past 80 % the writer is DEGRADED; a put into a full queue waits and is counted."""
    writer = StorageWriter(conn, capacity=4)
    for i in range(4):
        await writer.submit(UpsertCandles(candles=(candle(i),)))
    assert writer.health().status is HealthStatus.DEGRADED
    blocked = asyncio.create_task(writer.submit(UpsertCandles(candles=(candle(4),))))
    await asyncio.sleep(0)
    assert not blocked.done()

    async with running_writer(writer):
        await blocked
        await writer.write(SetMetadata(key="barrier", value="1"))

    assert writer.stats().blocked_puts == 1
    assert await count(conn, "candles") == 5
    assert writer.health().status is HealthStatus.OK


async def test_ledger_op_takes_in_the_fast_ops_ahead_but_no_other_ledger_op(
    conn: aiosqlite.Connection,
) -> None:
    """FAST ops queued ahead of a LEDGER op share its transaction; two LEDGER ops never share
    one and nothing queued behind a LEDGER op joins it; order is preserved."""
    writer = StorageWriter(conn)
    await writer.submit(SetMetadata(key="k", value="1"))
    await writer.submit(SetMetadata(key="k", value="2"))
    await writer.submit(AppendOutbox(event=_event("x")))
    await writer.submit(SetMetadata(key="k", value="3"))
    await writer.submit(AppendOutbox(event=_event("y")))
    async with running_writer(writer):
        await writer.write(SetMetadata(key="k", value="4"))

    assert writer.stats().transactions == 3
    assert list(await conn.execute_fetchall("SELECT value FROM metadata")) == [("4",)]
    assert await count(conn, "notification_outbox") == 2


def _event(message: str) -> Event:
    return Event(
        kind=EventKind.SERVICE_RESTARTED,
        severity=Severity.WARNING,
        message=message,
        at_ms=1,
        source="test",
    )


async def test_cancel_at_any_point_commits_each_queued_op_exactly_once(
    conn: aiosqlite.Connection,
) -> None:
    """Whatever phase of a transaction the cancellation hits, no queued op is lost or doubled."""
    expected = 0
    for delay in range(0, 60, 4):
        writer = StorageWriter(conn)
        ready = Readiness()
        task = asyncio.create_task(writer.run(ready))
        await ready.wait()
        for i in range(10):
            await writer.submit(AppendOutbox(event=_event(f"{delay}-{i}")))
            await writer.submit(SetMetadata(key=f"{delay}-{i}", value="x"))
        expected += 10
        for _ in range(delay):
            await asyncio.sleep(0)

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert await count(conn, "notification_outbox") == expected
        assert await count(conn, "metadata") == expected


def file_size(path: Path) -> int:
    """Return the size of the database file itself (its WAL is another file)."""
    return path.stat().st_size


async def test_an_idle_writer_moves_the_wal_into_the_database_file(
    conn: aiosqlite.Connection, db_path: Path
) -> None:
    """After an awaited commit with nothing queued behind it (an instant's end), the writer
    checkpoints the WAL into the database file, once enough rows were written: SQLite's own
    checkpoint, every 1,000 WAL pages, would otherwise run inside some awaited commit. Ops
    only submitted (nobody waits for them) never start one."""
    writer = StorageWriter(conn)  # the daemon's settings
    async with running_writer(writer):
        await writer.write(SetMetadata(key="first", value="1"))  # the first is always due
        await eventually(lambda: writer.stats().checkpoints == 1)
        size = file_size(db_path)
        for i in range(600):  # more rows than the writer waits for, far fewer than 1,000 pages
            await writer.submit(UpsertCandles(candles=(candle(i),)))
        await asyncio.sleep(0.2)
        assert writer.stats().checkpoints == 1  # nobody waited: nothing ended
        assert file_size(db_path) == size  # the candles are in the WAL only
        await writer.write(SetMetadata(key="barrier", value="2"))
        await eventually(lambda: writer.stats().checkpoints == 2)
        assert file_size(db_path) > size  # their pages are now in the database file
    assert await count(conn, "candles") == 600
