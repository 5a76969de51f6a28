"""The composition root: builds every component from settings, runs them, shuts down in order.

Over 400 lines for now: the composition root wires every part; issue 14 splits it into the
``app/`` package (daemon, replay, report, backup, the settings translation).

This is the only module that wires parts together. Resources open in an ``AsyncExitStack``
(lock → database → …) and close in reverse, iff they opened; services run under the
supervisor, which stops them in the reverse of their start order.
"""

import asyncio
import contextlib
import faulthandler
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from paper_trader import __version__
from paper_trader.app.ledger import RunPlan, plan_run
from paper_trader.app.trading import build_trading_stage
from paper_trader.clock import Clock, SystemClock
from paper_trader.control.api import Control
from paper_trader.control.report import Report, build_report
from paper_trader.domain import (
    Candle,
    Event,
    EventKind,
    Gap,
    Interval,
    MarketItem,
    PredictionRow,
    Severity,
    Venue,
)
from paper_trader.domain.symbols import parse_pair
from paper_trader.engine import DecisionEngine, EngineStats, stall_event
from paper_trader.errors import ConfigError
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.bitvavo import BitvavoAdapter
from paper_trader.exchange.download import DownloadResult, download
from paper_trader.exchange.feed import FeedConfig, MarketFeed
from paper_trader.exchange.kraken import KrakenAdapter
from paper_trader.exchange.wire import Subscription, VenueAdapter
from paper_trader.features.cache import CacheConfig, FeatureCache
from paper_trader.features.engine import SeriesKey
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import FeatureStage, rows_within
from paper_trader.interfaces.control_socket import ControlSocket, socket_path
from paper_trader.interfaces.trade_files import TradeFiles
from paper_trader.market.aligner import InstantAligner
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.market.csv_replay import CsvReplaySource
from paper_trader.market.quality import QualityConfig, QualityMonitor
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.events import EventBus, EventRecorder
from paper_trader.runtime.logs import (
    LogConfig,
    LogFormat,
    LoggingHandle,
    configure_logging,
    get_logger,
)
from paper_trader.runtime.sdnotify import Heartbeat, SystemdNotifier, WatchdogService
from paper_trader.runtime.service import HealthReporter, Service
from paper_trader.runtime.supervisor import Outcome, RestartPolicy, Supervisor
from paper_trader.runtime.versions import package_versions
from paper_trader.settings import Settings
from paper_trader.storage import (
    AppendOutbox,
    BackupResult,
    DatabaseLock,
    RecordGap,
    RecordRunStop,
    RunStart,
    SetMetadata,
    StorageWriter,
    UpsertCandles,
    apply_transaction,
    backup_database,
    candles_to_resume,
    last_open_time,
    migrate,
    open_database,
    open_reader,
    pending_predictions,
    start_run,
)

log = get_logger("app")

SourceFactory = Callable[[BlockingChannel[MarketItem]], Service]
AdapterFactory = Callable[..., VenueAdapter]
_ADAPTERS: dict[Venue, AdapterFactory] = {
    Venue.BINANCE: BinanceAdapter,
    Venue.BITVAVO: BitvavoAdapter,
    Venue.KRAKEN: KrakenAdapter,
}
CANDLE_CHANNEL_CAPACITY = 10_000
DEADLINE_GRACE_S = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRequest:
    """What ``replay`` was asked to do: one CSV per symbol, in the same order."""

    csvs: tuple[Path, ...]
    symbols: tuple[str, ...]
    interval: Interval
    venue: Venue
    db_path: Path

    def series(self) -> list[SeriesKey]:
        """Return the replayed series."""
        return [(self.venue, symbol, self.interval) for symbol in self.symbols]


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonRun:
    """How one run of the daemon went."""

    outcome: Outcome
    engine: EngineStats
    elapsed_s: float
    interrupted_by: str | None = None  # a replay stopped by this signal before its end

    @property
    def exit_code(self) -> int:
        """Return the process's exit code: 128 + the signal for an interrupted replay."""
        if self.interrupted_by is not None and self.outcome.exit_code == 0:
            return 128 + signal.Signals[self.interrupted_by].value
        return self.outcome.exit_code


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """The outcome of a replay and the summary of its database."""

    run: DaemonRun
    report: Report

    def to_json(self) -> dict[str, object]:
        """Return the replay summary: the report plus this run's figures."""
        engine = self.run.engine
        elapsed = self.run.elapsed_s
        return {
            **self.report.to_json(),
            "replay": {
                "candles_processed": engine.candles_processed,
                "candles_dropped": engine.candles_dropped,
                "candles_rejected": engine.candles_rejected,
                "elapsed_s": round(elapsed, 3),
                "candles_per_s": round(engine.candles_processed / elapsed) if elapsed else None,
                "partial": self.run.interrupted_by is not None,
                "interrupted_by": self.run.interrupted_by,
                "exit_code": self.run.exit_code,
            },
        }


def log_config(settings: Settings, *, files: bool = True) -> LogConfig:
    """Return the logging configuration the settings describe."""
    return LogConfig(
        level=settings.log_level,
        format=LogFormat(settings.log_format),
        directory=settings.log_dir if files else None,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
        secrets=settings.secrets(),
    )


def run_daemon(settings: Settings) -> int:
    """Run the daemon until SIGTERM/SIGINT or a fatal error; return the exit code.

    Raise ``ConfigError`` if the outside world refused a setting while running (exit code 2).
    """
    outcome = run_live(settings).outcome
    if outcome.refusal:
        raise ConfigError(outcome.refusal)
    return outcome.exit_code


def run_live(
    settings: Settings, *, mode: str = "run", stop_after_s: float | None = None
) -> DaemonRun:
    """Run the daemon on the live feed until a signal, a fatal error or ``stop_after_s``."""
    logs = configure_logging(log_config(settings))
    try:
        return asyncio.run(
            _run(settings, settings.db_path, mode, logs, source=None, stop_after_s=stop_after_s)
        )
    except ConfigError as exc:
        # A refusal is an answer, not a crash: one line, no traceback (the CLI prints it too).
        log.error("startup_refused", error=str(exc))  # noqa: TRY400
        raise
    finally:
        logs.close()


def run_replay(settings: Settings, request: ReplayRequest) -> ReplayResult:
    """Validate the CSVs, stream them merged by time through the daemon, summarise the database.

    Raise ``ConfigError`` if the CSV and symbol counts differ.
    """
    if len(request.csvs) != len(request.symbols):
        raise ConfigError(
            f"{len(request.csvs)} --csv file(s) but {len(request.symbols)} --symbol(s): "
            "give one symbol per file, in the same order"
        )
    csvs = [
        CandleCsv(path, venue=request.venue, symbol=symbol, interval=request.interval)
        for path, symbol in zip(request.csvs, request.symbols, strict=True)
    ]
    logs = configure_logging(log_config(settings))
    try:
        for csv, path in zip(csvs, request.csvs, strict=True):
            rows = csv.validate()
            log.info("replay_validated", component="replay", csv=str(path), rows=rows)
        return asyncio.run(_replay(settings, request, csvs, logs))
    finally:
        logs.close()


async def _replay(
    settings: Settings, request: ReplayRequest, csvs: list[CandleCsv], logs: LoggingHandle
) -> ReplayResult:
    run = await _run(
        settings,
        request.db_path,
        "replay",
        logs,
        source=lambda out: CsvReplaySource(csvs, out),
        series=request.series(),
    )
    return ReplayResult(run=run, report=await report_database(request.db_path))


async def report_database(db_path: Path) -> Report:
    """Open ``db_path`` read-only and summarise it."""
    reader = await open_reader(db_path)
    try:
        return await build_report(reader, db_path)
    finally:
        await reader.close()


def report(db_path: Path) -> Report:
    """Summarise the database at ``db_path`` (read-only)."""
    return asyncio.run(report_database(db_path))


def backup(db_path: Path, out: Path, *, overwrite: bool) -> BackupResult:
    """Copy the database with SQLite's online backup API (safe while the daemon runs)."""
    return asyncio.run(backup_database(db_path, out, overwrite=overwrite))


async def _run(
    settings: Settings,
    db_path: Path,
    mode: str,
    logs: LoggingHandle,
    *,
    source: SourceFactory | None,
    stop_after_s: float | None = None,
    series: list[SeriesKey] | None = None,
) -> DaemonRun:
    clock = SystemClock()
    started = clock.monotonic()
    notifier = SystemdNotifier.from_environ(os.environ)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(notifier.close)
        # Disarms the last-resort exit timer that a stop arms, however this function leaves.
        stack.callback(faulthandler.cancel_dump_traceback_later)
        stack.enter_context(DatabaseLock.acquire(db_path))
        conn = await open_database(db_path)
        stack.push_async_callback(conn.close)
        await migrate(conn)
        live = source is None
        plan = await plan_run(
            settings,
            conn,
            clock,
            mode,
            db_path,
            series or _series(settings),
            adapter=(lambda: venue_adapter(settings)) if live else None,
        )
        if plan.reader is not None:
            stack.push_async_callback(plan.reader.close)
        run_id = await start_run(
            conn,
            RunStart(
                started_at_ms=clock.now_ms(),
                mode=mode,
                pid=os.getpid(),
                app_version=__version__,
                config_hash=settings.config_hash(),
                versions_json=json.dumps(_versions(), sort_keys=True),
            ),
        )
        log.info("daemon_starting", mode=mode, db=str(db_path), run_id=run_id)
        supervisor, engine = _build(settings, conn, clock, notifier, source=source, plan=plan)
        timer = (
            asyncio.get_running_loop().call_later(
                stop_after_s, supervisor.request_stop, f"ran for {stop_after_s:g} s"
            )
            if stop_after_s
            else None
        )
        with _stop_on_signals(supervisor):
            outcome = await supervisor.run()
        if timer is not None:
            timer.cancel()
        if outcome.deadline_exceeded:
            _exit_now(logs)
        run = DaemonRun(
            outcome=outcome,
            engine=engine.stats(),
            elapsed_s=clock.monotonic() - started,
            interrupted_by=_interrupted_replay(mode, outcome),
        )
        stop = RecordRunStop(run_id=run_id, stopped_at_ms=clock.now_ms(), exit_code=run.exit_code)
        await apply_transaction(conn, [stop])
    log.info("daemon_stopped", exit_code=run.exit_code, reason=outcome.reason)
    return run


def _interrupted_replay(mode: str, outcome: Outcome) -> str | None:
    """Return the signal that stopped a replay before its end, if one did."""
    names = {s.name for s in STOP_SIGNALS}
    return outcome.reason if mode == "replay" and outcome.reason in names else None


def _build(
    settings: Settings,
    conn: aiosqlite.Connection,
    clock: Clock,
    notifier: SystemdNotifier,
    *,
    source: SourceFactory | None,
    plan: RunPlan,
) -> tuple[Supervisor, DecisionEngine]:
    """Wire the services; the order they are added is the start order.

    Without a ``source`` (``run``), candles come from the live market feed of ``EXCHANGE``.
    ``plan.series`` are the series handled (``SYMBOLS`` or the replayed files', and the
    exit-only series of positions outside ``SYMBOLS``).
    """
    series = plan.series
    writer = StorageWriter(conn)
    bus = EventBus()
    heartbeat = Heartbeat(clock)
    candles: BlockingChannel[MarketItem] = BlockingChannel(
        CANDLE_CHANNEL_CAPACITY, on_full=None if source else _warn_candles_backlogged
    )
    quality = QualityMonitor(quality_config(settings))
    feed = (
        None if source else _market_feed(settings, conn, writer, bus, clock, candles, series=series)
    )
    # scikit-learn, XGBoost and skops take seconds to import: only the daemon's paths pay.
    from paper_trader.app.models import build_model_parts  # noqa: PLC0415

    all_ready = asyncio.Event()

    async def history_stored() -> None:
        """Wait for the warm-up: the feed ready, the engine caught up, the writer flushed."""
        await all_ready.wait()
        await engine.caught_up()
        await writer.write(SetMetadata(key="history_stored_ms", value=str(clock.now_ms())))

    models = build_model_parts(
        settings,
        default_spec(),
        writer,
        bus,
        clock,
        retrain=source is None,
        start_gate=history_stored,
        pending=lambda: unresolved_predictions(conn),
    )
    venue_now = feed.venue_clock.now_ms if feed else None
    # Only the live daemon writes LOG_DIR's trade files; demo and replay keep theirs beside
    # their own database.
    live_files = plan.mode == "run"
    files = TradeFiles(settings.log_dir) if live_files else TradeFiles.beside(plan.db_path)
    trading = build_trading_stage(
        settings,
        conn,
        writer,
        bus,
        clock,
        series=series,
        spec=default_spec(),
        venue_now=venue_now,
        files=files,
        exit_only=plan.exit_only.symbols,
    )
    engine = DecisionEngine(
        candles,
        lambda batch: writer.submit(UpsertCandles(candles=batch)),
        heartbeat,
        quality=quality,
        events=bus,
        venue_now=venue_now,
        features=_feature_stage(settings, conn, clock, series, live=source is None),
        prediction=models.stage,
        trading=trading,
        aligner=InstantAligner(
            series,
            monotonic=clock.monotonic,
            stall_s=settings.series_stall_timeout,
            on_stall=lambda stall: bus.publish(stall_event(stall, clock.now_ms())),
        ),
    )
    recorder = EventRecorder(bus.subscribe(), lambda event: writer.write(AppendOutbox(event=event)))
    commands = None
    if plan.reader is not None:  # the live daemon: the CLI's way in (Telegram's, later)
        control = Control(trading, plan.reader, interval_ms=series[0][2].ms)
        commands = ControlSocket(control, socket_path(plan.db_path))
    supervisor = _supervisor(settings, clock, bus, notifier, on_ready=all_ready.set)
    watchdog_s = notifier.watchdog_interval_s
    health = HealthMonitor(
        [
            supervisor,
            writer,
            engine,
            quality,
            models.stage,
            trading,
            *_optional(engine.features, feed, models.lifecycle, files, commands),
        ],
        clock=clock,
        interval_s=settings.health_check_interval,
        heartbeat_age_s=heartbeat.age_s,
        stale_after_s=max(30.0, 4 * (watchdog_s or 0.0)),
        publish_status=notifier.status,
    )
    for service in (writer, recorder, health, files):
        supervisor.add(service)
    if models.lifecycle is not None:
        supervisor.add(models.lifecycle)
    supervisor.add(engine, ends_daemon=source is not None)
    if watchdog_s is not None:
        supervisor.add(
            WatchdogService(
                notifier, heartbeat, interval_s=watchdog_s, stale_after_s=2 * watchdog_s
            )
        )
    if feed is not None:
        supervisor.add(feed)
    elif source is not None:
        supervisor.add(source(candles))
    if commands is not None:
        supervisor.add(commands)
    return supervisor, engine


async def unresolved_predictions(conn: aiosqlite.Connection) -> list[PredictionRow]:
    """Return the prediction log's pending rows, to resume resolving them after a restart."""
    return [stored.prediction for stored in await pending_predictions(conn)]


def _feature_stage(
    settings: Settings,
    conn: aiosqlite.Connection,
    clock: Clock,
    series: list[SeriesKey],
    *,
    live: bool,
) -> FeatureStage:
    """Build the feature stage; only the live daemon resumes from the cache and SQLite."""
    spec = default_spec()
    keep = rows_within(
        settings.max_cache_memory_mb, len(series), len(spec.names), settings.feature_cache_size
    )
    cache = None
    if live and settings.cache_features:
        config = CacheConfig(
            directory=settings.cache_dir / "features",
            ttl_s=settings.cache_ttl_seconds,
            keep_rows=keep,
        )
        cache = FeatureCache(config, spec, clock.now_ms)

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
        monotonic=clock.monotonic,
    )


def _all_ready(notifier: SystemdNotifier, then: Callable[[], None]) -> None:
    notifier.ready("ready")
    then()


def _optional(*components: HealthReporter | None) -> list[HealthReporter]:
    return [c for c in components if c is not None]


def _supervisor(
    settings: Settings,
    clock: Clock,
    bus: EventBus,
    notifier: SystemdNotifier,
    *,
    on_ready: Callable[[], None],
) -> Supervisor:
    return Supervisor(
        policy=RestartPolicy(
            backoff=Backoff(
                base_s=settings.restart_backoff_base, cap_s=settings.restart_backoff_max
            ),
            healthy_run_s=settings.restart_healthy_after,
            crash_loop_restarts=settings.crash_loop_restarts,
            crash_loop_window_s=settings.crash_loop_window,
        ),
        clock=clock,
        events=bus,
        shutdown_timeout_s=settings.shutdown_timeout,
        on_ready=lambda: _all_ready(notifier, on_ready),
        on_stopping=lambda: _on_stopping(notifier, settings.shutdown_timeout),
    )


def _series(settings: Settings) -> list[SeriesKey]:
    return [(settings.exchange, s.symbol, s.interval) for s in subscriptions(settings)]


def _subscriptions_of(series: list[SeriesKey]) -> list[Subscription]:
    return [Subscription(parse_pair(symbol), interval) for _, symbol, interval in series]


def subscriptions(settings: Settings) -> list[Subscription]:
    """Return the series that ``SYMBOLS`` and ``INTERVAL`` describe."""
    return [Subscription(parse_pair(symbol), settings.interval) for symbol in settings.symbols]


def venue_adapter(
    settings: Settings, venue: Venue | None = None, subs: list[Subscription] | None = None
) -> VenueAdapter:
    """Return the adapter of ``venue`` (default ``EXCHANGE``) at its configured endpoints.

    Raise ``ConfigError`` if the venue does not stream the interval.
    """
    venue = venue or settings.exchange
    ws_url, rest_url = settings.endpoints(venue)
    subs = subscriptions(settings) if subs is None else subs
    return _ADAPTERS[venue](subs, ws_base=ws_url, rest_base=rest_url)


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadRequest:
    """What ``download`` was asked to fetch."""

    venue: Venue
    symbol: str
    interval: Interval
    days: float
    out: Path


def download_candles(settings: Settings, request: DownloadRequest) -> DownloadResult:
    """Fetch the last ``days`` of closed candles into a CSV, continuing an existing file."""
    sub = Subscription(parse_pair(request.symbol), request.interval)
    adapter = venue_adapter(settings, request.venue, [sub])
    return asyncio.run(
        download(adapter, sub, days=request.days, out=request.out, clock=SystemClock())
    )


def feed_config(settings: Settings) -> FeedConfig:
    """Return the feed's connection behaviour from the settings.

    With ``AUTO_TRAIN`` and no model yet, the warm-up reaches back ``TRAINING_CANDLES`` so that
    the first training has its history.
    """
    warmup = settings.warmup_candles
    if settings.auto_train and not (settings.models_dir / "current").is_file():
        warmup = max(warmup, settings.training_candles)
    return FeedConfig(
        warmup_candles=warmup,
        silence_timeout_s=settings.stream_silence_timeout,
        reconnect_base_s=settings.reconnect_backoff_base,
        reconnect_max_s=settings.reconnect_backoff_max,
        storm_reconnects=settings.reconnect_storm_count,
        storm_window_s=settings.reconnect_storm_window,
        failures_before_critical=settings.data_collection_failure_threshold,
    )


def quality_config(settings: Settings) -> QualityConfig:
    """Return the data-quality gate's settings."""
    return QualityConfig(
        enabled=settings.enable_data_quality_checks,
        min_score=settings.min_data_quality,
        window=settings.data_quality_window,
        jump_multiple=settings.price_jump_multiple,
        jump_history=min(30, settings.data_quality_window),
        recover_margin=min(5.0, 100.0 - settings.min_data_quality),
    )


def _market_feed(  # noqa: PLR0917 -- the composition root hands over what it built
    settings: Settings,
    conn: aiosqlite.Connection,
    writer: StorageWriter,
    bus: EventBus,
    clock: Clock,
    candles: BlockingChannel[MarketItem],
    *,
    series: list[SeriesKey],
) -> MarketFeed:
    subs = _subscriptions_of(series)
    adapter = venue_adapter(settings, subs=subs)

    async def last_stored(sub: Subscription) -> int | None:
        return await last_open_time(conn, adapter.venue, sub.symbol, sub.interval)

    async def record_gap(gap: Gap) -> None:
        # The data-quality score counts the missing candles when the engine sees the candle
        # after them (candle order), not here: a decision must not depend on when this ran.
        await writer.write(RecordGap(gap=gap, detected_at_ms=clock.now_ms()))  # then tell
        bus.publish(_gap_event(gap, clock.now_ms()))

    return MarketFeed(
        adapter,
        subs,
        emit=candles.put,
        emit_mark=candles.put,
        last_stored=last_stored,
        record_gap=record_gap,
        events=bus,
        clock=clock,
        config=feed_config(settings),
    )


def _gap_event(gap: Gap, now_ms: int) -> Event:
    return Event(
        kind=EventKind.DATA_GAP,
        severity=Severity.WARNING,
        message=(
            f"{gap.symbol} {gap.interval.value}: {gap.missing} candle(s) from "
            f"{gap.start_ms} cannot be filled ({gap.reason.value})"
        ),
        at_ms=now_ms,
        source="market_feed",
        data={
            "venue": gap.venue.value,
            "symbol": gap.symbol,
            "interval": gap.interval.value,
            "start_ms": gap.start_ms,
            "end_ms": gap.end_ms,
            "missing": gap.missing,
            "reason": gap.reason.value,
        },
    )


def _warn_candles_backlogged(blocked_puts: int) -> None:
    log.warning("candle_backlog_full", blocked_puts=blocked_puts)


def _on_stopping(notifier: SystemdNotifier, shutdown_timeout_s: float) -> None:
    """Tell systemd, and arm a last-resort dump-and-exit in case the loop itself is stuck."""
    notifier.stopping()
    faulthandler.dump_traceback_later(shutdown_timeout_s + DEADLINE_GRACE_S, exit=True)


def _exit_now(logs: LoggingHandle) -> None:
    """Leave at once with exit code 1: tasks ignored the shutdown deadline (already logged)."""
    log.error("exit_after_shutdown_deadline", exit_code=1)
    logs.close()
    sys.stderr.flush()
    os._exit(1)


@contextlib.contextmanager
def _stop_on_signals(supervisor: Supervisor) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into an orderly stop while the daemon runs."""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, supervisor.request_stop, signal.Signals(signum).name)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def _versions() -> dict[str, str]:
    """Return the versions that shape behaviour, for the run record."""
    packages = (
        "aiosqlite",
        "numpy",
        "pandas",
        "scikit-learn",
        "xgboost-cpu",
        "python-telegram-bot",
    )
    return {"paper_trader": __version__, **package_versions(packages)}
