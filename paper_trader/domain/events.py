"""Events: facts the daemon reports to people (notifier, status feed, logs)."""

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class Severity(enum.StrEnum):
    """How urgently a person should look at an event."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class EventKind(enum.StrEnum):
    """The closed set of event kinds; later parts of the daemon add theirs here."""

    SERVICE_RESTARTED = "service_restarted"
    SERVICE_CRASH_LOOP = "service_crash_loop"
    SERVICE_RECOVERED = "service_recovered"
    SERVICE_FAILED = "service_failed"
    DAEMON_STARTED = "daemon_started"
    DAEMON_STOPPING = "daemon_stopping"
    FEED_RECONNECT_STORM = "feed_reconnect_storm"
    FEED_RECOVERED = "feed_recovered"
    DATA_GAP = "data_gap"
    SYMBOL_NOT_TRADABLE = "symbol_not_tradable"
    SYMBOL_TRADABLE = "symbol_tradable"
    MODEL_LOADED = "model_loaded"
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_RETRAINED = "model_retrained"
    MODEL_DRIFT = "model_drift"
    PREDICTION_BREAKER = "prediction_breaker"
    PREDICTION_TIMEOUT = "prediction_timeout"
    SERIES_STALLED = "series_stalled"
    CANDLE_LATE = "candle_late"
    TRADE_OPENED = "trade_opened"
    TRADE_CLOSED = "trade_closed"
    BREAKER_TRIPPED = "breaker_tripped"
    BREAKER_RESET = "breaker_reset"
    DAILY_REPORT = "daily_report"
    WEEKLY_REPORT = "weekly_report"


EventData = Mapping[str, str | int | float]
"""An event's context: plain JSON-compatible values (strings, numbers) by name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A fact worth telling a person, with the wall-clock time it happened.

    ``data`` holds the event's context as plain JSON-compatible values (strings, numbers),
    and is read-only: the event keeps its own copy behind a read-only view, whatever mapping
    it was given. Build events with an `EventSource`, not by hand.
    """

    kind: EventKind
    severity: Severity
    message: str
    at_ms: int
    source: str
    data: EventData = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # The one place data is frozen: a caller's later change to its dict cannot reach the event.
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))


@dataclass(frozen=True, slots=True)
class EventSource:
    """Build the events of one component, each stamped with the component's name as source.

    Each component holds one (``EventSource("supervisor")``) and builds every event it reports
    with it: ``source.warning(EventKind.SERVICE_RESTARTED, message, at_ms=now, data=...)``.
    """

    name: str

    def event(
        self,
        kind: EventKind,
        severity: Severity,
        message: str,
        *,
        at_ms: int,
        data: EventData | None = None,
    ) -> Event:
        """Return the event ``kind`` at ``severity`` that happened at ``at_ms``, with ``data``."""
        return Event(
            kind=kind,
            severity=severity,
            message=message,
            at_ms=at_ms,
            source=self.name,
            data={} if data is None else data,
        )

    def info(
        self, kind: EventKind, message: str, *, at_ms: int, data: EventData | None = None
    ) -> Event:
        """Return an informational event (see `event`)."""
        return self.event(kind, Severity.INFO, message, at_ms=at_ms, data=data)

    def warning(
        self, kind: EventKind, message: str, *, at_ms: int, data: EventData | None = None
    ) -> Event:
        """Return a warning event (see `event`)."""
        return self.event(kind, Severity.WARNING, message, at_ms=at_ms, data=data)

    def critical(
        self, kind: EventKind, message: str, *, at_ms: int, data: EventData | None = None
    ) -> Event:
        """Return a critical event (see `event`)."""
        return self.event(kind, Severity.CRITICAL, message, at_ms=at_ms, data=data)
