"""The command audit: one row per command an interface accepted, and what it answered."""

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from paper_trader.storage.writer import Durability, Step, one


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One accepted command: when, from where, who, what, and its outcome.

    ``at_ms`` is wall-clock Unix milliseconds; ``user_id`` is None for an update without a
    sender; ``result`` is the answer's first line.
    """

    at_ms: int
    interface: str
    chat_id: int
    user_id: int | None
    command: str
    arguments: str
    result: str
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCommand:
    """Append one accepted command to ``command_audit``."""

    entry: AuditEntry

    @property
    def durability(self) -> Durability:
        """Return LEDGER: the audit trail of who commanded the trader must survive power loss."""
        return Durability.LEDGER

    def prepare(self) -> Sequence[Step]:
        """Insert the row."""
        e = self.entry
        insert = one(
            "INSERT INTO command_audit "
            "(at_ms, interface, chat_id, user_id, command, arguments, result, ok) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            e.at_ms,
            e.interface,
            e.chat_id,
            e.user_id,
            e.command,
            e.arguments,
            e.result,
            int(e.ok),
        )
        return [insert]


async def audit_entries(conn: aiosqlite.Connection, *, limit: int = 100) -> list[AuditEntry]:
    """Return the newest ``limit`` audit rows, oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT at_ms, interface, chat_id, user_id, command, arguments, result, ok "
        "FROM (SELECT * FROM command_audit ORDER BY id DESC LIMIT ?) ORDER BY id",
        (limit,),
    )
    return [
        AuditEntry(
            at_ms=int(r[0]),
            interface=r[1],
            chat_id=int(r[2]),
            user_id=None if r[3] is None else int(r[3]),
            command=r[4],
            arguments=r[5],
            result=r[6],
            ok=bool(r[7]),
        )
        for r in rows
    ]
