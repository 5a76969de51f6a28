"""The single writer: every change to the database goes through one task, in order.

Producers hand ``WriteOp`` values to ``StorageWriter.submit`` (fire and forget, waits only while
the queue is full) or ``StorageWriter.write`` (waits until the op's transaction has committed:
the "durable before visible" path). The writer applies consecutive FAST ops in one transaction;
a LEDGER op gets a transaction with ``synchronous=FULL`` that holds no other LEDGER op, and
takes in the FAST ops queued ahead of it (strictly more durable for them): so the candles an
instant stored and the instant's ledger change, queued together, commit together. Any failure
is fatal (crash-only): restart recovers from what SQLite committed. The writer checkpoints the
WAL itself when an awaited commit leaves nothing queued (``_checkpoint_if_idle``).

One call per transaction. Each op prepares its statements on the loop, once, as plain data
(``Statement``: SQL and its parameter rows); the writer hands the whole transaction (the
LEDGER pragma, ``BEGIN IMMEDIATE``, every statement with ``executemany``, ``COMMIT``, the
rollback on failure, the pragma restored) to its database thread as ONE call. An op that must
read inside its transaction gives a ``SyncStep`` instead: a function run on that same thread.
Before, every statement was its own awaited aiosqlite call, a hop to aiosqlite's thread and
back through the event loop (about ten per ledger commit).

Why the writer has a sqlite3 connection of its own (``WriterConnection``) rather than the
aiosqlite one it is given: aiosqlite 0.22.1 has no supported way to run a function on its
connection's thread (only the private ``Connection._execute`` and ``Connection._conn``), and a
pinned private API is still one upgrade from breaking the writer silently. The writer opens
the same file (``PRAGMA database_list`` of the given connection) with the same pragmas as
``open_database``; readers keep aiosqlite. The two never write at once: the aiosqlite
connection writes only the migrations, before any writer runs; ``apply_transaction`` (start-up,
shutdown) uses a short-lived ``WriterConnection`` of its own. Measured (``bench/writer.py``,
interleaved, load 3-6 on 2 cores): per 100-symbol instant the loop's CPU falls from 1.5 to
0.9 ms (LEDGER) and 1.1 to 0.85 ms (FAST), per 1-symbol instant from 0.29 to 0.13 ms (FAST);
the latency is the SQLite work on the thread (about 1.6 MB of WAL per 100-symbol instant, and
its fsync), which no hop count changes. The private ``_execute`` path, tried, costs about 35 us
less of loop CPU per commit (``concurrent.futures`` and ``shield``): not worth the dependency.
"""

import asyncio
import enum
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiosqlite

from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.errors import FatalError
from paper_trader.runtime.channel import BlockingChannel, ChannelClosed
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness
from paper_trader.storage.database import database_file
from paper_trader.storage.writer_thread import WriterConnection

_log = get_logger("storage")

_DEGRADED_FILL = 0.8


class Durability(enum.StrEnum):
    """How hard a commit must try to survive: FAST survives ``kill -9``, LEDGER power loss."""

    FAST = "fast"
    LEDGER = "ledger"


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement and the parameter rows it runs with (one ``executemany``)."""

    sql: str
    rows: Sequence[Sequence[object]] = ((),)


# A step that must read inside the transaction: run on the writer's thread, in order.
SyncStep = Callable[[sqlite3.Connection], None]
Step = Statement | SyncStep


class WriteOp(Protocol):
    """One unit of work for the writer: statements to run in its transaction, never a commit."""

    @property
    def durability(self) -> Durability:
        """Return how durable the op's commit must be."""
        ...

    def prepare(self) -> Sequence[Step]:
        """Return the op's statements, in order (built on the loop; run on the writer's thread)."""
        ...


def one(sql: str, *row: object) -> Statement:
    """Return ``sql`` run once with the parameters ``row``."""
    return Statement(sql, (row,))


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStats:
    """Counters of a ``StorageWriter`` since it was built."""

    committed_ops: int
    transactions: int
    blocked_puts: int
    queued: int
    failed_ops: int
    checkpoints: int = 0


class _Transaction:
    """One ``BEGIN IMMEDIATE … COMMIT``, called once on the writer's thread; ``committed``
    says whether its COMMIT returned (known even when the task awaiting it was cancelled)."""

    __slots__ = ("_steps", "committed", "ledger", "rows")

    def __init__(self, ops: Sequence[WriteOp]) -> None:
        """Prepare every op's statements (on the loop)."""
        self.ledger = any(op.durability is Durability.LEDGER for op in ops)
        self._steps = [step for op in ops for step in op.prepare()]
        self.rows = sum(len(s.rows) if isinstance(s, Statement) else 1 for s in self._steps)
        self.committed = False

    def __call__(self, conn: sqlite3.Connection) -> None:
        """Run every step and commit; on any failure roll back and re-raise."""
        if self.ledger:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            for step in self._steps:
                if isinstance(step, Statement):
                    conn.executemany(step.sql, step.rows)
                else:
                    step(conn)
            conn.execute("COMMIT")
            self.committed = True
        finally:
            if conn.in_transaction:
                conn.rollback()
            if self.ledger:
                conn.execute("PRAGMA synchronous=NORMAL")


async def apply_transaction(conn: aiosqlite.Connection, ops: Sequence[WriteOp]) -> None:
    """Apply ``ops`` in one transaction, as durable as the strictest of them.

    For use only while no ``StorageWriter`` is running on ``conn``'s database (start-up, or
    after the writer has flushed at shutdown); it opens a ``WriterConnection`` of its own for
    the one transaction. Raise ``FatalError`` if the transaction fails.
    """
    try:
        db = await WriterConnection.open(await database_file(conn))
    except sqlite3.Error as exc:
        raise FatalError(f"storage write failed: {exc}") from exc
    try:
        await db.run(_Transaction(ops))
    except Exception as exc:
        raise FatalError(f"storage write failed: {exc}") from exc
    finally:
        await db.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pending:
    op: WriteOp
    done: asyncio.Future[None] | None


class StorageWriter:
    """The database's only writer, run by the supervisor as the ``storage_writer`` service.

    Queue policy: block-and-alert (a lost write is never acceptable). A writer runs once:
    after it stops, ``submit`` and ``write`` raise ``FatalError``. It never closes ``conn``:
    it writes through a connection of its own to ``conn``'s file, open while it runs.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_timeout_s: float = 5.0,
        checkpoint_rows: int = 500,
        checkpoint_every_s: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._conn = conn
        self._db: WriterConnection | None = None
        self._batch_size = batch_size
        self._flush_timeout_s = flush_timeout_s
        self._channel: BlockingChannel[_Pending] = BlockingChannel(capacity, on_full=self._on_full)
        self._unsettled: tuple[_Transaction, list[_Pending]] | None = None
        self._timed_out = False
        self._failure: Exception | None = None
        self._committed_ops = 0
        self._transactions = 0
        self._failed_ops = 0
        self._checkpoint_rows = checkpoint_rows
        self._checkpoint_every_s = checkpoint_every_s
        self._checkpointed_at = -math.inf
        self._rows_since_checkpoint = 0
        self._checkpoints = 0

    @property
    def name(self) -> str:
        """Return the service name."""
        return "storage_writer"

    async def submit(self, op: WriteOp) -> None:
        """Queue ``op``; wait only while the queue is full."""
        await self._put(_Pending(op=op, done=None))

    async def write(self, op: WriteOp) -> None:
        """Queue ``op`` and return once its transaction has committed; raise if it failed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._put(_Pending(op=op, done=done))
        await done

    def stats(self) -> WriterStats:
        """Return the writer's counters."""
        return WriterStats(
            committed_ops=self._committed_ops,
            transactions=self._transactions,
            blocked_puts=self._channel.blocked_puts,
            queued=len(self._channel),
            failed_ops=self._failed_ops,
            checkpoints=self._checkpoints,
        )

    def health(self) -> ComponentHealth:
        """Report CRITICAL after a failed write, DEGRADED while the queue is over 80 % full."""
        if self._failure is not None:
            detail = f"write failed: {self._failure}"
            return ComponentHealth(component=self.name, status=HealthStatus.CRITICAL, detail=detail)
        queued, capacity = len(self._channel), self._channel.capacity
        if queued > _DEGRADED_FILL * capacity:
            detail = f"write queue {queued}/{capacity} full"
            return ComponentHealth(component=self.name, status=HealthStatus.DEGRADED, detail=detail)
        detail = "stopped" if self._channel.closed else ""
        return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)

    async def run(self, ready: Readiness) -> None:
        """Open the writer's connection; commit queued ops until cancelled; then flush what is
        queued and re-raise."""
        if self._channel.closed:
            raise FatalError("a storage writer runs once; build a new one")
        try:
            await self._serve(ready)
        finally:
            if self._db is not None:
                await self._db.close(wait=not self._timed_out)
            self._channel.close()
            self._abandon()

    async def _open(self) -> WriterConnection:
        file = await database_file(self._conn)
        try:
            return await WriterConnection.open(file)
        except sqlite3.Error as exc:
            raise FatalError(f"the storage writer cannot open {file}: {exc}") from exc

    async def _serve(self, ready: Readiness) -> None:
        try:
            self._db = await self._open()
            ready.set()
            _log.info(
                "writer_started", capacity=self._channel.capacity, batch_size=self._batch_size
            )
            while True:
                batch = self._gather(await self._channel.get())
                await self._commit(batch)
                await self._checkpoint_if_idle(batch)
        except asyncio.CancelledError:
            await self._flush()
            raise

    async def _checkpoint_if_idle(self, batch: list[_Pending]) -> None:
        """After a commit somebody waited for (an instant's end), with nothing queued behind
        it, move the WAL into the database file now, off the decision path, once
        ``checkpoint_rows`` rows were written since the last time or ``checkpoint_every_s``
        passed. Otherwise SQLite's own checkpoint (every 1,000 WAL pages, still the safety
        net) runs inside some awaited commit: at 100 symbols one in four or five, which set
        that commit's p99 (``bench/floor.py``: 11.6 ms, 6.2 without it)."""
        db = self._db
        now = time.monotonic()  # when to do housekeeping, never what to decide
        if db is None or len(self._channel) or all(p.done is None for p in batch):
            return
        if (
            self._rows_since_checkpoint < self._checkpoint_rows
            and now - self._checkpointed_at < self._checkpoint_every_s
        ):
            return
        self._checkpointed_at, self._rows_since_checkpoint = now, 0
        try:
            await db.checkpoint()
        except sqlite3.Error as exc:  # nothing is lost: the next commit checkpoints, or fails
            _log.warning("wal_checkpoint_failed", error=str(exc))
        else:
            self._checkpoints += 1

    async def _put(self, pending: _Pending) -> None:
        try:
            await self._channel.put(pending)
        except ChannelClosed:
            raise FatalError(
                "the storage writer has stopped; nothing more can be written"
            ) from None

    def _on_full(self, blocked_puts: int) -> None:
        if blocked_puts & (blocked_puts - 1) == 0:  # throttled: the 1st, 2nd, 4th, 8th, …
            _log.warning(
                "writer_queue_full", capacity=self._channel.capacity, blocked_puts=blocked_puts
            )

    def _gather(self, first: _Pending) -> list[_Pending]:
        """Return ``first`` plus the ops queued behind it up to and including the first LEDGER
        op: a LEDGER op ends a batch (it never shares a transaction with another one)."""
        batch = [first]
        if first.op.durability is Durability.LEDGER:
            return batch
        while len(batch) < self._batch_size:
            pending = self._channel.get_nowait()
            if pending is None:
                break
            batch.append(pending)
            if pending.op.durability is Durability.LEDGER:
                break
        return batch

    async def _commit(self, batch: list[_Pending]) -> None:
        db = self._db
        if db is None:
            raise FatalError("the storage writer commits only while it runs")
        ledger = any(pending.op.durability is Durability.LEDGER for pending in batch)
        try:
            transaction = _Transaction([pending.op for pending in batch])
            self._rows_since_checkpoint += transaction.rows
            await db.run(transaction)
        except asyncio.CancelledError:
            self._unsettled = (transaction, batch)  # still running: the flush settles it
            raise
        except Exception as exc:
            error = FatalError(f"storage write failed: {exc}")
            self._fail(batch, error)
            _log.error("write_failed", ops=len(batch), ledger=ledger, error=str(exc))
            raise error from exc
        self._resolve(batch)

    async def _flush(self) -> None:
        """Commit what was queued before the stop, within ``flush_timeout_s``."""
        self._channel.close()
        before = self._committed_ops
        try:
            async with asyncio.timeout(self._flush_timeout_s):
                if self._db is None:  # stopped while opening: open, to commit what is queued
                    self._db = await self._open()
                await self._settle()
                while (first := self._channel.get_nowait()) is not None:
                    await self._commit(self._gather(first))
        except TimeoutError:
            self._timed_out = True
            _log.error("writer_flush_timed_out", timeout_s=self._flush_timeout_s)
        _log.info("writer_flushed", ops=self._committed_ops - before)

    async def _settle(self) -> None:
        """Learn whether the transaction a cancellation interrupted committed; if not, run
        its ops again (the work handed to the thread runs to its end, so waiting tells)."""
        if self._unsettled is None or self._db is None:
            return
        transaction, batch = self._unsettled
        await self._db.idle()
        self._unsettled = None
        if transaction.committed:
            self._resolve(batch)
        else:
            await self._commit(batch)

    def _resolve(self, batch: list[_Pending]) -> None:
        self._transactions += 1
        self._committed_ops += len(batch)
        for pending in batch:
            if pending.done is not None and not pending.done.done():
                pending.done.set_result(None)

    def _fail(self, batch: list[_Pending], error: Exception) -> None:
        self._failure = self._failure or error
        self._failed_ops += len(batch)
        for pending in batch:
            if pending.done is not None and not pending.done.done():
                pending.done.set_exception(error)

    def _abandon(self) -> None:
        """Fail every op that will never be written (after a failure or a timed-out flush)."""
        lost = list(self._unsettled[1]) if self._unsettled is not None else []
        lost += self._channel.drain(len(self._channel))
        self._unsettled = None
        if lost:
            error = FatalError("the storage writer stopped before committing this write")
            self._fail(lost, error)
            _log.error("writes_lost", ops=len(lost))
