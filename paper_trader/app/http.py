"""The composition root's HTTP service: health, metrics and the read-only API of a live run.

The metrics read the parts' own counters through the providers built here (the HTTP part may
not import the engine, the feed or the prediction stack): the decision task's counters and
latency histogram, the feed's counters and each series' last candle, the predictor's
counters and inference latency, the notifier's channels; and the garbage collector's pauses,
heard for as long as the service exists.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from paper_trader.app.stages import DecisionPath
from paper_trader.control.api import Control
from paper_trader.control.reports import Reports
from paper_trader.control.system import HealthProvider
from paper_trader.engine import DecisionEngine
from paper_trader.exchange.feed import MarketFeed
from paper_trader.interfaces.http.api import ApiSources
from paper_trader.interfaces.http.dashboard import FeedLink, FeedProvider, no_feed
from paper_trader.interfaces.http.metrics import (
    ChannelCounts,
    GcPauses,
    MarketCounts,
    Metrics,
    MetricsSources,
    PredictionCounts,
)
from paper_trader.interfaces.http.service import HttpService
from paper_trader.interfaces.notify.service import Notifier
from paper_trader.interfaces.status.server import StatusServer
from paper_trader.monitoring.vitals import candle_ages
from paper_trader.risk.breakers import (
    ACCOUNT_DEFICIT,
    DAILY_LOSS,
    EMERGENCY_STOP,
    LOSING_STREAK,
    MANUAL_PAUSE,
    MAX_DRAWDOWN,
)
from paper_trader.runtime.latency import LatencySnapshot
from paper_trader.settings import Settings

if TYPE_CHECKING:  # the prediction stack loads only where it runs
    from paper_trader.prediction.stage import PredictionStage

ACCOUNT_BREAKERS = (
    ACCOUNT_DEFICIT, EMERGENCY_STOP, MAX_DRAWDOWN, DAILY_LOSS, LOSING_STREAK, MANUAL_PAUSE,
)  # fmt: skip


def http_service(
    settings: Settings,
    path: DecisionPath,
    control: Control,
    reports: Reports,
    *,
    health: HealthProvider,
    notifier: Notifier | None,
    feed: FeedProvider = no_feed,
) -> HttpService:
    """Return the HTTP service on ``HEALTH_HOST:HEALTH_PORT``; ``feed`` tells the dashboard
    where the status feed listens (its port is known once it has started)."""
    pauses = GcPauses()
    sources = MetricsSources(
        market=market_counts(path.engine, path.feed),
        predictions=prediction_counts(path.models.stage),
        notifications=channel_counts(notifier),
        decision_latency=lambda: _latency(path.engine),
        inference_latency=path.models.stage.predictor.latency.snapshot,
        gc_pauses=pauses.snapshot,
        breakers=ACCOUNT_BREAKERS,
    )
    service = HttpService(
        ApiSources(control=control, reports=reports, health=health),
        Metrics(sources, control, reports, health),
        host=settings.health_host,
        port=settings.health_port,
        all_ready=path.all_ready.is_set,
        feed=feed,
    )
    pauses.watch_while(service)
    return service


def feed_link(settings: Settings, server: Callable[[], StatusServer | None]) -> FeedProvider:
    """Return where the status feed ``server()`` listens, for the dashboard: None until it
    does (its port is bound when it starts: 0 picks a free one)."""
    token_required = settings.status_ws_token is not None

    def provide() -> FeedLink | None:
        feed = server()
        if feed is None or feed.port is None:
            return None
        return FeedLink(port=feed.port, token_required=token_required)

    return provide


def _latency(engine: DecisionEngine) -> LatencySnapshot | None:
    return None if engine.latency is None else engine.latency.snapshot()


def market_counts(engine: DecisionEngine, feed: MarketFeed | None) -> Callable[[], MarketCounts]:
    """Return the decision task's and the feed's candle counters, and each series' candle age."""

    def provide() -> MarketCounts:
        stats = engine.stats()
        counters = feed.counters() if feed is not None else {}
        return MarketCounts(
            processed=stats.candles_processed,
            rejected=stats.candles_rejected,
            dropped=stats.candles_dropped,
            failed=stats.candles_failed,
            late=stats.candles_late,
            reconnects=counters.get("reconnects", 0),
            backfilled=counters.get("backfilled", 0),
            duplicates=counters.get("duplicates", 0),
            malformed=counters.get("malformed", 0),
            candle_age_s=()
            if feed is None
            else candle_ages(engine.last_closes(), feed.venue_clock.now_ms()),
        )

    return provide


def prediction_counts(stage: "PredictionStage") -> Callable[[], PredictionCounts | None]:
    """Return the predictor's counters."""

    def provide() -> PredictionCounts:
        stats = stage.predictor.stats()
        return PredictionCounts(
            batches=_int(stats.get("batches")),
            rows=_int(stats.get("rows")),
            failures=_int(stats.get("failures")),
            timeouts=_int(stats.get("timeouts")),
            breaker_open=stats.get("breaker") != "closed",
        )

    return provide


def channel_counts(notifier: Notifier | None) -> Callable[[], tuple[ChannelCounts, ...]]:
    """Return each notification channel's counts (none without a notifier)."""

    def provide() -> tuple[ChannelCounts, ...]:
        if notifier is None:
            return ()
        pending = notifier.pending()
        return tuple(
            ChannelCounts(
                channel=name,
                pending=pending.get(name, 0),
                sent=s.delivered,
                retried=s.retried,
                failed=s.failed,
            )
            for name, s in sorted(notifier.stats().items())
        )

    return provide


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
