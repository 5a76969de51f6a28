"""The monitor's unresolved predictions, held column-wise; its calibration window; the log rows.

``record`` stores one instant's predictions as one ``Block`` (numpy columns: each model's
probabilities, the ensemble's, the closes) and each series queues a small ``Pending`` that
points at its row. An instant's due predictions are then gathered into arrays in the order
they resolve (``gather``), labelled (``labels_of``: the same ``classify`` rule) and checked as
the per-prediction calls would check them (``check_ensemble_rows``), into a ``Plan``, so that
a vectorised resolution refuses exactly what they refuse, before it changes anything.
``log_rows`` and ``outcome_of`` make the values the prediction log stores.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from paper_trader.domain import Interval, PredictionOutcome, PredictionRow, Signal, Venue
from paper_trader.prediction.dataset import classify
from paper_trader.prediction.ensemble import ROW_SUM_TOLERANCE, Ensemble
from paper_trader.prediction.scorecard import top_class

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SeriesKey = tuple[Venue, str, Interval]
CALIBRATION_BINS = 10
_NEAR = 1e-12  # row sums this close to the tolerance are checked again with math.fsum


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """The predictions made together at one instant (or one restored row), column-wise."""

    names: tuple[str, ...]  # the member models, in the order the predictor gave them
    probabilities: FloatArray  # (models, n, 3) in ``names`` order
    ensemble_probabilities: FloatArray  # (n, 3)
    closes: FloatArray  # (n,) the close each prediction was made at
    threshold: float
    ensemble: Ensemble | None  # None: restored after a restart from another version's log
    version: str

    @classmethod
    def of_row(cls, row: PredictionRow, ensemble: Ensemble | None) -> "Block":
        """Return the block of one logged prediction (restored after a restart)."""
        per_model = list(row.model_probabilities.values())
        return cls(
            names=tuple(row.model_probabilities),
            probabilities=np.array(per_model, dtype=np.float64).reshape(len(per_model), 1, 3),
            ensemble_probabilities=np.array([row.probabilities], dtype=np.float64),
            closes=np.array([float(row.close)]),
            threshold=row.threshold,
            ensemble=ensemble,
            version=row.model_version,
        )

    def per_model(self, row: int) -> dict[str, tuple[float, float, float]]:
        """Return row ``row``'s probabilities per model, as Python floats."""
        values = self.probabilities[:, row].tolist()
        return {name: (v[0], v[1], v[2]) for name, v in zip(self.names, values, strict=True)}


class Pending(NamedTuple):
    """One series' prediction waiting for the candle at ``target_ms``."""

    target_ms: int
    open_time_ms: int
    block: Block
    row: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Columns:
    """Due predictions that share their model names, gathered in resolution order."""

    names: tuple[str, ...]
    probabilities: FloatArray  # (models, n, 3)
    ensemble_probabilities: FloatArray  # (n, 3)


def gather(items: Sequence[Pending]) -> Columns:
    """Return the rows of ``items`` in order, each model's at the first block's position for
    it; raise ``ValueError`` if their sets of models differ."""
    blocks = {id(item.block): item.block for item in items}
    first = items[0].block
    if len(blocks) == 1:
        rows = np.fromiter((item.row for item in items), dtype=np.int64, count=len(items))
        return Columns(
            names=first.names,
            probabilities=first.probabilities[:, rows],
            ensemble_probabilities=first.ensemble_probabilities[rows],
        )
    if any(sorted(block.names) != sorted(first.names) for block in blocks.values()):
        raise ValueError("the due predictions were made by different sets of models")
    # A restored row may list the same models in another order than the predictor did.
    order = {
        key: [block.names.index(name) for name in first.names] for key, block in blocks.items()
    }
    return Columns(
        names=first.names,
        probabilities=np.stack(
            [i.block.probabilities[order[id(i.block)], i.row] for i in items], axis=1
        ),
        ensemble_probabilities=np.stack([i.block.ensemble_probabilities[i.row] for i in items]),
    )


def check_ensemble_rows(ensemble: Ensemble, columns: Columns) -> None:
    """Raise ``ValueError`` where ``Ensemble.resolve`` would refuse a row of ``columns``."""
    if sorted(columns.names) != list(ensemble.models):
        raise ValueError(
            f"expected probabilities from exactly the models {list(ensemble.models)}, "
            f"not {sorted(columns.names)}"
        )
    p = columns.probabilities
    if not (np.isfinite(p) & (p >= 0.0)).all():
        raise ValueError("NaN, infinite or negative probabilities among the due predictions")
    off = np.abs(p.sum(axis=2) - 1.0)
    for model, row in zip(*np.nonzero(off > ROW_SUM_TOLERANCE - _NEAR), strict=True):
        total = math.fsum(p[model, row].tolist())  # what resolve computes, exactly
        if abs(total - 1.0) > ROW_SUM_TOLERANCE:
            raise ValueError(f"model {columns.names[model]!r}: a row sums to {total}, not 1")


class Calibration:
    """The last ``window`` (top probability, hit) pairs, for the expected calibration error."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._top = np.zeros(window)
        self._hit = np.zeros(window)
        self._head = 0
        self._count = 0

    def add(self, probabilities: Sequence[float], label: int) -> None:
        """Add one prediction (its most probable class, first on ties) and what happened."""
        top = top_class(probabilities)
        head = self._head
        self._top[head] = float(probabilities[top])
        self._hit[head] = float(top == label)
        self._head = (head + 1) % self._window
        self._count = min(self._window, self._count + 1)

    def add_many(self, probabilities: FloatArray, labels: IntArray) -> None:
        """Add rows of ``probabilities`` (n, 3) and their labels, in order."""
        top = probabilities.argmax(axis=1)
        confidence = probabilities[np.arange(len(top)), top][-self._window :]
        hits = (top == labels).astype(np.float64)[-self._window :]
        skipped = len(top) - len(confidence)  # rows older than the window would hold
        slots = (self._head + skipped + np.arange(len(confidence))) % self._window
        self._top[slots], self._hit[slots] = confidence, hits
        self._head = int((self._head + len(top)) % self._window)
        self._count = min(self._window, self._count + len(top))

    def ece(self) -> float | None:
        """Return the expected calibration error over the window (10 bins); None if empty."""
        if not self._count:
            return None
        start = self._head if self._count == self._window else 0
        order = (start + np.arange(self._count)) % self._window  # oldest first
        conf, hits = self._top[order], self._hit[order]
        bins = np.minimum((conf * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        total = 0.0
        for b in np.unique(bins):
            inside = bins == b
            total += inside.sum() * abs(conf[inside].mean() - hits[inside].mean())
        return float(total / len(conf))


class InstantUnresolved(Exception):
    """An instant's due predictions could not be resolved in one step; nothing was changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """An instant's due predictions, checked and labelled, before anything changes."""

    taken: list[tuple[SeriesKey, int]]  # how many items each series pops
    due: list[tuple[SeriesKey, Pending, int]]  # in resolution order, with the candle's time
    resolved: list[Pending]
    forward: npt.NDArray[np.float64]  # of the resolved, in order
    labels: IntArray
    ensembles: list[tuple[Ensemble, Columns, IntArray]]  # rows of each ensemble, in order
    scored: tuple[Columns, IntArray] | None  # rows of the version in use


def labels_of(
    resolved: list[Pending], now: list[float]
) -> tuple[npt.NDArray[np.float64], IntArray]:
    """Return the forward returns and realised classes of the resolved predictions, in order."""
    closes = np.array([item.block.closes[item.row] for item in resolved], dtype=np.float64)
    if (closes == 0.0).any():
        raise ZeroDivisionError("a prediction was made at a close of 0")
    forward = np.array(now, dtype=np.float64) / closes - 1.0
    thresholds = np.array([item.block.threshold for item in resolved], dtype=np.float64)
    labels = np.empty(len(resolved), dtype=np.int64)
    for threshold in set(thresholds.tolist()):
        same = thresholds == threshold
        labels[same] = classify(forward[same], threshold)
    return forward, labels


def by_ensemble(
    resolved: list[Pending], labels: IntArray
) -> list[tuple[Ensemble, Columns, IntArray]]:
    """Return the resolved rows of each ensemble, in resolution order, checked as
    ``Ensemble.resolve`` checks them."""
    picked: dict[int, list[int]] = {}
    for i, item in enumerate(resolved):
        if item.block.ensemble is not None:
            picked.setdefault(id(item.block.ensemble), []).append(i)
    out = []
    for rows in picked.values():
        ensemble = resolved[rows[0]].block.ensemble
        assert ensemble is not None  # picked only where there is one
        columns = gather([resolved[i] for i in rows])
        check_ensemble_rows(ensemble, columns)
        out.append((ensemble, columns, labels[rows]))
    return out


def log_rows(  # noqa: PLR0917 - one instant's facts, as record has them
    signals: Sequence[Signal],
    closes: Sequence[Decimal],
    horizon: int,
    threshold: float,
    names: tuple[str, ...],
    probabilities: npt.NDArray[np.float64],
) -> list[PredictionRow]:
    """Return the log rows of one instant's predictions."""
    values = probabilities.tolist()  # [model][row] -> [down, flat, up], as Python floats
    weights: dict[tuple[tuple[str, float], ...], MappingProxyType[str, float]] = {}
    out = []
    for i, (signal, close) in enumerate(zip(signals, closes, strict=True)):
        shared = weights.get(signal.weights)
        if shared is None:
            shared = weights[signal.weights] = MappingProxyType(dict(signal.weights))
        per_model = {name: _triple(values[m][i]) for m, name in enumerate(names)}
        out.append(
            PredictionRow(
                venue=signal.venue,
                symbol=signal.symbol,
                interval=signal.interval,
                open_time_ms=signal.open_time_ms,
                model_version=signal.model_version,
                spec_hash=signal.spec_hash,
                close=close,
                horizon=horizon,
                threshold=threshold,
                probabilities=signal.probabilities,
                score=signal.score,
                strength=signal.strength.value,
                confidence=signal.confidence,
                model_probabilities=MappingProxyType(per_model),
                weights=shared,
            )
        )
    return out


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    return (values[0], values[1], values[2])


def outcome_of(
    key: SeriesKey,
    item: Pending,
    *,
    label: int | None,
    forward: float | None,
    at_ms: int,
) -> PredictionOutcome:
    """Return how ``item`` ended at the candle at ``at_ms``: expired when it has no label."""
    venue, symbol, interval = key
    if forward is not None and not math.isfinite(forward):
        forward = None
    return PredictionOutcome(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time_ms=item.open_time_ms,
        outcome="expired" if label is None else "resolved",
        label=label,
        forward_return=forward,
        resolved_open_time_ms=at_ms,
    )
