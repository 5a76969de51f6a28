"""One bot, one set of limits: the notifier and the answers to commands take their turns from
the same ``TelegramPacing``, so a 429 either gets holds the chat for both, and together they
stay under Telegram's per-chat rate."""

from pathlib import Path

import pytest
from conftest import eventually
from fakes.bot_rig import CHAT, OPERATOR, running_bot
from fakes.notifier_rig import Options, event, running
from fakes.telegram_server import FakeTelegram

from paper_trader.interfaces.notify.pacing import TelegramPacing

pytestmark = pytest.mark.usefixtures("ptb_timedelta")


async def test_a_429_the_notifier_got_holds_the_answer_to_a_command(
    tmp_path, tg: FakeTelegram
) -> None:
    """The notifier's send is refused with retry_after 2 s; /version asked meanwhile is
    answered only once the 2 s have passed, and the notification goes too: nothing early."""
    pacing = TelegramPacing()
    async with running_bot(tmp_path, tg, pacing=pacing) as bot:
        assert bot.rig.writer is not None
        options = Options(paced=True, pacing=pacing)
        async with running(bot.rig.writer, bot.rig.reader, tg, options) as rig:
            tg.flood(retry_after=2, method="sendMessage", chat_id=CHAT)
            await rig.queue(event(message="gap while flooded"))
            await eventually(lambda: len(tg.refusals(429)) == 1, timeout=10)
            refused = tg.refusals(429)[0].at
            asked = tg.send_command(CHAT, OPERATOR, "/version")
            await eventually(lambda: rig.stats().delivered == 1, timeout=10)
            await eventually(
                lambda: any(m.reply_to == asked for m in tg.delivered(CHAT)), timeout=10
            )
    [answer] = [m for m in tg.delivered(CHAT) if m.reply_to == asked]
    assert answer.at >= refused + 2
    assert tg.early_sends() == []
    assert len(tg.refusals(429)) == 1


async def test_answers_and_notifications_together_keep_to_a_burst_then_one_a_second(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    """Six notifications and three commands in one chat at once: never more than the burst
    of three in any second, although each sender alone would have sent faster."""
    pacing = TelegramPacing()
    async with running_bot(tmp_path, tg, pacing=pacing) as bot:
        assert bot.rig.writer is not None
        options = Options(paced=True, pacing=pacing)
        async with running(bot.rig.writer, bot.rig.reader, tg, options) as rig:
            await rig.queue(*(event(message=f"gap {i}", symbol=f"S{i}") for i in range(6)))
            asked = [tg.send_command(CHAT, OPERATOR, "/version") for _ in range(3)]
            await eventually(lambda: rig.stats().delivered == 6, timeout=20)
            await eventually(
                lambda: all(any(m.reply_to == a for m in tg.delivered(CHAT)) for a in asked),
                timeout=20,
            )
    assert len(tg.delivered(CHAT)) == 9
    # The pacer spaces its sends by 1 s; they are timed here on arrival, which a loaded machine
    # delays by a few tens of ms more for one request than the next: 0.9 s absorbs that jitter
    # and still catches a fourth send in the burst's second.
    assert tg.busiest(CHAT, window_s=0.9) <= 3


async def test_telegram_back_ends_the_notifiers_backoff_at_the_bots_next_good_poll(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    """Telegram down: the notifier's send fails and it backs off for 30 s; once Telegram is
    back, the bot's next successful long poll tells it, and the message goes long before."""
    pacing = TelegramPacing()
    async with running_bot(tmp_path, tg, pacing=pacing) as bot:
        assert bot.rig.writer is not None
        options = Options(pacing=pacing, backoff_s=30.0)
        async with running(bot.rig.writer, bot.rig.reader, tg, options) as rig:
            await tg.go_down(for_s=1.0)
            await rig.queue(event(message="gap while down"))
            await eventually(lambda: rig.stats().unreachable == 1, timeout=10)
            await eventually(lambda: rig.stats().delivered == 1, timeout=15)  # backoff: 30 s
            unreachable = rig.stats().unreachable
    assert unreachable == 1  # one failed send, then the one that worked: no probing meanwhile
    assert [m.text.splitlines()[-1] for m in tg.delivered(CHAT)] == ["gap while down"]
