"""The webhook channel against a fake receiver on loopback: the same notifications as
Telegram's, as JSON or in Discord's shape, with the same outbox, limits and retries."""

import asyncio

import aiosqlite
import pytest
from conftest import eventually
from fakes.notifier_rig import CHAT, Options, event, running
from fakes.telegram_server import FakeTelegram
from fakes.webhook_server import FakeWebhook

from paper_trader.domain import EventKind, HealthStatus, Severity
from paper_trader.interfaces.notify.webhook import WebhookFormat
from paper_trader.storage import StorageWriter, outbox_entries

JSON = Options(webhook=WebhookFormat.JSON)
DISCORD = Options(webhook=WebhookFormat.DISCORD)


pytestmark = pytest.mark.usefixtures("ptb_timedelta")


async def deliveries(reader: aiosqlite.Connection) -> list[tuple[object, ...]]:
    """Return (outbox id, channel, status, failed reason) of every delivery."""
    rows = await reader.execute_fetchall(
        "SELECT outbox_id, channel, status, failed_reason FROM notification_deliveries "
        "ORDER BY outbox_id, channel"
    )
    return [tuple(r) for r in rows]


async def test_every_notification_goes_to_telegram_and_the_webhook_as_json(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """One delivery per channel; the JSON body has the event's fields, the text as sent."""
    async with FakeWebhook() as hook, running(writer, reader, tg, JSON, hook) as rig:
        await rig.queue(
            event(EventKind.TRADE_CLOSED, "BTC-USDT: closed, P&L <1%", symbol="BTC-USDT"),
            event(EventKind.SERVICE_FAILED, "feed failed", severity=Severity.CRITICAL),
        )
        await eventually(lambda: len(hook.accepted()) == 2)
        await tg.wait_for_messages(CHAT, 2)
        # A delivery's row commits after the fake has the message; the counters after the row.
        await eventually(lambda: rig.stats().delivered == rig.stats("webhook").delivered == 2)
        rows = await deliveries(reader)
        entries = await outbox_entries(reader)
    critical, trade = hook.accepted()
    assert trade["kind"] == "trade_closed"
    assert (trade["severity"], trade["category"], trade["priority"]) == ("info", "trade", "high")
    assert trade["message"].splitlines()[1] == "BTC-USDT: closed, P&L <1%"
    assert trade["source"] == "feed"
    assert trade["data"] == {"symbol": "BTC-USDT"}
    assert trade["at"].endswith("Z")
    assert (critical["kind"], critical["priority"]) == ("service_failed", "critical")
    assert [r[1:3] for r in rows] == [
        ("telegram:111", "sent"),
        ("webhook", "sent"),
        ("telegram:111", "sent"),
        ("webhook", "sent"),
    ]
    assert [e.status for e in entries] == ["sent", "sent"]


async def test_discord_gets_parts_under_2000_and_its_429_retry_after_is_honoured(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Discord's shape, mentions off; a long message in parts of at most 2000 characters; a
    429 whose wait is only in the body holds every post until it passed."""
    lines = [f"line {i:03d} " + "x" * 50 for i in range(80)]
    async with FakeWebhook(discord=True) as hook:
        hook.fail(429, seconds=1.0, retry_after=1.2, header=False)
        async with running(writer, reader, None, DISCORD, hook) as rig:
            await rig.queue(
                event(message="\n".join(lines), symbol="A"),
                event(message="@everyone short", symbol="B"),
            )
            await eventually(lambda: rig.stats("webhook").delivered == 2, timeout=10)
            stats = rig.stats("webhook")
    posts = hook.accepted()
    assert hook.early_posts() == []
    assert stats.rate_limited >= 1
    assert all(len(p["content"]) <= 2000 for p in posts)
    assert all(p["allowed_mentions"] == {"parse": []} for p in posts)
    long_parts = [p["content"] for p in posts if "line" in p["content"]]
    assert len(long_parts) > 1
    assert "\n".join(long_parts).splitlines()[1:] == lines
    assert posts[-1]["content"].endswith("@everyone short")


async def test_a_webhook_down_retries_on_its_own_while_telegram_delivers(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """5xx from the webhook for a while: Telegram's deliveries are not held up; the webhook is
    DEGRADED, then gets every notification once."""
    async with FakeWebhook() as hook:
        hook.fail(502, seconds=1.0)
        async with running(writer, reader, tg, JSON, hook) as rig:
            await rig.queue(*(event(message=f"gap {i}", symbol=f"S{i}") for i in range(3)))
            await tg.wait_for_messages(CHAT, 3)
            await eventually(lambda: rig.notifier.health().status is HealthStatus.DEGRADED)
            detail = rig.notifier.health().detail
            await eventually(lambda: len(hook.accepted()) == 3, timeout=10)
            await eventually(lambda: rig.stats("webhook").delivered == 3)
    assert "webhook: unreachable: webhook answered HTTP 502" in detail
    assert sorted(p["message"].splitlines()[1] for p in hook.accepted()) == [
        f"gap {i}" for i in range(3)
    ]


async def test_a_webhook_that_can_never_take_a_message_fails_it_with_the_reason(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """A 400 from the webhook fails that delivery with its reason; Telegram's was sent, so
    the outbox row is sent."""
    async with FakeWebhook() as hook:
        hook.fail(400)
        async with running(writer, reader, tg, JSON, hook) as rig:
            await rig.queue(event(message="gap"))
            await tg.wait_for_messages(CHAT, 1)
            await eventually(lambda: rig.stats().delivered == rig.stats("webhook").failed == 1)
            await asyncio.sleep(0.1)
            rows = await deliveries(reader)
            entries = await outbox_entries(reader)
    assert rows == [
        (1, "telegram:111", "sent", None),
        (1, "webhook", "failed", "rejected: webhook answered HTTP 400"),
    ]
    assert [e.status for e in entries] == ["sent"]
