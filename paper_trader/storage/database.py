"""Opening the SQLite database: the single-process lock, the writer connection and readers.

Every connection runs in autocommit mode (``isolation_level=None``): transactions are explicit
``BEGIN IMMEDIATE … COMMIT`` blocks, owned by the migrator and the single writer. The database
uses write-ahead logging, so readers (status, reports, backups) never block the writer.
"""

import asyncio
import fcntl
import os
import shlex
import sqlite3
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from paper_trader.errors import CannotProceed, FatalError
from paper_trader.runtime.logs import get_logger

_log = get_logger("storage")

_BUSY_TIMEOUT_MS = 5000
# What every writing connection sets after ``journal_mode=WAL``: the aiosqlite one
# (``open_database``) and the single writer's own sqlite3 one (``connect_writer``).
_WRITER_PRAGMAS = (
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}",
)
_INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
_DAMAGED_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class DatabaseLock:
    """An exclusive ``flock`` on ``<db>.lock``: one paper-trader process per database.

    The kernel drops the lock when the holder exits for any reason, ``kill -9`` included, so a
    crash never leaves a stale lock behind. The holder's pid is written into the file so that a
    refused second process can say who holds it.
    """

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, db_path: Path) -> Self:
        """Lock ``db_path`` for this process or raise ``ConfigError`` naming the holder's pid."""
        lock_path = db_path.with_name(db_path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CannotProceed(
                f"cannot create the lock file {lock_path} ({exc.strerror}); "
                "check that its directory is writable or set DB_PATH to another file"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise CannotProceed(
                f"database {db_path} is in use by another paper-trader process (pid {pid}); "
                "stop it first or set DB_PATH to another file"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _log.debug("database_locked", path=str(db_path))
        return cls(lock_path, fd)

    @property
    def is_held(self) -> bool:
        """Return whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the lock file; calling it again does nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "unknown"
    return text if text.isdigit() else "unknown"


async def open_database(path: Path, *, check: bool = True) -> aiosqlite.Connection:
    """Open (creating if needed) the database for writing, in WAL mode, checked for damage.

    Raise ``ConfigError`` with a one-line message and a recovery step instead of any sqlite3
    exception. The caller owns the connection and closes it.
    """
    await asyncio.to_thread(_make_parent, path)
    conn = await _connect(path, str(path), uri=False)
    await _prepare_or_close(conn, path, _configure(conn, path, check=check))
    _log.info("database_opened", path=str(path), checked=check)
    return conn


async def open_reader(path: Path) -> aiosqlite.Connection:
    """Open a read-only connection for status and report queries; it never blocks the writer.

    Raise ``ConfigError`` naming the file if it does not exist or is not a readable database.
    """
    uri = await asyncio.to_thread(_reader_uri, path)
    conn = await _connect(path, uri, uri=True)
    await _prepare_or_close(conn, path, _check_readable(conn))
    return conn


async def _check_readable(conn: aiosqlite.Connection) -> None:
    await conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    await conn.execute_fetchall("SELECT count(*) FROM sqlite_master")


async def _prepare_or_close(
    conn: aiosqlite.Connection, path: Path, preparation: Coroutine[Any, Any, None]
) -> None:
    """Run ``preparation``; on failure close ``conn`` and raise a one-line ``ConfigError``."""
    opened = False
    try:
        await preparation
        opened = True
    except sqlite3.Error as exc:
        raise open_failure(path, exc) from exc
    finally:
        if not opened:
            await conn.close()


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotProceed(
            f"cannot create the directory of database {path} ({exc.strerror}); "
            "check the path and its permissions or set DB_PATH to another file"
        ) from exc


def _reader_uri(path: Path) -> str:
    if not path.is_file():
        raise CannotProceed(
            f"database {path} does not exist; start paper-trader once to create it "
            "or set DB_PATH to the right file"
        )
    return f"{path.resolve().as_uri()}?mode=ro"


async def _connect(path: Path, target: str, *, uri: bool) -> aiosqlite.Connection:
    try:
        return await aiosqlite.connect(target, uri=uri, isolation_level=None)
    except sqlite3.Error as exc:
        raise open_failure(path, exc) from exc


async def _configure(conn: aiosqlite.Connection, path: Path, *, check: bool) -> None:
    await _incremental_vacuum(conn)
    rows = list(await conn.execute_fetchall("PRAGMA journal_mode=WAL"))
    _check_wal(path, rows)
    for pragma in _WRITER_PRAGMAS:
        await conn.execute(pragma)
    if check:
        problems = [str(row[0]) for row in await conn.execute_fetchall("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise damaged(path, "; ".join(problems[:3]))


async def _incremental_vacuum(conn: aiosqlite.Connection) -> None:
    """Make a new file one whose freed pages can be given back (it must be said before the
    first table, and before WAL: ``storage/retention.py`` prunes)."""
    if await _number(conn, "SELECT count(*) FROM sqlite_master") == 0:
        await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")


async def allow_page_release(conn: aiosqlite.Connection, path: Path) -> bool:
    """Rewrite a file made before retention existed (``VACUUM``, once) so that pruning can
    give its freed pages back; return whether it was rewritten. Without it, freed pages are
    still reused, but the file never shrinks."""
    if await _number(conn, "PRAGMA auto_vacuum") == _INCREMENTAL:
        return False
    started = time.monotonic()
    await conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    await conn.execute("VACUUM")
    _log.info(
        "database_rewritten_for_retention",
        path=str(path),
        seconds=round(time.monotonic() - started, 2),
        pages=await _number(conn, "PRAGMA page_count"),
    )
    return True


async def _number(conn: aiosqlite.Connection, sql: str) -> int:
    """Return the one number ``sql`` answers."""
    rows = list(await conn.execute_fetchall(sql))
    return int(rows[0][0])


def _check_wal(path: Path | str, rows: list[Any]) -> None:
    mode = str(rows[0][0]).lower() if rows else ""
    if mode != "wal":
        raise CannotProceed(
            f"database {path} cannot use write-ahead logging (journal_mode answered {mode!r}); "
            "put DB_PATH on a local filesystem"
        )


async def database_file(conn: aiosqlite.Connection) -> str:
    """Return the file ``conn`` has open as its main database (``PRAGMA database_list``).

    Raise ``FatalError`` for a database with no file (in memory): no second connection can
    share it.
    """
    rows = await conn.execute_fetchall("PRAGMA database_list")
    files = [str(file) for _, name, file in rows if name == "main" and file]
    if not files:
        raise FatalError("the storage writer needs a database file, not one in memory")
    return files[0]


def connect_writer(file: str) -> sqlite3.Connection:
    """Open ``file`` for the single writer: autocommit, WAL and the pragmas of
    ``open_database``. Call it on the thread that will use the connection."""
    conn = sqlite3.connect(file, isolation_level=None)
    configured = False
    try:
        _check_wal(file, conn.execute("PRAGMA journal_mode=WAL").fetchall())
        for pragma in _WRITER_PRAGMAS:
            conn.execute(pragma)
        configured = True
    finally:
        if not configured:
            conn.close()
    return conn


def open_failure(path: Path, exc: sqlite3.Error) -> CannotProceed:
    """Translate a sqlite3 error met while opening ``path`` into a one-line ``CannotProceed``."""
    problem = str(exc) or type(exc).__name__
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _DAMAGED_CODES:
        return damaged(path, problem)
    return CannotProceed(
        f"cannot open database {path} ({_one_line(problem)}); check that the file and its "
        "directory are readable and writable by this user, that the disk is not full, and "
        "that no other program holds the file"
    )


def damaged(path: Path, problem: str) -> CannotProceed:
    """Return the ``CannotProceed`` for a damaged database file, with the recovery steps."""
    quoted = shlex.quote(str(path))
    return CannotProceed(
        f"database {path} is damaged ({_one_line(problem)}); stop paper-trader, move the file "
        "aside and restore your latest backup (run_paper_trader.py backup --out FILE makes "
        f'one), or salvage it with: sqlite3 {quoted} ".recover" | sqlite3 recovered.db'
    )


def _one_line(text: str, *, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
