"""Building one run's components from the settings, and handing them to the supervisor.

The order the services are added is the start order; the supervisor stops them in reverse.
Without a replay ``source`` (``run``, ``demo``), candles come from the live market feed of
``EXCHANGE``; ``plan.series`` are the series handled (``SYMBOLS`` or the replayed files', and
the exit-only series of positions outside ``SYMBOLS``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from paper_trader.app import supervision
from paper_trader.app.ledger import RunPlan
from paper_trader.app.retention import Retention, RetentionPolicy
from paper_trader.app.stages import Shared, decision_path, shared_parts
from paper_trader.app.ways_in import ways_in
from paper_trader.clock import Clock
from paper_trader.control.api import Control
from paper_trader.domain import MarketItem
from paper_trader.engine import DecisionEngine
from paper_trader.exchange.feed import MarketFeed
from paper_trader.interfaces.control_socket import ControlSocket, socket_path
from paper_trader.interfaces.trade_files import TradeFiles
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.events import EventRecorder
from paper_trader.runtime.sdnotify import SystemdNotifier, WatchdogService
from paper_trader.runtime.service import Service
from paper_trader.runtime.supervisor import Supervisor
from paper_trader.settings import Settings
from paper_trader.storage import AppendOutbox, StorageWriter
from paper_trader.trading.stage import TradingStage

SourceFactory = Callable[[BlockingChannel[MarketItem]], Service]


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """The services of one run, in their start order."""

    writer: StorageWriter
    recorder: EventRecorder
    health: HealthMonitor
    files: TradeFiles
    lifecycle: Service | None  # the model lifecycle, when the daemon (re)trains
    engine: DecisionEngine
    ends_daemon: bool  # the engine's end ends the run: a replay's source ran out
    watchdog: WatchdogService | None
    market: Service  # the live feed, or the replay's source
    retention: Retention  # what the database forgets, by candle time
    commands: ControlSocket | None
    telegram: Service | None  # the bot, when TELEGRAM_BOT_TOKEN is set and the run is live
    notifier: Service | None  # the outbox's consumer, on a live run
    http: Service | None  # health, metrics and the read-only API, on a live run
    status: Service | None  # the status feed, on a live run
    announcer: Service | None  # the start-up and shutdown notices: the first to stop

    def add_to(self, supervisor: Supervisor) -> None:
        """Add every service to ``supervisor``, in the start order."""
        for service in (self.writer, self.recorder, self.health, self.files):
            supervisor.add(service)
        if self.lifecycle is not None:
            supervisor.add(self.lifecycle)
        supervisor.add(self.engine, ends_daemon=self.ends_daemon)
        if self.watchdog is not None:
            supervisor.add(self.watchdog)
        supervisor.add(self.market)
        supervisor.add(self.retention)
        extras = (
            *(self.commands, self.telegram, self.notifier, self.http, self.status),
            self.announcer,
        )
        for extra in extras:
            if extra is not None:
                supervisor.add(extra)


def build(
    settings: Settings,
    conn: aiosqlite.Connection,
    clock: Clock,
    notifier: SystemdNotifier,
    *,
    source: SourceFactory | None,
    plan: RunPlan,
) -> tuple[Supervisor, DecisionEngine]:
    """Wire the services of one run; return the supervisor holding them, and the engine."""
    shared = shared_parts(settings, conn, clock, live=source is None)
    path = decision_path(shared, plan, live=source is None)
    recorder = _recorder(shared)
    commands = _control_socket(path.trading, plan)
    supervisor = supervision.supervisor(
        settings, clock, shared.bus, notifier, on_ready=path.all_ready.set
    )
    operator = ways_in(
        settings,
        shared,
        path,
        plan,
        clock,
        recorder=recorder,
        stop_reason=lambda: supervisor.stop_reason,
    )
    models, engine = path.models, path.engine
    retention = Retention(
        shared.writer,
        RetentionPolicy.of(settings),
        candle_time=lambda: engine.stats().last_open_time_ms,
        clock=clock,
    )
    components = supervision.present(
        *(supervisor, shared.writer, recorder, engine, path.quality, models.stage),
        path.trading,
        *(engine.features, path.feed, models.lifecycle, path.files, commands, *operator),
        retention,
    )
    monitor = supervision.health_monitor(
        components,
        settings,
        clock,
        shared.heartbeat,
        notifier,
        vitals=supervision.vitals(
            engine, supervisor, path.feed.venue_clock.now_ms if path.feed else None
        ),
    )
    operator.health_of(monitor)
    Services(
        writer=shared.writer,
        recorder=recorder,
        health=monitor,
        files=path.files,
        lifecycle=models.lifecycle,
        engine=engine,
        ends_daemon=source is not None,
        watchdog=supervision.watchdog(notifier, shared.heartbeat),
        market=_market(path.feed, source, shared.candles),
        retention=retention,
        commands=commands,
        telegram=operator.bot,
        notifier=operator.notifier,
        http=operator.http,
        status=operator.status,
        announcer=operator.announcer,
    ).add_to(supervisor)
    return supervisor, engine


def _recorder(shared: Shared) -> EventRecorder:
    """Return the service that writes the bus's events to the outbox (not the ledger's own)."""
    return EventRecorder(
        shared.bus.subscribe(), lambda event: shared.writer.write(AppendOutbox(event=event))
    )


def _market(
    feed: MarketFeed | None, source: SourceFactory | None, candles: BlockingChannel[MarketItem]
) -> Service:
    """Return the service that puts candles on the channel: the live feed or the replay."""
    if feed is not None:
        return feed
    assert source is not None  # a run without a feed replays
    return source(candles)


def _control_socket(trading: TradingStage, plan: RunPlan) -> ControlSocket | None:
    """Return the live daemon's way in for the CLI (Telegram's, later); None otherwise."""
    if plan.reader is None:
        return None
    control = Control(trading, plan.reader, interval_ms=plan.series[0][2].ms)
    return ControlSocket(control, socket_path(plan.db_path))
