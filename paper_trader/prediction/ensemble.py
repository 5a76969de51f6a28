"""The model ensemble: probabilities combined by live performance, and turned into signals.

Every model gives calibrated probabilities in the column order of ``Label`` (down, flat, up)
for a batch of series whose candles closed together. The ensemble averages them with weights
taken from each model's rolling log loss on resolved predictions (a softmax of the losses at a
temperature, with a floor that keeps every model in play), and scores each row as
``p_up - p_down``. Everything here is pure and synchronous: the same sequence of calls gives
the same weights, so a replay reproduces the live signals exactly.
"""

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from paper_trader.domain import Interval, Signal, Strength, Venue
from paper_trader.prediction.dataset import Label
from paper_trader.prediction.scorecard import (
    CLASSES,
    Scorecard,
    WeightPolicy,
    adaptive_weights,
    check_label,
    model_names,
)

FloatArray = npt.NDArray[np.float64]

ROW_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalThresholds:
    """Where a score stops being a hold, and where a buy or sell becomes strong."""

    buy: float = 0.10  # |score| at which hold becomes buy/sell
    strong: float = 0.30  # |score| at which buy/sell becomes strong

    def __post_init__(self) -> None:
        if not 0.0 < self.buy < self.strong <= 1.0:
            raise ValueError(
                f"signal thresholds need 0 < buy < strong <= 1, "
                f"got buy={self.buy} and strong={self.strong}"
            )

    def strength(self, score: float) -> Strength:
        """Return the strength of ``score``; a score exactly at a threshold reaches it."""
        if score >= self.strong:
            return Strength.STRONG_BUY
        if score >= self.buy:
            return Strength.BUY
        if score <= -self.strong:
            return Strength.STRONG_SELL
        if score <= -self.buy:
            return Strength.SELL
        return Strength.HOLD


def _check_rows(model: str, rows: FloatArray) -> None:
    """Raise unless every row holds finite, non-negative probabilities summing to 1."""
    bad = np.flatnonzero((~np.isfinite(rows) | (rows < 0.0)).any(axis=1))
    if bad.size:
        raise ValueError(
            f"model {model!r}: NaN, infinite or negative values in rows {bad[:5].tolist()}"
        )
    sums = rows.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if off.size:
        raise ValueError(
            f"model {model!r}: rows {off[:5].tolist()} sum to {sums[off[:5]].tolist()}, not 1"
        )


def _probability_row(model: str, value: Sequence[float]) -> list[float]:
    """Return one row as floats, checked like ``_check_rows`` (in Python: a row is tiny)."""
    try:
        row = [float(x) for x in value]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model {model!r}: probabilities are not numbers ({exc})") from exc
    if len(row) != CLASSES:
        raise ValueError(
            f"model {model!r}: expected {CLASSES} probabilities, got shape ({len(row)},)"
        )
    down, flat, up = row
    finite = math.isfinite(down) and math.isfinite(flat) and math.isfinite(up)
    if not (finite and down >= 0.0 and flat >= 0.0 and up >= 0.0):
        raise ValueError(f"model {model!r}: NaN, infinite or negative values in rows [0]")
    total = math.fsum(row)
    if abs(total - 1.0) > ROW_SUM_TOLERANCE:
        raise ValueError(f"model {model!r}: rows [0] sum to [{total}], not 1")
    return row


def _as_array(model: str, value: object) -> FloatArray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model {model!r}: probabilities are not numbers ({exc})") from exc


def _combine(stacked: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return the weighted mixture of ``stacked`` (models, n, 3) and its confidence per row."""
    # The product np.tensordot(weights, stacked, axes=1) makes, without its Python wrapping;
    # minimum/maximum as np.clip, without its dispatch (8 us of an instant's 20 at one row).
    models, n, classes = stacked.shape
    mixed = np.dot(weights.reshape(1, models), stacked.reshape(models, n * classes))
    mixed = mixed.reshape(n, classes)
    mixed /= mixed.sum(axis=1, keepdims=True)
    top = mixed.argmax(axis=1)
    ordered = np.sort(mixed, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    agreement = weights @ (stacked.argmax(axis=2) == top).astype(np.float64)
    return mixed, np.minimum(np.maximum(agreement * margin, 0.0), 1.0)


_DOWN, _FLAT, _UP = int(Label.DOWN), int(Label.FLAT), int(Label.UP)  # an IntEnum index is slow


def _triple(row: Sequence[float]) -> tuple[float, float, float]:
    return (row[_DOWN], row[_FLAT], row[_UP])


def _open_times(open_time_ms: Sequence[int] | int, n: int) -> list[int]:
    if isinstance(open_time_ms, int | np.integer):
        return [int(open_time_ms)] * n
    times = [operator.index(t) for t in open_time_ms]
    if len(times) != n:
        raise ValueError(f"{len(times)} open times for {n} rows of probabilities")
    return times


class Ensemble:
    """Weighted average of several models' probabilities, with weights from live performance."""

    def __init__(
        self,
        models: Sequence[str],
        *,
        model_version: str,
        spec_hash: str,
        thresholds: SignalThresholds,
        policy: WeightPolicy,
    ) -> None:
        self.models = model_names(models)
        self.model_version = model_version
        self.spec_hash = spec_hash
        self.thresholds = thresholds
        self.policy = policy
        self.scorecard = Scorecard(self.models, policy.window)

    def weights(self) -> dict[str, float]:
        """Return the weight per model (sorted by name): equal until each has min_resolved."""
        losses: dict[str, float] = {}
        for name in self.models:
            loss = self.scorecard.log_loss(name)
            if loss is None or self.scorecard.count(name) < self.policy.min_resolved:
                return {m: 1.0 / len(self.models) for m in self.models}
            losses[name] = loss
        return adaptive_weights(losses, self.policy)

    def combine(self, per_model: Mapping[str, FloatArray]) -> tuple[FloatArray, FloatArray]:
        """Return (probabilities (n, 3), confidence (n,)) for a batch of n rows.

        Probabilities are the weighted average of the models' rows, renormalised. Confidence
        is agreement * margin: the margin is the ensemble's top probability minus its second,
        and the agreement is the total weight of the models whose own most probable class is
        the ensemble's.
        """
        stacked = self.stack(per_model)
        return _combine(stacked, self._weight_vector(self.weights()))

    def signals(
        self,
        keys: Sequence[tuple[Venue, str, Interval]],
        open_time_ms: Sequence[int] | int,
        per_model: Mapping[str, FloatArray],
    ) -> list[Signal]:
        """Return one signal per row; ``keys[i]`` is row i's (venue, symbol, interval)."""
        return self.signals_of(keys, open_time_ms, self.stack(per_model))

    def signals_of(
        self,
        keys: Sequence[tuple[Venue, str, Interval]],
        open_time_ms: Sequence[int] | int,
        stacked: FloatArray,
    ) -> list[Signal]:
        """``signals`` of probabilities already checked and stacked by ``stack`` (a pass's
        rows are checked once, not once per instant)."""
        n = stacked.shape[1]
        if len(keys) != n:
            raise ValueError(f"{len(keys)} keys for {n} rows of probabilities")
        times = _open_times(open_time_ms, n)
        weights = self.weights()
        mixed, confidence = _combine(stacked, self._weight_vector(weights))
        weight_items = tuple((name, float(weights[name])) for name in self.models)
        # Python floats, converted once: indexing numpy scalars row by row cost 10 µs a row.
        mixed_rows, confidences = mixed.tolist(), confidence.tolist()
        members: list[list[list[float]]] = stacked.transpose(1, 0, 2).tolist()  # [row][model]
        signals = []
        for i, (venue, symbol, interval) in enumerate(keys):
            probabilities = _triple(mixed_rows[i])
            score = min(1.0, max(-1.0, probabilities[_UP] - probabilities[_DOWN]))
            signals.append(
                Signal(
                    venue=venue,
                    symbol=symbol,
                    interval=interval,
                    open_time_ms=times[i],
                    probabilities=probabilities,
                    score=score,
                    strength=self.thresholds.strength(score),
                    confidence=confidences[i],
                    model_version=self.model_version,
                    spec_hash=self.spec_hash,
                    weights=weight_items,
                    model_probabilities=cast(
                        "tuple[tuple[str, tuple[float, float, float]], ...]",
                        tuple(zip(self.models, map(tuple, members[i]), strict=True)),
                    ),
                )
            )
        return signals

    def resolve(self, per_model: Mapping[str, Sequence[float]], label: int) -> None:
        """Score each model's prediction for one row against the class that happened."""
        index = check_label(label)
        self._check_names(per_model)
        rows = {name: _probability_row(name, per_model[name]) for name in self.models}
        for name, probabilities in rows.items():
            self.scorecard.add(name, probabilities, index)

    def _check_names(self, per_model: Mapping[str, object]) -> None:
        missing = sorted(set(self.models) - set(per_model))
        extra = sorted(str(name) for name in set(per_model) - set(self.models))
        if missing or extra:
            raise ValueError(
                f"expected probabilities from exactly the models {list(self.models)}; "
                f"missing {missing}, unexpected {extra}"
            )

    def stack(self, per_model: Mapping[str, FloatArray]) -> FloatArray:
        """Return the models' probabilities as one (models, n, 3) array, after checking them."""
        self._check_names(per_model)
        arrays: list[FloatArray] = []
        for name in self.models:
            rows = _as_array(name, per_model[name])
            if rows.ndim != 2 or rows.shape[1] != CLASSES:
                raise ValueError(f"model {name!r}: expected shape (n, {CLASSES}), got {rows.shape}")
            if arrays and rows.shape[0] != arrays[0].shape[0]:
                raise ValueError(
                    f"model {name!r} has {rows.shape[0]} rows, "
                    f"model {self.models[0]!r} has {arrays[0].shape[0]}"
                )
            _check_rows(name, rows)
            arrays.append(rows)
        return np.stack(arrays)

    def _weight_vector(self, weights: Mapping[str, float]) -> FloatArray:
        return np.array([weights[name] for name in self.models], dtype=np.float64)
