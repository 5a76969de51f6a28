"""The prediction log, live scores, and drift alerts.

Over 400 lines (424): the one-step and the per-candle resolution must stay side by side,
where the equivalence of the two can be read.

Every prediction is logged with the close it was made at. When the candle exactly H intervals
later closes, the prediction is resolved: its realised label is the class of that close's
return against the same fee-aware threshold the model was trained with. If that candle never
comes (a gap, a rejected candle), the prediction expires unscored. The predictions due at one
instant are resolved in one vectorised step (``on_instant``), with exactly the updates, in
exactly the order, that resolving them one by one (``on_candle``) makes. Resolutions feed the
ensemble's adaptive weights (of the version that made the prediction) and the rolling live
scores per model and for the ensemble: accuracy, Brier score, log loss and expected
calibration error (ECE, 10 bins of the top probability).

Two drift alerts become events: the ensemble's live accuracy over the last ``window``
resolved predictions falling ``accuracy_margin`` below its walk-forward accuracy, and a model
input whose distribution over the last ``psi_window`` rows has a PSI above ``psi_threshold``
against training. Each alert latches until the condition clears (with some hysteresis), and
calls ``on_drift`` so the retrainer can act.
"""

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from paper_trader.domain import (
    Candle,
    EventKind,
    EventSource,
    PredictionOutcome,
    PredictionRow,
)
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.dataset import classify
from paper_trader.prediction.drift import FeatureReference, LiveDistribution
from paper_trader.prediction.ensemble import Ensemble
from paper_trader.prediction.pending import (
    Block,
    Calibration,
    Columns,
    InstantUnresolved,
    Pending,
    Plan,
    SeriesKey,
    by_ensemble,
    gather,
    labels_of,
    log_rows,
    outcome_of,
)
from paper_trader.prediction.predictor import Prediction
from paper_trader.prediction.scorecard import Scorecard
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger

log = get_logger("prediction_monitor")
IntArray = npt.NDArray[np.int64]
ENSEMBLE = "ensemble"


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorConfig:
    """Windows and alert thresholds."""

    window: int = 200
    accuracy_margin: float = 0.05
    psi_threshold: float = 0.25
    psi_window: int = 1_000
    psi_every: int = 100


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
        self._pending: dict[SeriesKey, deque[Pending]] = {}
        self._scores: Scorecard | None = None
        self._calibration: dict[str, Calibration] = {}
        self._live: LiveDistribution | None = None
        self._baseline: float | None = None
        self._version: str | None = None
        self._rows_seen = 0
        self._unwatched: list[npt.NDArray[np.float64]] = []  # inputs not yet in ``_live``
        self._alerts: dict[str, bool] = {"accuracy": False, "psi": False}
        self.resolved = 0
        self.expired = 0

    def use_model(self, bundle: ModelBundle) -> None:
        """Score the new version from scratch against its own training baseline."""
        self._version = bundle.version
        names = (*bundle.members, ENSEMBLE)
        self._scores = Scorecard(names, self.config.window)
        self._calibration = {n: Calibration(self.config.window) for n in names}
        summary = bundle.metadata.get("metrics", {}).get("summary", {})
        self._baseline = summary.get(ENSEMBLE, {}).get("accuracy")
        reference = bundle.metadata.get("drift_reference")
        self._live = None
        self._unwatched = []
        if reference is not None:
            self._live = LiveDistribution(
                FeatureReference.from_json(reference), self.config.psi_window
            )
        self._alerts = dict.fromkeys(self._alerts, False)

    def record(self, prediction: Prediction, closes: Sequence[Decimal]) -> list[PredictionRow]:
        """Remember an instant's predictions until they resolve; return the rows to log."""
        rule = prediction.bundle.metadata["label"]
        horizon, threshold = int(rule["horizon"]), float(rule["threshold"])
        rows, signals = prediction.rows, prediction.signals
        names = tuple(prediction.per_model)
        probabilities = np.stack(
            [np.asarray(p, dtype=np.float64) for p in prediction.per_model.values()]
        )
        if not len(rows) == len(signals) == len(closes) == probabilities.shape[1]:
            raise ValueError(
                f"{len(rows)} rows, {len(signals)} signals, {len(closes)} closes and "
                f"{probabilities.shape[1]} rows of probabilities"
            )
        block = Block(
            names=names,
            probabilities=probabilities,
            ensemble_probabilities=np.array([s.probabilities for s in signals], dtype=np.float64),
            closes=np.array([float(c) for c in closes], dtype=np.float64),
            threshold=threshold,
            ensemble=prediction.ensemble,
            version=prediction.bundle.version,
        )
        for i, row in enumerate(rows):
            key = (row.venue, row.symbol, row.interval)
            target = row.open_time_ms + horizon * row.interval.ms
            self._pending.setdefault(key, deque()).append(
                Pending(target, row.open_time_ms, block, i)
            )
        out = log_rows(signals, closes, horizon, threshold, names, probabilities)
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
                    outcome_of(key, item, label=None, forward=None, at_ms=candle.open_time_ms)
                )
                continue
            forward = float(candle.close) / float(item.block.closes[item.row]) - 1.0
            label = int(classify(np.array([forward]), item.block.threshold)[0])
            self._score(item, label)
            out.append(
                outcome_of(key, item, label=label, forward=forward, at_ms=candle.open_time_ms)
            )
        return out

    def on_instant(self, candles: Sequence[Candle]) -> list[PredictionOutcome]:
        """Resolve (or expire) the predictions due at one instant's candles in one step.

        The same as ``on_candle`` for each candle in order: the same outcomes, the same updates
        of each ensemble's weights in the same order, the same scores and alerts. Raise
        ``InstantUnresolved``, having changed nothing, where ``on_candle`` would raise for some
        candle: the caller then resolves candle by candle to find it.
        """
        try:
            plan = self._plan(candles)
        except Exception as exc:
            raise InstantUnresolved(f"{type(exc).__name__}: {exc}") from exc
        return self._commit(plan)

    def _plan(self, candles: Sequence[Candle]) -> Plan:
        """Find, label and check the instant's due predictions; change nothing."""
        taken: list[tuple[SeriesKey, int]] = []
        due: list[tuple[SeriesKey, Pending, int]] = []
        now: list[float] = []
        for candle in candles:
            key = (candle.venue, candle.symbol, candle.interval)
            at_ms = candle.open_time_ms
            count = 0
            for item in self._pending.get(key, ()):
                if item.target_ms > at_ms:
                    break
                count += 1
                due.append((key, item, at_ms))
                if item.target_ms == at_ms:
                    now.append(float(candle.close))
            if count:
                taken.append((key, count))
        if len({key for key, _ in taken}) != len(taken):
            raise ValueError("a series closes twice at one instant")
        resolved = [item for _, item, at_ms in due if item.target_ms == at_ms]
        forward, labels = labels_of(resolved, now)
        return Plan(
            taken=taken,
            due=due,
            resolved=resolved,
            forward=forward,
            labels=labels,
            ensembles=by_ensemble(resolved, labels),
            scored=self._scored(resolved, labels),
        )

    def _scored(self, resolved: list[Pending], labels: IntArray) -> tuple[Columns, IntArray] | None:
        """Return the resolved rows of the version in use, checked for its scorecard."""
        scores = self._scores
        picked = [i for i, item in enumerate(resolved) if item.block.version == self._version]
        if scores is None or not picked:
            return None
        columns = gather([resolved[i] for i in picked])
        unknown = set(columns.names) - set(scores.models)
        if unknown:
            raise KeyError(
                f"unknown models {sorted(unknown)}; the scorecard tracks {scores.models}"
            )
        values = (columns.probabilities, columns.ensemble_probabilities)
        if not all(np.isfinite(v).all() for v in values):
            raise ValueError("non-finite probabilities among the due predictions")
        return columns, labels[picked]

    def _commit(self, plan: Plan) -> list[PredictionOutcome]:
        """Apply a checked plan: pop, count, score, alert; return the outcomes in order."""
        for key, count in plan.taken:
            queue = self._pending[key]
            for _ in range(count):
                queue.popleft()
        self.resolved += len(plan.resolved)
        self.expired += len(plan.due) - len(plan.resolved)
        for ensemble, columns, labels in plan.ensembles:
            ensemble.scorecard.add_models(columns.names, columns.probabilities, labels)
        if plan.scored is not None:
            self._score_many(*plan.scored)
        out: list[PredictionOutcome] = []
        forward, labels = plan.forward.tolist(), plan.labels.tolist()
        k = 0
        for key, item, at_ms in plan.due:
            if item.target_ms < at_ms:
                out.append(outcome_of(key, item, label=None, forward=None, at_ms=at_ms))
                continue
            out.append(outcome_of(key, item, label=labels[k], forward=forward[k], at_ms=at_ms))
            k += 1
        return out

    def _score_many(self, columns: Columns, labels: IntArray) -> None:
        """Score rows of the version in use, in order, then check the accuracy after each."""
        scores = self._scores
        assert scores is not None  # only a plan with a scorecard has rows to score
        before = scores.count(ENSEMBLE)
        names = (*columns.names, ENSEMBLE)
        rows = np.concatenate([columns.probabilities, columns.ensemble_probabilities[None]])
        hits = scores.add_models(names, rows, labels)[-1]
        for name, probabilities in zip(names, rows, strict=True):
            self._calibration[name].add_many(probabilities, labels)
        full = max(0, scores.window - before - 1)  # the first row after which it is full
        self._check_accuracies(hits[full:] / scores.window)

    def _check_accuracies(self, accuracies: npt.NDArray[np.float64]) -> None:
        """``_check_accuracy`` on each value in order, jumping from one latch change to the
        next: below the floor while clear raises, at or above the clearing level clears."""
        if self._baseline is None:
            return
        floor = self._baseline - self.config.accuracy_margin
        clearing = floor + self.config.accuracy_margin / 2
        k = 0
        while k < len(accuracies):
            rest = accuracies[k:]
            changes = np.flatnonzero(rest >= clearing if self._alerts["accuracy"] else rest < floor)
            if not changes.size:
                return
            k += int(changes[0])
            self._check_accuracy(float(accuracies[k]))
            k += 1

    def restore(self, rows: Sequence[PredictionRow], ensemble: Ensemble | None) -> int:
        """Resume resolving the predictions a previous run logged but did not resolve.

        Those of the version now in use also feed its ensemble's weights; return how many.
        """
        for row in sorted(rows, key=lambda r: r.open_time_ms):
            mine = ensemble is not None and row.model_version == ensemble.model_version
            key = (row.venue, row.symbol, row.interval)
            block = Block.of_row(row, ensemble if mine else None)
            target = row.open_time_ms + row.horizon * row.interval.ms
            self._pending.setdefault(key, deque()).append(
                Pending(target, row.open_time_ms, block, 0)
            )
        if rows:
            log.info("predictions_restored", pending=len(rows))
        return len(rows)

    def _score(self, item: Pending, label: int) -> None:
        self.resolved += 1
        block = item.block
        per_model = block.per_model(item.row)
        if block.ensemble is not None:
            block.ensemble.resolve(per_model, label)
        if self._scores is None or block.version != self._version:
            return  # a prediction of a replaced version: it adapts only that version's weights
        probabilities = tuple(block.ensemble_probabilities[item.row].tolist())
        for name, probs in (*per_model.items(), (ENSEMBLE, probabilities)):
            self._scores.add(name, probs, label)
            self._calibration[name].add(probs, label)
        scores = self._scores
        if scores.count(ENSEMBLE) >= scores.window:
            accuracy = scores.accuracy(ENSEMBLE)
            assert accuracy is not None
            self._check_accuracy(accuracy)

    def _check_accuracy(self, accuracy: float) -> None:
        """Latch or clear the accuracy alert on the live accuracy of a full window."""
        scores = self._scores
        if scores is None or self._baseline is None:
            return
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
        """Add the instant's model inputs to the live distribution, scoring the PSI every
        ``psi_every`` rows (counted over all rows) once the window is full."""
        live = self._live
        if live is None:
            return
        inputs = np.asarray(prediction.inputs, dtype=np.float64)
        every = self.config.psi_every
        if len(inputs) < every - self._rows_seen % every:  # no score falls in these rows:
            self._unwatched.append(inputs.copy())  # added with the next ones, in one step
            self._rows_seen += len(inputs)
            return
        self._add_unwatched(live)
        done = 0
        while done < len(inputs):
            size = min(len(inputs) - done, every - self._rows_seen % every)
            live.add_many(inputs[done : done + size])
            done += size
            self._rows_seen += size
            if self._rows_seen % every == 0 and live.size >= self.config.psi_window:
                self._check_psi(live)

    def _add_unwatched(self, live: LiveDistribution) -> None:
        """Add the rows kept back since the last score (fewer than ``psi_every``), in order:
        the distribution is then what adding each instant's rows at once would have made."""
        if self._unwatched:
            live.add_many(np.concatenate(self._unwatched))
            self._unwatched = []

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
        worst = []
        if self._live is not None:
            self._add_unwatched(self._live)
            worst = self._live.worst(3)
        return {
            "resolved": self.resolved,
            "expired": self.expired,
            "pending": sum(len(q) for q in self._pending.values()),
            "walk_forward_accuracy": self._baseline,
            "live": scores,
            "psi_worst": [[n, round(v, 4)] for n, v in worst],
            "alerts": dict(self._alerts),
        }
