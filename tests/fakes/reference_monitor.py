"""The per-prediction code the vectorised monitor and correlation screen replaced, kept as the
reference they are held equal to (tests) and measured against (bench/monitor.py).

Verbatim copies of ``prediction/monitor.py`` (``ReferenceMonitor``), the scorecard's ``_Track``
and ``Scorecard`` (``ReferenceScorecard``), ``drift.LiveDistribution``
(``ReferenceLiveDistribution``) and ``risk/correlation.ReturnHistory``
(``ReferenceReturnHistory``) as they were before issue 17; only the names changed. Longer than
400 lines because it is four old modules' worth of code, not new code.
"""

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from paper_trader.domain import (
    Candle,
    EventKind,
    EventSource,
    Interval,
    PredictionOutcome,
    PredictionRow,
    Signal,
    Venue,
)
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.dataset import classify
from paper_trader.prediction.drift import FeatureReference, psi
from paper_trader.prediction.ensemble import Ensemble
from paper_trader.prediction.monitor import MonitorConfig
from paper_trader.prediction.predictor import Prediction
from paper_trader.prediction.scorecard import CLASSES, LOG_LOSS_EPS, check_label, model_names
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MIN_WINDOW = 10
MIN_COMMON_RETURNS = 3
_Series = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
log = get_logger("prediction_monitor")
SeriesKey = tuple[Venue, str, Interval]
ENSEMBLE = "ensemble"
CALIBRATION_BINS = 10


class _Track:
    """One model's last ``window`` outcomes, with running sums refreshed once per window."""

    __slots__ = ("_brier_sum", "_hits", "_loss_sum", "_outcomes", "_since_refresh")

    def __init__(self, window: int) -> None:
        self._outcomes: deque[tuple[float, float, bool]] = deque(maxlen=window)
        self._loss_sum = 0.0
        self._brier_sum = 0.0
        self._hits = 0
        self._since_refresh = 0

    def add(self, loss: float, brier: float, hit: bool) -> None:
        """Append one outcome, dropping the oldest once the window is full."""
        if len(self._outcomes) == self._outcomes.maxlen:
            old_loss, old_brier, old_hit = self._outcomes[0]
            self._loss_sum -= old_loss
            self._brier_sum -= old_brier
            self._hits -= old_hit
        self._outcomes.append((loss, brier, hit))
        self._loss_sum += loss
        self._brier_sum += brier
        self._hits += hit
        self._since_refresh += 1
        if self._since_refresh == self._outcomes.maxlen:
            # Re-sum exactly once per window: O(1) amortised, and no drift from the subtractions.
            self._loss_sum = math.fsum(o[0] for o in self._outcomes)
            self._brier_sum = math.fsum(o[1] for o in self._outcomes)
            self._since_refresh = 0

    @property
    def count(self) -> int:
        """Return how many outcomes are in the window."""
        return len(self._outcomes)

    def mean(self, metric: str) -> float | None:
        """Return the window's mean ``log_loss``, ``brier`` or ``accuracy``; None when empty."""
        if not self._outcomes:
            return None
        total = {"log_loss": self._loss_sum, "brier": self._brier_sum, "accuracy": self._hits}
        return float(total[metric]) / len(self._outcomes)


class ReferenceScorecard:
    """Rolling live performance per model over the last ``window`` resolved predictions."""

    def __init__(self, models: Sequence[str], window: int) -> None:
        if window < 1:
            raise ValueError(f"the scoring window must be at least 1, not {window}")
        self._tracks = {name: _Track(window) for name in model_names(models)}
        self.window = window

    @property
    def models(self) -> tuple[str, ...]:
        """Return the tracked model names, sorted."""
        return tuple(self._tracks)

    def add(self, model: str, probabilities: Sequence[float], label: int) -> None:
        """Record that ``model`` predicted ``probabilities`` and class ``label`` happened."""
        track = self._track(model)
        index = check_label(label)
        try:
            p = [float(x) for x in probabilities]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model {model!r}: probabilities are not numbers ({exc})") from exc
        if len(p) != CLASSES or not all(math.isfinite(x) for x in p):
            raise ValueError(f"model {model!r}: expected {CLASSES} finite probabilities, got {p}")
        loss = -math.log(max(p[index], LOG_LOSS_EPS))
        brier = math.fsum((x - (k == index)) ** 2 for k, x in enumerate(p))
        hit = max(range(CLASSES), key=p.__getitem__) == index  # first maximum, as np.argmax
        track.add(loss, brier, hit)

    def count(self, model: str) -> int:
        """Return how many resolved predictions of ``model`` are in the window."""
        return self._track(model).count

    def log_loss(self, model: str) -> float | None:
        """Return the mean of -ln(max(p[label], 1e-15)) over the window; None if empty."""
        return self._track(model).mean("log_loss")

    def brier(self, model: str) -> float | None:
        """Return the mean multi-class Brier score over the window; None if empty."""
        return self._track(model).mean("brier")

    def accuracy(self, model: str) -> float | None:
        """Return the share of the window whose most probable class happened; None if empty."""
        return self._track(model).mean("accuracy")

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        """Return count, log_loss, brier and accuracy per model, sorted by model name."""
        return {
            name: {
                "count": self.count(name),
                "log_loss": self.log_loss(name),
                "brier": self.brier(name),
                "accuracy": self.accuracy(name),
            }
            for name in self._tracks
        }

    def _track(self, model: str) -> _Track:
        try:
            return self._tracks[model]
        except KeyError:
            raise KeyError(
                f"unknown model {model!r}; the scorecard tracks {list(self._tracks)}"
            ) from None


class ReferenceLiveDistribution:
    """The bins of the last ``window`` live feature rows, scored against a reference.

    Each row's bin indices sit in a ring buffer and per-feature bin counts are kept up to date,
    so adding a row costs O(features · bins) with no dependence on the window. A NaN counts
    nothing for its feature (index -1 in the ring); infinities fall in the end bins.
    """

    def __init__(self, reference: FeatureReference, window: int) -> None:
        if window < MIN_WINDOW:
            raise ValueError(f"the window must hold at least {MIN_WINDOW} rows, not {window}")
        self._reference = reference
        self._window = window
        features = len(reference.names)
        self._bins = np.array(reference.bins, dtype=np.int64)
        width = max(1, int(self._bins.max()) - 1)
        self._edges = np.full((features, width), np.inf)
        for j, edges in enumerate(reference.edges):
            self._edges[j, : len(edges)] = edges
        self._counts = np.zeros((features, int(self._bins.max())), dtype=np.int64)
        self._totals = np.zeros(features, dtype=np.int64)
        self._ring = np.full((window, features), -1, dtype=np.int64)
        self._columns = np.arange(features)
        self._head = 0
        self._size = 0

    @property
    def reference(self) -> FeatureReference:
        """Return the training reference the window is scored against."""
        return self._reference

    @property
    def size(self) -> int:
        """Return the number of rows currently in the window."""
        return self._size

    def add(self, row: FloatArray | Sequence[float]) -> None:
        """Add one feature row (model input order), evicting the oldest when the window is full."""
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (len(self._columns),):
            raise ValueError(f"a row of {len(self._columns)} features, not shape {values.shape}")
        if self._size == self._window:
            self._count(self._ring[self._head], -1)
        # Padding edges are +inf, so min() keeps v = +inf in the feature's own last bin.
        index = np.minimum((self._edges <= values[:, None]).sum(axis=1), self._bins - 1)
        index[np.isnan(values)] = -1
        self._count(index, 1)
        self._ring[self._head] = index
        self._head = (self._head + 1) % self._window
        self._size = min(self._size + 1, self._window)

    def _count(self, index: IntArray, step: int) -> None:
        """Add ``step`` to the count of each feature's bin in ``index`` (-1: nothing)."""
        counted = index >= 0
        self._counts[self._columns[counted], index[counted]] += step
        self._totals[counted] += step

    def psi(self) -> FloatArray:
        """Return each feature's PSI against the reference (NaN if it counted no value)."""
        out = np.full(len(self._columns), np.nan)
        for j, shares in enumerate(self._reference.proportions):
            if self._totals[j] > 0:
                out[j] = psi(shares, self._counts[j, : len(shares)] / self._totals[j])
        return out

    def worst(self, k: int = 3) -> list[tuple[str, float]]:
        """Return the ``k`` highest PSIs as (name, psi), highest first, skipping NaN."""
        if k < 0:
            raise ValueError(f"k cannot be negative, not {k}")
        scores = self.psi()
        ranked = sorted(
            (
                (name, float(score))
                for name, score in zip(self._reference.names, scores, strict=True)
                if not math.isnan(score)
            ),
            key=lambda item: item[1],
            reverse=True,
        )
        return ranked[:k]


class ReferenceReturnHistory:
    """Rolling simple returns per symbol, keyed by candle time, for the correlation limit."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"the correlation window must be at least 1, not {window}")
        self._window = window
        self._min_common = max(MIN_COMMON_RETURNS, window // 2)
        self._last_close: dict[str, tuple[int, Decimal]] = {}
        self._returns: dict[str, deque[tuple[int, float]]] = {}
        # Arrays built on first use after a symbol's last close, shared by every pair it is in.
        self._series: dict[str, _Series] = {}

    def on_close(self, symbol: str, candle_time_ms: int, close: Decimal) -> None:
        """Record a candle's close: its return against the previous close seen for ``symbol``."""
        if close <= 0:
            return
        previous = self._last_close.get(symbol)
        if previous is not None:
            previous_time, previous_close = previous
            if candle_time_ms <= previous_time:
                return
            returns = self._returns.get(symbol)
            if returns is None:
                returns = self._returns[symbol] = deque(maxlen=self._window)
            returns.append((candle_time_ms, float(close / previous_close - 1)))
            self._series.pop(symbol, None)
        self._last_close[symbol] = (candle_time_ms, close)

    def correlation(self, a: str, b: str) -> float | None:
        """Return the Pearson correlation of ``a`` and ``b`` over the candle times both have.

        Return None when they share fewer than ``max(3, window // 2)`` candle times, or when
        either side's returns are all equal (zero variance): there is nothing to measure.
        """
        series_a = self._arrays(a)
        series_b = self._arrays(b)
        if series_a is None or series_b is None:
            return None
        (times_a, x), (times_b, y) = series_a, series_b
        if not np.array_equal(times_a, times_b):
            _, in_a, in_b = np.intersect1d(
                times_a, times_b, assume_unique=True, return_indices=True
            )
            x, y = x[in_a], y[in_b]
        if len(x) < self._min_common:
            return None
        # Exact equality, not a tolerance: deviations from a float mean of identical values
        # are rounding noise, and their "correlation" would be any number in [-1, 1].
        if x.max() == x.min() or y.max() == y.min():
            return None
        x = x - x.mean()
        y = y - y.mean()
        value = float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))
        return min(1.0, max(-1.0, value))

    def forget(self, symbol: str) -> None:
        """Drop everything known about ``symbol`` (it left the watch list)."""
        self._last_close.pop(symbol, None)
        self._returns.pop(symbol, None)
        self._series.pop(symbol, None)

    def _arrays(self, symbol: str) -> _Series | None:
        """Return the candle times and returns of ``symbol`` as arrays, or None if it has none."""
        series = self._series.get(symbol)
        if series is None:
            returns = self._returns.get(symbol)
            if returns is None:
                return None
            times = np.fromiter((time for time, _ in returns), dtype=np.int64, count=len(returns))
            values = np.fromiter((r for _, r in returns), dtype=np.float64, count=len(returns))
            series = self._series[symbol] = (times, values)
        return series


@dataclass(frozen=True, slots=True)
class _Pending:
    open_time_ms: int
    target_ms: int
    close: float
    threshold: float
    per_model: dict[str, tuple[float, float, float]]
    ensemble_probabilities: tuple[float, float, float]
    ensemble: Ensemble | None  # None: restored after a restart from another version's log
    version: str


class _Calibration:
    """The last ``window`` (top probability, hit) pairs, for the expected calibration error."""

    def __init__(self, window: int) -> None:
        self._pairs: deque[tuple[float, bool]] = deque(maxlen=window)

    def add(self, probabilities: Sequence[float], label: int) -> None:
        top = int(np.argmax(probabilities))
        self._pairs.append((float(probabilities[top]), top == label))

    def ece(self) -> float | None:
        if not self._pairs:
            return None
        conf = np.array([p for p, _ in self._pairs])
        hits = np.array([h for _, h in self._pairs], dtype=np.float64)
        bins = np.minimum((conf * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
        total = 0.0
        for b in np.unique(bins):
            inside = bins == b
            total += inside.sum() * abs(conf[inside].mean() - hits[inside].mean())
        return float(total / len(conf))


class ReferenceMonitor:
    """Log, resolve and score predictions; raise drift alerts."""

    name = "prediction_monitor"
    _source = EventSource(name)

    def __init__(
        self,
        config: MonitorConfig,
        *,
        events: EventSink | None = None,
        now_ms: Callable[[], int],
        on_drift: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        self.config = config
        self._events = events
        self._now_ms = now_ms
        self._on_drift = on_drift
        self._pending: dict[SeriesKey, deque[_Pending]] = {}
        self._scores: ReferenceScorecard | None = None
        self._calibration: dict[str, _Calibration] = {}
        self._live: ReferenceLiveDistribution | None = None
        self._baseline: float | None = None
        self._version: str | None = None
        self._rows_seen = 0
        self._alerts: dict[str, bool] = {"accuracy": False, "psi": False}
        self.resolved = 0
        self.expired = 0

    def use_model(self, bundle: ModelBundle) -> None:
        """Score the new version from scratch against its own training baseline."""
        self._version = bundle.version
        names = (*bundle.members, ENSEMBLE)
        self._scores = ReferenceScorecard(names, self.config.window)
        self._calibration = {n: _Calibration(self.config.window) for n in names}
        summary = bundle.metadata.get("metrics", {}).get("summary", {})
        self._baseline = summary.get(ENSEMBLE, {}).get("accuracy")
        reference = bundle.metadata.get("drift_reference")
        self._live = None
        if reference is not None:
            self._live = ReferenceLiveDistribution(
                FeatureReference.from_json(reference), self.config.psi_window
            )
        self._alerts = dict.fromkeys(self._alerts, False)

    def record(self, prediction: Prediction, closes: Sequence[Decimal]) -> list[PredictionRow]:
        """Remember each prediction until it resolves; return the rows to log."""
        rule = prediction.bundle.metadata["label"]
        horizon, threshold = int(rule["horizon"]), float(rule["threshold"])
        out = []
        for i, (row, signal, close) in enumerate(
            zip(prediction.rows, prediction.signals, closes, strict=True)
        ):
            per_model = {n: _triple(p[i]) for n, p in prediction.per_model.items()}
            key = (row.venue, row.symbol, row.interval)
            self._pending.setdefault(key, deque()).append(
                _Pending(
                    open_time_ms=row.open_time_ms,
                    target_ms=row.open_time_ms + horizon * row.interval.ms,
                    close=float(close),
                    threshold=threshold,
                    per_model=per_model,
                    ensemble_probabilities=signal.probabilities,
                    ensemble=prediction.ensemble,
                    version=prediction.bundle.version,
                )
            )
            out.append(_row(signal, close, horizon, threshold, per_model))
        self._watch_inputs(prediction)
        return out

    def on_candle(self, candle: Candle) -> list[PredictionOutcome]:
        """Resolve (or expire) the series' predictions whose horizon ends at this candle."""
        key = (candle.venue, candle.symbol, candle.interval)
        queue = self._pending.get(key)
        out: list[PredictionOutcome] = []
        while queue and queue[0].target_ms <= candle.open_time_ms:
            item = queue.popleft()
            if item.target_ms < candle.open_time_ms:
                self.expired += 1
                out.append(
                    _outcome(
                        key, item, "expired", label=None, forward=None, at_ms=candle.open_time_ms
                    )
                )
                continue
            forward = float(candle.close) / item.close - 1.0
            label = int(classify(np.array([forward]), item.threshold)[0])
            self._score(item, label)
            out.append(
                _outcome(
                    key, item, "resolved", label=label, forward=forward, at_ms=candle.open_time_ms
                )
            )
        return out

    def restore(self, rows: Sequence[PredictionRow], ensemble: Ensemble | None) -> int:
        """Resume resolving the predictions a previous run logged but did not resolve.

        Those of the version now in use also feed its ensemble's weights; return how many.
        """
        for row in sorted(rows, key=lambda r: r.open_time_ms):
            mine = ensemble is not None and row.model_version == ensemble.model_version
            key = (row.venue, row.symbol, row.interval)
            self._pending.setdefault(key, deque()).append(
                _Pending(
                    open_time_ms=row.open_time_ms,
                    target_ms=row.open_time_ms + row.horizon * row.interval.ms,
                    close=float(row.close),
                    threshold=row.threshold,
                    per_model=dict(row.model_probabilities),
                    ensemble_probabilities=row.probabilities,
                    ensemble=ensemble if mine else None,
                    version=row.model_version,
                )
            )
        if rows:
            log.info("predictions_restored", pending=len(rows))
        return len(rows)

    def _score(self, item: _Pending, label: int) -> None:
        self.resolved += 1
        if item.ensemble is not None:
            item.ensemble.resolve(item.per_model, label)
        if self._scores is None or item.version != self._version:
            return  # a prediction of a replaced version: it adapts only that version's weights
        for name, probs in (*item.per_model.items(), (ENSEMBLE, item.ensemble_probabilities)):
            self._scores.add(name, probs, label)
            self._calibration[name].add(probs, label)
        self._check_accuracy()

    def _check_accuracy(self) -> None:
        scores = self._scores
        if scores is None or self._baseline is None or scores.count(ENSEMBLE) < scores.window:
            return
        accuracy = scores.accuracy(ENSEMBLE)
        assert accuracy is not None
        floor = self._baseline - self.config.accuracy_margin
        if accuracy < floor and not self._alerts["accuracy"]:
            self._alerts["accuracy"] = True
            self._alert(
                f"live accuracy {accuracy:.3f} over the last {scores.window} predictions is "
                f"below the walk-forward accuracy {self._baseline:.3f} minus "
                f"{self.config.accuracy_margin:g}",
                {"kind": "accuracy", "observed": accuracy, "threshold": floor},
            )
        elif accuracy >= floor + self.config.accuracy_margin / 2:
            self._alerts["accuracy"] = False

    def _watch_inputs(self, prediction: Prediction) -> None:
        live = self._live
        if live is None:
            return
        for inputs in prediction.inputs:
            live.add(inputs)
            self._rows_seen += 1
            if self._rows_seen % self.config.psi_every == 0 and live.size >= self.config.psi_window:
                self._check_psi(live)

    def _check_psi(self, live: ReferenceLiveDistribution) -> None:
        worst = live.worst(3)
        if not worst:
            return
        name, value = worst[0]
        if value > self.config.psi_threshold and not self._alerts["psi"]:
            self._alerts["psi"] = True
            listed = ", ".join(f"{n} {v:.2f}" for n, v in worst)
            self._alert(
                f"input distribution shift: PSI {listed} over the last {live.size} rows "
                f"(threshold {self.config.psi_threshold:g})",
                {
                    "kind": "psi",
                    "feature": name,
                    "observed": value,
                    "threshold": self.config.psi_threshold,
                },
            )
        elif value < 0.8 * self.config.psi_threshold:
            self._alerts["psi"] = False

    def _alert(self, message: str, data: dict[str, str | float]) -> None:
        log.warning("model_drift", message=message, **data)
        if self._events is not None:
            self._events.publish(
                self._source.warning(
                    EventKind.MODEL_DRIFT, message, at_ms=self._now_ms(), data=data
                )
            )
        self._on_drift(message)

    def stats(self) -> dict[str, object]:
        """Return the live scores per model and for the ensemble, and the drift state."""
        scores = {}
        if self._scores is not None:
            for name, values in self._scores.snapshot().items():
                scores[name] = {**values, "ece": self._calibration[name].ece()}
        worst = self._live.worst(3) if self._live is not None else []
        return {
            "resolved": self.resolved,
            "expired": self.expired,
            "pending": sum(len(q) for q in self._pending.values()),
            "walk_forward_accuracy": self._baseline,
            "live": scores,
            "psi_worst": [[n, round(v, 4)] for n, v in worst],
            "alerts": dict(self._alerts),
        }


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def _row(
    signal: Signal,
    close: Decimal,
    horizon: int,
    threshold: float,
    per_model: dict[str, tuple[float, float, float]],
) -> PredictionRow:
    return PredictionRow(
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
        weights=MappingProxyType(dict(signal.weights)),
    )


def _outcome(
    key: SeriesKey,
    item: _Pending,
    outcome: str,
    *,
    label: int | None,
    forward: float | None,
    at_ms: int,
) -> PredictionOutcome:
    venue, symbol, interval = key
    if forward is not None and not math.isfinite(forward):
        forward = None
    return PredictionOutcome(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time_ms=item.open_time_ms,
        outcome=outcome,
        label=label,
        forward_return=forward,
        resolved_open_time_ms=at_ms,
    )
