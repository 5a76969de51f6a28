"""Every bot command answers, through the real PTB and the fake Bot API server, from a real
Control over a running trading stage; the commands that trade change the ledger."""

import asyncio
from pathlib import Path

import pytest
from conftest import eventually
from fakes.bot_rig import CHAT, OPERATOR, BotRig, running_bot
from fakes.control_rig import buy, open_and_close
from fakes.telegram_server import FakeTelegram
from fakes.trading import MINUTE, T0, bar

from paper_trader.control.reports import Reports
from paper_trader.domain.trading import TradingState
from paper_trader.interfaces.telegram.commands import COMMANDS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def trade_some(b: BotRig) -> None:
    """Close one ETH trade by command and leave one BTC position open at a mark."""
    rig = b.rig
    await open_and_close(rig, "ETHUSDT", T0, "100", "104")
    await rig.feed([bar("BTCUSDT", T0 + 2 * MINUTE, "200")], [buy("BTCUSDT", T0 + 2 * MINUTE)])
    await rig.feed([bar("BTCUSDT", T0 + 3 * MINUTE, "204")])


@pytest.fixture
async def bot(tmp_path: Path) -> "BotRig":  # type: ignore[misc]  # an async generator fixture
    async with FakeTelegram() as tg, running_bot(tmp_path, tg) as b:
        await trade_some(b)
        yield b


ANSWERS = {
    "/start": "paper-trader commands",
    "/help": "/emergency_stop - halt and close everything",
    "/status": "ACTIVE · equity",
    "/positions": "1 open position(s)",
    "/trades": "Last 1 trade(s)",
    "/trades 5": "ETHUSDT",
    "/signals 3": "Last 2 signal(s): 2 entered",
    "/balance": "Equity 10,",
    "/profit": "1 trades",
    "/performance": "1 symbol(s)",
    "/daily": "7 day(s)",
    "/daily 2": "2023-11-14",
    "/weekly 3": "3 week(s)",
    "/monthly": "6 month(s)",
    "/risk": "ACTIVE · 0 breaker(s) tripped",
    "/health": "Health degraded, score 75/100",
    "/model": "Model 20231114-abc: live 52.00 % vs walk-forward 55.00 %",
    "/logs": "The log is empty",
    "/version": "paper-trader 0.1.0",
    "/show_config": "2 settings (secrets masked)",
}


async def test_every_query_command_answers_with_its_summary_first(bot: BotRig) -> None:
    """Each query command gets one answer whose first line is its summary."""
    for command, expected in ANSWERS.items():
        messages = await bot.ask(command)
        assert expected in "\n".join(m.text for m in messages), command
        assert messages[0].parse_mode == "HTML"
    assert {c.name for c in COMMANDS} <= {a.split()[0][1:] for a in ANSWERS} | {
        "pause", "resume", "close", "emergency_stop", "chart"
    }  # fmt: skip


async def test_daily_ends_with_the_monte_carlo_of_every_closed_trade(bot: BotRig) -> None:
    """/daily: the days, then the percentiles of 1,000 runs resampling the closed trades (the
    record so far, seeded: the figures control gives); /weekly has no Monte Carlo."""
    await open_and_close(bot.rig, "SOLUSDT", T0 + 10 * MINUTE, "100", "98")
    expected = await Reports(bot.rig.stage, bot.rig.reader).monte_carlo()
    assert expected is not None
    daily = "\n".join(m.text for m in await bot.ask("/daily"))
    weekly = "\n".join(m.text for m in await bot.ask("/weekly"))
    final, drawdown = expected.final_equity, expected.max_drawdown
    lines = daily.splitlines()
    at = lines.index("Monte Carlo of all 2 closed trades so far (1,000 runs):")
    assert lines[at + 1 :] == [
        f"final equity p5 {final.p5:,.2f} · p50 {final.p50:,.2f} · p95 {final.p95:,.2f}",
        f"max drawdown p5 {100 * drawdown.p5:.2f} % · p50 {100 * drawdown.p50:.2f} % · "
        f"p95 {100 * drawdown.p95:.2f} %",
    ]
    assert final.p5 < final.p95
    assert "Monte Carlo" not in weekly


async def test_menu_is_set_at_start_with_every_command(bot: BotRig) -> None:
    """setMyCommands gives the phone the command menu."""
    names = [c["command"] for c in bot.tg.my_commands()]
    assert names == [c.name for c in COMMANDS]


async def test_chart_is_a_png_photo_with_its_summary_as_caption(bot: BotRig) -> None:
    """/chart draws the equity curve off the loop and sends it with sendPhoto."""
    messages = await bot.ask("/chart 2")
    assert messages[0].method == "sendPhoto"
    assert messages[0].photo is not None
    assert messages[0].photo.startswith(PNG_MAGIC)
    assert messages[0].text.startswith("Equity, last 2 day(s): 10,")


async def test_bad_arguments_and_unknown_commands_get_one_line_with_the_usage(
    bot: BotRig,
) -> None:
    """A bad count, extra arguments or an unknown command: one line naming the usage."""
    assert (await bot.ask("/trades lots"))[0].text == (
        "Usage: /trades [n] (expected a whole number from 1 to 100)"
    )
    assert (await bot.ask("/status now"))[0].text == "Usage: /status (takes no arguments)"
    assert (await bot.ask("/close"))[0].text.startswith("Usage: /close SYMBOL|all")
    assert (await bot.ask("/frobnicate"))[0].text == (
        "Unknown command /frobnicate: /help lists the commands."
    )


async def test_pause_and_resume_change_the_trading_state(bot: BotRig) -> None:
    """/pause stops entries (a committed breaker trip); /resume clears it."""
    answer = await bot.ask("/pause news at 14:00")
    assert answer[0].text.startswith("✅ paused")
    status = await bot.rig.control.status()
    assert status.state is not TradingState.ACTIVE
    assert "news at 14:00" in status.tripped[0].reason
    await bot.ask("/resume")
    assert (await bot.rig.control.status()).state is TradingState.ACTIVE


async def confirm(bot: BotRig, command: str) -> tuple[int, str]:
    """Send ``command``, return the confirmation message's id and its confirm button's data."""
    asked = await bot.ask(command)
    question = asked[-1]
    buttons = question.buttons()
    assert len(buttons) == 2
    assert buttons[0].startswith("ok:")
    assert buttons[1].startswith("no:")
    return question.message_id, buttons[0]


async def press(bot: BotRig, message_id: int, data: str, *, stale: bool = False) -> str:
    """Press a button and wait until the bot answered the callback; return the query id."""
    query = bot.tg.press_button(CHAT, OPERATOR, message_id, data, stale=stale)
    await eventually(lambda: query in bot.tg.answered_callbacks, timeout=10)
    return query


async def test_close_asks_first_and_a_second_press_does_nothing(bot: BotRig) -> None:
    """/close BTCUSDT changes nothing until confirmed; the button works once."""
    message_id, data = await confirm(bot, "/close BTCUSDT")
    assert len(await bot.rig.control.positions()) == 1
    await press(bot, message_id, data)
    await eventually(lambda: bot.tg.message(CHAT, message_id).edited_at is not None)
    assert bot.tg.message(CHAT, message_id).text.startswith("✅ BTCUSDT: closed at")
    assert await bot.rig.control.positions() == ()
    trades = await bot.rig.control.recent_trades(10)

    again = await press(bot, message_id, data, stale=True)
    assert "expired or was already used" in bot.tg.answered_callbacks[again]["text"]
    assert await bot.rig.control.recent_trades(10) == trades
    rows = [(r.command, r.arguments, r.ok) for r in await bot.audit()]
    assert rows[-2:] == [("close", "BTCUSDT", True), ("close", "BTCUSDT confirmed", True)]


async def test_cancel_leaves_the_position_open(bot: BotRig) -> None:
    """The Cancel button ends the confirmation without closing anything."""
    asked = await bot.ask("/close all")
    question = asked[-1]
    await press(bot, question.message_id, question.buttons()[1])
    await eventually(lambda: bot.tg.message(CHAT, question.message_id).edited_at is not None)
    assert bot.tg.message(CHAT, question.message_id).text == "Cancelled: nothing was done."
    assert len(await bot.rig.control.positions()) == 1


async def test_confirmed_emergency_stop_halts_and_flattens(bot: BotRig) -> None:
    """A confirmed /emergency_stop halts trading and closes every position, once."""
    message_id, data = await confirm(bot, "/emergency_stop")
    assert (await bot.rig.control.status()).state is TradingState.ACTIVE
    await press(bot, message_id, data)
    await eventually(lambda: bot.tg.message(CHAT, message_id).edited_at is not None)
    assert (await bot.rig.control.status()).state is TradingState.HALTED
    assert await bot.rig.control.positions() == ()
    closed = len(await bot.rig.control.recent_trades(10))
    await press(bot, message_id, data, stale=True)
    assert len(await bot.rig.control.recent_trades(10)) == closed


async def test_every_accepted_command_is_audited_with_its_result(bot: BotRig) -> None:
    """Each accepted command has its audit row: chat, user, command, arguments, result."""
    await bot.ask("/trades 3")
    await bot.ask("/pause")
    rows = await bot.audit()
    assert [(r.chat_id, r.user_id, r.command, r.arguments) for r in rows[-2:]] == [
        (CHAT, OPERATOR, "trades", "3"),
        (CHAT, OPERATOR, "pause", ""),
    ]
    assert rows[-1].result.startswith("✅ paused")
    assert rows[-1].interface == "telegram"


async def test_escaped_values_and_a_long_answer_arrive_intact_and_split(
    tmp_path: Path,
) -> None:
    """A log full of ``<``, ``&`` and over 4096 characters arrives whole, in several messages,
    each under Telegram's limit, the <pre> block reopened in each."""
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = [f'{{"event": "line {i}", "note": "P&L <5% > 3 & <b>"}}' for i in range(150)]
    (logs / "paper_trader.log").write_text("\n".join(lines) + "\n")
    async with FakeTelegram() as tg, running_bot(tmp_path, tg) as b:
        messages = await b.ask("/logs 150")
        await asyncio.sleep(0.2)
        messages = tg.delivered(CHAT)
    assert len(messages) >= 2
    assert all(len(m.text) <= 4096 for m in messages)
    assert all(m.raw.count("<pre>") == m.raw.count("</pre>") == 1 for m in messages)
    received = "\n".join(m.text for m in messages).splitlines()
    assert received[0] == "Last 150 of 150 log line(s)"
    assert received[1:] == lines
    assert tg.refusals() == []


async def test_a_slow_answer_does_not_hold_up_the_next_command(bot: BotRig) -> None:
    """While the server sits on /daily's send (the bot waits 2 s for it), /emergency_stop is
    still answered at once."""
    bot.tg.delay(5.0, method="sendMessage", times=1)
    before = len(bot.tg.delivered(CHAT))
    bot.tg.send_command(CHAT, OPERATOR, "/daily")
    await bot.tg.wait_for_messages(CHAT, before + 1, timeout=10)
    bot.tg.send_command(CHAT, OPERATOR, "/emergency_stop")
    messages = await bot.tg.wait_for_messages(CHAT, before + 2, timeout=1.5)
    assert messages[-1].buttons()[0].startswith("ok:")
