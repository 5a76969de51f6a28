"""The audit trail of commands: who asked what from which interface, and what it answered.

Interfaces never reach storage themselves: they hand the facts to ``CommandAudit``, which
commits one ``command_audit`` row through the single writer before the answer goes out.
"""

from collections.abc import Awaitable, Callable, Sequence

import aiosqlite

from paper_trader.storage.audit import AuditEntry, RecordCommand, audit_entries
from paper_trader.storage.writer import WriteOp

MAX_FIELD_CHARS = 500  # a stored argument or result is cut here: an audit row stays small


class CommandAudit:
    """Record accepted commands; read the newest back."""

    def __init__(
        self,
        write: Callable[[WriteOp], Awaitable[None]],
        *,
        now_ms: Callable[[], int],
        reader: aiosqlite.Connection | None = None,
    ) -> None:
        """``write`` commits an op (``StorageWriter.write``); ``reader`` serves ``recent``."""
        self._write = write
        self._now_ms = now_ms
        self._reader = reader
        self.recorded = 0

    async def record(  # noqa: PLR0917 -- the six facts of one audit row, in the table's order
        self,
        interface: str,
        chat_id: int,
        user_id: int | None,
        command: str,
        arguments: Sequence[str],
        result: str,
        *,
        ok: bool,
    ) -> None:
        """Commit one row: the command, its arguments (space-joined) and its answer's line."""
        entry = AuditEntry(
            at_ms=self._now_ms(),
            interface=interface,
            chat_id=chat_id,
            user_id=user_id,
            command=command[:64],
            arguments=" ".join(arguments)[:MAX_FIELD_CHARS],
            result=result[:MAX_FIELD_CHARS],
            ok=ok,
        )
        await self._write(RecordCommand(entry=entry))
        self.recorded += 1

    async def recent(self, limit: int = 20) -> list[AuditEntry]:
        """Return the newest ``limit`` rows, oldest first (none without a reader)."""
        if self._reader is None or limit < 1:
            return []
        return await audit_entries(self._reader, limit=limit)
