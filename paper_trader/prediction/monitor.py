"""The prediction log, live scores, and drift alerts.

Every prediction is logged with the close it was made at. When the candle exactly H intervals
later closes, the prediction is resolved: its realised label is the class of that close's
return against the same fee-aware threshold the model was trained with. If that candle never
comes (a gap, a rejected candle), the prediction expires unscored. Resolutions feed the
ensemble's adaptive weights (of the version that made the prediction) and the rolling live
scores per model and for the ensemble: accuracy, Brier score, log loss and expected
calibration error (ECE, 10 bins of the top probability).

Two drift alerts become events: the ensemble's live accuracy over the last ``window``
resolved predictions falling ``accuracy_margin`` below its walk-forward accuracy, and a model
input whose distribution over the last ``psi_window`` rows has a PSI above ``psi_threshold``
against training. Each alert latches until the condition clears (with some hysteresis), and
calls ``on_drift`` so the retrainer can act.
"""

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

import numpy as np

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
from paper_trader.prediction.drift import FeatureReference, LiveDistribution
from paper_trader.prediction.ensemble import Ensemble
from paper_trader.prediction.predictor import Prediction
from paper_trader.prediction.scorecard import Scorecard
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger

log = get_logger("prediction_monitor")
SeriesKey = tuple[Venue, str, Interval]
ENSEMBLE = "ensemble"
CALIBRATION_BINS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorConfig:
    """Windows and alert thresholds."""

    window: int = 200
    accuracy_margin: float = 0.05
    psi_threshold: float = 0.25
    psi_window: int = 1_000
    psi_every: int = 100


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


class PredictionMonitor:
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
        self._scores: Scorecard | None = None
        self._calibration: dict[str, _Calibration] = {}
        self._live: LiveDistribution | None = None
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
        self._scores = Scorecard(names, self.config.window)
        self._calibration = {n: _Calibration(self.config.window) for n in names}
        summary = bundle.metadata.get("metrics", {}).get("summary", {})
        self._baseline = summary.get(ENSEMBLE, {}).get("accuracy")
        reference = bundle.metadata.get("drift_reference")
        self._live = None
        if reference is not None:
            self._live = LiveDistribution(
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

    def _check_psi(self, live: LiveDistribution) -> None:
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
