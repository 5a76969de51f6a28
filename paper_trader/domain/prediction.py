"""The prediction log: a prediction as made at a closed candle, and how it ended H candles later."""

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from paper_trader.domain.candle import Interval, Venue


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionRow:
    """One live prediction of the ensemble, made at the close of the candle at ``open_time_ms``.

    ``probabilities`` are (down, flat, up); ``threshold`` is the fee-aware flat band as a
    fraction; ``model_probabilities`` and ``weights`` are per model name. Every float must be
    finite: SQLite would store NaN as NULL, which the table refuses.
    """

    venue: Venue
    symbol: str
    interval: Interval
    open_time_ms: int
    model_version: str
    spec_hash: str
    close: Decimal
    horizon: int
    threshold: float
    probabilities: tuple[float, float, float]
    score: float
    strength: str
    confidence: float
    model_probabilities: Mapping[str, tuple[float, float, float]]
    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"the horizon must be at least 1 candle, not {self.horizon}")
        triples = (self.probabilities, *self.model_probabilities.values())
        if set(map(len, triples)) != {3}:
            raise ValueError("probabilities come in threes: down, flat, up")
        # map() over builtins: the same checks without a Python frame per number (a hundred
        # rows are made at every instant).
        numbers = itertools.chain(
            (self.threshold, self.score, self.confidence),
            self.weights.values(),
            itertools.chain.from_iterable(triples),
        )
        if not all(map(math.isfinite, numbers)):
            raise ValueError(f"a prediction of {self.symbol} holds a non-finite number")


PREDICTION_OUTCOMES = frozenset({"resolved", "expired"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionOutcome:
    """How a prediction ended: ``resolved`` with its label (0 down, 1 flat, 2 up) or ``expired``.

    ``resolved_open_time_ms`` is the candle that resolved it, or that never came.
    """

    venue: Venue
    symbol: str
    interval: Interval
    open_time_ms: int
    outcome: str
    label: int | None
    forward_return: float | None
    resolved_open_time_ms: int

    def __post_init__(self) -> None:
        if self.outcome not in PREDICTION_OUTCOMES:
            raise ValueError(f"outcome must be 'resolved' or 'expired', not {self.outcome!r}")
        if self.label not in (None, 0, 1, 2):
            raise ValueError(f"a label is 0, 1 or 2, not {self.label}")
        if self.outcome == "resolved" and self.label is None:
            raise ValueError("a resolved prediction needs its label")
        if self.forward_return is not None and not math.isfinite(self.forward_return):
            raise ValueError(f"the forward return must be finite, not {self.forward_return}")


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsembleState:
    """The adaptive weights' memory of the model version in use (its scorecard, exactly):
    committed with the decisions it weighed, so a start goes on with the weights a run
    without that stop would have had."""

    model_version: str
    scorecard: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionLog:
    """What a batch of candles added to the prediction log, committed in the transaction of
    the decisions made with it: new predictions, outcomes, the ensemble's state if it moved."""

    rows: tuple[PredictionRow, ...] = ()
    outcomes: tuple[PredictionOutcome, ...] = ()
    ensemble: EnsembleState | None = None

    def __bool__(self) -> bool:
        """Return whether there is anything to write."""
        return bool(self.rows or self.outcomes or self.ensemble)
