"""Opening, locking and backing up the database file."""

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiosqlite
import pytest
from fakes.candles import candle
from fakes.storage import migrated_database, running_writer

from paper_trader.errors import ConfigError
from paper_trader.storage import (
    DatabaseLock,
    StorageWriter,
    UpsertCandles,
    backup_database,
    open_database,
    open_reader,
)

ROOT = Path(__file__).resolve().parents[2]
PAGE_SIZE = 4096


def write_garbage(path: Path) -> None:
    """Fill path with random bytes."""
    path.write_bytes(random.Random(1).randbytes(8 * PAGE_SIZE))


def write_db_with_damaged_page(path: Path, *, offset: int, length: int) -> None:
    """Create a table with many rows, then overwrite bytes of a page in the middle of it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
        conn.executemany("INSERT INTO t (payload) VALUES (?)", [("x" * 200,) for _ in range(4000)])
        conn.commit()
    finally:
        conn.close()
    pages = path.stat().st_size // PAGE_SIZE
    with path.open("r+b") as file:
        file.seek((pages // 2) * PAGE_SIZE + offset)
        file.write(random.Random(2).randbytes(length))


def quick_check(path: Path) -> list[str]:
    """Return PRAGMA quick_check of a database file."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("PRAGMA quick_check")]
    finally:
        conn.close()


def open_times(path: Path) -> list[int]:
    """Return every candle open time in a database file, ascending."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT open_time_ms FROM candles ORDER BY 1")]
    finally:
        conn.close()


def leftovers(directory: Path, prefix: str) -> list[str]:
    """Return the names of files in directory starting with prefix."""
    return [p.name for p in directory.iterdir() if p.name.startswith(prefix)]


async def pragma(conn: aiosqlite.Connection, name: str) -> object:
    """Return the value of a PRAGMA."""
    rows = list(await conn.execute_fetchall(f"PRAGMA {name}"))
    return rows[0][0]


async def test_open_database_creates_parent_and_uses_wal(tmp_path: Path) -> None:
    """A new database is created in a new directory with WAL and foreign keys on."""
    conn = await open_database(tmp_path / "new" / "dir" / "paper_trader.db")
    try:
        pragmas = [
            await pragma(conn, name)
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    finally:
        await conn.close()
    assert pragmas == ["wal", 1, 1, 5000]


async def test_garbage_file_is_refused_with_recovery_steps(tmp_path: Path) -> None:
    """A file of random bytes gives a one-line ConfigError naming the file and the way out."""
    path = tmp_path / "paper_trader.db"
    write_garbage(path)

    with pytest.raises(ConfigError) as caught:
        await open_database(path)

    message = str(caught.value)
    assert str(path) in message
    assert "recover" in message
    assert "backup" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        pytest.param(0, PAGE_SIZE, id="whole-page"),  # sqlite raises "disk image is malformed"
        pytest.param(8, 32, id="cell-pointers"),  # quick_check answers with a list of problems
    ],
)
async def test_damaged_page_fails_quick_check(tmp_path: Path, offset: int, length: int) -> None:
    """A b-tree page overwritten with garbage is caught at open and reported as damage."""
    path = tmp_path / "paper_trader.db"
    write_db_with_damaged_page(path, offset=offset, length=length)

    with pytest.raises(ConfigError, match="is damaged") as caught:
        await open_database(path)

    message = str(caught.value)
    assert str(path) in message
    assert "recover" in message
    assert "\n" not in message


async def test_open_reader_refuses_missing_file(tmp_path: Path) -> None:
    """A reader on a file that does not exist is a ConfigError naming it."""
    path = tmp_path / "absent.db"

    with pytest.raises(ConfigError, match="does not exist") as caught:
        await open_reader(path)

    assert str(path) in str(caught.value)
    assert not path.exists()


async def test_open_reader_refuses_garbage_file(tmp_path: Path) -> None:
    """A reader on a file that is not a database is a ConfigError naming it."""
    path = tmp_path / "paper_trader.db"
    write_garbage(path)

    with pytest.raises(ConfigError, match="is damaged") as caught:
        await open_reader(path)

    assert str(path) in str(caught.value)


def test_second_lock_on_same_database_is_refused_with_pid(tmp_path: Path) -> None:
    """A second acquire, even from this process, is refused naming the holder's pid."""
    path = tmp_path / "paper_trader.db"
    with DatabaseLock.acquire(path) as lock:
        with pytest.raises(ConfigError, match=f"in use by .* \\(pid {os.getpid()}\\)"):
            DatabaseLock.acquire(path)
        assert lock.is_held

    again = DatabaseLock.acquire(path)  # leaving the block released the first lock
    again.release()
    again.release()
    assert not again.is_held


def test_killed_lock_holder_frees_the_lock(tmp_path: Path) -> None:
    """After the holder is killed with SIGKILL the lock can be taken."""
    path = tmp_path / "paper_trader.db"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from paper_trader.storage import DatabaseLock\n"
        "lock = DatabaseLock.acquire(Path(sys.argv[1]))\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env=env
    ) as holder:
        try:
            assert holder.stdout is not None
            # structlog's default output shares stdout with the marker line.
            assert "locked" in (line.strip() for line in holder.stdout)
            with pytest.raises(ConfigError, match=f"pid {holder.pid}"):
                DatabaseLock.acquire(path)
        finally:
            holder.kill()
            holder.wait(timeout=10)

    with DatabaseLock.acquire(path) as lock:
        assert lock.is_held


async def test_backup_during_writes_is_a_consistent_prefix(tmp_path: Path) -> None:
    """A backup taken while candles stream in passes quick_check and holds a prefix of them."""
    path = tmp_path / "paper_trader.db"
    stop, streaming = asyncio.Event(), asyncio.Event()
    async with migrated_database(path) as conn:
        writer = StorageWriter(conn)

        async def insert_until_stopped() -> None:
            i = 0
            while not stop.is_set():
                await writer.write(UpsertCandles(candles=tuple(candle(i + k) for k in range(50))))
                i += 50
                if i >= 250:
                    streaming.set()

        async with running_writer(writer):
            inserter = asyncio.create_task(insert_until_stopped())
            try:
                await streaming.wait()
                result = await backup_database(path, tmp_path / "backups" / "copy.db")
            finally:
                stop.set()
                await inserter

    assert result.pages > 0
    assert result.bytes == result.out.stat().st_size
    assert quick_check(result.out) == ["ok"]
    live, copied = open_times(path), open_times(result.out)
    assert 0 < len(copied) <= len(live)
    assert copied == live[: len(copied)]


async def test_backup_refuses_existing_out_unless_overwrite(tmp_path: Path) -> None:
    """An existing target is kept unless overwrite is asked for."""
    path = tmp_path / "paper_trader.db"
    async with migrated_database(path):
        pass
    out = tmp_path / "copy.db"
    out.write_bytes(b"precious")

    with pytest.raises(ConfigError, match="already exists"):
        await backup_database(path, out)
    assert out.read_bytes() == b"precious"

    result = await backup_database(path, out, overwrite=True)
    assert quick_check(result.out) == ["ok"]
    assert leftovers(tmp_path, ".copy.db") == []


async def test_backup_refuses_itself_and_missing_or_garbage_source(tmp_path: Path) -> None:
    """Backing up onto the source, from a missing file or from garbage is refused."""
    path = tmp_path / "paper_trader.db"
    conn = await open_database(path)
    await conn.close()
    garbage = tmp_path / "garbage.db"
    write_garbage(garbage)

    with pytest.raises(ConfigError, match="onto itself"):
        await backup_database(path, path, overwrite=True)
    with pytest.raises(ConfigError, match="does not exist"):
        await backup_database(tmp_path / "absent.db", tmp_path / "a.db")
    with pytest.raises(ConfigError, match="is damaged"):
        await backup_database(garbage, tmp_path / "b.db")
    assert not (tmp_path / "b.db").exists()
