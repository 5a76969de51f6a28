"""The single writer's own sqlite3 connection, used on one thread of its own.

aiosqlite keeps a thread per connection but offers no supported way to run a function on it,
so the writer opens a plain ``sqlite3`` connection (``database.connect_writer``: the pragmas
of ``open_database``) on a one-thread executor and hands it whole transactions as one call.
Work handed to the thread always runs to its end, even if the task awaiting it is cancelled:
the caller learns the outcome afterwards (``idle``).
"""

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Self, TypeVar

from paper_trader.storage.database import connect_writer

_T = TypeVar("_T")


class WriterConnection:
    """A plain sqlite3 connection to one database file, used only on its own thread."""

    __slots__ = ("_conn", "_executor")

    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        """Use ``open``: ``conn`` must have been opened on ``executor``'s only thread."""
        self._executor = executor
        self._conn = conn

    @classmethod
    async def open(cls, file: str) -> Self:
        """Open ``file`` on a new thread; raise ``sqlite3.Error`` if it cannot be opened."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage-writer")
        connecting = executor.submit(connect_writer, file)
        opened = False
        try:
            conn = await asyncio.shield(asyncio.wrap_future(connecting))
            opened = True
        finally:
            if not opened:  # failed, or cancelled: a connection opened late is closed there
                executor.submit(_close_if_opened, connecting)
                executor.shutdown(wait=False)
        return cls(executor, conn)

    async def run(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """Return ``function(conn)`` run on the connection's thread.

        A cancellation of the caller does not stop it: it still runs, in order, to its end.
        """
        future = asyncio.wrap_future(self._executor.submit(function, self._conn))
        return await asyncio.shield(future)

    async def checkpoint(self) -> None:
        """Copy the WAL's committed pages into the database file, on the connection's thread
        (``PASSIVE``: it never waits for a reader; work handed over after it waits its turn)."""
        await asyncio.shield(asyncio.wrap_future(self._executor.submit(_checkpoint, self._conn)))

    async def idle(self) -> None:
        """Return once everything handed to the thread before this call has run."""
        await asyncio.wrap_future(self._executor.submit(_nothing))

    async def close(self, *, wait: bool = True) -> None:
        """Close the connection after the work already handed to it, and end the thread;
        without ``wait``, return at once (a statement still running finishes first)."""
        closed = self._executor.submit(self._conn.close)
        self._executor.shutdown(wait=False)
        if wait:
            await asyncio.shield(asyncio.wrap_future(closed))


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _nothing() -> None:
    return None


def _close_if_opened(connecting: "Future[sqlite3.Connection]") -> None:
    if connecting.exception() is None:
        connecting.result().close()
