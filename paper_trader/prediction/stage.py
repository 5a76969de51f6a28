"""The decision task's prediction step: resolve what is due, predict what closed, log both.

For each instant of a batch of accepted candles, in time order: first the predictions whose
horizon ends at that instant are resolved, all of them in one step from ``VECTORISE_FROM``
candles on, one by one below (so the ensemble's weights include them), then the ready feature
rows of the symbols that closed at that instant are predicted as one batch. What the batch
adds to the prediction log (new predictions, outcomes, and the ensemble's scorecard when an
outcome moved it) is returned with its signals: the decision task commits it in the same
transaction as the decisions made on it (``write`` when there is no trading step). A start
takes the scorecard back, so the weights go on as if the daemon had never stopped.

An unexpected error while resolving or logging one candle's predictions is logged with its
traceback and the candle, counted, and returned as that candle's fault (the trading step
quarantines its symbol); the other candles and symbols go on. When the one-step resolution of
an instant refuses (having changed nothing), the instant is resolved again candle by candle,
so that the fault lands on the candle it belongs to.
"""

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from paper_trader.domain import (
    Candle,
    ComponentHealth,
    EnsembleState,
    PredictionLog,
    PredictionOutcome,
    PredictionRow,
    Signal,
)
from paper_trader.features.stage import ClosedCandle
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.ensemble import Ensemble
from paper_trader.prediction.monitor import PredictionMonitor
from paper_trader.prediction.pending import InstantUnresolved
from paper_trader.prediction.predictor import Inference, Prediction, Predictor
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.pacing import Pacer

log = get_logger("predictor")

# Below this many candles at an instant, resolving them one by one is cheaper than the numpy
# step's fixed cost (about 0.1 ms against 0.02 ms per candle; they break even near 5).
VECTORISE_FROM = 8

RecordLog = Callable[[PredictionLog], Awaitable[None]]
LoadPending = Callable[[], Awaitable[Sequence[PredictionRow]]]
LoadState = Callable[[str], Awaitable[bytes | None]]


async def _nothing() -> None:
    return None


@dataclass(slots=True)
class BatchPrediction:
    """The signals of a batch, and the candles whose predictions failed: (symbol, time) → why."""

    signals: list[Signal] = field(default_factory=list)
    faults: dict[tuple[str, int], str] = field(default_factory=dict)
    log: PredictionLog = field(default_factory=PredictionLog)


class PredictionStage:
    """Predictor, monitor and prediction log, as one step of the decision task."""

    name = "predictor"

    def __init__(
        self,
        predictor: Predictor,
        monitor: PredictionMonitor,
        *,
        record: RecordLog,
        pending: LoadPending | None = None,
        state: LoadState | None = None,
    ) -> None:
        self.predictor = predictor
        self.monitor = monitor
        self._record = record
        self._pending = pending
        self._state = state
        self._handed: tuple[str, int] | None = None  # (version, scorecard.added) last returned
        self.signals = 0
        self.errors = 0
        self.prepare: Callable[[], Awaitable[None]] = _nothing
        self._pacer = Pacer()

    async def start(self) -> None:
        """Load the model, then the unresolved predictions of the last run, before any candle."""
        await self.prepare()
        if self._pending is not None:
            self.monitor.restore(await self._pending(), self.predictor.ensemble)
        ensemble = self.predictor.ensemble
        if self._state is not None and ensemble is not None:
            await self._restore(ensemble)

    async def _restore(self, ensemble: Ensemble) -> None:
        """Take back the scorecard the version in use last committed (none: it starts anew)."""
        assert self._state is not None
        data = await self._state(ensemble.model_version)
        if data is None:
            return
        try:
            ensemble.scorecard.restore(data)
        except ValueError as exc:  # another window or other models: its weights start anew
            log.warning(
                "ensemble_state_discarded", model_version=ensemble.model_version, reason=str(exc)
            )
            return
        self._handed = (ensemble.model_version, ensemble.scorecard.added)
        log.info(
            "ensemble_state_restored",
            model_version=ensemble.model_version,
            resolved={m: ensemble.scorecard.count(m) for m in ensemble.models},
            weights=ensemble.weights(),
        )

    async def write(self, log: PredictionLog) -> None:
        """Write a batch's prediction log alone (no trading step commits it)."""
        if log:
            await self._record(log)

    def install(self, bundle: ModelBundle) -> None:
        """Predict with ``bundle`` from the next batch on."""
        self.monitor.use_model(bundle)
        self.predictor.install(bundle)

    async def on_batch(self, items: Sequence[ClosedCandle]) -> BatchPrediction:
        """Resolve and predict every instant of the batch in order; return the signals.

        Several instants with ready rows share one inference pass; each instant's signals
        are then made with the ensemble's weights after that instant's resolutions.
        """
        out = BatchPrediction()
        logged: list[PredictionRow] = []
        outcomes: list[PredictionOutcome] = []
        ordered = sorted(items, key=lambda item: item.candle.open_time_ms)
        instants = [
            list(group)
            for _, group in itertools.groupby(ordered, key=lambda item: item.candle.open_time_ms)
        ]
        ready = [[i for i in inst if i.row is not None and i.row.is_ready] for inst in instants]
        shared = await self._shared_pass([group for group in ready if group])
        start = 0
        self._pacer.start()
        for instant, group in zip(instants, ready, strict=True):
            await self._pacer.pace()  # many instants (a catch-up): the loop breathes between
            outcomes.extend(self._resolve_instant([item.candle for item in instant], out))
            if not group:
                continue
            await self._pacer.pace()  # an instant of 100 symbols: each step is a stretch
            at_ms = group[0].candle.open_time_ms
            rows = [i.row for i in group if i.row is not None]
            prediction = await self.predictor.predict_instant(at_ms, rows, shared, start)
            start += len(group)
            if prediction is not None:
                await self._pacer.pace()
                logged.extend(self._log(prediction, group, out))
                out.signals.extend(prediction.signals)
        out.log = PredictionLog(
            rows=tuple(logged), outcomes=tuple(outcomes), ensemble=self._moved_state()
        )
        self.signals += len(out.signals)
        return out

    def _moved_state(self) -> EnsembleState | None:
        """Return the scorecard of the version in use if it moved since last returned."""
        ensemble = self.predictor.ensemble
        if ensemble is None:
            return None
        now = (ensemble.model_version, ensemble.scorecard.added)
        if now == self._handed:
            return None
        self._handed = now
        return EnsembleState(model_version=now[0], scorecard=ensemble.scorecard.state())

    async def _shared_pass(self, groups: list[list[ClosedCandle]]) -> Inference | None:
        """Infer several instants' rows in one pass (None for one instant: it infers alone)."""
        if len(groups) < 2 or not self.predictor.may_predict_by(groups[-1][0].candle.open_time_ms):
            return None
        rows = [i.row for group in groups for i in group if i.row is not None]
        return await self.predictor.infer(rows, instants=len(groups))

    def _resolve_instant(
        self, candles: list[Candle], out: BatchPrediction
    ) -> list[PredictionOutcome]:
        """Resolve one instant's due predictions in one step, else candle by candle."""
        if len(candles) < VECTORISE_FROM:
            return [outcome for candle in candles for outcome in self._resolve(candle, out)]
        try:
            return self.monitor.on_instant(candles)
        except InstantUnresolved as exc:  # nothing changed: find the candle at fault
            log.warning("instant_resolved_per_candle", candles=len(candles), reason=str(exc))
        except Exception as exc:  # noqa: BLE001 -- a half-made step: every candle of it failed
            for candle in candles:
                self._fault(candle, "resolving predictions", exc, out)
            return []
        return [outcome for candle in candles for outcome in self._resolve(candle, out)]

    def _resolve(self, candle: Candle, out: BatchPrediction) -> list[PredictionOutcome]:
        try:
            return self.monitor.on_candle(candle)
        except Exception as exc:  # one candle's trouble, not the daemon's  # noqa: BLE001
            self._fault(candle, "resolving predictions", exc, out)
            return []

    def _log(
        self, prediction: Prediction, group: list[ClosedCandle], out: BatchPrediction
    ) -> list[PredictionRow]:
        try:
            return self.monitor.record(prediction, [i.candle.close for i in group])
        except Exception as exc:  # noqa: BLE001 -- logged, counted and returned as faults
            for item in group:
                self._fault(item.candle, "logging predictions", exc, out)
            return []

    def _fault(self, candle: Candle, what: str, exc: Exception, out: BatchPrediction) -> None:
        self.errors += 1
        error = f"{what}: {type(exc).__name__}: {exc}"
        out.faults[(candle.symbol, candle.open_time_ms)] = error
        log.exception(
            "candle_failed",
            stage="prediction",
            symbol=candle.symbol,
            open_time_ms=candle.open_time_ms,
            error=error,
        )

    def close(self) -> None:
        """Shut the predictor's executor down (the decision task has stopped)."""
        self.predictor.close()

    def health(self) -> ComponentHealth:
        """Return the predictor's health (DEGRADED, with the reason, while entries are off)."""
        return self.predictor.health()

    def stats(self) -> dict[str, object]:
        """Return the predictor's counters and the monitor's live scores."""
        return {
            **self.predictor.stats(),
            "signals": self.signals,
            "errors": self.errors,
            **self.monitor.stats(),
        }
