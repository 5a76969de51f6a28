"""The decision task's prediction step: resolve what is due, predict what closed, log both.

For each instant of a batch of accepted candles, in time order: first the predictions whose
horizon ends at that candle are resolved (so the ensemble's weights include them), then the
ready feature rows of the symbols that closed at that instant are predicted as one batch.
The log rows are handed to storage, new predictions before their resolutions.
"""

import itertools
from collections.abc import Awaitable, Callable, Sequence

from paper_trader.domain import (
    Candle,
    ComponentHealth,
    PredictionOutcome,
    PredictionRow,
    Signal,
)
from paper_trader.features.engine import FeatureRow
from paper_trader.prediction.bundle import ModelBundle
from paper_trader.prediction.monitor import PredictionMonitor
from paper_trader.prediction.predictor import Predictor

RecordRows = Callable[[tuple[PredictionRow, ...]], Awaitable[None]]
RecordOutcomes = Callable[[tuple[PredictionOutcome, ...]], Awaitable[None]]
LoadPending = Callable[[], Awaitable[Sequence[PredictionRow]]]


async def _nothing() -> None:
    return None


class PredictionStage:
    """Predictor, monitor and prediction log, as one step of the decision task."""

    name = "predictor"

    def __init__(
        self,
        predictor: Predictor,
        monitor: PredictionMonitor,
        *,
        record: RecordRows,
        resolve: RecordOutcomes,
        pending: LoadPending | None = None,
    ) -> None:
        self.predictor = predictor
        self.monitor = monitor
        self._record = record
        self._resolve = resolve
        self._pending = pending
        self.signals = 0
        self.prepare: Callable[[], Awaitable[None]] = _nothing

    async def start(self) -> None:
        """Load the model, then the unresolved predictions of the last run, before any candle."""
        await self.prepare()
        if self._pending is not None:
            self.monitor.restore(await self._pending(), self.predictor.ensemble)

    def install(self, bundle: ModelBundle) -> None:
        """Predict with ``bundle`` from the next batch on."""
        self.monitor.use_model(bundle)
        self.predictor.install(bundle)

    async def on_batch(self, items: Sequence[tuple[Candle, FeatureRow | None]]) -> list[Signal]:
        """Resolve and predict every instant of the batch in order; return the signals."""
        logged: list[PredictionRow] = []
        outcomes: list[PredictionOutcome] = []
        signals: list[Signal] = []
        ordered = sorted(items, key=lambda item: item[0].open_time_ms)
        for _, group in itertools.groupby(ordered, key=lambda item: item[0].open_time_ms):
            instant = list(group)
            for candle, _ in instant:
                outcomes.extend(self.monitor.on_candle(candle))
            ready = [(c, row) for c, row in instant if row is not None and row.is_ready]
            if not ready:
                continue
            prediction = await self.predictor.predict([row for _, row in ready])
            if prediction is not None:
                logged.extend(self.monitor.record(prediction, [c.close for c, _ in ready]))
                signals.extend(prediction.signals)
        if logged:
            await self._record(tuple(logged))
        if outcomes:
            await self._resolve(tuple(outcomes))
        self.signals += len(signals)
        return signals

    def health(self) -> ComponentHealth:
        """Return the predictor's health (DEGRADED, with the reason, while entries are off)."""
        return self.predictor.health()

    def stats(self) -> dict[str, object]:
        """Return the predictor's counters and the monitor's live scores."""
        return {**self.predictor.stats(), "signals": self.signals, **self.monitor.stats()}
