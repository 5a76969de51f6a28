"""Notifications: every event kind's category and priority, and a queued notification.

The outbox (``notification_outbox`` in SQLite) stores each event with its category and
priority; the notifier serves it by priority, then age, one delivery per channel.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from paper_trader.domain.events import EventData, EventKind, Severity


class Category(enum.StrEnum):
    """What a notification is about; the caps per hour are counted per category's cap."""

    TRADE = "trade"
    BREAKER = "breaker"
    ERROR = "error"
    HEALTH = "health"
    DRIFT = "drift"
    DATA = "data"
    LIFECYCLE = "lifecycle"
    REPORT = "report"


class Priority(enum.StrEnum):
    """The user's guide's four levels; ``rank`` 0 is served first."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Return 0 for critical up to 3 for low."""
        return _RANKS[self]


_RANKS = {Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}

_C, _P = Category, Priority
CLASSES: Mapping[EventKind, tuple[Category, Priority]] = MappingProxyType(
    {
        EventKind.SERVICE_RESTARTED: (_C.ERROR, _P.NORMAL),
        EventKind.SERVICE_CRASH_LOOP: (_C.ERROR, _P.CRITICAL),
        EventKind.SERVICE_RECOVERED: (_C.HEALTH, _P.LOW),
        EventKind.SERVICE_FAILED: (_C.ERROR, _P.CRITICAL),
        EventKind.DAEMON_STARTED: (_C.LIFECYCLE, _P.NORMAL),
        EventKind.DAEMON_STOPPING: (_C.LIFECYCLE, _P.HIGH),
        EventKind.FEED_RECONNECT_STORM: (_C.ERROR, _P.HIGH),
        EventKind.FEED_RECOVERED: (_C.HEALTH, _P.NORMAL),
        EventKind.DATA_GAP: (_C.DATA, _P.NORMAL),
        EventKind.SYMBOL_NOT_TRADABLE: (_C.DATA, _P.HIGH),
        EventKind.SYMBOL_TRADABLE: (_C.DATA, _P.NORMAL),
        EventKind.MODEL_LOADED: (_C.LIFECYCLE, _P.LOW),
        EventKind.MODEL_UNAVAILABLE: (_C.ERROR, _P.HIGH),
        EventKind.MODEL_RETRAINED: (_C.DRIFT, _P.NORMAL),
        EventKind.MODEL_DRIFT: (_C.DRIFT, _P.HIGH),
        EventKind.PREDICTION_BREAKER: (_C.BREAKER, _P.HIGH),
        EventKind.PREDICTION_TIMEOUT: (_C.ERROR, _P.NORMAL),
        EventKind.SERIES_STALLED: (_C.DATA, _P.NORMAL),
        EventKind.CANDLE_LATE: (_C.DATA, _P.LOW),
        EventKind.TRADE_OPENED: (_C.TRADE, _P.HIGH),
        EventKind.TRADE_CLOSED: (_C.TRADE, _P.HIGH),
        EventKind.BREAKER_TRIPPED: (_C.BREAKER, _P.HIGH),
        EventKind.BREAKER_RESET: (_C.BREAKER, _P.NORMAL),
        EventKind.DAILY_REPORT: (_C.REPORT, _P.NORMAL),
        EventKind.WEEKLY_REPORT: (_C.REPORT, _P.NORMAL),
    }
)
"""Every event kind's category and its priority below critical (a test keeps it total)."""

LEDGER_KINDS = frozenset(
    {
        EventKind.TRADE_OPENED,
        EventKind.TRADE_CLOSED,
        EventKind.BREAKER_TRIPPED,
        EventKind.BREAKER_RESET,
        EventKind.DAILY_REPORT,
        EventKind.WEEKLY_REPORT,
    }
)
"""The kinds the trading stage writes to the outbox in its ledger transaction itself; the
event recorder leaves them out, so each is queued exactly once."""


def classify(kind: str, severity: str) -> tuple[Category, Priority]:
    """Return the category and priority of an event; a CRITICAL one is critical priority.

    A kind unknown to this version (a row written by a newer one) is a normal lifecycle fact.
    """
    try:
        category, priority = CLASSES[EventKind(kind)]
    except ValueError:
        category, priority = Category.LIFECYCLE, Priority.NORMAL
    if severity == Severity.CRITICAL:
        priority = Priority.CRITICAL
    return category, priority


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """One pending delivery of an outbox row to one channel (``telegram:<chat>``, ``webhook``).

    ``parts_sent`` and ``message_ids`` record a long message's parts already delivered;
    ``possible_repeat`` that an earlier attempt may have arrived (it timed out).
    """

    id: int
    channel: str
    created_at_ms: int
    kind: str
    severity: Severity
    source: str
    message: str
    category: Category
    priority: Priority
    data: EventData = field(default_factory=lambda: MappingProxyType({}))
    attempts: int = 0
    next_attempt_at_ms: int = 0
    parts_sent: int = 0
    message_ids: tuple[str, ...] = ()
    possible_repeat: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    @property
    def repeat_key(self) -> tuple[str, str, str]:
        """Return what makes two notifications "the same" (kind, source, symbol or service)."""
        key = self.data.get("symbol", self.data.get("service", ""))
        return self.kind, self.source, str(key)


@dataclass(frozen=True, slots=True, kw_only=True)
class SentNotification:
    """A delivery made recently on a channel: what the caps and repeat windows count."""

    category: Category
    priority: Priority
    repeat_key: tuple[str, str, str]
    sent_at_ms: int
