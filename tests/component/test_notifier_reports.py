"""The daily and weekly reports: committed with the instant that starts a new UTC day (week) of
candle time, made when delivered — a chart by ``sendPhoto`` whose caption is the summary, the
same text to the webhook — from the ledger through control, once however many channels."""

import json
from pathlib import Path

import pytest
from conftest import eventually
from fakes.control_rig import BALANCE, Rig, open_and_close, running_rig
from fakes.notifier_rig import CHAT, CLOCK, GROUP, Options, running
from fakes.telegram_server import FakeTelegram
from fakes.trading import MINUTE, T0, bar
from fakes.webhook_server import FakeWebhook

from paper_trader.control.reports import PeriodUnit, Reports
from paper_trader.domain.trading import DAY_MS
from paper_trader.interfaces.notify.reports import ReportMaker
from paper_trader.interfaces.notify.webhook import WebhookFormat
from paper_trader.storage import outbox_entries

pytestmark = pytest.mark.usefixtures("ptb_timedelta")
PNG = b"\x89PNG\r\n\x1a\n"
NEXT_DAY = T0 + DAY_MS  # T0 is Tuesday 14 Nov 2023, 00:00 UTC


async def reports_queued(rig: Rig) -> list[tuple[str, dict[str, object]]]:
    """Return (kind, data) of the report rows in the outbox."""
    rows = await outbox_entries(rig.reader)
    return [(r.kind, json.loads(r.data_json)) for r in rows if r.kind.endswith("_report")]


def maker(rig: Rig) -> ReportMaker:
    """Return the reports' maker over the rig's ledger, with no health check yet."""
    return ReportMaker(rig.control, Reports(rig.stage, rig.reader), lambda: None)


async def test_a_day_of_trades_is_reported_at_midnight_with_its_chart(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    """Two trades on Tuesday; Wednesday's first candle queues Tuesday's report (once); every
    chat gets one photo whose caption is the summary, ending with the Monte Carlo of the
    trades closed by then, the webhook the same text."""
    async with running_rig(tmp_path, now_ms=CLOCK.now_ms) as rig:
        win = await open_and_close(rig, "BTCUSDT", T0 + 60 * MINUTE, "100", "103")
        loss = await open_and_close(rig, "ETHUSDT", T0 + 120 * MINUTE, "50", "49")
        await rig.feed([bar("BTCUSDT", NEXT_DAY - MINUTE, "103")])
        assert await reports_queued(rig) == []
        await rig.feed([bar("BTCUSDT", NEXT_DAY, "103")])
        await rig.feed([bar("BTCUSDT", NEXT_DAY + MINUTE, "103")])
        queued = await reports_queued(rig)
        report = await rig.control.report(PeriodUnit.DAY, start_ms=T0)
        record = await Reports(rig.stage, rig.reader).monte_carlo()
        # Wednesday's trade comes after Tuesday's report: not in its Monte Carlo
        await open_and_close(rig, "BTCUSDT", NEXT_DAY + 2 * MINUTE, "103", "101")
        options = Options(chats=(CHAT, GROUP), webhook=WebhookFormat.JSON, expand=maker(rig).expand)
        assert rig.writer is not None
        async with FakeWebhook() as hook, running(rig.writer, rig.reader, tg, options, hook):
            for chat in (CHAT, GROUP):
                await eventually(lambda c=chat: _photos(tg, c), timeout=10)
            await eventually(lambda: any("report" in p["kind"] for p in hook.accepted()))
    assert queued == [("daily_report", {"period": "day", "start_ms": T0})]
    assert (report.wins, report.losses, report.trades) == (1, 1, (win, loss))
    [photo] = _photos(tg, CHAT)
    assert photo.photo is not None
    assert photo.photo.startswith(PNG)
    assert _photos(tg, GROUP)[0].photo == photo.photo  # drawn once, sent to each
    lines = photo.text.splitlines()
    assert lines[0] == "\U0001f4ca Daily report: Tue 14 Nov 2023 (UTC)"
    assert report.start_equity == BALANCE  # the day the ledger began
    change = report.end_equity - report.start_equity
    assert change == win.net_pnl + loss.net_pnl  # nothing left open
    assert lines[1].startswith(f"PnL {change:+,.2f} (")
    assert lines[2] == "2 trades closed: 1 won, 1 lost · win rate 50.00 %"
    assert lines[4].startswith("max drawdown ")
    assert lines[5] == f"best BTCUSDT {win.net_pnl:+,.2f} · worst ETHUSDT {loss.net_pnl:+,.2f}"
    assert record is not None
    final = record.final_equity
    assert lines[-4:-1] == [
        "Monte Carlo of all 2 closed trades so far (1,000 runs):",
        f"final equity p5 {final.p5:,.2f} · p50 {final.p50:,.2f} · p95 {final.p95:,.2f}",
        f"max drawdown p5 {100 * record.max_drawdown.p5:.2f} % · p50 "
        f"{100 * record.max_drawdown.p50:.2f} % · p95 {100 * record.max_drawdown.p95:.2f} %",
    ]
    assert lines[-1] == "health: not checked yet"
    [posted] = [p for p in hook.accepted() if p["kind"] == "daily_report"]
    assert posted["message"].splitlines() == lines


async def test_monday_brings_the_week_and_a_quiet_day_is_text_alone(
    tmp_path: Path, tg: FakeTelegram
) -> None:
    """Sunday 23:59 → Monday 00:00 queues Sunday's and the week's reports; a day with one
    snapshot has no chart to draw: its report is a message."""
    monday = T0 + 6 * DAY_MS
    async with running_rig(tmp_path, now_ms=CLOCK.now_ms) as rig:
        await rig.feed([bar("BTCUSDT", monday - MINUTE, "100")])
        await rig.feed([bar("BTCUSDT", monday, "100")])
        queued = await reports_queued(rig)
        assert rig.writer is not None
        options = Options(expand=maker(rig).expand)
        async with running(rig.writer, rig.reader, tg, options):
            sent = await tg.wait_for_messages(CHAT, 2, timeout=10)
    assert queued == [
        ("daily_report", {"period": "day", "start_ms": monday - DAY_MS}),
        ("weekly_report", {"period": "week", "start_ms": monday - 7 * DAY_MS}),
    ]
    assert [m.method for m in sent] == ["sendMessage", "sendMessage"]
    titles = sorted(m.text.splitlines()[0] for m in sent)
    assert titles == [
        "\U0001f4ca Daily report: Sun 19 Nov 2023 (UTC)",
        "\U0001f4ca Weekly report: Mon 13 Nov 2023 to Sun 19 Nov 2023 (UTC)",
    ]
    assert all("0 trades closed" in m.text for m in sent)


def _photos(tg: FakeTelegram, chat: int) -> list[object]:
    return [m for m in tg.delivered(chat) if m.method == "sendPhoto"]
