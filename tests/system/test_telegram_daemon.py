"""The Telegram bot of a real running daemon (subprocess) against the simulated exchange and the
fake Bot API server: every command answers, the trading commands change the ledger, and
nobody but the configured chat and user changes anything."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import market_fixture, wait_until
from fakes.telegram_server import ThreadedTelegram, fake_telegram_thread
from telegram_harness import CHAT, GROUP, OPERATOR, STRANGER, Daemon, telegram_daemon

from paper_trader.interfaces.telegram.commands import COMMANDS

market = market_fixture
ASKING = {"close", "emergency_stop"}


@pytest.fixture
def running(tmp_path: Path, market: dict[str, str]) -> Iterator[Daemon]:
    with fake_telegram_thread() as tg, telegram_daemon(tmp_path, tg, market) as d:
        yield d


def test_every_command_answers_from_a_running_daemon(running: Daemon) -> None:
    """Each command of the menu gets an answer; the menu was set; each is audited."""
    for command in COMMANDS:
        answer = running.ask(f"/{command.name}" + (" all" if command.name == "close" else ""))
        assert answer[0].text, command.name
        if command.name in ASKING:
            assert len(answer[-1].buttons()) == 2
    assert [c["command"] for c in running.tg.my_commands()] == [c.name for c in COMMANDS]
    audited = [r[0] for r in running.rows("SELECT command FROM command_audit ORDER BY id")]
    assert audited == [c.name for c in COMMANDS]


def test_trading_commands_change_the_ledger_and_a_button_works_once(running: Daemon) -> None:
    """/pause and /resume trip and clear the breaker; a confirmed /emergency_stop halts, and
    pressing its button again does nothing."""
    assert "trading is reducing" in running.ask("/pause")[0].text
    assert running.rows("SELECT breaker, transition FROM breaker_events") == [
        ("manual_pause", "tripped")
    ]
    assert "trading is active" in running.ask("/resume")[0].text
    question = running.ask("/emergency_stop")[-1]
    confirm = question.buttons()[0]
    running.press(question.message_id, confirm)
    wait_until(running.process, lambda: "HALTED" in running.ask("/status")[0].text, "halt", 30)
    events = running.rows("SELECT breaker, transition FROM breaker_events")
    again = running.press(question.message_id, confirm, stale=True)
    assert "expired or was already used" in again
    assert running.rows("SELECT breaker, transition FROM breaker_events") == events


def test_strangers_and_edits_change_nothing(running: Daemon) -> None:
    """An unlisted chat, an unlisted user in the group and an edited old command: no answer,
    no breaker, no audit row."""
    tg = running.tg
    tg.send_command(STRANGER, STRANGER, "/pause")
    tg.send_command(GROUP, STRANGER, "/pause", chat_type="supergroup")
    message_id = tg.send_command(CHAT, OPERATOR, "/help")
    wait_until(
        running.process, lambda: bool(running.replies(CHAT, message_id)), "/help's answer", 30
    )
    tg.edit_message(CHAT, message_id, "/pause")
    running.ask("/version")
    assert tg.delivered(STRANGER) == []
    assert [m for m in tg.delivered(GROUP) if m.reply_to is not None] == []  # notices only
    assert running.rows("SELECT * FROM breaker_events") == []
    assert [r[0] for r in running.rows("SELECT command FROM command_audit")] == ["help", "version"]


def test_markup_characters_and_a_long_answer_arrive_intact_and_split(running: Daemon) -> None:
    """A reason with ``<`` and ``&`` comes back as typed; 200 log lines arrive in several
    messages, each within Telegram's limit, none refused."""
    answer = running.ask("/pause a<b & c>d")
    assert "paused by the operator: a<b & c>d" in "\n".join(m.text for m in answer)
    asked = running.tg.send_command(CHAT, OPERATOR, "/logs 200")
    wait_until(running.process, lambda: len(running.replies(CHAT, asked)) >= 2, "the parts", 30)
    messages = running.replies(CHAT, asked)
    assert len(messages) >= 2
    assert all(len(m.text) <= 4096 for m in messages)
    assert any("a<b & c>d" in m.text for m in messages)
    assert running.tg.refusals(400) == []


def test_the_phone_hears_the_daemon_start_and_stop(tmp_path: Path, market: dict[str, str]) -> None:
    """Once ready, every chat gets the start-up notice (version, venue, symbols, model, state);
    a SIGTERM's shutdown notice arrives before the process exits; after a ``kill -9`` the next
    start says the run before ended without a clean stop."""
    with fake_telegram_thread() as tg:
        with telegram_daemon(tmp_path, tg, market) as d:
            [started] = _notices(tg, d, "Daemon started", 1)
        stopping = [m.text for m in tg.delivered(CHAT) if "Daemon stopping" in m.text]
        in_group = [m.text for m in tg.delivered(GROUP) if "Daemon stopping" in m.text]
        with telegram_daemon(tmp_path, tg, market) as d:
            _notices(tg, d, "Daemon started", 2)
            # Killed once the notice's delivery is recorded: a kill between the send and its
            # record would (rightly) resend it, marked as a possible repeat.
            wait_until(d.process, lambda: _recorded(d), "the deliveries recorded", 30)
            d.kill()
        with telegram_daemon(tmp_path, tg, market) as d:
            after_kill = _notices(tg, d, "Daemon started", 3)[-1]
    lines = started.splitlines()
    assert lines[1].startswith("paper-trader ")
    assert f"on {market['EXCHANGE']}" in lines[1]
    assert lines[2] == "symbols: BTC-USDT"
    assert lines[3].startswith("model: ")
    assert "trading: ACTIVE" in started
    assert "without a clean stop" not in started
    assert len(stopping) == len(in_group) == 1
    assert "stopping: SIGTERM" in stopping[0]
    assert "trading: ACTIVE" in stopping[0]
    assert after_kill.splitlines()[-1].endswith(
        "ended without a clean stop (killed, or the machine went down)"
    )


def _recorded(d: Daemon) -> bool:
    return all(r.status == "sent" for r in d.deliveries())


def _notices(tg: ThreadedTelegram, d: Daemon, title: str, count: int) -> list[str]:
    """Wait for ``count`` messages to ``CHAT`` titled ``title``; return their texts."""

    def found() -> list[str]:
        return [m.text for m in tg.delivered(CHAT) if title in m.text.splitlines()[0]]

    wait_until(d.process, lambda: len(found()) >= count, title, 30)
    return found()
