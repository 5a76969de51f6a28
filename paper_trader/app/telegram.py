"""The composition root's Telegram bot: its console over the run's parts, and its providers.

``telegram_bot`` returns None (and says so once) without ``TELEGRAM_BOT_TOKEN``; otherwise the
``TelegramBot`` service, whose ``Console`` reaches the trading stage, the read-only connection,
the writer (for the audit), and the health and model providers built here.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

import aiosqlite

from paper_trader.clock import Clock
from paper_trader.control.api import Control
from paper_trader.control.audit import CommandAudit
from paper_trader.control.console import Console
from paper_trader.control.health import assess_health
from paper_trader.control.reports import Reports
from paper_trader.control.system import HealthView, ModelInfo, SystemInfo
from paper_trader.monitoring.health import HealthSnapshot
from paper_trader.runtime.logs import get_logger
from paper_trader.settings import Settings
from paper_trader.storage import StorageWriter
from paper_trader.trading.stage import TradingStage

if TYPE_CHECKING:  # the prediction stack loads only where it runs
    from paper_trader.interfaces.notify.pacing import TelegramPacing
    from paper_trader.interfaces.telegram.bot import TelegramBot
    from paper_trader.prediction.stage import PredictionStage

log = get_logger("app")


def telegram_bot(  # noqa: PLR0917 -- the run's parts the console reaches, handed over by build
    settings: Settings,
    trading: TradingStage,
    reader: aiosqlite.Connection,
    writer: StorageWriter,
    clock: Clock,
    interval_ms: int,
    *,
    health: Callable[[], HealthView | None],
    model: Callable[[], ModelInfo | None],
    pacing: "TelegramPacing | None" = None,
) -> "TelegramBot | None":
    """Return the bot service, or None when ``TELEGRAM_BOT_TOKEN`` is empty (said once);
    ``pacing`` is shared with the notifier (default: the bot's own)."""
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value():
        log.info("telegram_off", reason="TELEGRAM_BOT_TOKEN is empty")
        return None
    from paper_trader.interfaces.telegram.bot import BotConfig, TelegramBot  # noqa: PLC0415

    if not settings.telegram_chat_id:
        log.warning("telegram_no_chat", hint="set TELEGRAM_CHAT_ID: nobody may command the bot")
    console = Console(
        control=Control(trading, reader, interval_ms=interval_ms),
        reports=Reports(trading, reader, monte_carlo_runs=settings.monte_carlo_runs),
        system=SystemInfo(
            health=health, model=model, config=settings.effective, log_dir=settings.log_dir
        ),
        audit=CommandAudit(writer.write, now_ms=clock.now_ms, reader=reader),
        interval_ms=interval_ms,
        now_ms=clock.now_ms,
    )
    config = BotConfig(
        token=token.get_secret_value(),
        api_url=settings.telegram_api_url,
        chats=frozenset(settings.telegram_chat_id),
        users=frozenset(settings.telegram_allowed_users),
    )
    return TelegramBot(config, console, clock=clock, pacing=pacing)


def health_provider(
    latest: Callable[[], HealthSnapshot | None],
) -> Callable[[], HealthView | None]:
    """Return the latest health check as a ``HealthView`` (None before the first).

    ``latest`` is ``lambda: monitor.latest``: the monitor is built after the bot, since the bot
    is one of the components it checks.
    """

    def provide() -> HealthView | None:
        snap = latest()
        if snap is None:
            return None
        assessed = assess_health(snap.components)
        return HealthView(
            status=snap.status,
            score=assessed.score,
            limits=assessed.limits,
            components=snap.components,
            rss_mb=snap.rss_mb,
            cpu_percent=snap.cpu_percent,
            loop_lag_ms=snap.loop_lag_ms,
            checked_ms=snap.checked_ms or None,
            tasks=snap.tasks,
            threads=snap.threads,
            open_fds=snap.open_fds,
        )

    return provide


def model_provider(stage: "PredictionStage") -> Callable[[], ModelInfo | None]:
    """Return the model in use, its walk-forward and live accuracy, weights and drift."""

    def provide() -> ModelInfo | None:
        predictor, monitor = stage.predictor, stage.monitor
        bundle, ensemble = predictor.bundle, predictor.ensemble
        stats = monitor.stats()
        live = stats.get("live")
        ensemble_scores = live.get("ensemble", {}) if isinstance(live, dict) else {}
        alerts = stats.get("alerts")
        worst = stats.get("psi_worst")
        return ModelInfo(
            version=bundle.version if bundle else None,
            walk_forward_accuracy=_number(stats.get("walk_forward_accuracy")),
            live_accuracy=_number(ensemble_scores.get("accuracy")),
            resolved=int(str(stats.get("resolved", 0))),
            pending=int(str(stats.get("pending", 0))),
            weights=tuple(sorted(ensemble.weights().items())) if ensemble else (),
            drift=tuple((str(n), float(v)) for n, v in worst) if isinstance(worst, list) else (),
            alerts=tuple(k for k, on in alerts.items() if on) if isinstance(alerts, dict) else (),
            blocked=predictor.entries_blocked(),
        )

    return provide


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
