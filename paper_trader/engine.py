"""The decision task: one task that handles closed candles in order.

Over 400 lines (508): the batching of an instant's features, the chunking of a catch-up and
a start's resumption (the gate's state, the stored candles never decided) stay beside the
per-candle ordering, gating and error rules they have to keep.

It keeps every series strictly in order (a candle at or before the last one handled is
dropped and counted), counts the candles a series skipped as missing for its data-quality
score, passes each candle through the data-quality gate (an impossible candle is dropped and
counted; a series whose quality falls too low is marked not tradable, with an event), updates
the features, persists the candles through the single writer, then resolves and makes
predictions (``prediction/stage.py``), trades (``trading/stage.py``: risk, the paper broker,
the ledger commit, then the reports), and beats the heartbeat that feeds systemd's watchdog.

What a decision reads of a candle is fixed when the candle is handled and travels with it
(``ClosedCandle``: its feature row, whether its series was tradable right after it, and any
error a stage met on it), so a batch of hundreds of candles is decided exactly like the same
candles one at a time. An unexpected error on one candle is logged with its traceback and the
candle, counted, and recorded; its symbol is quarantined by the trading step and every other
symbol goes on.

Prediction and trading see the candles of all series in time order, one complete instant at a
time (``market/aligner.py``): the portfolio is shared, so live and replay must group and
order instants of different symbols the same way. The sources' marks (``SeriesMark``) say
when a series has nothing more to come for an instant. The features of the judged candles of
one open time are computed together (``FeatureStage.on_instant``: column-wise at width).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from paper_trader.domain import (
    Candle,
    ComponentHealth,
    Event,
    EventData,
    EventKind,
    EventSource,
    HealthStatus,
    Interval,
    JudgedCandles,
    MarketItem,
    PredictionLog,
    SeriesMark,
    Venue,
)
from paper_trader.features.engine import FeatureRow
from paper_trader.features.stage import ClosedCandle, FeatureStage, instant_chunks
from paper_trader.market.aligner import InstantAligner, Stall
from paper_trader.market.quality import Assessment, QualityConfig, QualityMonitor
from paper_trader.runtime.channel import BlockingChannel, ChannelClosed
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.latency import LatencyHistogram
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.pacing import Pacer
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.runtime.service import Readiness

if TYPE_CHECKING:  # the prediction stack (scikit-learn, XGBoost) loads only where it runs
    from paper_trader.prediction.stage import PredictionStage
    from paper_trader.trading.stage import TradingStage

log = get_logger("decision_engine")
_SOURCE = EventSource("decision_engine")

CandleStore = Callable[[JudgedCandles], Awaitable[None]]
SeriesKey = tuple[Venue, str, Interval]
QualityStates = Callable[[], Awaitable[Sequence[tuple[Venue, str, Interval, bytes]]]]
FUTURE_TOLERANCE_MS = 2_000  # a closed frame may be stamped just before its candle's end
FINAL_SAVE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineStats:
    """Counters of the decision task."""

    candles_processed: int
    candles_dropped: int
    candles_rejected: int
    candles_failed: int
    candles_late: int
    last_open_time_ms: int | None


class DecisionEngine:
    """Consume closed candles in order and act on each."""

    name = _SOURCE.name

    def __init__(
        self,
        candles: BlockingChannel[MarketItem],
        store: CandleStore,
        heartbeat: Heartbeat,
        *,
        quality: QualityMonitor | None = None,
        events: EventSink | None = None,
        venue_now: Callable[[], int] | None = None,
        features: FeatureStage | None = None,
        prediction: "PredictionStage | None" = None,
        trading: "TradingStage | None" = None,
        aligner: InstantAligner[ClosedCandle] | None = None,
        latency: LatencyHistogram | None = None,
        idle_beat_s: float = 1.0,
        batch_size: int = 512,
        quality_states: QualityStates | None = None,
    ) -> None:
        """``latency``, if given, records each batch's time from its arrival to its committed
        decisions (one instant live; a catch-up batch holds many); ``quality_states`` reads,
        at start, the data-quality gate's state as the stored candles left it."""
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
        self.latency = latency
        self._idle_beat_s = idle_beat_s
        self._batch_size = batch_size
        self._quality_states = quality_states
        self._judged_through: dict[SeriesKey, int] = {}  # judged by a run before this start
        self._told_judged: set[SeriesKey] = set()
        self._last_open: dict[SeriesKey, int] = {}
        self._processed = 0
        self._dropped = 0
        self._rejected = 0
        self._failed = 0
        self._late = 0
        self._last_time: int | None = None
        self._decisions = 0  # batches of released candles decided
        self._pacer = Pacer()
        self._idle = asyncio.Event()  # set while waiting for candles with none queued

    def stats(self) -> EngineStats:
        """Return the counters."""
        return EngineStats(
            candles_processed=self._processed,
            candles_dropped=self._dropped,
            candles_rejected=self._rejected,
            candles_failed=self._failed,
            candles_late=self._late,
            last_open_time_ms=self._last_time,
        )

    def last_closes(self) -> dict[str, int]:
        """Return each symbol's latest candle handled, as its close time (Unix ms)."""
        closes: dict[str, int] = {}
        for (_, symbol, interval), open_ms in self._last_open.items():
            closes[symbol] = max(closes.get(symbol, 0), open_ms + interval.ms)
        return closes

    def health(self) -> ComponentHealth:
        """Return OK with the number of candles handled."""
        return ComponentHealth(
            component=self.name, status=HealthStatus.OK, detail=f"{self._processed} candles"
        )

    async def run(self, ready: Readiness) -> None:
        """Prepare the features, then handle candles until the channel closes."""
        await self._restore_quality()
        if self.features is not None:
            await self.features.prepare()
        if self.prediction is not None:
            await self.prediction.start()
        if self.trading is not None:
            features = self.features
            await self.trading.start(
                None
                if features is None
                else lambda stored, untradable: self._resume(features, stored, untradable)
            )
        ready.set()
        try:
            await self._loop()
        finally:
            if self.prediction is not None:
                self.prediction.close()  # no new inference; work in flight finishes alone
            if self.trading is not None:
                await self._final_trading_save(self.trading)
            if self.features is not None:
                await self._final_save(self.features)

    async def _restore_quality(self) -> None:
        """Take back the gate's state of each series (and the last candle it saw of each, for
        the gaps); a state that does not fit the configuration starts its series anew."""
        if self._quality_states is None:
            return
        for venue, symbol, interval, data in await self._quality_states():
            key = (venue, symbol, interval)
            try:
                self.quality.restore(key, data)
            except ValueError as exc:
                log.warning("data_quality_state_discarded", symbol=symbol, reason=str(exc))
                continue
            through = self.quality.last_seen(key)
            if through is not None:
                self._judged_through[key] = through

    def _judged_before(self, key: SeriesKey, candle: Candle) -> bool:
        """Return whether a run before this start judged the candle (a replay run again, a
        backfill's overlap): it was stored, decided or resumed then, and is passed over."""
        through = self._judged_through.get(key)
        if through is None or candle.open_time_ms > through:
            return False
        if key not in self._told_judged:
            self._told_judged.add(key)
            log.info("candles_judged_before_passed_over", symbol=candle.symbol, through_ms=through)
        return True

    async def _resume(
        self,
        features: FeatureStage,
        stored: Sequence[Candle],
        untradable: frozenset[tuple[str, int]],
    ) -> None:
        """Decide the candles a stop came between storing and deciding as they would have
        been live: as the gate judged them (its state has them), with the rows ``prepare()``
        computed for them, and held by the aligner until their instants are complete (a stop
        may come between two symbols' candles of one instant: the feed sends the others
        next)."""
        items: list[ClosedCandle] = []
        for prepared in features.stored(stored):
            candle = prepared.candle
            self._accepted((candle.venue, candle.symbol, candle.interval), candle)
            judged = (candle.symbol, candle.open_time_ms) not in untradable
            items.append(replace(prepared, tradable=judged))
        await self._align_and_decide(items)

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
            started = self.latency.now() if self.latency is not None else 0.0
            decided = self._decisions
            batch = [first, *self._candles.drain(self._batch_size - 1)]
            await self._handle(batch)
            if self.latency is not None and self._decisions != decided:
                self.latency.observe_since(started)
            if self.features is not None:
                await self.features.save_if_due()
            self._heartbeat.beat()

    async def _handle(self, batch: list[MarketItem]) -> None:
        """Judge, store and align a batch of candles and marks; decide what became complete."""
        accepted: list[Candle] = []
        tradable: list[bool] = []  # the gate's verdict on each accepted candle
        judged: set[SeriesKey] = set()  # series whose gate state the batch may have moved
        items: list[ClosedCandle] = []
        pending: list[tuple[int, _Judged]] = []  # (index in items, candle), one open time
        self._pacer.start()
        for entry in batch:
            await self._pacer.pace()  # a 100-symbol instant, a catch-up: the loop breathes
            if isinstance(entry, SeriesMark):
                self._features(pending, items)
                self._mark(entry, items)
                continue
            judged.add((entry.venue, entry.symbol, entry.interval))
            item = self._admit(entry)
            if item is None:
                continue
            accepted.append(entry)
            tradable.append(item.tradable)
            if isinstance(item, _Judged):
                if pending and pending[0][1].candle.open_time_ms != entry.open_time_ms:
                    self._features(pending, items)
                pending.append((len(items), item))
            items.append(item)  # type: ignore[arg-type]  # a _Judged becomes its ClosedCandle
        self._features(pending, items)
        if judged:  # with the gate's state after them: a start resumes it exactly
            states = tuple((*key, data) for key, data in self.quality.states(judged))
            await self._store(
                JudgedCandles(candles=tuple(accepted), tradable=tuple(tradable), quality=states)
            )
        await self._align_and_decide(items)

    async def _align_and_decide(self, items: list[ClosedCandle]) -> None:
        """Hand the candles to the aligner and decide the instants it completes (all at once
        without one)."""
        if self.aligner is None:
            await self._decide(items)
        else:
            self._align(items)
            await self._decide(self._release())

    def _features(self, pending: list[tuple[int, "_Judged"]], items: list[ClosedCandle]) -> None:
        """Compute the features of the judged candles of one open time together, in order."""
        if not pending:
            return
        candles = [judged.candle for _, judged in pending]
        none: list[FeatureRow | Exception | None] = [None] * len(candles)
        rows = none if self.features is None else self.features.on_instant(candles)
        for (at, judged), row in zip(pending, rows, strict=True):
            if isinstance(row, Exception):
                items[at] = self._fault(judged.key, judged.candle, row)
            else:
                items[at] = ClosedCandle(
                    candle=judged.candle, row=row, tradable=judged.tradable, late=judged.late
                )
        pending.clear()

    def _mark(self, mark: SeriesMark, items: list[ClosedCandle]) -> None:
        """Apply a source's mark after the candles before it (they align first)."""
        if self.aligner is None:
            return
        self._align(items)
        items.clear()
        key = None if mark.symbol is None else (mark.venue, mark.symbol, mark.interval)
        self.aligner.mark(key, mark.through_ms)

    def _align(self, items: list[ClosedCandle]) -> None:
        aligner = self.aligner
        if aligner is None:
            return
        for item in items:
            candle = item.candle
            key = (candle.venue, candle.symbol, candle.interval)
            aligner.push(key, candle.open_time_ms, candle.symbol, item)

    def _release(self) -> list[ClosedCandle]:
        return [] if self.aligner is None else self.aligner.release()

    async def _decide(self, items: list[ClosedCandle]) -> None:
        """Predict and trade the released candles, in time order, in chunks of whole instants
        (a catch-up releases a thousand instants at once); the loop breathes between chunks."""
        if not items:
            return
        self._decisions += 1
        for chunk in instant_chunks(items, self._batch_size):
            if self.prediction is None:
                signals, faults, logged = [], {}, PredictionLog()
            else:
                predicted = await self.prediction.on_batch(chunk)
                signals, faults, logged = predicted.signals, predicted.faults, predicted.log
            if self.trading is not None:  # the prediction log commits with the decisions
                await self.trading.on_batch(chunk, signals, faults=faults, predictions=logged)
            elif self.prediction is not None:
                await self.prediction.write(logged)
            await self._pacer.pace()

    async def caught_up(self, settle_s: float = 0.05) -> None:
        """Return once the task has handled every candle it received and waits for more."""
        while True:
            await self._idle.wait()
            await asyncio.sleep(settle_s)  # a loop woken by a fresh candle clears the flag
            if self._idle.is_set() and len(self._candles) == 0:
                return

    def _admit(self, candle: Candle) -> "ClosedCandle | _Judged | None":
        """Return the candle with what was judged of it (its features to come), or None if it
        is dropped."""
        key = (candle.venue, candle.symbol, candle.interval)
        if self._judged_before(key, candle):
            return None
        last = self._last_open.get(key)
        if last is not None and candle.open_time_ms <= last:
            self._dropped += 1
            log.warning(
                "candle_out_of_order_dropped",
                symbol=candle.symbol,
                open_time_ms=candle.open_time_ms,
                last_open_time_ms=last,
            )
            return None
        try:
            return self._judge(key, candle)
        except Exception as exc:  # noqa: BLE001 - one candle's trouble, logged by _fault
            return self._fault(key, candle, exc)

    def _fault(self, key: SeriesKey, candle: Candle, exc: Exception) -> ClosedCandle:
        """Record a candle a stage failed on: logged with its traceback, counted, quarantined."""
        self._failed += 1
        error = f"{type(exc).__name__}: {exc}"
        log.error(
            "candle_failed",
            stage="features",
            symbol=candle.symbol,
            open_time_ms=candle.open_time_ms,
            candle=repr(candle),
            error=error,
            exc_info=exc,
        )
        self._accepted(key, candle)
        return ClosedCandle(candle=candle, row=None, tradable=False, fault=error)

    def _judge(self, key: SeriesKey, candle: Candle) -> "_Judged | None":
        """Count the gap before it, gate it; None if it is rejected."""
        self._count_gap(key, candle)
        assessment = self._assess(candle)
        if not assessment.is_usable:
            self._rejected += 1
            if self.aligner is not None:  # the series reached this instant all the same
                self.aligner.mark(key, candle.open_time_ms)
            return None
        self._accepted(key, candle)
        late = self.aligner is not None and self.aligner.is_decided(candle.open_time_ms)
        if late:
            self._report_late(candle)
        return _Judged(key=key, candle=candle, tradable=assessment.tradable, late=late)

    def _accepted(self, key: SeriesKey, candle: Candle) -> None:
        self._last_open[key] = candle.open_time_ms
        self._processed += 1
        self._last_time = candle.open_time_ms

    def _count_gap(self, key: SeriesKey, candle: Candle) -> None:
        """Count the candles the series skipped before this one as missing (candle time)."""
        seen = self.quality.last_seen(key)
        if seen is None:
            return
        missing = (candle.open_time_ms - seen) // candle.interval.ms - 1
        if missing > 0:
            transition = self.quality.note_gap(
                candle.venue, candle.symbol, candle.interval, missing, at_ms=candle.close_time_ms
            )
            if transition is not None and self._events is not None:
                self._events.publish(transition)

    def _assess(self, candle: Candle) -> Assessment:
        """Judge the candle on the venue's clock (replay: its own close); publish transitions."""
        now = candle.close_time_ms if self._venue_now is None else self._venue_now()
        assessment = self.quality.assess(candle, now_ms=now + FUTURE_TOLERANCE_MS)
        if assessment.transition is not None and self._events is not None:
            self._events.publish(assessment.transition)
        return assessment

    def _report_late(self, candle: Candle) -> None:
        """A candle for an instant already decided: it can only be decided on its own now."""
        self._late += 1
        progress = {} if self.aligner is None else self.aligner.progress()
        log.warning(
            "candle_late", symbol=candle.symbol, open_time_ms=candle.open_time_ms, **progress
        )
        if self._events is not None:
            message = (
                f"{candle.symbol} candle {candle.open_time_ms} arrived after its "
                "instant was decided: no entries on it, and a replay may differ"
            )
            data: EventData = {"symbol": candle.symbol, "candle_time_ms": candle.open_time_ms}
            at_ms = candle.close_time_ms
            self._events.publish(
                _SOURCE.warning(EventKind.CANDLE_LATE, message, at_ms=at_ms, data=data)
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Judged:
    """A candle through the quality gate, its features to come with its instant's."""

    key: SeriesKey
    candle: Candle
    tradable: bool
    late: bool


def stall_event(stall: Stall, now_ms: int) -> Event:
    """Return the event that reports a series the aligner stopped waiting for."""
    key = stall.key
    symbol = key[1] if isinstance(key, tuple) and len(key) == 3 else str(key)
    return _SOURCE.warning(
        EventKind.SERIES_STALLED,
        (
            f"{symbol}: stopped waiting for its candles ({stall.reason}); the other symbols "
            "go on without it, and a replay may differ"
        ),
        at_ms=now_ms,
        data={
            "symbol": symbol,
            "candle_time_ms": stall.waiting_ms,
            "through_ms": -1 if stall.through_ms is None else stall.through_ms,
            "reason": stall.reason,
        },
    )
