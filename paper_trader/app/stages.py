"""The decision path of one run: the shared parts, the engine and the stages it drives.

Quality gate → features → prediction → trading, in the order a candle meets them, with the
live market feed in front (none in a replay) and the model lifecycle that (re)trains.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiosqlite

from paper_trader.app.configs import feature_cache_config, quality_config
from paper_trader.app.ledger import RunPlan
from paper_trader.app.market import market_feed
from paper_trader.app.trading import build_trading_stage
from paper_trader.clock import Clock
from paper_trader.domain import Candle, MarketItem, PredictionRow
from paper_trader.engine import DecisionEngine, stall_event
from paper_trader.exchange.feed import MarketFeed
from paper_trader.features.cache import FeatureCache
from paper_trader.features.engine import SeriesKey
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import FeatureStage, rows_within
from paper_trader.interfaces.trade_files import TradeFiles
from paper_trader.market.aligner import InstantAligner
from paper_trader.market.quality import QualityMonitor
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.latency import LatencyHistogram
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.settings import Settings
from paper_trader.storage import (
    SetMetadata,
    StorageWriter,
    UpsertCandles,
    candles_to_resume,
    ensemble_state,
    pending_predictions,
    quality_states,
)
from paper_trader.trading.stage import TradingStage

if TYPE_CHECKING:  # the prediction stack (scikit-learn, XGBoost) loads only where it runs
    from paper_trader.app.models import ModelParts
    from paper_trader.prediction.stage import PredictionStage

log = get_logger("app")

CANDLE_CHANNEL_CAPACITY = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Shared:
    """What the components of one run share: the writer, the event bus, the candle channel."""

    settings: Settings
    conn: aiosqlite.Connection
    clock: Clock
    writer: StorageWriter
    bus: EventBus
    heartbeat: Heartbeat
    candles: BlockingChannel[MarketItem]


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionPath:
    """The decision task, the stages it drives and the live feed that feeds it."""

    feed: MarketFeed | None  # None in a replay
    quality: QualityMonitor
    models: "ModelParts"
    files: TradeFiles
    trading: TradingStage
    engine: DecisionEngine
    all_ready: asyncio.Event  # set when every service is ready: the warm-up may start


def shared_parts(
    settings: Settings, conn: aiosqlite.Connection, clock: Clock, *, live: bool
) -> Shared:
    """Return the writer, bus, heartbeat and candle channel; only a live run warns of a backlog."""
    return Shared(
        settings=settings,
        conn=conn,
        clock=clock,
        writer=StorageWriter(conn),
        bus=EventBus(),
        heartbeat=Heartbeat(clock),
        candles=BlockingChannel(
            CANDLE_CHANNEL_CAPACITY, on_full=_warn_candles_backlogged if live else None
        ),
    )


def decision_path(shared: Shared, plan: RunPlan, *, live: bool) -> DecisionPath:
    """Wire the engine's stages; without ``live`` (a replay) there is no feed and no retraining."""
    quality = QualityMonitor(quality_config(shared.settings))
    feed = _feed(shared, plan.series) if live else None
    all_ready = asyncio.Event()
    models = _model_parts(
        shared, retrain=live, start_gate=lambda: _history_stored(shared, all_ready, engine)
    )
    venue_now = feed.venue_clock.now_ms if feed else None
    files = _trade_files(shared.settings, plan)
    trading = _trading_stage(shared, plan, venue_now=venue_now, files=files)
    engine = _decision_engine(
        shared, plan.series, quality, models.stage, trading, venue_now=venue_now, live=live
    )
    return DecisionPath(
        feed=feed,
        quality=quality,
        models=models,
        files=files,
        trading=trading,
        engine=engine,
        all_ready=all_ready,
    )


def _feed(shared: Shared, series: list[SeriesKey]) -> MarketFeed:
    return market_feed(
        shared.settings,
        shared.conn,
        shared.writer,
        shared.bus,
        shared.clock,
        shared.candles,
        series=series,
    )


async def _history_stored(shared: Shared, all_ready: asyncio.Event, engine: DecisionEngine) -> None:
    """Wait for the warm-up: the feed ready, the engine caught up, the writer flushed."""
    await all_ready.wait()
    await engine.caught_up()
    now_ms = shared.clock.now_ms()
    await shared.writer.write(SetMetadata(key="history_stored_ms", value=str(now_ms)))


def _model_parts(
    shared: Shared, *, retrain: bool, start_gate: Callable[[], Awaitable[None]]
) -> "ModelParts":
    # scikit-learn, XGBoost and skops take seconds to import: only the daemon's paths pay.
    from paper_trader.app.models import build_model_parts  # noqa: PLC0415

    return build_model_parts(
        shared.settings,
        default_spec(),
        shared.writer,
        shared.bus,
        shared.clock,
        retrain=retrain,
        start_gate=start_gate,
        pending=lambda: unresolved_predictions(shared.conn),
        state=lambda version: ensemble_state(shared.conn, version),
    )


async def unresolved_predictions(conn: aiosqlite.Connection) -> list[PredictionRow]:
    """Return the prediction log's pending rows, to resume resolving them after a restart."""
    return [stored.prediction for stored in await pending_predictions(conn)]


def _trade_files(settings: Settings, plan: RunPlan) -> TradeFiles:
    """Return the trade files: only the live daemon writes LOG_DIR's; demo and replay keep
    theirs beside their own database."""
    if plan.mode == "run":
        return TradeFiles(settings.log_dir)
    return TradeFiles.beside(plan.db_path)


def _trading_stage(
    shared: Shared,
    plan: RunPlan,
    *,
    venue_now: Callable[[], int] | None,
    files: TradeFiles,
) -> TradingStage:
    return build_trading_stage(
        shared.settings,
        shared.conn,
        shared.writer,
        shared.bus,
        shared.clock,
        series=plan.series,
        spec=default_spec(),
        venue_now=venue_now,
        files=files,
        exit_only=plan.exit_only.symbols,
    )


def _decision_engine(
    shared: Shared,
    series: list[SeriesKey],
    quality: QualityMonitor,
    prediction: "PredictionStage",
    trading: TradingStage,
    *,
    venue_now: Callable[[], int] | None,
    live: bool,
) -> DecisionEngine:
    bus, clock, writer = shared.bus, shared.clock, shared.writer
    return DecisionEngine(
        shared.candles,
        lambda judged: writer.submit(UpsertCandles.judged(judged)),
        shared.heartbeat,
        quality=quality,
        events=bus,
        venue_now=venue_now,
        features=feature_stage(shared, series, live=live),
        prediction=prediction,
        trading=trading,
        aligner=InstantAligner(
            series,
            monotonic=clock.monotonic,
            stall_s=shared.settings.series_stall_timeout,
            on_stall=lambda stall: bus.publish(stall_event(stall, clock.now_ms())),
        ),
        latency=LatencyHistogram(clock.monotonic) if live else None,
        quality_states=lambda: quality_states(shared.conn),
    )


def feature_stage(shared: Shared, series: list[SeriesKey], *, live: bool) -> FeatureStage:
    """Build the feature stage; only the live daemon resumes from the cache and SQLite."""
    settings, conn = shared.settings, shared.conn
    spec = default_spec()
    keep = rows_within(
        settings.max_cache_memory_mb, len(series), len(spec.names), settings.feature_cache_size
    )
    cache = None
    if live and settings.cache_features:
        config = feature_cache_config(settings, keep_rows=keep)
        cache = FeatureCache(config, spec, shared.clock.now_ms)

    async def history(key: SeriesKey, after_ms: int | None, count: int) -> list[Candle]:
        venue, symbol, interval = key
        return await candles_to_resume(
            conn, venue, symbol, interval, after_ms=after_ms, count=count
        )

    return FeatureStage(
        spec,
        series if live else [],
        keep_rows=keep,
        cache=cache,
        history=history if live else None,
        monotonic=shared.clock.monotonic,
    )


def _warn_candles_backlogged(blocked_puts: int) -> None:
    log.warning("candle_backlog_full", blocked_puts=blocked_puts)
