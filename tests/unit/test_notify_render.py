"""Notification text and pacing: escaping, the split of long messages at line boundaries
(counted as Telegram counts, parsed), the late prefix, and the send limits per chat."""

import pytest
from fakes.telegram_html import parse_text

from paper_trader.interfaces.notify.pacing import (
    Bucket,
    Pacer,
    TelegramPacing,
    Window,
    telegram_pacer,
)
from paper_trader.interfaces.notify.render import (
    CAPTION_LIMIT,
    PREFIX_ROOM,
    TELEGRAM_LIMIT,
    late_prefix,
    span_text,
    split,
    split_captioned,
)
from paper_trader.interfaces.telegram.text import Line


def bold(value: str) -> Line:
    """Return a bold line (a title)."""
    return Line(value, bold=True)


def test_every_value_is_escaped_and_parses_back_to_the_plain_text() -> None:
    """``<``, ``&`` and ``>`` in values reach the user as typed, inside or outside bold."""
    lines = [bold("P&L <5% > 3"), Line("BTC-USDT <b>not bold</b> & co")]
    [part] = split(lines, TELEGRAM_LIMIT)
    assert (
        part.html == "<b>P&amp;L &lt;5% &gt; 3</b>\nBTC-USDT &lt;b&gt;not bold&lt;/b&gt; &amp; co"
    )
    assert parse_text(part.html, "HTML") == part.plain
    assert part.plain == "P&L <5% > 3\nBTC-USDT <b>not bold</b> & co"


def test_a_long_message_is_split_at_line_boundaries_under_the_parsed_limit() -> None:
    """300 lines of escaped text: each part is whole lines under 4096 parsed characters (the
    first leaves room for a prefix), its HTML parses, and together they are the message."""
    lines = [bold("Daily report")] + [Line(f"{i:03d} P&L <{'x' * 40}> & more") for i in range(300)]
    parts = split(lines, TELEGRAM_LIMIT)
    assert len(parts) > 1
    assert len(parts[0].plain) <= TELEGRAM_LIMIT - PREFIX_ROOM
    for part in parts:
        assert len(part.plain) <= TELEGRAM_LIMIT
        assert parse_text(part.html, "HTML") == part.plain
        assert len(part.html) > len(part.plain)  # escaped: the raw text is longer
    assert "\n".join(p.plain for p in parts) == "\n".join(line.text for line in lines)
    assert parts[0].html.startswith("<b>Daily report</b>\n")


def test_a_photo_takes_the_whole_lines_that_fit_its_caption_and_the_rest_follows() -> None:
    """A report's chart carries what fits in 1024 parsed characters (less the prefix room),
    whole lines only; the other lines follow as messages; nothing is lost or repeated."""
    lines = [bold("Daily report & co")] + [Line(f"line {i:03d} <" + "x" * 40) for i in range(60)]
    photo, *rest = split_captioned(lines, b"png", CAPTION_LIMIT, TELEGRAM_LIMIT)
    assert photo.photo == b"png"
    assert 0 < len(photo.plain) <= CAPTION_LIMIT - PREFIX_ROOM
    assert parse_text(photo.html, "HTML") == photo.plain
    assert rest
    assert all(p.photo is None and len(p.plain) <= TELEGRAM_LIMIT for p in rest)
    shown = "\n".join(p.plain for p in (photo, *rest)).splitlines()
    assert shown == [line.text for line in lines]
    assert photo.prefixed("(late) ").photo == b"png"


def test_a_short_caption_is_the_only_part() -> None:
    """A report that fits its caption is one photo."""
    [part] = split_captioned([bold("t"), Line("PnL +1.00")], b"p", CAPTION_LIMIT, TELEGRAM_LIMIT)
    assert (part.html, part.plain, part.photo) == ("<b>t</b>\nPnL +1.00", "t\nPnL +1.00", b"p")


def test_a_line_longer_than_a_part_is_cut_into_plain_pieces() -> None:
    """One 10 000-character line: pieces under the limit, nothing lost."""
    line = Line("&" * 10_000)
    parts = split([line], TELEGRAM_LIMIT)
    assert "".join(p.plain.replace("\n", "") for p in parts) == "&" * 10_000
    assert all(len(p.plain) <= TELEGRAM_LIMIT for p in parts)
    assert all(parse_text(p.html, "HTML") == p.plain for p in parts)


def test_a_prefix_is_plain_text_in_front() -> None:
    """A late message starts with its event's time in UTC, escaped like any value."""
    [part] = split([Line("a <b>")], TELEGRAM_LIMIT)
    late = part.prefixed(late_prefix(1_700_000_000_000))
    assert late.plain == "(event at 2023-11-14 22:13:20 UTC) a <b>"
    assert late.html == "(event at 2023-11-14 22:13:20 UTC) a &lt;b&gt;"


@pytest.mark.parametrize(
    ("ms", "shown"),
    [(0, "1 min"), (59_000, "1 min"), (6 * 60_000, "6 min"), (61_000, "2 min"), (3 * 3.6e6, "3 h")],
)
def test_spans_are_whole_minutes_or_hours(ms: float, shown: str) -> None:
    assert span_text(int(ms)) == shown


def test_a_chat_gets_a_burst_of_three_then_one_a_second() -> None:
    """The per-chat bucket: three at once, then one each second."""
    overall = Window(30, 1.0)
    pacer = telegram_pacer(111, overall)
    for _ in range(3):
        assert pacer.delay(10.0) == 0
        pacer.take(10.0)
    assert pacer.delay(10.0) == pytest.approx(1.0)
    assert pacer.delay(11.0) == 0
    pacer.take(11.0)
    assert pacer.delay(11.5) == pytest.approx(0.5)


def test_a_group_gets_twenty_a_minute() -> None:
    """A negative chat id is a group: after 20 sends within a minute, the 21st waits."""
    pacer = telegram_pacer(-100123, Window(30, 1.0))
    now = 0.0
    for _ in range(20):
        now += pacer.delay(now)
        pacer.take(now)
    assert now == pytest.approx(17.0)  # three at once, then one a second
    assert pacer.delay(now) == pytest.approx(60.0 - now)  # the first leaves the minute


def test_the_bot_sends_at_most_thirty_a_second_over_all_chats() -> None:
    """The shared window holds back the 31st send of a second, whatever its chat."""
    overall = Window(30, 1.0)
    pacers = [Pacer([Bucket(1.0, 3), overall]) for _ in range(20)]
    sent = 0
    for pacer in pacers:
        while pacer.delay(0.0) == 0:
            pacer.take(0.0)
            sent += 1
    assert sent == 30
    assert pacers[-1].delay(0.0) == pytest.approx(1.0)


def test_one_bot_pacing_gives_every_sender_the_same_chat_pacer_and_one_overall_limit() -> None:
    """Asked twice, a chat's pacer is the same object; a hold (a 429) keeps it back until
    then, and never shortens an earlier hold; 30 sends over ten chats fill the overall second."""
    pacing = TelegramPacing()
    chat = pacing.chat(111)
    assert pacing.chat(111) is chat
    chat.hold(5.0)
    chat.hold(3.0)
    assert chat.delay(1.0) == pytest.approx(4.0)
    assert chat.delay(5.0) == 0
    for chat_id in range(1, 11):
        for _ in range(3):
            pacing.chat(chat_id).take(10.0)
    assert pacing.chat(111).delay(10.0) == pytest.approx(1.0)
