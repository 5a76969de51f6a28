"""The decision task: one task that handles closed candles in order.

It keeps every series strictly in order (a candle at or before the last one handled is
dropped and counted), passes each candle through the data-quality gate (an impossible candle
is dropped and counted; a series whose quality falls too low is marked not tradable, with an
event), updates the features, persists the candles through the single writer, then resolves
and makes predictions (``prediction/stage.py``), trades (``trading_stage.py``: risk, the
paper broker, the ledger commit, then the reports), and beats the heartbeat that feeds
systemd's watchdog.

Prediction and trading see the candles of all series in time order, one instant at a time
(``market/aligner.py``): the portfolio is shared, so live and replay must order instants of
different symbols the same way.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from paper_trader.domain import Candle, ComponentHealth, HealthStatus, Interval, Venue
from paper_trader.features.engine import FeatureRow
from paper_trader.features.stage import FeatureStage
from paper_trader.log_config import get_logger
from paper_trader.market.aligner import InstantAligner
from paper_trader.market.quality import QualityConfig, QualityMonitor
from paper_trader.runtime.channel import BlockingChannel, ChannelClosed
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.runtime.service import Readiness

if TYPE_CHECKING:  # the prediction stack (scikit-learn, XGBoost) loads only where it runs
    from paper_trader.prediction.stage import PredictionStage
    from paper_trader.trading_stage import TradingStage

log = get_logger("decision_engine")

CandleStore = Callable[[tuple[Candle, ...]], Awaitable[None]]
SeriesKey = tuple[Venue, str, Interval]
FUTURE_TOLERANCE_MS = 2_000  # a closed frame may be stamped just before its candle's end
FINAL_SAVE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStats:
    """Counters of the decision task."""

    candles_processed: int
    candles_dropped: int
    candles_rejected: int
    last_open_time_ms: int | None


class DecisionEngine:
    """Consume closed candles in order and act on each."""

    name = "decision_engine"

    def __init__(
        self,
        candles: BlockingChannel[Candle],
        store: CandleStore,
        heartbeat: Heartbeat,
        *,
        quality: QualityMonitor | None = None,
        events: EventSink | None = None,
        venue_now: Callable[[], int] | None = None,
        features: FeatureStage | None = None,
        prediction: "PredictionStage | None" = None,
        trading: "TradingStage | None" = None,
        aligner: InstantAligner[tuple[Candle, FeatureRow | None]] | None = None,
        idle_beat_s: float = 1.0,
        batch_size: int = 512,
    ) -> None:
        self._candles = candles
        self._store = store
        self._heartbeat = heartbeat
        self.quality = quality or QualityMonitor(QualityConfig())
        self._events = events
        self._venue_now = venue_now
        self.features = features
        self.prediction = prediction
        self.trading = trading
        self.aligner = aligner
        self._idle_beat_s = idle_beat_s
        self._batch_size = batch_size
        self._last_open: dict[SeriesKey, int] = {}
        self._processed = 0
        self._dropped = 0
        self._rejected = 0
        self._last_time: int | None = None
        self._idle = asyncio.Event()  # set while waiting for candles with none queued

    def stats(self) -> EngineStats:
        """Return the counters."""
        return EngineStats(
            candles_processed=self._processed,
            candles_dropped=self._dropped,
            candles_rejected=self._rejected,
            last_open_time_ms=self._last_time,
        )

    def health(self) -> ComponentHealth:
        """Return OK with the number of candles handled."""
        return ComponentHealth(
            component=self.name, status=HealthStatus.OK, detail=f"{self._processed} candles"
        )

    async def run(self, ready: Readiness) -> None:
        """Prepare the features, then handle candles until the channel closes."""
        if self.features is not None:
            await self.features.prepare()
        if self.prediction is not None:
            await self.prediction.start()
        if self.trading is not None:
            await self.trading.start()
        ready.set()
        try:
            await self._loop()
        finally:
            if self.trading is not None:
                await self._final_trading_save(self.trading)
            if self.features is not None:
                await self._final_save(self.features)

    async def _final_trading_save(self, trading: "TradingStage") -> None:
        """Save the volatility windows at stop, bounded (losing them costs a few minutes)."""
        try:
            async with asyncio.timeout(FINAL_SAVE_TIMEOUT_S):
                await trading.save()
        except TimeoutError:
            log.error("trading_state_save_timed_out", timeout_s=FINAL_SAVE_TIMEOUT_S)  # noqa: TRY400

    async def _final_save(self, features: FeatureStage) -> None:
        """Save the feature cache at stop, bounded; a slow disk costs the cache, not the stop."""
        try:
            async with asyncio.timeout(FINAL_SAVE_TIMEOUT_S):
                await features.save()
        except TimeoutError:
            log.error("feature_cache_save_timed_out", timeout_s=FINAL_SAVE_TIMEOUT_S)  # noqa: TRY400
        log.info("features_stopped", **features.stats())

    async def _loop(self) -> None:
        """Handle batches of candles; beat the heartbeat while idle."""
        while True:
            if len(self._candles) == 0:
                self._idle.set()
            try:
                async with asyncio.timeout(self._idle_beat_s):
                    first = await self._candles.get()
            except TimeoutError:
                await self._decide(self._release())  # a stalled series no longer holds others
                self._heartbeat.beat()
                continue
            except ChannelClosed:
                await self._decide(self.aligner.flush() if self.aligner else [])
                log.info("candle_stream_ended", **asdict(self.stats()))
                return
            self._idle.clear()
            batch = [first, *self._candles.drain(self._batch_size - 1)]
            accepted = tuple(c for c in batch if self._accept(c))
            rows = [self._features_of(c) for c in accepted]
            if accepted:
                await self._store(accepted)
            if self.aligner is None:
                await self._decide(list(zip(accepted, rows, strict=True)))
            else:
                for candle, row in zip(accepted, rows, strict=True):
                    key = (candle.venue, candle.symbol, candle.interval)
                    self.aligner.push(key, candle.open_time_ms, candle.symbol, (candle, row))
                await self._decide(self._release())
            if self.features is not None:
                await self.features.save_if_due()
            self._heartbeat.beat()

    def _release(self) -> list[tuple[Candle, FeatureRow | None]]:
        return [] if self.aligner is None else self.aligner.release()

    async def _decide(self, items: list[tuple[Candle, FeatureRow | None]]) -> None:
        """Predict and trade the released candles, in time order."""
        if not items:
            return
        signals = [] if self.prediction is None else await self.prediction.on_batch(items)
        if self.trading is not None:
            await self.trading.on_batch(items, signals)

    async def caught_up(self, settle_s: float = 0.05) -> None:
        """Return once the task has handled every candle it received and waits for more."""
        while True:
            await self._idle.wait()
            await asyncio.sleep(settle_s)  # a loop woken by a fresh candle clears the flag
            if self._idle.is_set() and len(self._candles) == 0:
                return

    def _accept(self, candle: Candle) -> bool:
        key = (candle.venue, candle.symbol, candle.interval)
        last = self._last_open.get(key)
        if last is not None and candle.open_time_ms <= last:
            self._dropped += 1
            log.warning(
                "candle_out_of_order_dropped",
                symbol=candle.symbol,
                open_time_ms=candle.open_time_ms,
                last_open_time_ms=last,
            )
            return False
        if not self._passes_quality(candle):
            if self.aligner is not None:  # the series still reached this instant
                self.aligner.seen(key, candle.open_time_ms)
            return False
        self._last_open[key] = candle.open_time_ms
        self._processed += 1
        self._last_time = candle.open_time_ms
        return True

    def _features_of(self, candle: Candle) -> FeatureRow | None:
        return None if self.features is None else self.features.on_candle(candle)

    def _passes_quality(self, candle: Candle) -> bool:
        """Judge the candle on the venue's clock (replay: its own close); publish transitions."""
        now = candle.close_time_ms if self._venue_now is None else self._venue_now()
        assessment = self.quality.assess(candle, now_ms=now + FUTURE_TOLERANCE_MS)
        if assessment.transition is not None and self._events is not None:
            self._events.publish(assessment.transition)
        if assessment.is_usable:
            return True
        self._rejected += 1
        return False
