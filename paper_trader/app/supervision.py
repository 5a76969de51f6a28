"""The supervisor of one run, the health monitor over its components, the systemd watchdog."""

from collections.abc import Callable, Mapping

from paper_trader.app.configs import restart_policy
from paper_trader.app.signals import on_stopping
from paper_trader.clock import Clock
from paper_trader.engine import DecisionEngine
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.monitoring.vitals import Book, Vitals
from paper_trader.runtime import logs
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.heap import freeze_warm_heap
from paper_trader.runtime.sdnotify import Heartbeat, SystemdNotifier, WatchdogService
from paper_trader.runtime.service import HealthReporter
from paper_trader.runtime.supervisor import Supervisor
from paper_trader.settings import Settings
from paper_trader.trading.stage import TradingStage

_log = logs.get_logger("supervisor")


def supervisor(
    settings: Settings,
    clock: Clock,
    bus: EventBus,
    notifier: SystemdNotifier,
    *,
    on_ready: Callable[[], None],
) -> Supervisor:
    """Return the supervisor: restarts with backoff, systemd told when all are ready."""
    return Supervisor(
        policy=restart_policy(settings),
        clock=clock,
        events=bus,
        shutdown_timeout_s=settings.shutdown_timeout,
        on_ready=lambda: _all_ready(notifier, on_ready),
        on_stopping=lambda: on_stopping(notifier, settings.shutdown_timeout),
    )


def _all_ready(notifier: SystemdNotifier, then: Callable[[], None]) -> None:
    """Every service serves: the warm-up is over, so its heap is frozen before systemd hears."""
    frozen = freeze_warm_heap()
    _log.info("heap_frozen", objects=frozen)
    notifier.ready("ready")
    then()


def health_monitor(
    components: list[HealthReporter],
    settings: Settings,
    clock: Clock,
    heartbeat: Heartbeat,
    notifier: SystemdNotifier,
    *,
    vitals: Vitals | None = None,
) -> HealthMonitor:
    """Return the health monitor of ``components``, publishing to systemd's status line and
    writing ``LOG_DIR/performance.log`` (through the logging set-up) every check."""
    watchdog_s = notifier.watchdog_interval_s
    return HealthMonitor(
        components,
        clock=clock,
        interval_s=settings.health_check_interval,
        heartbeat_age_s=heartbeat.age_s,
        stale_after_s=max(30.0, 4 * (watchdog_s or 0.0)),
        publish_status=notifier.status,
        vitals=vitals,
        write_performance=logs.write_performance,
        candle_interval_s=settings.interval.ms / 1000,
    )


def vitals(
    engine: DecisionEngine, supervisor: Supervisor, venue_now_ms: Callable[[], int] | None
) -> Vitals:
    """Return the readers of the run's vital signs: the engine's candles, aged on the venue's
    clock (a live run only: a replay's candle times are not now), its stages' counts
    (predictions; errors: failed candles, failed inferences, prediction and trading faults, and
    the supervisor's restarts), the feature cache's hit rate and the book."""
    prediction, features = engine.prediction, engine.features
    cache = None if features is None else features.cache
    return Vitals(
        candle_closes=_no_closes if venue_now_ms is None else engine.last_closes,
        venue_now_ms=venue_now_ms,
        predictions=None if prediction is None else lambda: prediction.predictor.counts()[0],
        errors=lambda: _errors(engine, supervisor),
        cache_hit_rate=None if cache is None else lambda: cache.counters.hit_rate,
        book=lambda: _book(engine.trading),
    )


def _no_closes() -> Mapping[str, int]:
    return {}


def _errors(engine: DecisionEngine, supervisor: Supervisor) -> int:
    """Return the errors counted so far by the engine, its stages and the supervisor."""
    count = engine.stats().candles_failed + supervisor.restarts
    if engine.prediction is not None:
        count += engine.prediction.errors + engine.prediction.predictor.counts()[1]
    return count + (0 if engine.trading is None else engine.trading.errors)


def _book(trading: TradingStage | None) -> Book | None:
    """Return the open positions and the equity at the latest closes, once restored."""
    if trading is None or not trading.started.is_set():
        return None
    trader = trading.trader
    equity = float(trader.ledger.equity(trader.marks))
    return Book(open_positions=len(trader.ledger.positions), equity=equity)


def watchdog(notifier: SystemdNotifier, heartbeat: Heartbeat) -> WatchdogService | None:
    """Return the systemd watchdog's pinger when systemd asked for one (``WATCHDOG_USEC``)."""
    watchdog_s = notifier.watchdog_interval_s
    if watchdog_s is None:
        return None
    return WatchdogService(notifier, heartbeat, interval_s=watchdog_s, stale_after_s=2 * watchdog_s)


def present(*components: HealthReporter | None) -> list[HealthReporter]:
    """Return the components this run has, in their order (None: not in this run)."""
    return [c for c in components if c is not None]
