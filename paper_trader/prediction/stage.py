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
        """Resolve and predict every instant of the batch in order; return the signals.

        The models run once over every ready row of the batch; each instant's signals are
        then made with the ensemble's weights after that instant's resolutions.
        """
        logged: list[PredictionRow] = []
        outcomes: list[PredictionOutcome] = []
        signals: list[Signal] = []
        ordered = sorted(items, key=lambda item: item[0].open_time_ms)
        instants = [
            list(group)
            for _, group in itertools.groupby(ordered, key=lambda item: item[0].open_time_ms)
        ]
        ready = [
            [(c, r) for c, r in instant if r is not None and r.is_ready] for instant in instants
        ]
        rows = [row for group in ready for _, row in group]
        inference = await self.predictor.infer(rows) if rows else None
        start = 0
        for instant, group in zip(instants, ready, strict=True):
            for candle, _ in instant:
                outcomes.extend(self.monitor.on_candle(candle))
            if not group or inference is None:
                continue
            prediction = self.predictor.conclude(inference, start, start + len(group))
            start += len(group)
            if prediction is not None:
                logged.extend(self.monitor.record(prediction, [c.close for c, _ in group]))
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
