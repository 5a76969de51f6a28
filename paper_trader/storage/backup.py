"""Online backup of the database, safe while the daemon is running.

SQLite's backup API copies every page in one step (``pages=-1``) inside one read transaction:
in WAL mode that is a consistent snapshot and it does not block the daemon's writer (a step-wise
backup restarts whenever the source changes, so on a busy database it might never finish). The
copy is written to a temporary file next to ``out``, checked with ``PRAGMA quick_check``,
fsynced and renamed into place, so ``out`` is either the old file or a complete backup.

The copy is switched to ``journal_mode=DELETE``: a single self-contained file, with no ``-wal``
or ``-shm`` companions, that can be copied, mailed or inspected read-only. Restored as the
daemon's database, it is switched back to WAL by ``open_database``. No ``DatabaseLock`` is
needed: the backup only reads.
"""

import asyncio
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from paper_trader.errors import CannotProceed
from paper_trader.runtime.logs import get_logger
from paper_trader.storage.database import open_failure

_log = get_logger("storage")


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupResult:
    """Where the backup went, its size, and how long it took."""

    out: Path
    bytes: int
    pages: int
    seconds: float


async def backup_database(source: Path, out: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy ``source`` to ``out`` consistently, off the event loop; atomic at ``out``.

    Raise ``ConfigError`` (one line) if ``source`` is missing or not a database, if ``out`` is
    ``source`` itself, if ``out`` exists and ``overwrite`` is false, or if the copy fails.
    """
    result = await asyncio.to_thread(_backup, source, out, overwrite=overwrite)
    _log.info(
        "database_backed_up",
        source=str(source),
        out=str(result.out),
        bytes=result.bytes,
        pages=result.pages,
        seconds=round(result.seconds, 3),
    )
    return result


def _check_paths(source: Path, out: Path, *, overwrite: bool) -> None:
    if not source.is_file():
        raise CannotProceed(f"cannot back up database {source}: the file does not exist")
    if out.resolve() == source.resolve() or (out.exists() and out.samefile(source)):
        raise CannotProceed(
            f"refusing to back up database {source} onto itself; choose another out"
        )
    if out.is_dir():
        raise CannotProceed(f"backup target {out} is a directory; name a file instead")
    if out.exists() and not overwrite:
        raise CannotProceed(
            f"backup target {out} already exists; choose another file or ask to overwrite it"
        )


def _backup(source: Path, out: Path, *, overwrite: bool) -> BackupResult:
    started = time.monotonic()
    _check_paths(source, out, overwrite=overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise CannotProceed(f"cannot write the backup to {out} ({exc.strerror})") from exc
    tmp = Path(tmp_name)
    try:
        pages = _copy(source, tmp, out)
        _fsync(tmp)
        os.replace(tmp, out)
        _fsync(out.parent)
    except OSError as exc:
        raise CannotProceed(f"cannot write the backup to {out} ({exc.strerror})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(
        out=out, bytes=out.stat().st_size, pages=pages, seconds=time.monotonic() - started
    )


def _copy(source: Path, tmp: Path, out: Path) -> int:
    """Copy ``source`` into ``tmp`` in one backup step, check the copy, return its page count."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise open_failure(source, exc) from exc
    try:
        try:
            src.execute("PRAGMA busy_timeout=5000")
            src.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.Error as exc:
            raise open_failure(source, exc) from exc
        return _copy_into(src, source, tmp, out)
    finally:
        src.close()


def _copy_into(src: sqlite3.Connection, source: Path, tmp: Path, out: Path) -> int:
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE").fetchall()
        problems = [str(row[0]) for row in dst.execute("PRAGMA quick_check").fetchall()]
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
    except sqlite3.Error as exc:
        raise CannotProceed(
            f"backup of database {source} to {out} failed ({exc}); "
            f"check the free space and permissions in {out.parent}"
        ) from exc
    finally:
        dst.close()
    if problems != ["ok"]:
        raise CannotProceed(
            f"the backup copy of database {source} failed its integrity check "
            f"({'; '.join(problems[:3])}); {out} was not written; the source may be damaged: "
            f'check it with sqlite3 {source} "PRAGMA integrity_check"'
        )
    return pages


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
