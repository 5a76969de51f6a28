"""The notification outbox: queueing events, and the notifier's deliveries of them.

An event is queued by ``outbox_statements`` inside the transaction that made it true (the trading
stage's ledger commit, or ``AppendOutbox``). The notifier then gives each pending row one
delivery per channel (``ClaimDeliveries``), reads what is pending in priority order
(`paper_trader.storage.outbox_repository`) and records each outcome through the single
writer: sent, deferred, failed. The outbox row's own status follows its deliveries
(``_SETTLE``).
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from paper_trader.domain import Event
from paper_trader.domain.notifications import classify
from paper_trader.storage.deviations import (
    DEVIATION_KINDS,
    INSERT_DEVIATION,
    data_json,
    deviation_row,
)
from paper_trader.storage.writer import Durability, Statement, Step, one

EXPIRED = "expired: not delivered within NOTIFICATION_RETENTION_DAYS"
RETIRED = "channel no longer configured"


_INSERT_OUTBOX = (
    "INSERT INTO notification_outbox "
    "(created_at_ms, kind, severity, source, message, data_json, category, priority) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def outbox_statements(events: Sequence[Event]) -> list[Statement]:
    """Return the statements that queue ``events`` as pending outbox rows with their category
    and priority (in the caller's transaction); deviations from replay parity also go into
    ``deviations``."""
    statements = []
    deviations = [deviation_row(e) for e in events if e.kind in DEVIATION_KINDS]
    if deviations:
        statements.append(Statement(INSERT_DEVIATION, deviations))
    if events:
        statements.append(Statement(_INSERT_OUTBOX, [_outbox_row(e) for e in events]))
    return statements


def _outbox_row(event: Event) -> tuple[object, ...]:
    category, priority = classify(event.kind, event.severity)
    return (
        event.at_ms,
        event.kind.value,
        event.severity.value,
        event.source,
        event.message,
        data_json(event),
        category.value,
        priority.value,
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


def _settle(ids: Sequence[int]) -> Statement:
    return Statement(_SETTLE, [(i,) for i in ids])


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

    def prepare(self) -> Sequence[Step]:
        """Insert the missing deliveries."""
        claim = Statement(
            "INSERT OR IGNORE INTO notification_deliveries (outbox_id, channel) "
            "SELECT id, ? FROM notification_outbox "
            "WHERE status = 'pending' AND id > ? AND created_at_ms >= ?",
            [(channel, self.after_id, self.since_ms) for channel in self.channels],
        )
        return [claim]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetireChannels:
    """Fail the pending deliveries on every channel not in ``keep`` (it was unconfigured)."""

    keep: tuple[str, ...]

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Mark them failed and settle their outbox rows (it reads which: a sync step)."""
        return [self._retire]

    def _retire(self, conn: sqlite3.Connection) -> None:
        marks = ", ".join("?" for _ in self.keep) or "''"
        where = f"status = 'pending' AND channel NOT IN ({marks})"
        rows = conn.execute(
            f"SELECT outbox_id FROM notification_deliveries WHERE {where}", self.keep
        ).fetchall()
        conn.execute(
            f"UPDATE notification_deliveries SET status = 'failed', failed_reason = ? "
            f"WHERE {where}",
            (RETIRED, *self.keep),
        )
        settle = _settle(sorted({int(r[0]) for r in rows}))
        conn.executemany(settle.sql, settle.rows)


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

    def prepare(self) -> Sequence[Step]:
        """Update the deliveries, then their outbox rows."""
        sent = Statement(
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
        attempts = Statement(
            "UPDATE notification_outbox SET attempts = attempts + 1 WHERE id = ?",
            [(i,) for i in self.ids],
        )
        return [sent, attempts, _settle(self.ids)]


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

    def prepare(self) -> Sequence[Step]:
        """Update the delivery."""
        progress = one(
            "UPDATE notification_deliveries SET parts_sent = ?, message_ids = ?, "
            "possible_repeat = ? WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            self.parts_sent,
            ",".join(self.message_ids),
            int(self.possible_repeat),
            self.id,
            self.channel,
        )
        return [progress]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkSending:
    """Mark the deliveries ``ids`` as possible repeats while a send of them is in flight: a
    ``kill -9`` before its outcome is recorded leaves them marked for the next run."""

    channel: str
    ids: tuple[int, ...]

    @property
    def durability(self) -> Durability:
        """Return FAST: survives ``kill -9``."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Mark the pending deliveries."""
        sending = Statement(
            "UPDATE notification_deliveries SET possible_repeat = 1 "
            "WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            [(i, self.channel) for i in self.ids],
        )
        return [sending]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeferDeliveries:
    """Keep the deliveries ``ids`` pending, not to be tried before ``until_ms``;
    ``possible_repeat`` replaces the mark of the send that failed (``MarkSending``)."""

    channel: str
    ids: tuple[int, ...]
    until_ms: int
    error: str
    possible_repeat: bool = False

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Count the attempt and keep the error on the delivery and its outbox row."""
        deliveries = Statement(
            "UPDATE notification_deliveries SET attempts = attempts + 1, "
            "next_attempt_at_ms = ?, last_error = ?, possible_repeat = ? "
            "WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            [
                (self.until_ms, self.error, int(self.possible_repeat), i, self.channel)
                for i in self.ids
            ],
        )
        outbox = Statement(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            [(self.error, i) for i in self.ids],
        )
        return [deliveries, outbox]


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

    def prepare(self) -> Sequence[Step]:
        """Mark them failed, keep the reason on their outbox rows, settle those."""
        deliveries = Statement(
            "UPDATE notification_deliveries SET status = 'failed', failed_reason = ?, "
            "last_error = ?, attempts = attempts + 1 "
            "WHERE outbox_id = ? AND channel = ? AND status = 'pending'",
            [(self.reason, self.reason, i, self.channel) for i in self.ids],
        )
        outbox = Statement(
            "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            [(self.reason, i) for i in self.ids],
        )
        return [deliveries, outbox, _settle(self.ids)]


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneOutbox:
    """Expire what is still pending from before ``before_ms``, then delete every settled row
    (sent or failed) from before it, with its deliveries."""

    before_ms: int

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Expire, then delete."""
        old = "SELECT id FROM notification_outbox WHERE created_at_ms < ?"
        # A row is kept for the retention after it was sent too: an event stamped with its
        # candle's time (a replay's or the simulator's past) is not deleted the moment it goes.
        sent_before = "coalesce(sent_at_ms, 0) < ?"
        settled = f"{old} AND status IN ('sent', 'failed') AND {sent_before}"
        return [
            one(
                f"UPDATE notification_deliveries SET status = 'failed', failed_reason = ? "
                f"WHERE status = 'pending' AND outbox_id IN ({old})",
                EXPIRED,
                self.before_ms,
            ),
            one(
                "UPDATE notification_outbox SET status = 'failed', last_error = ? "
                "WHERE status = 'pending' AND created_at_ms < ?",
                EXPIRED,
                self.before_ms,
            ),
            one(
                f"DELETE FROM notification_deliveries WHERE outbox_id IN ({settled})",
                self.before_ms,
                self.before_ms,
            ),
            one(
                "DELETE FROM notification_outbox "
                f"WHERE created_at_ms < ? AND status IN ('sent', 'failed') AND {sent_before}",
                self.before_ms,
                self.before_ms,
            ),
        ]
