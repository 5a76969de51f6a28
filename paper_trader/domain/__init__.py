"""Frozen value types shared by every part of the daemon. Imports nothing from the project."""

from paper_trader.domain.candle import (
    Candle,
    Gap,
    GapReason,
    Interval,
    JudgedCandles,
    MarketItem,
    SeriesMark,
    Venue,
)
from paper_trader.domain.events import Event, EventData, EventKind, EventSource, Severity
from paper_trader.domain.health import ComponentHealth, HealthStatus
from paper_trader.domain.prediction import (
    EnsembleState,
    PredictionLog,
    PredictionOutcome,
    PredictionRow,
)
from paper_trader.domain.signal import Signal, Strength

__all__ = [
    "Candle",
    "ComponentHealth",
    "EnsembleState",
    "Event",
    "EventData",
    "EventKind",
    "EventSource",
    "Gap",
    "GapReason",
    "HealthStatus",
    "Interval",
    "JudgedCandles",
    "MarketItem",
    "PredictionLog",
    "PredictionOutcome",
    "PredictionRow",
    "SeriesMark",
    "Severity",
    "Signal",
    "Strength",
    "Venue",
]
