"""The notification outbox: queueing events, and the notifier's deliveries of them.

An event is queued by ``insert_outbox`` inside the transaction that made it true (the trading
stage's ledger commit, or ``AppendOutbox``). The notifier then gives each pending row one
delivery per channel (``ClaimDeliveries``), reads what is pending in priority order
(``pending_deliveries``) and records each outcome through the single writer: sent, deferred,
failed. The outbox row's own status follows its deliveries (``_SETTLE``).
"""

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiosqlite

from paper_trader.domain import Event, Severity
from paper_trader.domain.notifications import (
    Category,
    Notification,
    Priority,
    SentNotification,
    classify,
)
from paper_trader.errors import TransientError
from paper_trader.storage.deviations import DEVIATION_KINDS, data_json, insert_deviation
from paper_trader.storage.writer import Durability

EXPIRED = "expired: not delivered within NOTIFICATION_RETENTION_DAYS"
RETIRED = "channel no longer configured"
E = TypeVar("E", Severity, Category, Priority)


async def insert_outbox(conn: aiosqlite.Connection, event: Event) -> None:
    """Queue ``event`` as a pending outbox row with its category and priority (in the caller's
    transaction); a deviation from replay parity also goes into ``deviations``."""
    if event.kind in DEVIATION_KINDS:
        await insert_deviation(conn, event)
    category, priority = classify(event.kind, event.severity)
    await conn.execute(
        "INSERT INTO notification_outbox "
        "(created_at_ms, kind, severity, source, message, data_json, category, priority) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.at_ms,
            event.kind.value,
            event.severity.value,
            event.source,
            event.message,
            data_json(event),
            category.value,
            priority.value,
        ),
    )


# The outbox row follows its deliveries: pending while one is, else sent if one was.
_SETTLE = """
UPDATE notification_outbox SET
    status = CASE
        WHEN EXISTS (SELECT 1 FROM notification_deliveries d
                     WHERE d.outbox_id = notification_outbox.id AND d.status = 'pending')
            THEN 'pending'
        WHEN EXISTS (SELECT 1 FROM notification_deliveries d
                     WHERE d.outbox_id = notification_outbox.id AND d.status = 'sent')
            THEN 'sent'
        ELSE 'failed'
    END,
    sent_at_ms = (SELECT min(d.sent_at_ms) FROM notification_deliveries d
                  WHERE d.outbox_id = notification_outbox.id AND d.status = 'sent')
WHERE id = ?
"""


async def _settle(conn: aiosqlite.Connection, ids: Sequence[int]) -> None:
    await conn.executemany(_SETTLE, [(i,) for i in ids])


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimDeliveries:
    """Give every pending outbox row after ``after_id`` a pending delivery on each channel
    that has none yet (rows older than ``since_ms`` are left to expire)."""

    channels: tuple[str, ...]
    after_id: int = 0
    since_ms: int = 0

    @property
    def durability(self) -> Durability:
        """Return FAST: a lost claim is claimed again."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Insert the missing deliveries."""
        await conn.executemany(
            "INSERT OR IGNORE INTO notification_deliveries (outbox_id, channel) "
            "SELECT id, ? FROM notification_outbox "
            "WHERE status = 'pending' AND id > ? AND created_at_ms >= ?",
            [(channel, self.after_id, self.since_ms) for channel in self.channels],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetireChannels:
    """Fail the pending deliveries on every channel not in ``keep`` (it was unconfigured)."""

    keep: tuple[str, ...]

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Mark them failed and settle their outbox rows."""
        marks = ", ".join("?" for _ in self.keep) or "''"
        where = f"status = 'pending' AND channel NOT IN ({marks})"
        rows = await conn.execute_fetchall(
            f"SELECT outbox_id FROM notification_deliveries WHERE {where}", self.keep
        )
        await conn.execute(
            f"UPDATE notification_deliveries SET status = 'failed', failed_reason = ? "
            f"WHERE {where}",
            (RETIRED, *self.keep),
        )
        await _settle(conn, sorted({int(r[0]) for r in rows}))


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkSent:
    """Record the deliveries ``ids`` on ``channel`` as sent (``folded``: in one digest)."""

    channel: str
    ids: tuple[int, ...]
    message_ids: tuple[str, ...]
    sent_at_ms: int
    possible_repeat: bool = False
    folded: bool = False

    @property
    def durability(self) -> Durability:
        """Return FAST: survives ``kill -9``; a power cut may resend one message."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Update the deliveries, then their outbox rows."""
        await conn.executemany(
            "UPDATE notification_deliveries SET status = 'sent', sent_at_ms = ?, "
            "message_ids = ?, possible_repeat = ?, folded = ?, attempts = attempts + 1, "
            "parts_sent = 0 WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            [
                (
                    self.sent_at_ms,
                    ",".join(self.message_ids),
                    int(self.possible_repeat),
                    int(self.folded),
                    i,
                    self.channel,
                )
                for i in self.ids
            ],
        )
        await conn.executemany(
            "UPDATE notification_outbox SET attempts = attempts + 1 WHERE id = ?",
            [(i,) for i in self.ids],
        )
        await _settle(conn, self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkProgress:
    """Record the parts of a long message already delivered (they are not sent again)."""

    channel: str
    id: int
    parts_sent: int
    message_ids: tuple[str, ...]
    possible_repeat: bool = False

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Update the delivery."""
        await conn.execute(
            "UPDATE notification_deliveries SET parts_sent = ?, message_ids = ?, "
            "possible_repeat = ? WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            (
                self.parts_sent,
                ",".join(self.message_ids),
                int(self.possible_repeat),
                self.id,
                self.channel,
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeferDeliveries:
    """Keep the deliveries ``ids`` pending, not to be tried before ``until_ms``."""

    channel: str
    ids: tuple[int, ...]
    until_ms: int
    error: str
    possible_repeat: bool = False

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Count the attempt and keep the error on the delivery and its outbox row."""
        await conn.executemany(
            "UPDATE notification_deliveries SET attempts = attempts + 1, "
            "next_attempt_at_ms = ?, last_error = ?, possible_repeat = max(possible_repeat, ?) "
            "WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            [
                (self.until_ms, self.error, int(self.possible_repeat), i, self.channel)
                for i in self.ids
            ],
        )
        await conn.executemany(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            [(self.error, i) for i in self.ids],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkFailed:
    """Give up the deliveries ``ids`` on ``channel``, with the reason."""

    channel: str
    ids: tuple[int, ...]
    reason: str

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Mark them failed, keep the reason on their outbox rows, settle those."""
        await conn.executemany(
            "UPDATE notification_deliveries SET status = 'failed', failed_reason = ?, "
            "last_error = ?, attempts = attempts + 1 "
            "WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            [(self.reason, self.reason, i, self.channel) for i in self.ids],
        )
        await conn.executemany(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            [(self.reason, i) for i in self.ids],
        )
        await _settle(conn, self.ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneOutbox:
    """Expire what is still pending from before ``before_ms``, then delete every settled row
    (sent or failed) from before it, with its deliveries."""

    before_ms: int

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    async def apply(self, conn: aiosqlite.Connection) -> None:
        """Expire, then delete."""
        old = "SELECT id FROM notification_outbox WHERE created_at_ms < ?"
        await conn.execute(
            f"UPDATE notification_deliveries SET status = 'failed', failed_reason = ? "
            f"WHERE status = 'pending' AND outbox_id IN ({old})",
            (EXPIRED, self.before_ms),
        )
        await conn.execute(
            "UPDATE notification_outbox SET status = 'failed', last_error = ? "
            "WHERE status = 'pending' AND created_at_ms < ?",
            (EXPIRED, self.before_ms),
        )
        settled = f"{old} AND status IN ('sent', 'failed')"
        await conn.execute(
            f"DELETE FROM notification_deliveries WHERE outbox_id IN ({settled})",
            (self.before_ms,),
        )
        await conn.execute(
            "DELETE FROM notification_outbox "
            "WHERE created_at_ms < ? AND status IN ('sent', 'failed')",
            (self.before_ms,),
        )


async def outbox_tail(conn: aiosqlite.Connection) -> int:
    """Return the id of the newest outbox row (0 if none)."""
    rows = await _rows(conn, "SELECT coalesce(max(id), 0) FROM notification_outbox", ())
    return int(rows[0][0])


_PENDING = """
SELECT o.id, o.created_at_ms, o.kind, o.severity, o.source, o.message, o.data_json,
       o.category, o.priority, d.attempts, d.next_attempt_at_ms, d.parts_sent, d.message_ids,
       d.possible_repeat
FROM notification_deliveries d JOIN notification_outbox o ON o.id = d.outbox_id
WHERE d.channel = ? AND d.status = 'pending'
ORDER BY CASE o.priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2
         ELSE 3 END, o.created_at_ms, o.id
LIMIT ?
"""


async def pending_deliveries(
    conn: aiosqlite.Connection, channel: str, *, limit: int
) -> list[Notification]:
    """Return up to ``limit`` pending deliveries on ``channel``, by priority, then age."""
    rows = await _rows(conn, _PENDING, (channel, limit))
    return [_notification(channel, row) for row in rows]


def _notification(channel: str, row: Sequence[object]) -> Notification:
    (id_, created, kind, severity, source, message, data, category, priority) = row[:9]
    attempts, next_at, parts, message_ids, repeat = row[9:]
    return Notification(
        id=int(str(id_)),
        channel=channel,
        created_at_ms=int(str(created)),
        kind=str(kind),
        severity=_enum(Severity, severity, Severity.WARNING),
        source=str(source),
        message=str(message),
        category=_enum(Category, category, Category.LIFECYCLE),
        priority=_enum(Priority, priority, Priority.NORMAL),
        data=_data(str(data)),
        attempts=int(str(attempts)),
        next_attempt_at_ms=int(str(next_at)),
        parts_sent=int(str(parts)),
        message_ids=tuple(m for m in str(message_ids).split(",") if m),
        possible_repeat=bool(repeat),
    )


_RECENT = """
SELECT o.category, o.priority, o.kind, o.source, o.data_json, d.sent_at_ms, d.message_ids
FROM notification_deliveries d JOIN notification_outbox o ON o.id = d.outbox_id
WHERE d.channel = ? AND d.status = 'sent' AND d.sent_at_ms >= ?
ORDER BY d.sent_at_ms, o.id
"""


async def recent_deliveries(
    conn: aiosqlite.Connection, channel: str, *, since_ms: int
) -> list[SentNotification]:
    """Return the messages sent on ``channel`` since ``since_ms``, oldest first: a digest or
    a repeat count (deliveries sharing their message ids) counts once."""
    seen: set[str] = set()
    sent = []
    for category, priority, kind, source, data, at, message_ids in await _rows(
        conn, _RECENT, (channel, since_ms)
    ):
        if message_ids and message_ids in seen:
            continue
        seen.add(str(message_ids))
        fields = _data(str(data))
        key = str(fields.get("symbol", fields.get("service", "")))
        sent.append(
            SentNotification(
                category=_enum(Category, category, Category.LIFECYCLE),
                priority=_enum(Priority, priority, Priority.NORMAL),
                repeat_key=(str(kind), str(source), key),
                sent_at_ms=int(at),
            )
        )
    return sent


async def _rows(
    conn: aiosqlite.Connection, sql: str, params: Iterable[object]
) -> list[sqlite3.Row]:
    """Run a read; a failure is transient (the notifier is restarted, nothing is lost)."""
    try:
        return list(await conn.execute_fetchall(sql, tuple(params)))
    except sqlite3.Error as exc:
        raise TransientError(f"outbox read failed: {exc}") from exc


def _enum(kind: type[E], value: object, default: E) -> E:
    try:
        return kind(str(value))
    except ValueError:
        return default


def _data(text: str) -> dict[str, str | int | float]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str | int | float)}
