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


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A fact worth telling a person, with the wall-clock time it happened.

    ``data`` holds the event's context as plain JSON-compatible values (strings, numbers),
    and is read-only.
    """

    kind: EventKind
    severity: Severity
    message: str
    at_ms: int
    source: str
    data: Mapping[str, str | int | float] = field(default_factory=lambda: MappingProxyType({}))
