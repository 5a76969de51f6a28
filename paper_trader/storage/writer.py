"""The single writer: every change to the database goes through one task, in order.

Producers hand ``WriteOp`` values to ``StorageWriter.submit`` (fire and forget, waits only while
the queue is full) or ``StorageWriter.write`` (waits until the op's transaction has committed:
the "durable before visible" path). The writer applies consecutive FAST ops in one transaction
and each LEDGER op in its own transaction with ``synchronous=FULL``. Any failure is fatal
(crash-only): restart recovers from what SQLite committed.
"""

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiosqlite

from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.errors import FatalError
from paper_trader.runtime.channel import BlockingChannel, ChannelClosed
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

_log = get_logger("storage")

_DEGRADED_FILL = 0.8


class Durability(enum.StrEnum):
    """How hard a commit must try to survive: FAST survives ``kill -9``, LEDGER power loss."""

    FAST = "fast"
    LEDGER = "ledger"


class WriteOp(Protocol):
    """One unit of work for the writer: executes its SQL on the connection, never commits."""

    @property
    def durability(self) -> Durability:
        """Return how durable the op's commit must be."""
        ...

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Execute the op's statements inside the writer's open transaction."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterStats:
    """Counters of a ``StorageWriter`` since it was built."""

    committed_ops: int
    transactions: int
    blocked_puts: int
    queued: int
    failed_ops: int


class _Transaction:
    """One ``BEGIN IMMEDIATE … COMMIT`` whose outcome is known even if it is cancelled."""

    __slots__ = ("_commit_sent", "_conn", "_ops", "committed", "ledger")

    def __init__(self, conn: aiosqlite.Connection, ops: Sequence[WriteOp]) -> None:
        self._conn = conn
        self._ops = ops
        self._commit_sent = False
        self.committed = False
        self.ledger = any(op.durability is Durability.LEDGER for op in ops)

    async def run(self) -> None:
        """Apply every op and commit; on any failure roll back and re-raise."""
        try:
            if self.ledger:
                await self._conn.execute("PRAGMA synchronous=FULL")
            await self._conn.execute("BEGIN IMMEDIATE")
            for op in self._ops:
                await op.apply(self._conn)
            self._commit_sent = True
            await self._conn.execute("COMMIT")
            self.committed = True
        except asyncio.CancelledError:
            self.committed = await self._settle()
            raise
        finally:
            if not self.committed:
                await self._conn.rollback()  # a no-op when nothing is open
            if self.ledger:
                await self._conn.execute("PRAGMA synchronous=NORMAL")

    async def _settle(self) -> bool:
        # Statements already handed to the connection's thread still run after a cancellation;
        # the barrier waits for them, then an open transaction means the COMMIT did not happen.
        await self._conn.execute("SELECT 1")
        return self._commit_sent and not self._conn.in_transaction


async def apply_transaction(conn: aiosqlite.Connection, ops: Sequence[WriteOp]) -> None:
    """Apply ``ops`` in one transaction, as durable as the strictest of them.

    For use only while no ``StorageWriter`` is running on ``conn`` (start-up, or after the
    writer has flushed at shutdown). Raise ``FatalError`` if the transaction fails.
    """
    try:
        await _Transaction(conn, ops).run()
    except Exception as exc:
        raise FatalError(f"storage write failed: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pending:
    op: WriteOp
    done: asyncio.Future[None] | None


class StorageWriter:
    """The database's only writer, run by the supervisor as the ``storage_writer`` service.

    Queue policy: block-and-alert (a lost write is never acceptable). A writer runs once:
    after it stops, ``submit`` and ``write`` raise ``FatalError``. It never closes ``conn``.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_timeout_s: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._conn = conn
        self._batch_size = batch_size
        self._flush_timeout_s = flush_timeout_s
        self._channel: BlockingChannel[_Pending] = BlockingChannel(capacity, on_full=self._on_full)
        self._carry: _Pending | None = None
        self._retry: list[_Pending] = []
        self._failure: Exception | None = None
        self._committed_ops = 0
        self._transactions = 0
        self._failed_ops = 0

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
        """Commit queued ops until cancelled; then flush what is queued and re-raise."""
        if self._channel.closed:
            raise FatalError("a storage writer runs once; build a new one")
        ready.set()
        _log.info("writer_started", capacity=self._channel.capacity, batch_size=self._batch_size)
        try:
            while True:
                first = self._carry or await self._channel.get()
                self._carry = None
                await self._commit(self._gather(first))
        except asyncio.CancelledError:
            await self._flush()
            raise
        finally:
            self._channel.close()
            self._abandon()

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
        """Return ``first`` plus the consecutive FAST ops already queued behind it."""
        batch = [first]
        if first.op.durability is Durability.LEDGER:
            return batch
        while len(batch) < self._batch_size:
            pending = self._channel.get_nowait()
            if pending is None:
                break
            if pending.op.durability is Durability.LEDGER:
                self._carry = pending
                break
            batch.append(pending)
        return batch

    async def _commit(self, batch: list[_Pending]) -> None:
        transaction = _Transaction(self._conn, [pending.op for pending in batch])
        try:
            await transaction.run()
        except asyncio.CancelledError:
            if transaction.committed:
                self._resolve(batch)
            else:
                self._retry = batch
            raise
        except Exception as exc:
            error = FatalError(f"storage write failed: {exc}")
            self._fail(batch, error)
            _log.error("write_failed", ops=len(batch), ledger=transaction.ledger, error=str(exc))
            raise error from exc
        self._resolve(batch)

    async def _flush(self) -> None:
        """Commit what was queued before the stop, within ``flush_timeout_s``."""
        self._channel.close()
        before = self._committed_ops
        try:
            async with asyncio.timeout(self._flush_timeout_s):
                if self._retry:
                    retry, self._retry = self._retry, []
                    await self._commit(retry)
                while (first := self._carry or self._channel.get_nowait()) is not None:
                    self._carry = None
                    await self._commit(self._gather(first))
        except TimeoutError:
            _log.error("writer_flush_timed_out", timeout_s=self._flush_timeout_s)
        _log.info("writer_flushed", ops=self._committed_ops - before)

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
        lost = [*self._retry, *([self._carry] if self._carry else [])]
        lost += self._channel.drain(len(self._channel))
        self._retry, self._carry = [], None
        if lost:
            error = FatalError("the storage writer stopped before committing this write")
            self._fail(lost, error)
            _log.error("writes_lost", ops=len(lost))
