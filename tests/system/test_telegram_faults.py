"""Telegram's faults against a real running daemon (subprocess) and the fake Bot API server: a
429 storm, an outage of a minute, a ``kill -9`` with messages pending and one during a send.
Every notification the daemon queued is delivered once it can be, exactly once (a send a kill
cut short: once more, marked as a possible repeat), in priority order, and never before a
429's ``retry_after`` passed."""

import re
import time
from pathlib import Path

import pytest
from daemon_harness import market_fixture, wait_until
from fakes.telegram_server import fake_telegram_thread
from telegram_harness import (
    CHAT,
    Daemon,
    delivered_once,
    notices,
    notifier_sends,
    telegram_daemon,
)

market = market_fixture
STORM_S, RETRY_AFTER_S = 30.0, 3
OUTAGE_S = 60.0
PENDING = 50
# A 429 blocks the chat for its retry_after, then the notifier sends about one a second; after
# an outage it backs off (full jitter, capped at 60 s) before it tries again.
DELIVERY_S = 120.0
ONE_CHAT = (CHAT,)
_HEALTH = re.compile(rf"telegram:{CHAT}: (?P<state>.+?) \((?P<counts>[^()]*)\)")


def _pause_and_resume(d: Daemon, times: int, tag: str) -> None:
    """Trip and reset the manual pause ``times`` times (each reason names its round)."""
    for i in range(times):
        d.command("pause", reason=f"{tag} {i}")
        d.command("resume")


def _all_sent(d: Daemon, at_least: int) -> bool:
    rows = d.deliveries()
    return len(rows) >= at_least and all(r.status == "sent" for r in rows)


def _pending(d: Daemon) -> int:
    return sum(r.status == "pending" for r in d.deliveries())


def _last_candle(d: Daemon) -> int:
    return int(d.command("status")["status"]["last_candle_ms"])


def _health_counts(d: Daemon) -> dict[str, int]:
    """Return the chat's delivery counters as /health shows them (the latest check)."""
    text = "\n".join(m.text for m in d.ask("/health"))
    found = _HEALTH.search(text)
    assert found is not None, text
    counts = {}
    for item in found["counts"].split(", "):
        number, what = item.split(" ", 1)
        counts[what] = int(number)
    return counts


def _sent_counted(d: Daemon, rows: int) -> bool:
    counts = _health_counts(d)
    return counts.get("sent") == rows and counts.get("pending") == 0


@pytest.mark.timeout(STORM_S + DELIVERY_S + 60)
def test_a_429_storm_holds_every_notification_to_its_retry_after_then_delivers_it_once(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """For 30 s every sendMessage is refused with a 429 (retry_after 3 s) while the daemon
    trips and resets breakers, stops and starts again (its start-up notices, one critical, and
    its shutdown notice): after the storm each is delivered exactly once, critical before high
    before normal, and no send came before a retry_after passed, across the restart too."""
    with fake_telegram_thread() as tg:
        storm = tg.flood(retry_after=RETRY_AFTER_S, method="sendMessage", seconds=STORM_S)
        storm_ends_ms = time.time() * 1000 + STORM_S * 1000
        with telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT) as first:
            _pause_and_resume(first, 3, "storm")
            first.command("emergency_stop", reason="storm drill")
            first.command("resume")
            wait_until(first.process, lambda: storm.hits >= 2, "a retry refused", 30)
        settings = {"HEALTH_CHECK_INTERVAL": "1"}
        with telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT, **settings) as second:
            wait_until(second.process, lambda: _all_sent(second, 13), "the deliveries", DELIVERY_S)
            rows = second.deliveries()
            arrival = delivered_once(rows, notices(tg))
            wait_until(second.process, lambda: _sent_counted(second, len(rows)), "the counts", 30)
            counts = _health_counts(second)
            sends, early = notifier_sends(tg), tg.early_sends()

    kinds = [r.kind for r in rows]
    assert kinds.count("model_unavailable") == kinds.count("daemon_started") == 2  # per start
    assert kinds.count("daemon_stopping") == 1  # the first run's SIGTERM
    assert all(r.created_at_ms < storm_ends_ms for r in rows)  # all queued during the storm
    assert arrival == sorted(rows, key=lambda r: r.order)
    assert [r.priority for r in arrival] == ["critical"] * 2 + ["high"] * 5 + ["normal"] * 6
    assert early == []
    assert not any(r.possible_repeat for r in rows)  # a 429 is an answer: nothing arrived
    assert all(c.status in {200, 429} for c in sends)
    assert storm.hits == sum(c.status == 429 for c in sends) >= 4  # tried all along
    assert len(sends) - storm.hits == len(rows)  # one accepted send each, none after it
    assert counts["rate limited"] >= 1
    assert "resent as plain text" not in counts


@pytest.mark.timeout(OUTAGE_S + DELIVERY_S + 60)
def test_telegram_down_for_a_minute_delays_notifications_not_trading(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """While the Bot API is down for a minute the daemon trades on, answers its control
    socket and reports the chat degraded; what it queued meanwhile is delivered once after."""
    settings = {"HEALTH_CHECK_INTERVAL": "1"}
    with (
        fake_telegram_thread() as tg,
        telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT, **settings) as d,
    ):
        wait_until(d.process, lambda: _all_sent(d, 2), "the start-up notices", 30)
        before = _last_candle(d)
        tg.go_down(for_s=OUTAGE_S)
        _pause_and_resume(d, 2, "outage")
        d.notify.wait_for(f"telegram:{CHAT}: unreachable", timeout=30)
        wait_until(d.process, lambda: _last_candle(d) > before, "a candle while down", 30)
        d.command("emergency_stop", reason="outage drill")
        d.command("resume")
        wait_until(d.process, lambda: len(d.deliveries()) == 8, "the notices claimed", 10)
        pending_while_down = _pending(d)
        down_throughout = not tg.is_up
        wait_until(d.process, lambda: tg.is_up, "the Bot API back", OUTAGE_S + 10)
        wait_until(d.process, lambda: _all_sent(d, 8), "the deliveries", DELIVERY_S)
        rows = d.deliveries()
        arrival = delivered_once(rows, notices(tg))
        wait_until(d.process, lambda: _sent_counted(d, len(rows)), "the counts", 30)
        counts = _health_counts(d)
        early = tg.early_sends()

    assert down_throughout  # the candles, the commands and the status while it was down
    assert pending_while_down == 6  # all but the start-up notices
    late = [r for r in arrival if r.kind not in {"model_unavailable", "daemon_started"}]
    assert late == sorted(late, key=lambda r: r.order)
    assert not any(r.possible_repeat for r in rows)  # refused connections: nothing arrived
    assert counts["unreachable"] >= 1
    assert early == []


@pytest.mark.timeout(DELIVERY_S + 120)
def test_a_kill_9_with_50_notifications_pending_loses_none_and_doubles_none(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """With Telegram down, 50 breaker notices pending and the daemon killed with SIGKILL, the
    next start on the same database delivers every one of them once Telegram is back."""
    # Fifty breaker notices are over the default 30 errors an hour, and what is over a cap
    # waits for the hour to end: a cap of 0 (none) lets all of them through now.
    settings = {"ERROR_NOTIFICATIONS_PER_HOUR": "0", "HEALTH_CHECK_INTERVAL": "1"}
    with fake_telegram_thread() as tg:
        with telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT, **settings) as first:
            wait_until(first.process, lambda: _all_sent(first, 2), "the start-up notices", 30)
            tg.go_down()
            _pause_and_resume(first, PENDING // 2, "kill")
            wait_until(first.process, lambda: _pending(first) >= PENDING, "50 pending", 30)
            first.kill()
        tg.come_up()
        with telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT, **settings) as second:
            wait_until(second.process, lambda: _all_sent(second, 54), "the deliveries", DELIVERY_S)
            rows = second.deliveries()
            delivered_once(rows, notices(tg))
            wait_until(second.process, lambda: _sent_counted(second, len(rows) - 2), "counts", 30)
            counts = _health_counts(second)
            early = tg.early_sends()

    assert len(rows) == PENDING + 4  # and two start-up notices per start (one critical)
    assert sum(r.possible_repeat for r in rows) <= 1
    assert counts["sent"] == PENDING + 2  # the second run's
    assert early == []


@pytest.mark.timeout(90)
def test_a_kill_9_during_a_send_marks_its_resend_as_a_possible_repeat(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """The daemon is killed while Telegram holds the answer to a send that did arrive: the
    next start sends it again, once, starting "(possible repeat)", and records it as one."""
    with fake_telegram_thread() as tg:
        with telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT) as first:
            wait_until(first.process, lambda: _all_sent(first, 2), "the start-up notices", 30)
            tg.delay(30, method="sendMessage")
            first.command("pause", reason="in flight")
            wait_until(first.process, lambda: len(notices(tg)) == 3, "the send arriving", 30)
            first.kill()
        tg.clear_faults()
        with telegram_daemon(tmp_path, tg, market, chats=ONE_CHAT) as second:
            wait_until(second.process, lambda: _all_sent(second, 5), "the deliveries", 30)
            [row] = [r for r in second.deliveries() if r.kind == "breaker_tripped"]
            messages = notices(tg)

    # The second start-up notice names the pause too (a tripped breaker): not one of them.
    arrived, again = [m for m in messages if "in flight" in m.text and "started" not in m.text]
    assert not arrived.text.startswith("(possible repeat)")
    assert again.text == f"(possible repeat) {arrived.text}"
    assert (row.message_ids, row.possible_repeat) == ((again.message_id,), True)
