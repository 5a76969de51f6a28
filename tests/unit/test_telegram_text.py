"""Telegram HTML: every value escaped, long answers split under the limit at line boundaries,
a <pre> table never cut across two messages without being closed and reopened."""

import re

from hypothesis import given
from hypothesis import strategies as st

from paper_trader.interfaces.telegram.text import (
    Line,
    Pre,
    esc,
    pairs,
    plain_text,
    render,
    render_plain,
    table,
)


def parsed(message: str) -> str:
    """Return what Telegram shows of an HTML message built by ``render`` (tags dropped)."""
    text = re.sub(r"</?(b|pre)>", "", message)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_esc_escapes_lt_gt_and_amp_but_not_quotes() -> None:
    """`P&L <5% > 3` becomes entities Telegram accepts; quotes stay as they are."""
    assert esc('P&L <5% > 3 "x"') == 'P&amp;L &lt;5% &gt; 3 "x"'


def test_render_escapes_every_value_and_bolds_the_summary() -> None:
    """Lines and tables are escaped; the bold summary line comes first."""
    [message] = render([Line("Risk & <limits>", bold=True), Pre(("a<b", "c&d"))])
    assert message == "<b>Risk &amp; &lt;limits&gt;</b>\n<pre>a&lt;b\nc&amp;d</pre>"


def test_a_short_answer_is_one_message() -> None:
    """Under the limit nothing is split."""
    assert len(render([Line("one"), Line("two")])) == 1


def test_a_long_table_is_split_at_lines_each_part_in_its_own_pre() -> None:
    """Every message is under the limit of parsed text, and each opens and closes its <pre>."""
    rows = tuple(f"row {i:04d} " + "x" * 40 for i in range(300))
    messages = render([Line("Summary", bold=True), Pre(rows)], limit=1000)
    assert len(messages) > 1
    for message in messages:
        assert len(parsed(message)) <= 1000
        assert message.count("<pre>") == message.count("</pre>") == 1
    assert messages[0].startswith("<b>Summary</b>\n<pre>")
    lines = "\n".join(parsed(m) for m in messages).split("\n")
    assert lines == ["Summary", *rows]


def test_the_limit_counts_parsed_text_not_entities() -> None:
    """Escaped characters count once: 900 `&` fit in 1000 although their HTML is 4500 long."""
    [message] = render([Line("&" * 900)], limit=1000)
    assert len(message) == 4500
    assert parsed(message) == "&" * 900


def test_an_over_long_line_is_cut_into_pieces() -> None:
    """A single line longer than the limit is cut, nothing lost."""
    messages = render([Line("y" * 2500)], limit=1000)
    assert [len(m) for m in messages] == [1000, 1000, 500]


def test_blank_lines_at_the_edges_of_a_message_are_dropped() -> None:
    """Telegram trims them and refuses an empty message."""
    assert render([Line(""), Line("x"), Line("")]) == ["x"]
    assert render([Line("  ")]) == []


def test_plain_rendering_splits_the_same_way_without_markup() -> None:
    """The plain fallback has the same messages, unescaped and without tags."""
    parts = [Line("S <1>", bold=True), Pre(tuple(f"r{i}&" for i in range(200)))]
    html, plain = render(parts, limit=300), render_plain(parts, limit=300)
    assert [parsed(m) for m in html] == plain
    assert plain_text(parts).startswith("S <1>\nr0&")


def test_table_aligns_columns() -> None:
    """The first column is left-aligned, the others right-aligned."""
    assert table(("sym", "pnl"), [("BTC", "+1.00"), ("ETHUSDT", "-12.50")]).lines == (
        "sym         pnl",
        "BTC       +1.00",
        "ETHUSDT  -12.50",
    )
    assert pairs([("a", 1), ("long", "x")]).lines == ("a     1", "long  x")


@given(
    st.lists(st.text(alphabet="ab<&> \n", max_size=300), min_size=1, max_size=30),
    st.integers(min_value=50, max_value=500),
)
def test_any_answer_splits_under_the_limit_and_loses_nothing(lines: list[str], limit: int) -> None:
    """Whatever the text, each message fits and the non-blank text comes through in order."""
    parts = [Line(lines[0], bold=True), Pre(tuple("\n".join(lines[1:]).split("\n")))]
    messages = render(parts, limit=limit)
    assert all(len(parsed(m)) <= limit for m in messages)
    assert all(m.count("<pre>") == m.count("</pre>") for m in messages)
    shown = "".join(parsed(m) for m in messages).replace("\n", "").replace(" ", "")
    assert shown == "".join(lines).replace("\n", "").replace(" ", "")
