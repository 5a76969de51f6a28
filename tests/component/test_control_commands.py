"""Control's commands on a real trading stage, writer and SQLite file: pause and resume,
close (at once or queued), shorts across a restart, and the emergency stop."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from fakes.control_rig import BALANCE, FEE, buy, config, running_rig, sell, sell_price
from fakes.trading import MINUTE, T0, bar

from paper_trader.domain import EventKind
from paper_trader.domain.trading import Action, ExitReason, FillModel, TradingState
from paper_trader.storage.ledger_repository import breaker_history, closed_trades


async def test_pause_blocks_entries_while_a_stop_still_fills(tmp_path: Path) -> None:
    """While paused an entry is rejected by trading_state and an open position's stop fills."""
    async with running_rig(tmp_path) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        rig.drain_kinds()
        paused = await rig.control.pause("lunch")
        stored = await breaker_history(rig.reader, limit=5)
        kinds_after_pause = rig.drain_kinds()
        again = await rig.control.pause()
        t1 = T0 + MINUTE
        await rig.feed(
            [bar("BTCUSDT", t1, "97", open_="99", low="95"), bar("ETHUSDT", t1, "50")],
            [buy("ETHUSDT", t1)],
        )
        status = await rig.control.status()
        signals = await rig.control.recent_signals()
        trades = await rig.control.recent_trades()

    assert paused.ok
    assert paused.trades == ()
    assert [(t.breaker, t.tripped, t.state) for t in paused.transitions] == [
        ("manual_pause", True, TradingState.REDUCING)
    ]
    assert paused.transitions[0].reason == "paused by the operator: lunch"
    assert paused.transitions[0].candle_time_ms == T0
    assert stored == list(paused.transitions)
    assert kinds_after_pause == [EventKind.BREAKER_TRIPPED]
    assert again.ok
    assert again.transitions == ()
    assert again.message.startswith("already paused")
    assert status.state is TradingState.REDUCING
    assert [t.breaker for t in status.tripped] == ["manual_pause"]
    assert status.open_positions == 0
    assert (status.entered, status.rejected) == (1, 1)
    eth = signals[-1]
    assert (eth.symbol, eth.action, eth.rule) == ("ETHUSDT", Action.REJECTED, "trading_state")
    [stopped] = trades
    assert stopped.exit_reason is ExitReason.STOP_LOSS
    assert stopped.exit_fill_model is FillModel.STOP_TOUCH
    assert stopped.exit_price == sell_price("96.05")


async def test_resume_after_pause_allows_entries_again(tmp_path: Path) -> None:
    """Resume clears the pause, reports trading active, and the next entry goes through."""
    async with running_rig(tmp_path) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")])
        await rig.control.pause()
        resumed = await rig.control.resume()
        t1 = T0 + MINUTE
        await rig.feed([bar("BTCUSDT", t1, "100")], [buy("BTCUSDT", t1)])
        status = await rig.control.status()
        nothing = await rig.control.resume()

    assert resumed.ok
    assert [(t.breaker, t.tripped, t.state) for t in resumed.transitions] == [
        ("manual_pause", False, TradingState.ACTIVE)
    ]
    assert resumed.message == "resumed: cleared manual_pause; trading is active"
    assert status.state is TradingState.ACTIVE
    assert (status.entered, status.rejected, status.open_positions) == (1, 0, 1)
    assert nothing.ok
    assert nothing.transitions == ()
    assert nothing.message == "nothing to resume; trading is active"


async def test_resume_says_which_breaker_stays_tripped(tmp_path: Path) -> None:
    """A losing streak outlives resume: ok is False and the message names the streak."""
    async with running_rig(tmp_path, config(max_consecutive_losses=1)) as rig:
        await rig.control.pause()
        await rig.control.resume()
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "98")])
        closed = await rig.control.close("BTCUSDT")
        await rig.control.pause()
        resumed = await rig.control.resume()
        status = await rig.control.status()

    assert closed.ok
    assert [(t.breaker, t.tripped) for t in closed.transitions] == [("losing_streak", True)]
    assert not resumed.ok
    assert [t.breaker for t in resumed.transitions] == ["manual_pause"]
    assert resumed.message.startswith(
        "resumed: cleared manual_pause; trading is still reducing: 1 consecutive losing trades"
    )
    assert status.state is TradingState.REDUCING
    assert [t.breaker for t in status.tripped] == ["losing_streak"]


async def test_close_fills_at_last_close_and_is_stored_before_returning(tmp_path: Path) -> None:
    """close() sells at the last close less slippage (market_last); SQLite has it on return."""
    async with running_rig(tmp_path) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "102")])
        rig.drain_kinds()
        result = await rig.control.close("btcusdt")
        stored = await closed_trades(rig.reader)
        kinds = rig.drain_kinds()
        status = await rig.control.status()

    [trade] = result.trades
    exit_price = sell_price("102")
    assert result.ok
    assert result.message == "BTCUSDT: closed at 101.949, net PnL 42.43"
    assert stored == [trade]
    assert trade.exit_reason is ExitReason.MANUAL
    assert trade.exit_fill_model is FillModel.MARKET_LAST
    assert trade.exit_price == exit_price
    assert trade.closed_candle_ms == T0 + MINUTE
    entry = Decimal("100.05")
    expected_net = 25 * (exit_price - entry) - 25 * entry * FEE - 25 * exit_price * FEE
    assert trade.net_pnl == expected_net
    assert kinds == [EventKind.TRADE_CLOSED]
    assert status.cash == BALANCE + expected_net
    assert status.open_positions == 0


async def test_close_of_an_unknown_symbol_is_refused_with_the_held_symbols(
    tmp_path: Path,
) -> None:
    """Closing a symbol not held answers ok False and lists what is held; nothing changes."""
    async with running_rig(tmp_path) as rig:
        empty = await rig.control.close("BTCUSDT")
        await rig.feed([bar("ETHUSDT", T0, "50")], [buy("ETHUSDT", T0)])
        result = await rig.control.close("dogeusdt")
        views = await rig.control.positions()

    assert not empty.ok
    assert empty.message == "BTCUSDT: no open position (held: none)"
    assert not result.ok
    assert result.message == "dogeusdt: no open position (held: ETHUSDT)"
    assert (result.trades, result.transitions) == ((), ())
    assert [v.position.symbol for v in views] == ["ETHUSDT"]


async def test_close_on_the_entry_candle_is_queued_and_fills_at_the_next_close(
    tmp_path: Path,
) -> None:
    """A close asked at the candle the position was bought at is queued, not filled at that
    very close; it survives a restart and fills at the next candle's close, 102 less 5 bps."""
    async with running_rig(tmp_path) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        queued = await rig.control.close("btcusdt")
        again = await rig.control.close("BTCUSDT")
        stored_before = await closed_trades(rig.reader)
    async with running_rig(tmp_path) as rig:
        held = await rig.control.positions()
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "102")])
        stored = await closed_trades(rig.reader)
        status = await rig.control.status()

    assert queued.ok
    assert queued.message == (
        "BTCUSDT: entered at the close of its last candle; the close is queued and fills at "
        "the close of its next candle"
    )
    assert (queued.trades, stored_before) == ((), [])
    assert again.ok
    assert "the close is already queued" in again.message
    assert [v.position.symbol for v in held] == ["BTCUSDT"]
    [trade] = stored
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.MANUAL,
        FillModel.MARKET_CLOSE,
        sell_price("102"),
    )
    assert (trade.opened_candle_ms, trade.closed_candle_ms) == (T0, T0 + MINUTE)
    assert status.open_positions == 0


async def test_an_open_short_keeps_its_collateral_and_margin_call_across_a_restart(
    tmp_path: Path,
) -> None:
    """The short's collateral (proceeds plus half of them) and margin call are stored."""
    base = config()
    rules = replace(base, limits=replace(base.limits, allow_short=True))
    async with running_rig(tmp_path, rules) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")], [sell("BTCUSDT", T0)])
        [before] = await rig.control.positions()
    async with running_rig(tmp_path, rules) as rig:
        [after] = await rig.control.positions()
        status = await rig.control.status()

    assert before.position.collateral == Decimal("3748.125")  # 25 * 99.95 * 1.5
    assert before.position.margin_call_price == Decimal("146.8384556619")
    assert after.position == before.position
    assert status.cash == BALANCE + Decimal("2498.75") - Decimal("2.49875")


async def test_a_short_gapping_beyond_all_cash_halts_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    """Short 25 at 99.95; the next candle opens at 1000: bought back at 1000.5, cash below
    zero. The batch commits (no FatalError), trading is HALTED by account_deficit, and a
    restart restores the deficit and keeps refusing entries instead of crashing again."""
    base = config()
    rules = replace(base, limits=replace(base.limits, allow_short=True))
    async with running_rig(tmp_path, rules) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")], [sell("BTCUSDT", T0)])
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "1000", open_="1000")])
        stored = await closed_trades(rig.reader)
        status = await rig.control.status()
    async with running_rig(tmp_path, rules) as rig:
        restored = await rig.control.status()
        await rig.feed([bar("BTCUSDT", T0 + 2 * MINUTE, "1000")], [buy("BTCUSDT", T0 + 2 * MINUTE)])
        after = await rig.control.status()

    [trade] = stored
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.MARGIN_CALL, Decimal("1000.5"))
    cash = BALANCE + trade.net_pnl
    assert cash < 0
    assert (status.cash, status.state) == (cash, TradingState.HALTED)
    assert "account_deficit" in [t.breaker for t in status.tripped]
    assert (restored.cash, restored.state) == (cash, TradingState.HALTED)
    assert "account_deficit" in [t.breaker for t in restored.tripped]
    assert (after.cash, after.open_positions, after.rejected) == (cash, 0, 1)


async def test_emergency_stop_halts_closes_everything_and_blocks_entries(tmp_path: Path) -> None:
    """Emergency stop: HALTED, every position closed as emergency_stop, entries rejected."""
    async with running_rig(tmp_path) as rig:
        await rig.feed(
            [bar("BTCUSDT", T0, "100"), bar("ETHUSDT", T0, "50")],
            [buy("BTCUSDT", T0), buy("ETHUSDT", T0)],
        )
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "102"), bar("ETHUSDT", T0 + MINUTE, "49")])
        stopped = await rig.control.emergency_stop("exchange trouble")
        stored = await closed_trades(rig.reader)
        halted = await rig.control.status()
        t2 = T0 + 2 * MINUTE
        await rig.feed([bar("BTCUSDT", t2, "102")], [buy("BTCUSDT", t2)])
        [refused] = (await rig.control.recent_signals(limit=1))[-1:]

    assert stopped.ok
    assert stopped.transitions[0].breaker == "emergency_stop"
    assert stopped.transitions[0].state is TradingState.HALTED
    assert stopped.transitions[0].reason == "emergency stop: exchange trouble"
    assert [(t.symbol, t.exit_reason, t.exit_fill_model) for t in stopped.trades] == [
        ("BTCUSDT", ExitReason.EMERGENCY_STOP, FillModel.MARKET_LAST),
        ("ETHUSDT", ExitReason.EMERGENCY_STOP, FillModel.MARKET_LAST),
    ]
    assert [t.exit_price for t in stopped.trades] == [sell_price("102"), sell_price("49")]
    assert stored == list(stopped.trades)
    assert stopped.message.startswith("emergency stop: trading is halted; closed 2 (BTCUSDT")
    assert halted.state is TradingState.HALTED
    assert halted.open_positions == 0
    assert halted.positions_value == 0
    assert (refused.symbol, refused.candle_time_ms) == ("BTCUSDT", t2)
    assert (refused.action, refused.rule) == (Action.REJECTED, "trading_state")


async def test_resume_after_an_emergency_stop_makes_trading_active(tmp_path: Path) -> None:
    """Resume clears the emergency stop; the next entry signal is entered."""
    async with running_rig(tmp_path) as rig:
        await rig.feed([bar("BTCUSDT", T0, "100")])
        stopped = await rig.control.emergency_stop()
        resumed = await rig.control.resume()
        t1 = T0 + MINUTE
        await rig.feed([bar("BTCUSDT", t1, "100")], [buy("BTCUSDT", t1)])
        status = await rig.control.status()

    assert stopped.message == "emergency stop: trading is halted; no open positions"
    assert stopped.trades == ()
    assert resumed.ok
    assert [(t.breaker, t.tripped, t.state) for t in resumed.transitions] == [
        ("emergency_stop", False, TradingState.ACTIVE)
    ]
    assert status.state is TradingState.ACTIVE
    assert (status.entered, status.open_positions) == (1, 1)
