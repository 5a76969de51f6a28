"""The Telegram bot over a real trading stage, its Control, SQLite, and the fake Bot API server.

``running_bot`` runs the real ``TelegramBot`` service (real PTB, real HTTP over loopback) against
a ``FakeTelegram``, with a ``Console`` over the control rig's running stage and writer; the
health and model providers and the log directory are the test's.
"""

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fakes.control_rig import Rig, running_rig
from fakes.telegram_server import FakeTelegram, SentMessage

from paper_trader.clock import SystemClock
from paper_trader.control.audit import CommandAudit
from paper_trader.control.console import Console
from paper_trader.control.reports import Reports
from paper_trader.control.system import HealthView, ModelInfo, SystemInfo
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.interfaces.notify.pacing import TelegramPacing
from paper_trader.interfaces.telegram.bot import BotConfig, TelegramBot
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.service import Readiness
from paper_trader.storage.audit import AuditEntry, audit_entries

CHAT = 111  # the operator's private chat (its id is the user's)
GROUP = -1001234567890  # an authorised group
OPERATOR = CHAT
STRANGER = 999


def healthy() -> HealthView:
    """Return a health check with two components, one degraded."""
    components = (
        ComponentHealth(component="market_feed", status=HealthStatus.OK, detail="2 streams"),
        ComponentHealth(component="predictor", status=HealthStatus.DEGRADED, detail="no model"),
    )
    return HealthView(
        status=HealthStatus.DEGRADED,
        score=75,
        components=components,
        rss_mb=120.0,
        cpu_percent=3.0,
        loop_lag_ms=0.4,
        checked_ms=1_700_000_000_000,
    )


def model_info() -> ModelInfo:
    """Return a model in use with live scores and one drift alert."""
    return ModelInfo(
        version="20231114-abc",
        walk_forward_accuracy=0.55,
        live_accuracy=0.52,
        resolved=240,
        pending=15,
        weights=(("forest", 0.3), ("logistic", 0.2), ("xgboost", 0.5)),
        drift=(("rsi_14", 0.31),),
        alerts=("psi",),
    )


@dataclasses.dataclass
class BotRig:
    """The running bot, its fake server, and the trading rig behind it."""

    bot: TelegramBot
    tg: FakeTelegram
    rig: Rig
    ready: Readiness
    task: "asyncio.Task[None]"

    async def ask(
        self, text: str, *, chat_id: int = CHAT, user_id: int = OPERATOR, **kw: Any
    ) -> list[SentMessage]:
        """Send a command and return the bot's new messages to that chat once they arrived."""
        before = len(self.tg.delivered(chat_id))
        self.tg.send_command(chat_id, user_id, text, **kw)
        await self.tg.wait_for_messages(chat_id, before + 1, timeout=10)
        await asyncio.sleep(0.05)  # the rest of a split answer, if any
        return self.tg.delivered(chat_id)[before:]

    async def audit(self) -> list[AuditEntry]:
        """Return the audit rows committed so far."""
        return await audit_entries(self.rig.reader)


def bot_config(tg: FakeTelegram, **overrides: Any) -> BotConfig:
    """Return a test configuration: fast retries and watchdog, no pause between parts."""
    values: dict[str, Any] = {
        "token": tg.token,
        "api_url": tg.api_url,
        "chats": frozenset({CHAT, GROUP}),
        "poll_timeout_s": 1.0,
        "request_timeout_s": 2.0,
        "step_timeout_s": 5.0,
        "stall_after_s": 30.0,
        "watch_every_s": 0.1,
        "retry": Backoff(base_s=0.1, cap_s=0.5),
        "part_gap_s": 0.0,
    }
    values.update(overrides)
    return BotConfig(**values)


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path,
    tg: FakeTelegram,
    *,
    health: Callable[[], HealthView | None] = healthy,
    config: Callable[[], dict[str, str]] | None = None,
    pacing: TelegramPacing | None = None,
    **overrides: Any,
) -> AsyncIterator[BotRig]:
    """Run the bot against ``tg`` over a running trading rig; wait until it is ready
    (``pacing``: shared with a notifier)."""
    async with running_rig(tmp_path) as rig:
        assert rig.writer is not None
        clock = SystemClock()
        console = Console(
            control=rig.control,
            reports=Reports(rig.stage, rig.reader),
            system=SystemInfo(
                health=health,
                model=model_info,
                config=config or (lambda: {"SYMBOLS": "BTCUSDT", "TELEGRAM_BOT_TOKEN": "****"}),
                log_dir=tmp_path / "logs",
            ),
            audit=CommandAudit(rig.writer.write, now_ms=clock.now_ms, reader=rig.reader),
            interval_ms=60_000,
            now_ms=clock.now_ms,
        )
        bot = TelegramBot(bot_config(tg, **overrides), console, clock=clock, pacing=pacing)
        ready = Readiness()
        task = asyncio.create_task(bot.run(ready), name="telegram")
        try:
            async with asyncio.timeout(15):
                await ready.wait()
            yield BotRig(bot, tg, rig, ready, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
