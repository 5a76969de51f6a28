"""A real SQLite file for the tests: opened and migrated, with the single writer running.

The fixtures built on these (``db_path``, ``conn``, ``reader``, ``writer``) are in
``tests/conftest.py``.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from paper_trader.runtime.service import Readiness
from paper_trader.storage import RunStart, StorageWriter, migrate, open_database


@contextlib.asynccontextmanager
async def migrated_database(path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """Open the database at ``path`` migrated to the latest version; close it on exit."""
    conn = await open_database(path)
    try:
        await migrate(conn)
        yield conn
    finally:
        await conn.close()


def run_start(*, started_at_ms: int, mode: str, pid: int, config_hash: str) -> RunStart:
    """Return the start of a run of app version 0.1.0 that recorded no library versions."""
    return RunStart(
        started_at_ms=started_at_ms,
        mode=mode,
        pid=pid,
        app_version="0.1.0",
        config_hash=config_hash,
        versions_json="{}",
    )


@contextlib.asynccontextmanager
async def running_writer(writer: StorageWriter) -> AsyncIterator["asyncio.Task[None]"]:
    """Run the writer as a task until the block ends, then cancel it."""
    ready = Readiness()
    task = asyncio.create_task(writer.run(ready), name=writer.name)
    await ready.wait()
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
