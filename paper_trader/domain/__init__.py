"""Frozen value types shared by every part of the daemon. Imports nothing from the project."""

from paper_trader.domain.candle import Candle, Gap, GapReason, Interval, Venue
from paper_trader.domain.events import Event, EventKind, Severity
from paper_trader.domain.health import ComponentHealth, HealthStatus

__all__ = [
    "Candle",
    "ComponentHealth",
    "Event",
    "EventKind",
    "Gap",
    "GapReason",
    "HealthStatus",
    "Interval",
    "Severity",
    "Venue",
]
