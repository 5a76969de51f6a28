"""The notifier against the fake Bot API server, with the real PTB Bot and a real SQLite
outbox: 429 storms, outages, restarts, entity errors, timeouts, refusals, pacing, lateness."""

import asyncio
import itertools
import re

import aiosqlite
import pytest
import structlog
from conftest import eventually
from fakes.notifier_rig import CHAT, GROUP, Options, event, running
from fakes.telegram_server import FakeTelegram

from paper_trader.domain import EventKind, HealthStatus, Severity
from paper_trader.domain.notifications import classify
from paper_trader.interfaces.notify.policy import Cap, Caps
from paper_trader.storage import AppendOutbox, StorageWriter, outbox_entries

PARSE_ERROR = 'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 1'


pytestmark = pytest.mark.usefixtures("ptb_timedelta")


def bodies(tg: FakeTelegram, chat: int = CHAT) -> list[str]:
    """Return the message lines after each delivered message's title, joined."""
    return ["\n".join(m.text.splitlines()[1:]) for m in tg.delivered(chat)]


async def test_a_429_storm_holds_every_send_until_retry_after_then_delivers_each_once_by_priority(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Every send refused for 2 s with retry_after: nothing reaches the chat before it passed;
    then each notification, including those queued during the storm, arrives exactly once,
    critical first, then by priority and age."""
    tg.flood(seconds=2.0)
    kinds = [EventKind.MODEL_LOADED, EventKind.DATA_GAP, EventKind.TRADE_OPENED] * 2
    async with running(writer, reader, tg) as rig:
        await rig.queue(*(event(k, f"first {i}", symbol=f"F{i}") for i, k in enumerate(kinds)))
        await eventually(lambda: len(tg.refusals(429)) >= 1)
        await rig.queue(
            event(EventKind.SERVICE_CRASH_LOOP, "during 0", severity=Severity.CRITICAL),
            *(event(k, f"during {i + 1}", symbol=f"D{i}") for i, k in enumerate(kinds)),
        )
        await tg.wait_for_messages(CHAT, 13, timeout=10)
        await eventually(lambda: rig.stats().delivered == 13)
        await asyncio.sleep(0.2)  # nothing more arrives
        stats = rig.stats()
        statuses = await rig.statuses()
    assert tg.early_sends() == []
    delivered = bodies(tg)
    assert sorted(delivered) == sorted(
        [f"first {i}" for i in range(6)] + [f"during {i}" for i in range(7)]
    )
    assert delivered[0] == "during 0"  # the critical one
    titles = [m.text.splitlines()[0] for m in tg.delivered(CHAT)]
    ranks = [_rank(t) for t in titles]
    assert ranks == sorted(ranks)
    assert statuses == ["sent"] * 13
    assert not [t for t in titles if t.startswith("(possible repeat)")]  # a 429 is an answer
    assert stats.rate_limited >= 1
    assert stats.delivered == 13


def _rank(title: str) -> int:
    """Return the priority rank of a delivered message from its title."""
    for kind in EventKind:
        if title.endswith(kind.value.replace("_", " ").capitalize()):
            severity = Severity.CRITICAL if kind is EventKind.SERVICE_CRASH_LOOP else Severity.INFO
            return classify(kind, severity)[1].rank
    raise AssertionError(title)


async def test_telegram_down_then_up_delivers_everything_once_and_health_shows_it(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Connection refused: the notifier backs off, health is DEGRADED; back up: all arrive."""
    await tg.go_down()
    async with running(writer, reader, tg) as rig:
        await rig.queue(*(event(message=f"gap {i}", symbol=f"S{i}") for i in range(4)))
        await eventually(lambda: rig.notifier.health().status is HealthStatus.DEGRADED)
        degraded = rig.notifier.health().detail
        assert await rig.statuses() == ["pending"] * 4
        await tg.come_up()
        await tg.wait_for_messages(CHAT, 4, timeout=10)
        await eventually(lambda: rig.notifier.health().status is HealthStatus.OK)
        unreachable = rig.stats().unreachable
    assert "unreachable" in degraded
    assert sorted(bodies(tg)) == [f"gap {i}" for i in range(4)]
    assert unreachable >= 1


async def test_a_restart_resumes_with_the_pending_rows(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Rows left pending by a run that could not deliver, and rows queued while no notifier
    ran, are all delivered once by the next run."""
    await tg.go_down()
    async with running(writer, reader, tg) as rig:
        await rig.queue(*(event(message=f"before {i}", symbol=f"S{i}") for i in range(3)))
        await eventually(lambda: rig.stats().unreachable >= 1)
    await writer.write(AppendOutbox(event=event(message="between", symbol="S8")))
    await tg.come_up()
    async with running(writer, reader, tg) as rig:
        await tg.wait_for_messages(CHAT, 4, timeout=10)
        await rig.queue(event(message="after", symbol="S9"))
        await tg.wait_for_messages(CHAT, 5, timeout=10)
        await eventually(lambda: rig.stats().delivered == 5)
        statuses = await rig.statuses()
    assert sorted(bodies(tg)) == ["after", "before 0", "before 1", "before 2", "between"]
    assert statuses == ["sent"] * 5


async def test_an_entity_error_is_resent_once_as_plain_text(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Telegram cannot parse the HTML: the same text goes once more without parse mode, as
    the user would have read it; the row is sent."""
    tg.fail(400, PARSE_ERROR)
    with structlog.testing.capture_logs() as logs:
        async with running(writer, reader, tg) as rig:
            await rig.queue(event(message="P&L <5% & rising"))
            [message] = await tg.wait_for_messages(CHAT, 1)
            await eventually(lambda: rig.stats().delivered == 1)
            stats = rig.stats()
            statuses = await rig.statuses()
    [stopped] = [e for e in logs if e["event"] == "notifier_stopped"]  # what the run did
    assert (stopped["channel"], stopped["delivered"], stopped["resent_plain"]) == (
        f"telegram:{CHAT}",
        1,
        1,
    )
    first, second = tg.calls_to("sendMessage")
    assert (first.status, first.params["parse_mode"]) == (400, "HTML")
    assert "parse_mode" not in second.params
    assert message.parse_mode is None
    assert message.text.endswith("Data gap\nP&L <5% & rising")
    assert (stats.resent_plain, stats.failed) == (1, 0)
    assert statuses == ["sent"]


async def test_a_timeout_is_resent_once_marked_as_a_possible_repeat(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """The answer does not come in time (the message did arrive): it is sent once more,
    starting "(possible repeat)", and the delivery is recorded as a possible repeat."""
    tg.delay(3.0)
    async with running(writer, reader, tg, Options(timeout_s=0.5)) as rig:
        await rig.queue(event(message="BTC-USDT closed"))
        first, second = await tg.wait_for_messages(CHAT, 2, timeout=10)
        await eventually(lambda: rig.stats().delivered == 1)
        stats = rig.stats()
    rows = await reader.execute_fetchall(
        "SELECT status, possible_repeat, message_ids FROM notification_deliveries"
    )
    assert not first.text.startswith("(possible repeat)")
    assert second.text.startswith("(possible repeat) ")
    assert second.text.removeprefix("(possible repeat) ") == first.text
    assert [tuple(r) for r in rows] == [("sent", 1, str(second.message_id))]
    assert (stats.possible_repeats, len(tg.delivered(CHAT))) == (1, 2)


@pytest.mark.parametrize("refusal", ["blocked", "chat not found"])
async def test_a_refusing_chat_keeps_its_messages_counts_logs_once_and_delivers_later(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection, refusal: str
) -> None:
    """403 (bot blocked) or 400 (chat not found) for a while: the messages stay pending, the
    refusals are counted, logged once, health is DEGRADED; then they arrive."""
    if refusal == "blocked":
        tg.block(seconds=1.0)
    else:
        tg.chat_not_found(seconds=1.0)
    with structlog.testing.capture_logs() as logs:
        async with running(writer, reader, tg) as rig:
            await rig.queue(*(event(message=f"gap {i}", symbol=f"S{i}") for i in range(2)))
            await eventually(lambda: rig.stats().refused >= 2)
            health = rig.notifier.health()
            assert await rig.statuses() == ["pending"] * 2
            await tg.wait_for_messages(CHAT, 2, timeout=10)
            await eventually(lambda: rig.notifier.health().status is HealthStatus.OK)
    said = [e for e in logs if e["event"] == "notifications_refused"]
    assert len(said) == 1
    assert health.status is HealthStatus.DEGRADED
    assert f"{CHAT}: refused: " in health.detail
    assert re.search(r"\b[1-9][0-9]* refused\b", health.detail)  # counted
    assert sorted(bodies(tg)) == ["gap 0", "gap 1"]


async def test_a_message_over_4096_characters_arrives_whole_in_parts(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """A long message with markup characters is split at lines; the parts, as the user reads
    them, are the message."""
    lines = [f"{i:04d} P&L <{'x' * 60}> & more" for i in range(150)]
    async with running(writer, reader, tg) as rig:
        await rig.queue(event(message="\n".join(lines)))
        await eventually(lambda: rig.stats().delivered == 1)
    parts = tg.delivered(CHAT)
    assert len(parts) > 1
    assert all(len(p.text) <= 4096 for p in parts)
    assert all(p.parse_mode == "HTML" for p in parts)
    assert "\n".join(p.text for p in parts).splitlines()[1:] == lines


async def test_a_late_message_starts_with_its_events_time(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """An event older than NOTIFICATION_LATE_S is sent with its time in UTC in front."""
    async with running(writer, reader, tg, Options(late_s=60)) as rig:
        await rig.queue(event(message="old news", at_ms=1_700_000_000_000))
        [message] = await tg.wait_for_messages(CHAT, 1)
        assert rig.stats().delivered in (0, 1)
    assert message.text.startswith("(event at 2023-11-14 22:13:20 UTC) ")


async def test_a_chat_is_paced_to_a_burst_then_one_a_second(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Telegram's own limits: five messages to one chat go as three, then one a second."""
    async with running(writer, reader, tg, Options(paced=True)) as rig:
        await rig.queue(*(event(message=f"gap {i}", symbol=f"S{i}") for i in range(5)))
        await tg.wait_for_messages(CHAT, 5, timeout=10)
        await eventually(lambda: rig.stats().delivered == 5)
    times = [c.at for c in tg.calls_to("sendMessage")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert tg.busiest(CHAT, 0.9) <= 3
    assert times[3] - times[0] >= 0.9  # the burst is three
    assert min(gaps[2:]) >= 0.9  # then one a second


async def test_over_the_cap_trades_arrive_as_one_digest_and_each_chat_gets_its_own(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Two trades an hour: of six trades two arrive alone and, once the window allows, four
    as one "4 more trades" digest; a group chat gets the same, independently."""
    caps = Caps(per_hour={Cap.TRADE: 2}, window_ms=1_500)
    async with running(writer, reader, tg, Options(caps=caps, chats=(CHAT, GROUP))) as rig:
        await rig.queue(*(event(EventKind.TRADE_OPENED, f"BTC-USDT: long {i}") for i in range(6)))
        for chat in (CHAT, GROUP):
            await tg.wait_for_messages(chat, 3, timeout=10)
            await eventually(lambda c=chat: rig.stats(f"telegram:{c}").delivered == 6)
        await asyncio.sleep(0.2)
        rows = await outbox_entries(reader)
        folded = rig.stats(f"telegram:{GROUP}").folded
    for chat in (CHAT, GROUP):
        first, second, digest = tg.delivered(chat)
        assert first.text.endswith("long 0")
        assert second.text.endswith("long 1")
        assert digest.text.splitlines() == [
            "4 more trades:",
            *(f"\u2022 BTC-USDT: long {i}" for i in range(2, 6)),
        ]
    assert [r.status for r in rows] == ["sent"] * 6
    assert folded == 4


async def test_a_capped_backlog_of_one_category_never_hides_another(
    tg: FakeTelegram, writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """250 trades against a cap of one an hour (more than a read of pending rows holds) wait
    for their digest; a data gap queued after them still goes at once."""
    caps = Caps(per_hour={Cap.TRADE: 1})
    async with running(writer, reader, tg, Options(caps=caps)) as rig:
        await rig.queue(*(event(EventKind.TRADE_OPENED, f"BTC-USDT: long {i}") for i in range(250)))
        await tg.wait_for_messages(CHAT, 1, timeout=10)
        await rig.queue(event(EventKind.DATA_GAP, "ETH-USDT: 2 candles missing"))
        [_, gap] = await tg.wait_for_messages(CHAT, 2, timeout=10)
    assert gap.text.endswith("ETH-USDT: 2 candles missing")
