"""The notifier's reads of the outbox: the newest row, what is pending on a channel (by
priority, then age), and what was sent on it recently (for the caps and repeat windows).

A failed read is a ``TransientError``: the notifier is restarted and nothing is lost.
"""

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TypeVar

import aiosqlite

from paper_trader.domain import Severity
from paper_trader.domain.notifications import (
    Category,
    Notification,
    Priority,
    SentNotification,
)
from paper_trader.errors import TransientError

E = TypeVar("E", Severity, Category, Priority)


async def outbox_tail(conn: aiosqlite.Connection) -> int:
    """Return the id of the newest outbox row (0 if none)."""
    rows = await _rows(conn, "SELECT coalesce(max(id), 0) FROM notification_outbox", ())
    return int(rows[0][0])


# The first ``limit`` of each category (critical ones apart), so that a backlog one category
# holds back (a cap waiting for its digest) never hides what another may send now.
_PENDING = """
SELECT id, created_at_ms, kind, severity, source, message, data_json, category, priority,
       attempts, next_attempt_at_ms, parts_sent, message_ids, possible_repeat
FROM (
    SELECT o.id, o.created_at_ms, o.kind, o.severity, o.source, o.message, o.data_json,
           o.category, o.priority, d.attempts, d.next_attempt_at_ms, d.parts_sent,
           d.message_ids, d.possible_repeat, p.rank,
           ROW_NUMBER() OVER (
               PARTITION BY o.priority = 'critical', o.category
               ORDER BY p.rank, o.created_at_ms, o.id
           ) AS place
    FROM notification_deliveries d
    JOIN notification_outbox o ON o.id = d.outbox_id
    JOIN (SELECT 'critical' AS name, 0 AS rank UNION ALL SELECT 'high', 1
          UNION ALL SELECT 'normal', 2 UNION ALL SELECT 'low', 3) p ON p.name = o.priority
    WHERE d.channel = ? AND d.status = 'pending'
)
WHERE place <= ?
ORDER BY rank, created_at_ms, id
"""


async def pending_deliveries(
    conn: aiosqlite.Connection, channel: str, *, limit: int
) -> list[Notification]:
    """Return the pending deliveries on ``channel`` by priority, then age: up to ``limit`` of
    each category, and of the critical ones."""
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
