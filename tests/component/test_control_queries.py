"""Control's queries on a real trading stage, writer and SQLite file: status, positions,
recent signals and trades, and the daily and weekly reports."""

from decimal import Decimal
from pathlib import Path

from fakes.control_rig import BALANCE, FEE, SLIP, buy, open_and_close, running_rig
from fakes.trading import MINUTE, T0, bar

from paper_trader.control.reports import PeriodUnit
from paper_trader.domain.trading import DAY_MS, Action, ExitReason, TradingState


async def test_status_reports_equity_and_cash_after_a_known_fill(tmp_path: Path) -> None:
    """One fill of 25 at 100 plus 5 bps with a 0.1 % fee gives exact cash, equity and drawdown."""
    async with running_rig(tmp_path) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        status = await rig.control.status()

    price = Decimal(100) * (1 + SLIP)
    fee = 25 * price * FEE
    cash = BALANCE - 25 * price - fee
    assert price == Decimal("100.05")
    assert cash == Decimal("7496.24875")
    assert status.state is TradingState.ACTIVE
    assert status.tripped == ()
    assert status.cash == cash
    assert status.positions_value == Decimal(2500)
    assert status.equity == cash + 2500
    assert status.peak_equity == BALANCE
    assert status.drawdown == float((BALANCE - cash - 2500) / BALANCE)
    assert status.drawdown == 0.000375125
    assert status.open_positions == 1
    assert status.last_candle_ms == T0
    assert (status.entered, status.rejected, status.skipped) == (1, 0, 0)


async def test_positions_show_mark_unrealised_pnl_and_levels(tmp_path: Path) -> None:
    """A long from 100.05 marked at 102 shows 48.75 unrealised, stop 96.05 and target 108.05
    (placed from the fill)."""
    async with running_rig(tmp_path) as rig:
        await rig.feed(
            [bar("BTCUSDT", T0, "100"), bar("ETHUSDT", T0, "50")],
            [buy("ETHUSDT", T0), buy("BTCUSDT", T0)],
        )
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "102"), bar("ETHUSDT", T0 + MINUTE, "49")])
        views = await rig.control.positions()

    assert [v.position.symbol for v in views] == ["BTCUSDT", "ETHUSDT"]
    btc = views[0]
    assert btc.position.quantity == Decimal(25)
    assert btc.position.entry_price == Decimal("100.05")
    assert btc.mark == Decimal(102)
    assert btc.unrealised_pnl == Decimal("48.75")
    assert btc.unrealised_pct == 100 * Decimal("48.75") / Decimal("2501.25")
    assert (btc.stop, btc.stop_reason, btc.target) == (
        Decimal("96.05"),
        ExitReason.STOP_LOSS,
        Decimal("108.05"),
    )
    eth = views[1]
    assert eth.mark == Decimal(49)
    assert eth.unrealised_pnl == eth.position.quantity * (Decimal(49) - Decimal("50.025"))
    assert (eth.stop, eth.target) == (Decimal("46.025"), Decimal("58.025"))


async def test_recent_signals_are_oldest_first_and_limited(tmp_path: Path) -> None:
    """recent_signals returns the newest decisions, oldest first, at most ``limit``."""
    async with running_rig(tmp_path) as rig:
        t1, t2 = T0 + MINUTE, T0 + 2 * MINUTE
        await rig.feed(
            [bar("BTCUSDT", T0, "100"), bar("ETHUSDT", T0, "50")],
            [buy("BTCUSDT", T0), buy("ETHUSDT", T0)],
        )
        await rig.feed([bar("BTCUSDT", t1, "100")], [buy("BTCUSDT", t1)])
        await rig.feed([bar("ETHUSDT", t2, "50")], [buy("ETHUSDT", t2)])
        every = await rig.control.recent_signals()
        last_two = await rig.control.recent_signals(limit=2)
        none = await rig.control.recent_signals(limit=0)

    assert [(d.candle_time_ms, d.symbol, d.action) for d in every] == [
        (T0, "BTCUSDT", Action.ENTERED),
        (T0, "ETHUSDT", Action.ENTERED),
        (t1, "BTCUSDT", Action.REJECTED),
        (t2, "ETHUSDT", Action.REJECTED),
    ]
    assert last_two == every[2:]
    assert {d.rule for d in last_two} == {"position_open"}
    assert none == ()


async def test_recent_trades_are_oldest_first_and_limited(tmp_path: Path) -> None:
    """recent_trades returns the newest closed trades in closing order, at most ``limit``."""
    async with running_rig(tmp_path) as rig:
        symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
        await rig.feed([bar(s, T0, "100") for s in symbols], [buy(s, T0) for s in symbols])
        await rig.feed([bar(s, T0 + MINUTE, "101") for s in symbols])
        for symbol in ("SOLUSDT", "BTCUSDT", "ETHUSDT"):
            await rig.control.close(symbol)
        every = await rig.control.recent_trades()
        last_two = await rig.control.recent_trades(limit=2)
        none = await rig.control.recent_trades(limit=-1)

    assert [t.symbol for t in every] == ["SOLUSDT", "BTCUSDT", "ETHUSDT"]
    assert [t.exit_fill_id for t in every] == [4, 5, 6]
    assert last_two == every[1:]
    assert none == ()


async def test_reports_window_the_day_and_week_of_the_last_candle(tmp_path: Path) -> None:
    """Day 8 is a Wednesday: a trade 8 days back is in neither report; one on Monday 2 days
    back is in the week only."""
    day8 = T0 + 8 * DAY_MS
    async with running_rig(tmp_path) as rig:
        old = await open_and_close(rig, "BTCUSDT", T0, "100", "102")
        week = await open_and_close(rig, "ETHUSDT", day8 - 2 * DAY_MS, "50", "52")
        today = await open_and_close(rig, "BTCUSDT", day8, "100", "99")
        daily = await rig.control.report(PeriodUnit.DAY)
        weekly = await rig.control.report(PeriodUnit.WEEK)
        monday = await rig.control.report(PeriodUnit.DAY, start_ms=day8 - 2 * DAY_MS)

    assert (daily.start_ms, daily.end_ms) == (day8, day8 + DAY_MS)
    assert (weekly.start_ms, weekly.end_ms) == (day8 - 2 * DAY_MS, day8 + 5 * DAY_MS)
    assert monday.trades == (week,)
    assert monday.start_equity == BALANCE + old.net_pnl
    assert monday.end_equity == BALANCE + old.net_pnl + week.net_pnl
    assert daily.trades == (today,)
    assert weekly.trades == (week, today)
    assert old not in weekly.trades

    assert weekly.start_equity == BALANCE + old.net_pnl
    assert daily.start_equity == BALANCE + old.net_pnl + week.net_pnl
    final = BALANCE + old.net_pnl + week.net_pnl + today.net_pnl
    assert daily.end_equity == weekly.end_equity == final
    assert weekly.total_return == final / (BALANCE + old.net_pnl) - 1

    assert (weekly.wins, weekly.losses) == (1, 1)
    assert weekly.net_pnl == week.net_pnl + today.net_pnl
    assert weekly.fees == week.fees + today.fees
    assert (weekly.best_trade, weekly.worst_trade) == (week, today)
    assert weekly.by_symbol == (("BTCUSDT", today.net_pnl), ("ETHUSDT", week.net_pnl))
    assert weekly.analytics["trades"] == 2
    assert weekly.analytics["net_pnl"] == format(week.net_pnl + today.net_pnl, "f")

    assert (daily.wins, daily.losses) == (0, 1)
    assert daily.by_symbol == (("BTCUSDT", today.net_pnl),)
    assert daily.analytics["trades"] == 1


async def test_report_before_any_candle_is_empty_at_the_initial_balance(tmp_path: Path) -> None:
    """With nothing handled yet the report holds no trades and the initial balance."""
    async with running_rig(tmp_path) as rig:
        report = await rig.control.report(PeriodUnit.DAY)

    assert report.trades == ()
    assert (report.start_equity, report.end_equity) == (BALANCE, BALANCE)
    assert report.total_return == 0
    assert (report.best_trade, report.worst_trade) == (None, None)
    assert report.analytics["trades"] == 0
