"""The notifier's view of the notification outbox: typed reads and recorded outcomes.

Reads go through a read-only connection; every change is a write op committed by the single
writer before the method returns, so what the notifier reads next already shows it. The
notifier (``interfaces/notify``) gets an ``Outbox`` by its constructor and never sees SQL.
"""

from collections.abc import Sequence

import aiosqlite

from paper_trader.domain.notifications import Notification, SentNotification
from paper_trader.storage.outbox import (
    ClaimDeliveries,
    DeferDeliveries,
    MarkFailed,
    MarkProgress,
    MarkSending,
    MarkSent,
    PruneOutbox,
    RetireChannels,
)
from paper_trader.storage.outbox_repository import (
    outbox_tail,
    pending_deliveries,
    recent_deliveries,
)
from paper_trader.storage.writer import StorageWriter


class Outbox:
    """The outbox on ``reader`` (read-only) and ``writer`` (the single writer)."""

    def __init__(self, reader: aiosqlite.Connection, writer: StorageWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def tail(self) -> int:
        """Return the id of the newest outbox row (0: none yet)."""
        return await outbox_tail(self._reader)

    async def claim(self, channels: Sequence[str], *, after_id: int = 0, since_ms: int = 0) -> None:
        """Give each pending row after ``after_id`` (created since ``since_ms``) a pending
        delivery on every channel that has none."""
        if channels:
            op = ClaimDeliveries(channels=tuple(channels), after_id=after_id, since_ms=since_ms)
            await self._writer.write(op)

    async def retire(self, keep: Sequence[str]) -> None:
        """Fail what is pending on any channel not in ``keep`` (no longer configured)."""
        await self._writer.write(RetireChannels(keep=tuple(keep)))

    async def pending(self, channel: str, limit: int) -> list[Notification]:
        """Return up to ``limit`` pending deliveries on ``channel``, by priority, then age."""
        return await pending_deliveries(self._reader, channel, limit=limit)

    async def recent(self, channel: str, since_ms: int) -> list[SentNotification]:
        """Return the messages sent on ``channel`` since ``since_ms``, oldest first."""
        return await recent_deliveries(self._reader, channel, since_ms=since_ms)

    async def mark_sent(
        self,
        channel: str,
        ids: Sequence[int],
        *,
        message_ids: Sequence[str],
        at_ms: int,
        possible_repeat: bool = False,
        folded: bool = False,
    ) -> None:
        """Record the deliveries as sent at ``at_ms`` as the channel's ``message_ids``."""
        op = MarkSent(
            channel=channel,
            ids=tuple(ids),
            message_ids=tuple(message_ids),
            sent_at_ms=at_ms,
            possible_repeat=possible_repeat,
            folded=folded,
        )
        await self._writer.write(op)

    async def progress(
        self,
        channel: str,
        id_: int,
        *,
        parts_sent: int,
        message_ids: Sequence[str],
        possible_repeat: bool = False,
    ) -> None:
        """Record that the first ``parts_sent`` parts of a long message arrived."""
        op = MarkProgress(
            channel=channel,
            id=id_,
            parts_sent=parts_sent,
            message_ids=tuple(message_ids),
            possible_repeat=possible_repeat,
        )
        await self._writer.write(op)

    async def sending(self, channel: str, ids: Sequence[int]) -> None:
        """Record that a send of the deliveries is in flight (they may arrive from now on)."""
        await self._writer.write(MarkSending(channel=channel, ids=tuple(ids)))

    async def defer(
        self,
        channel: str,
        ids: Sequence[int],
        *,
        until_ms: int,
        error: str,
        possible_repeat: bool = False,
    ) -> None:
        """Keep the deliveries pending, not tried again before ``until_ms``."""
        op = DeferDeliveries(
            channel=channel,
            ids=tuple(ids),
            until_ms=until_ms,
            error=error,
            possible_repeat=possible_repeat,
        )
        await self._writer.write(op)

    async def mark_failed(self, channel: str, ids: Sequence[int], reason: str) -> None:
        """Give the deliveries up, with ``reason``."""
        await self._writer.write(MarkFailed(channel=channel, ids=tuple(ids), reason=reason))

    async def prune(self, older_than_ms: int) -> None:
        """Expire what is pending from before ``older_than_ms``; delete what is settled."""
        await self._writer.write(PruneOutbox(before_ms=older_than_ms))
