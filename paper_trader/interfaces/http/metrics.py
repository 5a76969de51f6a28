"""``/metrics``: the daemon's counters in Prometheus text, read at scrape time.

One collector in its own ``CollectorRegistry`` (never the process-global one) turns what the
parts already keep into metric families when Prometheus scrapes: the trading state and the
portfolio (through ``Control`` and ``Reports``, under the trading stage's lock, awaited just
before the families are built), the breakers, the market feed's and the decision task's counters,
candle age per symbol, predictions, notifications, the decision and inference latency
histograms, the garbage collector's pauses and the latest health check. The composition root
hands over small provider callables returning the frozen values below, so this module reads no
part it may not import. Nothing is counted here but the collector's pauses (``GcPauses``, a
``gc.callbacks`` hook: a bisect per collection): a scrape costs the daemon nothing between
scrapes.
"""

import contextlib
import gc
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from paper_trader.control.api import Control, Status
from paper_trader.control.reports import Balance, Reports
from paper_trader.control.system import HealthProvider, HealthView
from paper_trader.domain.trading import TradingState
from paper_trader.runtime.latency import LatencyHistogram, LatencySnapshot

PREFIX = "paper_trader_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A young collection takes well under a millisecond; a full one of a large heap, tenths.
GC_BUCKETS_S = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
GcReadings = tuple[tuple[int, LatencySnapshot], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketCounts:
    """The feed's and the decision task's candle counters since start-up.

    ``backfilled`` counts candles fetched over REST (the warm-up included); ``duplicates`` are
    the feed's repeated frames; ``dropped`` the decision task's out-of-order candles;
    ``candle_age_s`` is, per symbol, the seconds since its last candle closed (venue clock).
    """

    processed: int
    rejected: int
    dropped: int
    failed: int
    late: int
    reconnects: int = 0
    backfilled: int = 0
    duplicates: int = 0
    malformed: int = 0
    candle_age_s: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionCounts:
    """The predictor's counters; ``breaker_open`` while its breaker is not closed."""

    batches: int
    rows: int
    failures: int
    timeouts: int
    breaker_open: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCounts:
    """One notification channel: waiting now, and sent, retried, failed since start-up."""

    channel: str
    pending: int
    sent: int
    retried: int
    failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSources:
    """What the collector reads (each callable cheap, no I/O); ``breakers`` names every
    account-wide trading breaker, so each has a series (0 until it trips)."""

    market: Callable[[], MarketCounts]
    predictions: Callable[[], PredictionCounts | None] = lambda: None
    notifications: Callable[[], tuple[ChannelCounts, ...]] = tuple
    decision_latency: Callable[[], LatencySnapshot | None] = lambda: None
    inference_latency: Callable[[], LatencySnapshot | None] = lambda: None
    gc_pauses: Callable[[], GcReadings] = tuple
    breakers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingReading:
    """The trading stage read for one scrape."""

    status: Status
    balance: Balance


class DaemonCollector:
    """A ``prometheus_client`` collector over the daemon's stats (see the module docstring)."""

    def __init__(self, sources: MetricsSources, health: HealthProvider) -> None:
        self._sources = sources
        self._health = health
        self.trading: TradingReading | None = None  # set by the scrape just before collect()

    def collect(self) -> Iterator[Metric]:
        """Yield every family, from the values read now."""
        if self.trading is not None:
            yield from _trading(self.trading, self._sources.breakers)
        yield from _market(self._sources.market())
        predictions = self._sources.predictions()
        if predictions is not None:
            yield from _predictions(predictions)
        yield from _notifications(self._sources.notifications())
        yield from _latencies(self._sources)
        view = self._health()
        if view is not None:
            yield from _health(view)


class Metrics:
    """The registry of one daemon and how a scrape reads it."""

    def __init__(
        self, sources: MetricsSources, control: Control, reports: Reports, health: HealthProvider
    ) -> None:
        self._control = control
        self._reports = reports
        self._collector = DaemonCollector(sources, health)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self._collector)

    async def render(self) -> bytes:
        """Return the exposition text; the trading families once the ledger is restored."""
        reading = None
        if self._control.is_started():
            status = await self._control.status()
            reading = TradingReading(status=status, balance=await self._reports.balance())
        # No await from here on: the reading and the families are of one moment.
        self._collector.trading = reading
        return generate_latest(self.registry)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, value=value)


def _trading(reading: TradingReading, breakers: tuple[str, ...]) -> Iterator[Metric]:
    status, balance = reading.status, reading.balance
    state = GaugeMetricFamily(
        PREFIX + "trading_state", "1 for the trading state now", labels=["state"]
    )
    for each in TradingState:
        state.add_metric([each.value], 1.0 if status.state is each else 0.0)
    yield state
    yield _gauge("equity", "equity at the latest closes (quote currency)", float(status.equity))
    yield _gauge("cash", "cash (quote currency)", float(status.cash))
    yield _gauge("exposure", "gross exposure at the latest closes", float(balance.exposure))
    yield _gauge("exposure_ratio", "exposure / equity", balance.exposure_share)
    yield _gauge("drawdown_ratio", "share of the peak equity lost", status.drawdown)
    yield _gauge("open_positions", "open positions", status.open_positions)
    yield _counter("entries", "entries made since start-up", status.entered)
    yield _counter("entries_rejected", "entries the risk manager refused", status.rejected)
    yield _counter("entries_skipped", "entries skipped on stale candles", status.skipped)
    tripped = GaugeMetricFamily(
        PREFIX + "breaker_tripped",
        "1 while a breaker is tripped (symbol empty: account-wide)",
        labels=["breaker", "symbol"],
    )
    tripped_now = {(t.breaker, t.symbol or "") for t in status.tripped}
    for name in breakers:
        tripped.add_metric([name, ""], 1.0 if (name, "") in tripped_now else 0.0)
    for name, symbol in sorted(tripped_now):
        if symbol or name not in breakers:
            tripped.add_metric([name, symbol], 1.0)
    yield tripped


def _market(counts: MarketCounts) -> Iterator[Metric]:
    yield _counter("candles_processed", "candles the decision task accepted", counts.processed)
    yield _counter("candles_rejected", "candles the data-quality gate rejected", counts.rejected)
    yield _counter("candles_dropped", "out-of-order candles dropped", counts.dropped)
    yield _counter("candles_failed", "candles a stage failed on", counts.failed)
    yield _counter("candles_late", "candles after their instant was decided", counts.late)
    yield _counter("feed_reconnects", "market feed reconnections", counts.reconnects)
    yield _counter("candles_backfilled", "candles fetched over REST", counts.backfilled)
    yield _counter("candles_duplicate", "repeated candle frames ignored", counts.duplicates)
    yield _counter("feed_malformed_frames", "frames that did not parse", counts.malformed)
    age = GaugeMetricFamily(
        PREFIX + "candle_age_seconds", "seconds since the last closed candle", labels=["symbol"]
    )
    for symbol, seconds in counts.candle_age_s:
        age.add_metric([symbol], seconds)
    yield age


def _predictions(counts: PredictionCounts) -> Iterator[Metric]:
    yield _counter("predictions", "rows predicted", counts.rows)
    yield _counter("prediction_batches", "inference batches", counts.batches)
    yield _counter("prediction_failures", "inference batches that failed", counts.failures)
    yield _counter("prediction_timeouts", "inference batches that timed out", counts.timeouts)
    yield _gauge("prediction_breaker_open", "1 while the prediction breaker is not closed",
                 1.0 if counts.breaker_open else 0.0)  # fmt: skip


def _notifications(channels: tuple[ChannelCounts, ...]) -> Iterator[Metric]:
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "pending": GaugeMetricFamily(
            PREFIX + "notifications_queued", "notifications waiting", labels=["channel"]
        ),
        "sent": CounterMetricFamily(
            PREFIX + "notifications_sent", "notifications delivered", labels=["channel"]
        ),
        "retried": CounterMetricFamily(
            PREFIX + "notifications_retried", "sends made again", labels=["channel"]
        ),
        "failed": CounterMetricFamily(
            PREFIX + "notifications_failed", "notifications given up", labels=["channel"]
        ),
    }
    for channel in channels:
        for field, family in families.items():
            family.add_metric([channel.channel], getattr(channel, field))
    yield from families.values()


def _latencies(sources: MetricsSources) -> Iterator[Metric]:
    decision = sources.decision_latency()
    if decision is not None:
        yield _histogram(
            "decision_latency_seconds",
            "candles taken by the decision task -> their decisions committed",
            decision,
        )
    inference = sources.inference_latency()
    if inference is not None:
        yield _histogram(
            "inference_latency_seconds",
            "one inference pass of every model on a batch of rows (slot wait included)",
            inference,
        )
    pauses = sources.gc_pauses()
    if pauses:
        family = HistogramMetricFamily(
            PREFIX + "gc_pause_seconds",
            "garbage collections by generation, how long each stopped the process",
            labels=["generation"],
        )
        for generation, snap in pauses:
            family.add_metric([str(generation)], _buckets(snap), snap.sum_s)
        yield family


def _histogram(name: str, doc: str, snap: LatencySnapshot) -> HistogramMetricFamily:
    return HistogramMetricFamily(PREFIX + name, doc, buckets=_buckets(snap), sum_value=snap.sum_s)


def _buckets(snap: LatencySnapshot) -> list[tuple[str, float]]:
    buckets = [
        (repr(bound), float(n)) for bound, n in zip(snap.bounds, snap.cumulative, strict=True)
    ]
    buckets.append(("+Inf", float(snap.count)))
    return buckets


class GcPauses:
    """How long each garbage collection took, by generation, from ``gc.callbacks``.

    A collection runs in whichever thread allocates (the loop's or an executor's), one at a
    time under the GIL, so a ``start`` is always followed by its own ``stop``.
    """

    def __init__(self, monotonic: Callable[[], float] = time.perf_counter) -> None:
        self._monotonic = monotonic
        self._generations = tuple(LatencyHistogram(monotonic, GC_BUCKETS_S) for _ in range(3))
        self._started: float | None = None

    def record(self, phase: str, info: Mapping[str, int]) -> None:
        """Take one ``gc.callbacks`` call: time each ``start`` to its ``stop``."""
        if phase == "start":
            self._started = self._monotonic()
        elif self._started is not None:
            generation = min(max(int(info.get("generation", 2)), 0), 2)
            self._generations[generation].observe_since(self._started)
            self._started = None

    def snapshot(self) -> GcReadings:
        """Return each generation's counts so far."""
        return tuple((g, histogram.snapshot()) for g, histogram in enumerate(self._generations))

    def watch_while(self, owner: object) -> None:
        """Hear every collection from now on, until ``owner`` is garbage (or the process
        exits): the interpreter's hook list never keeps a finished daemon's recorder."""
        gc.callbacks.append(self.record)
        weakref.finalize(owner, _unhook, self.record)


def _unhook(callback: Callable[[str, Mapping[str, int]], None]) -> None:
    with contextlib.suppress(ValueError):
        gc.callbacks.remove(callback)


def _health(view: HealthView) -> Iterator[Metric]:
    yield _gauge("health_score", "health score 0-100", view.score)
    yield _gauge("resident_memory_bytes", "resident set size", view.rss_mb * 1_048_576)
    yield _gauge("cpu_percent", "process CPU use between health checks", view.cpu_percent)
    yield _gauge("event_loop_lag_seconds", "event-loop lag", view.loop_lag_ms / 1000)
    yield _gauge("asyncio_tasks", "asyncio tasks on the event loop", view.tasks)
    yield _gauge("threads", "the process's threads", view.threads)
    yield _gauge("open_fds", "the process's open file descriptors", view.open_fds)
    components = GaugeMetricFamily(
        PREFIX + "component_status",
        "each component's health: 0 ok, 1 degraded, 2 critical",
        labels=["component"],
    )
    worst: dict[str, int] = {}  # a part may report several components under one name
    for c in view.components:
        worst[c.component] = max(worst.get(c.component, 0), int(c.status))
    for name, status in worst.items():
        components.add_metric([name], status)
    yield components
