"""The writer's transaction as one call on its own thread: atomicity, failure, cancellation,
the durability pragma, and the candles queued ahead of a ledger commit."""

import asyncio
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite
import pytest
from conftest import eventually
from fakes.candles import candle
from fakes.storage import running_writer

from paper_trader.domain import Event, EventKind, Severity
from paper_trader.errors import FatalError
from paper_trader.runtime.service import Readiness
from paper_trader.storage import (
    AppendOutbox,
    Durability,
    SetMetadata,
    Statement,
    Step,
    StorageWriter,
    UpsertCandles,
    apply_transaction,
)
from paper_trader.storage.ledger_ops import LedgerState, RecordInstant

SYNCHRONOUS_NORMAL, SYNCHRONOUS_FULL = 1, 2


@dataclass
class Probe:
    """An op whose sync step looks, from inside its transaction, at the writer's connection
    and at what a second connection to the same file sees."""

    durability: Durability
    path: Path
    synchronous: list[int] = field(default_factory=list)
    candles_inside: list[int] = field(default_factory=list)
    candles_outside: list[int] = field(default_factory=list)

    def prepare(self) -> list[Step]:
        """Return the one sync step."""
        return [self._look]

    def _look(self, conn: sqlite3.Connection) -> None:
        self.synchronous.append(int(conn.execute("PRAGMA synchronous").fetchone()[0]))
        self.candles_inside.append(int(conn.execute("SELECT count(*) FROM candles").fetchone()[0]))
        other = sqlite3.connect(self.path)
        try:
            self.candles_outside.append(
                int(other.execute("SELECT count(*) FROM candles").fetchone()[0])
            )
        finally:
            other.close()


@dataclass
class Refused:
    """An op whose statement fails (no such table)."""

    durability: Durability = Durability.LEDGER

    def prepare(self) -> list[Step]:
        """Return a statement SQLite refuses."""
        return [Statement("INSERT INTO no_such_table VALUES (1)")]


@dataclass
class Held:
    """An op that inserts a metadata row from a sync step held until ``release`` is set;
    ``fail_first`` makes its first run fail after the insert."""

    fail_first: bool = False
    durability: Durability = Durability.LEDGER
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    runs: int = 0

    def prepare(self) -> list[Step]:
        """Return the held step."""
        return [self._insert]

    def _insert(self, conn: sqlite3.Connection) -> None:
        self.runs += 1
        conn.execute("INSERT INTO metadata (key, value) VALUES ('held', ?)", (str(self.runs),))
        self.started.set()
        if not self.release.wait(timeout=10):
            raise RuntimeError("never released")
        if self.fail_first and self.runs == 1:
            raise sqlite3.OperationalError("first run fails")


async def count(conn: aiosqlite.Connection, table: str) -> int:
    """Return the number of rows in table."""
    rows = list(await conn.execute_fetchall(f"SELECT count(*) FROM {table}"))
    return int(rows[0][0])


def instant(at_ms: int) -> RecordInstant:
    """Return a LEDGER instant: its state row and one notice."""
    state = LedgerState(cash="100", next_fill_id=1, last_candle_ms=at_ms, state_json="{}")
    notice = Event(
        kind=EventKind.TRADE_OPENED,
        severity=Severity.INFO,
        message="opened",
        at_ms=at_ms,
        source="test",
    )
    return RecordInstant(state=state, notices=(notice,))


async def test_ledger_commit_takes_the_queued_candles_into_its_transaction(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection, db_path: Path
) -> None:
    """Candles queued ahead of an instant's LEDGER commit are in its one transaction: a step
    between them sees them written inside it, unseen by another connection, with
    synchronous=FULL; once it has committed, another connection sees all of it."""
    probe = Probe(durability=Durability.FAST, path=db_path)
    writer = StorageWriter(conn)
    await writer.submit(UpsertCandles(candles=tuple(candle(i) for i in range(100))))
    await writer.submit(probe)
    committed = asyncio.create_task(writer.write(instant(1)))
    async with running_writer(writer):
        await committed

    assert (probe.candles_inside, probe.candles_outside) == ([100], [0])
    assert probe.synchronous == [SYNCHRONOUS_FULL]
    assert writer.stats().transactions == 1
    assert await count(reader, "candles") == 100
    assert await count(reader, "trading_state") == 1
    assert await count(reader, "notification_outbox") == 1


async def test_a_failing_ledger_op_loses_the_candles_queued_with_it(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection
) -> None:
    """Neither the queued candles nor the instant are visible when a statement of the LEDGER
    transaction they joined fails; the writer stops with FatalError and fails every op."""
    writer = StorageWriter(conn)
    await writer.submit(UpsertCandles(candles=tuple(candle(i) for i in range(100))))
    await writer.submit(RecordInstant(state=instant(1).state))  # FAST: no notice
    refused = asyncio.create_task(writer.write(Refused()))
    await asyncio.sleep(0)
    with pytest.raises(FatalError, match="storage write failed"):
        await writer.run(Readiness())

    with pytest.raises(FatalError, match="storage write failed") as caught:
        await refused
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert writer.stats().failed_ops == 3
    for table in ("candles", "trading_state"):
        assert await count(reader, table) == 0
    with pytest.raises(FatalError, match="stopped"):
        await writer.submit(SetMetadata(key="late", value="no"))


async def test_apply_transaction_rolls_back_every_op_and_is_fatal(
    conn: aiosqlite.Connection,
) -> None:
    """A failing statement in apply_transaction leaves nothing of the transaction."""
    with pytest.raises(FatalError, match="storage write failed"):
        await apply_transaction(conn, [SetMetadata(key="a", value="1"), Refused()])

    assert await count(conn, "metadata") == 0


async def test_ledger_transaction_runs_with_full_sync_then_normal_is_restored(
    conn: aiosqlite.Connection, db_path: Path
) -> None:
    """A LEDGER transaction (alone or with FAST ops ahead of it) runs with synchronous=FULL;
    a FAST transaction after it runs with NORMAL again."""
    ledger = Probe(durability=Durability.LEDGER, path=db_path)
    joined = Probe(durability=Durability.FAST, path=db_path)
    fast = Probe(durability=Durability.FAST, path=db_path)
    writer = StorageWriter(conn)
    async with running_writer(writer):
        await writer.write(ledger)
        await writer.write(fast)
        await writer.submit(joined)
        await writer.write(AppendOutbox(event=instant(2).notices[0]))
        await writer.write(fast)

    assert ledger.synchronous == [SYNCHRONOUS_FULL]
    assert joined.synchronous == [SYNCHRONOUS_FULL]
    assert fast.synchronous == [SYNCHRONOUS_NORMAL, SYNCHRONOUS_NORMAL]


async def _cancel_while_held(conn: aiosqlite.Connection, held: Held) -> asyncio.Task[None]:
    """Start a writer, write ``held``, cancel the writer while its transaction is on the
    thread, then release the transaction; return the writer's (cancelled) task."""
    writer = StorageWriter(conn)
    ready = Readiness()
    task = asyncio.create_task(writer.run(ready))
    await ready.wait()
    waiter = asyncio.create_task(writer.write(held))
    await eventually(held.started.is_set)
    task.cancel()
    await asyncio.sleep(0)
    held.release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await waiter  # the write was committed: its caller is told so
    assert writer.stats().committed_ops == 1
    return task


async def test_cancelled_transaction_that_committed_is_not_run_again(
    conn: aiosqlite.Connection,
) -> None:
    """A cancellation while the transaction is on the writer's thread: it runs to its COMMIT,
    the writer learns it committed, and the op is neither lost nor run again."""
    held = Held()
    await _cancel_while_held(conn, held)

    assert held.runs == 1
    assert list(await conn.execute_fetchall("SELECT value FROM metadata")) == [("1",)]


async def test_cancelled_transaction_that_failed_is_rolled_back_and_run_again_at_flush(
    conn: aiosqlite.Connection,
) -> None:
    """A cancelled transaction that then fails is rolled back (its insert is gone) and the
    flush at stop runs its op again, once."""
    held = Held(fail_first=True)
    await _cancel_while_held(conn, held)

    assert held.runs == 2
    assert list(await conn.execute_fetchall("SELECT value FROM metadata")) == [("2",)]


async def test_a_stop_while_the_writer_opens_its_connection_still_flushes_the_queue(
    conn: aiosqlite.Connection,
) -> None:
    """Ops queued before the writer started are committed even if it is cancelled while it is
    still opening its connection."""
    writer = StorageWriter(conn)
    await writer.submit(SetMetadata(key="queued", value="1"))
    waiter = asyncio.create_task(writer.write(AppendOutbox(event=instant(3).notices[0])))
    task = asyncio.create_task(writer.run(Readiness()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await waiter
    assert await count(conn, "metadata") == 1
    assert await count(conn, "notification_outbox") == 1
