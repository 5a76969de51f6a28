"""Trading signals: what the model ensemble concluded about one symbol at one closed candle."""

import enum
from dataclasses import dataclass

from paper_trader.domain.candle import Interval, Venue


class Strength(enum.StrEnum):
    """How strongly a signal leans, from the score's sign and size."""

    STRONG_SELL = "strong_sell"
    SELL = "sell"
    HOLD = "hold"
    BUY = "buy"
    STRONG_BUY = "strong_buy"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """The ensemble's view of one series at the close of the candle opened at ``open_time_ms``.

    Probabilities are in the models' column order (down, flat, up); ``score`` is
    ``p_up - p_down`` in [-1, 1] and ``confidence`` in [0, 1]. ``weights`` and
    ``model_probabilities`` record, sorted by model name, what went into the result, so that
    a signal can be explained and replayed.
    """

    venue: Venue
    symbol: str
    interval: Interval
    open_time_ms: int
    probabilities: tuple[float, float, float]
    score: float
    strength: Strength
    confidence: float
    model_version: str
    spec_hash: str
    weights: tuple[tuple[str, float], ...]
    model_probabilities: tuple[tuple[str, tuple[float, float, float]], ...]
