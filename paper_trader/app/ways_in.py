"""The operator's ways in on a live run: the Telegram bot, the notifier that serves the outbox
(and makes the reports), the HTTP service (health, metrics, read-only API), the status feed,
and the announcer of start-up and shutdown.

All need the run's read-only connection, so a replay (no reader) has none of them. The bot answers
``/health`` from the health monitor, which is built after it (the bot and the HTTP service are
components the monitor checks): ``health_of`` hands the monitor over once it exists.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from paper_trader.app.announce import Announcer, RunFacts
from paper_trader.app.http import feed_link, http_service
from paper_trader.app.ledger import RunPlan
from paper_trader.app.notify import build_notifier
from paper_trader.app.stages import DecisionPath, Shared
from paper_trader.app.status import FeedSnapshot, status_feed
from paper_trader.app.telegram import health_provider, model_provider, telegram_bot
from paper_trader.clock import Clock
from paper_trader.control.api import Control
from paper_trader.control.reports import Reports
from paper_trader.interfaces.http.service import HttpService
from paper_trader.interfaces.notify.pacing import TelegramPacing
from paper_trader.interfaces.notify.reports import ReportMaker
from paper_trader.interfaces.notify.service import Notifier
from paper_trader.interfaces.status.server import StatusServer
from paper_trader.interfaces.telegram.bot import TelegramBot
from paper_trader.monitoring.health import HealthMonitor, HealthSnapshot
from paper_trader.runtime.events import EventRecorder
from paper_trader.settings import Settings


@dataclass(slots=True)
class WaysIn:
    """The bot, the notifier, the HTTP service and the announcer of one run (None when off),
    and the monitor the bot and the HTTP service read."""

    bot: TelegramBot | None = None
    notifier: Notifier | None = None
    http: HttpService | None = None
    status: StatusServer | None = None
    announcer: Announcer | None = None
    _monitor: list[HealthMonitor] = field(default_factory=list)

    def __iter__(self) -> Iterator[TelegramBot | Notifier | HttpService | StatusServer]:
        """Yield the services that report their health."""
        services = (self.bot, self.notifier, self.http, self.status)
        yield from (s for s in services if s is not None)

    def health_of(self, monitor: HealthMonitor) -> None:
        """Let the bot read ``monitor``'s latest check from now on."""
        self._monitor[:] = [monitor]

    def latest_health(self) -> HealthSnapshot | None:
        """Return the monitor's latest check, None before the monitor or its first check."""
        return self._monitor[0].latest if self._monitor else None


def ways_in(
    settings: Settings,
    shared: Shared,
    path: DecisionPath,
    plan: RunPlan,
    clock: Clock,
    *,
    recorder: EventRecorder,
    stop_reason: Callable[[], str],
) -> WaysIn:
    """Return the bot, the notifier, the HTTP service, the status feed and the announcer of a
    live run (see the module's docstring); ``recorder`` tells the feed the events it records,
    ``stop_reason`` is the supervisor's, for the shutdown notice."""
    found = WaysIn()
    if plan.reader is None:
        return found
    model = model_provider(path.models.stage)
    health = health_provider(found.latest_health)
    control = Control(path.trading, plan.reader, interval_ms=plan.series[0][2].ms)
    pacing = TelegramPacing()  # one bot: its answers and the notifier share Telegram's limits
    found.bot = telegram_bot(
        settings,
        path.trading,
        plan.reader,
        shared.writer,
        clock,
        plan.series[0][2].ms,
        health=health,
        model=model,
        pacing=pacing,
    )
    reports = Reports(path.trading, plan.reader, monte_carlo_runs=settings.monte_carlo_runs)
    found.notifier = _notifier(
        settings, shared, plan, clock, ReportMaker(control, reports, health), pacing
    )
    found.http = http_service(
        settings,
        path,
        control,
        reports,
        health=health,
        notifier=found.notifier,
        feed=feed_link(settings, lambda: found.status),
    )
    snapshot = FeedSnapshot(
        control, reports, plan.reader, path.quality, path.trading, health=health, model=model
    )
    http = found.http
    found.status = status_feed(
        settings, clock, path.trading, recorder, snapshot, dashboard_port=lambda: http.port
    )
    found.announcer = Announcer(
        _facts(settings, plan),
        control,
        shared.writer,
        clock,
        all_ready=path.all_ready,
        model=model,
        stop_reason=stop_reason,
        reader=plan.reader,
    )
    return found


def _notifier(  # noqa: PLR0917 -- the run's parts, handed over by ways_in
    settings: Settings,
    shared: Shared,
    plan: RunPlan,
    clock: Clock,
    reports: ReportMaker,
    pacing: TelegramPacing,
) -> Notifier:
    """Return the notifier of a live run, with the maker of its reports."""
    assert plan.reader is not None  # a live run
    return build_notifier(
        settings,
        plan.reader,
        shared.writer,
        clock,
        telegram_api_url=settings.telegram_api_url,
        expand=reports.expand,
        pacing=pacing,
    )


def _facts(settings: Settings, plan: RunPlan) -> RunFacts:
    """Return what the start-up notice says of the run."""
    followed = {key[1] for key in plan.exit_only.followed}
    exit_only = [*sorted(followed), *(symbol for symbol, _ in plan.exit_only.unlisted)]
    return RunFacts(
        mode=plan.mode,
        exchange=settings.exchange.value,
        interval=settings.interval.value,
        symbols=tuple(key[1] for key in plan.series if key[1] not in followed),
        exit_only=tuple(exit_only),
    )
