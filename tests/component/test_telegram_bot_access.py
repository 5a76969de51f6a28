"""Closed by default: only the configured chats and users command; nobody else changes
anything or gets an answer, and an edited old command never fires again."""

import asyncio
from pathlib import Path

from conftest import eventually
from fakes.bot_rig import CHAT, GROUP, OPERATOR, STRANGER, BotRig, running_bot
from fakes.telegram_server import FakeTelegram

from paper_trader.domain.trading import TradingState


async def settle(b: BotRig) -> None:
    """Wait until every queued update was fetched and confirmed, then one more round trip."""
    await eventually(lambda: not b.tg.pending_updates, timeout=10)
    await b.ask("/help")


async def test_an_unauthorised_chat_changes_nothing_and_gets_no_answer(tmp_path: Path) -> None:
    """/pause from a chat not in TELEGRAM_CHAT_ID: no answer, no breaker, logged and counted."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg) as b:
        tg.send_command(STRANGER, STRANGER, "/pause")
        tg.send_command(STRANGER, STRANGER, "/emergency_stop")
        await settle(b)
        assert tg.delivered(STRANGER) == []
        assert (await b.rig.control.status()).state is TradingState.ACTIVE
        assert b.bot.stats.unauthorised == 2
        assert [r.command for r in await b.audit()] == ["help"]


async def test_an_unlisted_user_in_an_authorised_group_is_refused(tmp_path: Path) -> None:
    """With TELEGRAM_ALLOWED_USERS set, another member of the group cannot command."""
    users = frozenset({OPERATOR})
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, users=users) as b:
        tg.send_command(GROUP, STRANGER, "/pause", chat_type="supergroup")
        await settle(b)
        assert tg.delivered(GROUP) == []
        assert (await b.rig.control.status()).state is TradingState.ACTIVE
        assert b.bot.stats.unauthorised == 1
        answer = await b.ask("/status", chat_id=GROUP, user_id=OPERATOR, chat_type="supergroup")
        assert answer[0].text.startswith("ACTIVE")


async def test_an_unauthorised_button_press_does_nothing(tmp_path: Path) -> None:
    """A stranger pressing the operator's confirmation in a group: not honoured, not answered."""
    users = frozenset({OPERATOR})
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, users=users) as b:
        asked = await b.ask(
            "/emergency_stop", chat_id=GROUP, user_id=OPERATOR, chat_type="supergroup"
        )
        data = asked[-1].buttons()[0]
        query = tg.press_button(GROUP, STRANGER, asked[-1].message_id, data)
        await settle(b)
        assert query not in tg.answered_callbacks
        assert (await b.rig.control.status()).state is TradingState.ACTIVE
        assert len(b.bot.confirmations) == 1  # still there for the operator


async def test_an_edited_old_command_never_fires(tmp_path: Path) -> None:
    """Editing an answered /help into /pause does not pause (UpdateType.MESSAGE only)."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg) as b:
        before = len(tg.delivered(CHAT))
        message_id = tg.send_command(CHAT, OPERATOR, "/help")
        await tg.wait_for_messages(CHAT, before + 1, timeout=10)
        tg.edit_message(CHAT, message_id, "/pause")
        await settle(b)
        assert (await b.rig.control.status()).state is TradingState.ACTIVE
        assert [r.command for r in await b.audit()] == ["help", "help"]


async def test_a_confirmation_expires(tmp_path: Path) -> None:
    """A button pressed after its time is not honoured."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg, confirm_ttl_s=0.2) as b:
        asked = await b.ask("/emergency_stop")
        await asyncio.sleep(0.3)
        query = tg.press_button(CHAT, OPERATOR, asked[-1].message_id, asked[-1].buttons()[0])
        await eventually(lambda: query in tg.answered_callbacks, timeout=10)
        assert "expired" in tg.answered_callbacks[query]["text"]
        assert (await b.rig.control.status()).state is TradingState.ACTIVE


async def test_a_trading_command_typed_long_ago_is_not_run_but_a_question_is_answered(
    tmp_path: Path,
) -> None:
    """Waiting at Telegram while the daemon was away: /pause typed 10 min ago is answered
    "not run" (audited, nothing changed), /status of the same age is answered, and a /pause
    typed a minute ago runs."""
    async with FakeTelegram() as tg, running_bot(tmp_path, tg) as b:
        old = await b.ask("/pause", age_s=600)
        status = await b.ask("/status", age_s=600)
        assert (await b.rig.control.status()).state is TradingState.ACTIVE
        recent = await b.ask("/pause", age_s=60)
        state = (await b.rig.control.status()).state
        audit = await b.audit()
    assert old[0].text.startswith("Not run: /pause was sent at ")
    assert "10 min ago" in old[0].text
    assert old[0].text.endswith("Send it again to run it now.")
    assert status[0].text.startswith("ACTIVE")
    assert "trading is reducing" in recent[0].text
    assert state is TradingState.REDUCING
    assert [(r.command, r.ok) for r in audit] == [
        ("pause", False),
        ("status", True),
        ("pause", True),
    ]
    assert b.bot.stats.stale == 1
