"""Forward-only schema migrations, versioned with ``PRAGMA user_version``.

Each migration runs in its own ``BEGIN IMMEDIATE … COMMIT`` together with the version bump,
statement by statement (``executescript`` would commit first), so a failure leaves the database
at the previous version. To change the schema, append a ``Migration`` with the next version;
never edit one that has shipped. ``PRAGMA foreign_keys`` cannot change inside a transaction: a
migration that rebuilds a table uses ``PRAGMA defer_foreign_keys=ON`` instead. The SQL of
every migration is in `paper_trader.storage.schema`.
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from paper_trader.errors import CannotProceed
from paper_trader.runtime.logs import get_logger
from paper_trader.storage.schema import MIGRATIONS, Migration

_log = get_logger("storage")


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationResult:
    """The schema version before and after ``migrate``; equal when nothing was pending."""

    from_version: int
    to_version: int


async def migrate(
    conn: aiosqlite.Connection,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> MigrationResult:
    """Bring the schema to ``target`` (default: the latest), one transaction per migration.

    Raise ``ConfigError`` if the database is newer than ``migrations`` know or a migration
    fails; a database already at or past ``target`` is left alone. ``migrations`` (versions
    1..N in order) is a seam for tests; the daemon uses ``MIGRATIONS``.
    """
    latest = len(migrations)
    if [m.version for m in migrations] != list(range(1, latest + 1)):
        raise ValueError("migration versions must run 1, 2, … N without gaps")
    goal = latest if target is None else target
    if not 0 <= goal <= latest:
        raise ValueError(f"target must be between 0 and {latest}, got {goal}")
    try:
        start = await schema_version_of(conn)
    except sqlite3.Error as exc:
        raise CannotProceed(
            f"cannot read the schema version of database {await database_path(conn)} ({exc}); "
            "check that DB_PATH names a paper-trader database"
        ) from exc
    if start > latest:
        raise CannotProceed(
            f"database {await database_path(conn)} has schema version {start}, newer than this "
            f"paper-trader supports ({latest}); upgrade paper-trader or use another DB_PATH"
        )
    for migration in migrations[start:goal]:
        await _apply(conn, migration)
    end = max(start, goal)
    if end != start:
        _log.info("schema_migrated", from_version=start, to_version=end)
    return MigrationResult(from_version=start, to_version=end)


async def schema_version_of(conn: aiosqlite.Connection) -> int:
    """Return the database's ``PRAGMA user_version``."""
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


async def database_path(conn: aiosqlite.Connection) -> str:
    """Return the file behind the connection's main database (empty for in-memory ones)."""
    for row in await conn.execute_fetchall("PRAGMA database_list"):
        if row[1] == "main":
            return str(row[2])
    return ""


async def _apply(conn: aiosqlite.Connection, migration: Migration) -> None:
    done = False
    try:
        await conn.execute("BEGIN IMMEDIATE")
        current = await schema_version_of(conn)
        if current >= migration.version:  # another connection got here first
            return
        for statement in split_statements(migration.sql):
            await conn.execute(statement)
        await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        await conn.execute("COMMIT")
        done = True
    except sqlite3.Error as exc:
        raise CannotProceed(
            f"database {await database_path(conn)}: migration {migration.version} "
            f"({migration.description}) failed ({exc}); the database is unchanged, still at "
            f"version {migration.version - 1}; restore a backup or report this"
        ) from exc
    finally:
        if not done:
            await conn.rollback()  # a no-op when nothing is open


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (quotes, comments and triggers respected)."""
    statements: list[str] = []
    pending = ""
    for piece in sql.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return statements
