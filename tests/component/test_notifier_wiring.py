"""The notifier as ``app/notify.py`` builds it from the settings: its channels, and Telegram
off without a token (said once; the outbox still records)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
import structlog
from conftest import eventually
from fakes.notifier_rig import CHAT, event
from fakes.telegram_server import FakeTelegram

from paper_trader.app.notify import build_notifier
from paper_trader.clock import SystemClock
from paper_trader.domain import HealthStatus
from paper_trader.runtime.service import Readiness
from paper_trader.settings import Settings, load_settings
from paper_trader.storage import AppendOutbox, StorageWriter, outbox_entries

pytestmark = pytest.mark.usefixtures("settings_free_environment")


def settings(tmp_path: Path, text: str) -> Settings:
    """Return the settings of an env file holding ``text``."""
    env = tmp_path / "test.env"
    env.write_text(text)
    return load_settings(env, required=True)


@pytest.fixture
async def tg(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTelegram]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    async with FakeTelegram() as fake:
        yield fake


async def test_without_a_token_telegram_is_off_said_once_and_the_outbox_still_records(
    tmp_path: Path, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """No TELEGRAM_BOT_TOKEN: no channel, health OK saying so, one log line, rows pending."""
    notifier = build_notifier(settings(tmp_path, ""), reader, writer, SystemClock())
    await writer.write(AppendOutbox(event=event()))
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(notifier.run(Readiness()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    said = [e for e in logs if e["event"] == "notification_channel_off"]
    assert [e["reason"] for e in said] == [
        "telegram off: TELEGRAM_BOT_TOKEN is not set (the outbox still records)"
    ]
    assert notifier.channels == ()
    health = notifier.health()
    assert health.status is HealthStatus.OK
    assert "TELEGRAM_BOT_TOKEN is not set" in health.detail
    assert [e.status for e in await outbox_entries(reader)] == ["pending"]


async def test_every_chat_and_the_webhook_is_a_channel_and_telegram_gets_the_outbox(
    tmp_path: Path, tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """A token, two chats (one listed twice) and a webhook: three channels; the chat gets
    what is pending, once."""
    config = settings(
        tmp_path,
        f"TELEGRAM_BOT_TOKEN={tg.token}\nTELEGRAM_CHAT_ID={CHAT},-100123,{CHAT}\n"
        "WEBHOOK_URL=http://127.0.0.1:9/hook\nWEBHOOK_FORMAT=discord\n",
    )
    notifier = build_notifier(config, reader, writer, SystemClock(), telegram_api_url=tg.api_url)
    assert notifier.channels == (f"telegram:{CHAT}", "telegram:-100123", "webhook")
    await writer.write(AppendOutbox(event=event(message="hello")))
    task = asyncio.create_task(notifier.run(Readiness()))
    try:
        [message] = await tg.wait_for_messages(CHAT, 1)
        await eventually(lambda: notifier.stats()[f"telegram:{CHAT}"].delivered == 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert message.text.endswith("hello")
    assert len(tg.delivered(CHAT)) == 1
    assert message.parse_mode == "HTML"
