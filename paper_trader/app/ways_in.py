"""The operator's ways in on a live run: the Telegram bot and the notifier that serves the outbox.

Both need the run's read-only connection, so a replay (no reader) has neither. The bot answers
``/health`` from the health monitor, which is built after it (the bot is one of the components
the monitor checks): ``health_of`` hands the monitor over once it exists.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from paper_trader.app.ledger import RunPlan
from paper_trader.app.notify import build_notifier
from paper_trader.app.stages import DecisionPath, Shared
from paper_trader.app.telegram import health_provider, model_provider, telegram_bot
from paper_trader.clock import Clock
from paper_trader.interfaces.notify.service import Notifier
from paper_trader.interfaces.telegram.bot import TelegramBot
from paper_trader.monitoring.health import HealthMonitor, HealthSnapshot
from paper_trader.settings import Settings


@dataclass(slots=True)
class WaysIn:
    """The bot and the notifier of one run (None when off), and the monitor the bot reads."""

    bot: TelegramBot | None = None
    notifier: Notifier | None = None
    _monitor: list[HealthMonitor] = field(default_factory=list)

    def __iter__(self) -> Iterator[TelegramBot | Notifier]:
        """Yield the services that are on."""
        yield from (s for s in (self.bot, self.notifier) if s is not None)

    def health_of(self, monitor: HealthMonitor) -> None:
        """Let the bot read ``monitor``'s latest check from now on."""
        self._monitor[:] = [monitor]

    def latest_health(self) -> HealthSnapshot | None:
        """Return the monitor's latest check, None before the monitor or its first check."""
        return self._monitor[0].latest if self._monitor else None


def ways_in(
    settings: Settings, shared: Shared, path: DecisionPath, plan: RunPlan, clock: Clock
) -> WaysIn:
    """Return the bot and the notifier of a live run (see the module's docstring)."""
    found = WaysIn()
    if plan.reader is None:
        return found
    found.bot = telegram_bot(
        settings,
        path.trading,
        plan.reader,
        shared.writer,
        clock,
        plan.series[0][2].ms,
        health=health_provider(found.latest_health),
        model=model_provider(path.models.stage),
    )
    found.notifier = build_notifier(
        settings, plan.reader, shared.writer, clock, telegram_api_url=settings.telegram_api_url
    )
    return found
