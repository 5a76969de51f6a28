"""The bot's life beside the daemon: a refused token is a configuration error, an unreachable
Bot API only degrades it (it retries and recovers), and a stalled poller is restarted."""

import asyncio
import contextlib
from pathlib import Path

import pytest
from conftest import eventually
from fakes.bot_rig import CHAT, OPERATOR, bot_config, running_bot
from fakes.control_rig import running_rig
from fakes.telegram_server import ALL, FakeTelegram

from paper_trader.clock import SystemClock
from paper_trader.control.audit import CommandAudit
from paper_trader.control.console import Console
from paper_trader.control.reports import Reports
from paper_trader.control.system import SystemInfo
from paper_trader.domain import HealthStatus
from paper_trader.errors import ConfigError
from paper_trader.interfaces.telegram.bot import TelegramBot
from paper_trader.runtime.service import Readiness


async def test_a_refused_token_at_start_is_a_config_error_naming_the_setting(
    tmp_path: Path,
) -> None:
    """401 on getMe before any session: ConfigError naming TELEGRAM_BOT_TOKEN, token unsaid."""
    async with FakeTelegram() as tg, running_rig(tmp_path) as rig:
        assert rig.writer is not None
        clock = SystemClock()
        console = Console(
            control=rig.control,
            reports=Reports(rig.stage, rig.reader),
            system=SystemInfo(health=lambda: None, model=lambda: None, config=dict, log_dir=None),
            audit=CommandAudit(rig.writer.write, now_ms=clock.now_ms),
            interval_ms=60_000,
            now_ms=clock.now_ms,
        )
        bot = TelegramBot(bot_config(tg, token="999:WRONG"), console, clock=clock)
        with pytest.raises(ConfigError) as caught:
            async with asyncio.timeout(10):
                await bot.run(Readiness())
    assert str(caught.value).startswith("TELEGRAM_BOT_TOKEN: ")
    assert "999:WRONG" not in str(caught.value)
    assert [c.method for c in tg.calls] == []  # the fake refuses a wrong token before a method


async def test_unreachable_at_start_is_ready_and_degraded_then_recovers(tmp_path: Path) -> None:
    """Nothing listening: the service is ready anyway (the daemon trades), health DEGRADED;
    once the server is up, a new session serves commands and health is OK."""
    async with FakeTelegram() as tg:
        await tg.go_down()
        async with running_bot(tmp_path, tg) as b:
            assert b.bot.health().status is HealthStatus.DEGRADED
            assert "ConnectError" in b.bot.health().detail or "NetworkError" in (
                b.bot.health().detail
            )
            await tg.come_up()
            await eventually(lambda: b.bot.health().status is HealthStatus.OK, timeout=10)
            assert (await b.ask("/status"))[0].text.startswith("ACTIVE")


async def test_server_down_later_degrades_then_recovers(tmp_path: Path) -> None:
    """The Bot API going away mid-run: DEGRADED after the stall limit, OK again once back."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, stall_after_s=2.0) as b:
        assert (await b.ask("/help"))[0].text.startswith("paper-trader commands")
        await tg.go_down()
        await eventually(lambda: b.bot.health().status is HealthStatus.DEGRADED, timeout=10)
        await tg.come_up()
        await eventually(lambda: b.bot.health().status is HealthStatus.OK, timeout=15)
        assert (await b.ask("/status"))[0].text.startswith("ACTIVE")
        assert b.bot.sessions >= 2 or b.bot.poller_restarts >= 1


async def test_a_poller_killed_by_a_401_while_polling_is_restarted(tmp_path: Path) -> None:
    """PTB's polling task dies on a 401 (its ``running`` stays True): the watchdog sees no
    successful getUpdates past the limit and restarts the poller; commands work again."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, stall_after_s=2.0) as b:
        await eventually(lambda: len(tg.calls_to("getUpdates")) >= 1)
        tg.fail(401, method="getUpdates", times=1)
        await eventually(lambda: b.bot.poller_restarts >= 1, timeout=10)
        assert (await b.ask("/status"))[0].text.startswith("ACTIVE")
        await eventually(lambda: b.bot.health().status is HealthStatus.OK, timeout=5)


async def test_a_hung_long_poll_is_restarted(tmp_path: Path) -> None:
    """getUpdates that never answers: the poller is restarted past the stall limit."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, stall_after_s=2.0) as b:
        tg.hang(method="getUpdates", seconds=3.0)
        await eventually(lambda: b.bot.poller_restarts >= 1, timeout=10)
        assert b.bot.health().status is HealthStatus.DEGRADED or b.bot.poller_restarts >= 1
        tg.clear_faults()
        assert (await b.ask("/status"))[0].text.startswith("ACTIVE")


async def test_replies_survive_a_429_and_an_entity_refusal(tmp_path: Path) -> None:
    """A 429 on an answer is waited out and sent once more; a parse refusal is resent plain."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg) as b:
        tg.flood(retry_after=1, method="sendMessage", times=1)
        assert (await b.ask("/help"))[0].text.startswith("paper-trader commands")
        assert len(tg.refusals(429)) == 1
        assert tg.early_sends() == []
        tg.fail(400, "Bad Request: can't parse entities: Unsupported start tag", times=1)
        answer = await b.ask("/status")
        assert answer[0].parse_mode is None
        assert answer[0].text.startswith("ACTIVE")
        assert b.bot.replier.plain_resends == 1


async def test_stopping_with_a_hung_server_is_bounded(tmp_path: Path) -> None:
    """Cancelling the bot while every request hangs still ends within the steps' bounds."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, step_timeout_s=1.0) as b:
        assert (await b.ask("/help"))[0].text.startswith("paper-trader commands")
        tg.hang(method=ALL, seconds=30)
        b.task.cancel()
        async with asyncio.timeout(10):
            with contextlib.suppress(asyncio.CancelledError):
                await b.task
        tg.clear_faults()
    assert CHAT == OPERATOR
