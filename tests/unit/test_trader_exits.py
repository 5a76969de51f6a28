"""The trading step's exits and breakers on candle time: stops, targets, the trail, time and
signal exits, a close by command or queued on the entry candle, and the breakers that
reduce or halt trading.

The rules and the standard entry (25 BTC at 100.05, stop 96.05, target 108.05) are those of
``fakes.trader_rig`` unless a test says otherwise; ``SHORTS_CONFIG`` allows shorts and trips
the loss breakers only at 99 %."""

import json
from dataclasses import replace
from decimal import Decimal

from fakes.trader_rig import (
    CASH,
    CONFIG,
    QUIET,
    SHORTS_CONFIG,
    enter,
    make_trader,
    market,
    restart,
    step,
)
from fakes.trading import BTC, ETH, MINUTE, T0, candle, signal

from paper_trader.broker.ledger import Ledger
from paper_trader.domain import Strength
from paper_trader.domain.trading import (
    DAY_MS,
    Action,
    ExitReason,
    FillModel,
    OrderSide,
    TradingState,
)
from paper_trader.trading.trader import InstantResult, Trader

D = Decimal


# exits


def test_no_exit_is_evaluated_on_the_entry_candle() -> None:
    """The entry candle reached 95, below the stop 96.05: the position survives its own candle."""
    trader = make_trader()
    result = enter(trader, "100 101 95 100")
    assert result.trades == []
    assert BTC in trader.ledger.positions
    # A trader that never recorded the entry candle as handled still does not exit on it.
    restarted = Trader(CONFIG, Ledger(trader.ledger.cash, positions=trader.ledger.positions))
    again = step(restarted, 0, [market(candle(0, "100 101 95 100"))])
    assert again.trades == []
    assert BTC in restarted.ledger.positions


def test_a_later_candle_touching_the_stop_exits_at_the_stop_less_slippage() -> None:
    """Low 95.5 reaches 96.05: sold at 96.05 * 0.9995 = 96.001975, gross 25 * -4.048025."""
    trader = make_trader()
    enter(trader)
    result = step(trader, 1, [market(candle(1, "99 99.5 95.5 96.5"))])
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_fill_model) == (
        ExitReason.STOP_LOSS,
        FillModel.STOP_TOUCH,
    )
    assert trade.exit_price == D("96.001975")
    assert trade.exit_fee == D("2.400049375")
    assert trade.gross_pnl == D("-101.200625")
    assert trade.net_pnl == D("-106.101924375")  # -101.200625 - 2.50125 - 2.400049375
    assert (trade.opened_candle_ms, trade.closed_candle_ms) == (T0, T0 + MINUTE)
    assert trade.recovered is False
    assert [(f.fill_id, f.side, f.reason) for f in result.fills] == [
        (2, OrderSide.SELL, "stop_loss")
    ]
    assert result.closed == [BTC]
    assert result.positions == {}
    assert trader.ledger.cash == D("9893.898075625")  # 10000 - 106.101924375
    assert trader.ledger.positions == {}


def test_a_gap_below_the_stop_fills_at_the_open() -> None:
    """The candle opens at 95, under the stop 96.05: sold at 95 * 0.9995 = 94.9525."""
    trader = make_trader()
    enter(trader)
    (trade,) = step(trader, 1, [market(candle(1, "95 95.5 94 95"))]).trades
    assert (trade.exit_reason, trade.exit_fill_model) == (
        ExitReason.STOP_LOSS,
        FillModel.STOP_GAP_OPEN,
    )
    assert trade.exit_price == D("94.9525")


def test_stop_and_target_in_one_candle_exit_at_the_stop() -> None:
    """High 109 passed the target 108.05 and low 95.5 the stop 96.05: the stop comes first."""
    trader = make_trader()
    enter(trader)
    (trade,) = step(trader, 1, [market(candle(1, "100 109 95.5 100"))]).trades
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.STOP_LOSS, D("96.001975"))


def test_a_candle_reaching_the_target_exits_at_the_target_without_slippage() -> None:
    """Sold at exactly 108.05: gross 25 * 8 = 200, net 200 - 2.50125 - 2.70125."""
    trader = make_trader()
    enter(trader)
    (trade,) = step(trader, 1, [market(candle(1, "101 108.5 100.5 108"))]).trades
    assert (trade.exit_reason, trade.exit_fill_model) == (
        ExitReason.TAKE_PROFIT,
        FillModel.TARGET_LIMIT,
    )
    assert (trade.exit_price, trade.exit_fee) == (D("108.05"), D("2.70125"))
    assert (trade.gross_pnl, trade.net_pnl) == (D(200), D("194.7975"))
    assert trader.ledger.cash == D("10194.7975")


def test_the_trailing_stop_activates_one_risk_unit_above_the_fill_and_then_exits() -> None:
    """Best 104 is 3.95 above 100.05 (< 4): no trail; best 105 arms it at 105 - 1.5 * 2 = 102.

    The next candle's low 101.5 reaches 102: sold at 102 * 0.9995 = 101.949.
    """
    trader = make_trader()
    enter(trader)
    first = step(trader, 1, [market(candle(1, "100 104 99.5 103.5"))])
    assert (first.positions[BTC].extreme_price, first.positions[BTC].trailing_stop_price) == (
        D(104),
        None,
    )
    second = step(trader, 2, [market(candle(2, "103.5 105 103 104.5"))])
    assert second.positions[BTC].trailing_stop_price == D(102)
    assert trader.ledger.positions[BTC].trailing_stop_price == D(102)
    assert second.fills == []
    (trade,) = step(trader, 3, [market(candle(3, "104 104.5 101.5 102"))]).trades
    assert (trade.exit_reason, trade.exit_fill_model) == (
        ExitReason.TRAILING_STOP,
        FillModel.STOP_TOUCH,
    )
    assert trade.exit_price == D("101.949")
    assert trade.net_pnl == D("42.425025")  # 25 * 1.899 - 2.50125 - 2.548725


def test_a_position_held_the_maximum_time_exits_at_the_close() -> None:
    """With 3 minutes at most, the candle opened 3 minutes after entry sells at 100.2 * 0.9995."""
    trader = make_trader(exits=replace(CONFIG.exits, max_holding_ms=3 * MINUTE))
    enter(trader)
    assert step(trader, 1, [market(candle(1, QUIET))]).trades == []
    assert step(trader, 2, [market(candle(2, QUIET))]).trades == []
    (trade,) = step(trader, 3, [market(candle(3, "100 100.5 99.5 100.2"))]).trades
    assert (trade.exit_reason, trade.exit_fill_model) == (
        ExitReason.MAX_HOLDING,
        FillModel.MARKET_CLOSE,
    )
    assert trade.exit_price == D("100.1499")


def test_a_strong_sell_closes_a_long_at_the_close() -> None:
    """Opposite STRONG_SELL: sold at 100 * 0.9995 = 99.95; no short, shorts being disabled."""
    trader = make_trader()
    enter(trader)
    bar = candle(1, QUIET)
    result = step(trader, 1, [market(bar)], [signal(bar, Strength.STRONG_SELL)])
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.OPPOSITE_SIGNAL,
        FillModel.MARKET_CLOSE,
        D("99.95"),
    )
    assert result.decisions == []
    assert trader.ledger.positions == {}


def test_a_plain_sell_does_not_close_a_long() -> None:
    """SELL is not strong enough to exit: nothing is filled."""
    trader = make_trader()
    enter(trader)
    bar = candle(1, QUIET)
    result = step(trader, 1, [market(bar)], [signal(bar, Strength.SELL)])
    assert result.fills == []
    assert BTC in trader.ledger.positions


def test_close_position_fills_at_the_last_close_as_market_last() -> None:
    """A close command after a candle closing at 101 sells at 101 * 0.9995 = 100.9495."""
    trader = make_trader()
    enter(trader)
    step(trader, 1, [market(candle(1, "100 101.5 99.5 101"))])
    result = InstantResult(candle_time_ms=T0 + MINUTE)
    trade = trader.close_position(BTC, ExitReason.MANUAL, result)
    assert trade is not None
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.MANUAL,
        FillModel.MARKET_LAST,
        D("100.9495"),
    )
    assert trade.closed_candle_ms == T0 + MINUTE
    assert [(f.fill_id, f.fill_model) for f in result.fills] == [(2, FillModel.MARKET_LAST)]
    assert (result.closed, result.trades) == ([BTC], [trade])
    assert trader.ledger.positions == {}
    assert trader.close_position(BTC, ExitReason.MANUAL, result) is None
    assert len(result.fills) == 1


# the stop-loss cooldown after a losing trailing stop


def test_a_losing_trailing_stop_starts_the_stop_loss_cooldown() -> None:
    """The trail arms at 0.5R (2 above the fill 100.05) and sits 3 behind the best 102.2, at
    99.2, below the fill: it exits at 99.1504, a loss, and the symbol cools down."""
    trader = make_trader(
        SHORTS_CONFIG,
        breakers=replace(SHORTS_CONFIG.breakers, stop_loss_cooldown_ms=30 * MINUTE),
        exits=replace(SHORTS_CONFIG.exits, trailing_activation_r=0.5, trailing_atr_multiplier=1.5),
    )
    bar = candle(0, "100 101 99 100")
    step(trader, 0, [market(bar)], [signal(bar)])
    armed = step(trader, 1, [market(candle(1, "100.1 102.2 100 102"))])
    assert armed.positions[BTC].trailing_stop_price == D("99.2")
    bar = candle(2, "101 101.5 99 99.5")
    result = step(trader, 2, [market(bar)], [signal(bar)])
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.TRAILING_STOP, D("99.1504"))
    assert trade.net_pnl < 0
    assert [(t.breaker, t.tripped, t.symbol) for t in result.transitions] == [
        ("stop_loss_cooldown", True, BTC)
    ]
    assert [(d.action, d.rule) for d in result.decisions] == [
        (Action.REJECTED, "stop_loss_cooldown")
    ]


# a manual close on the entry candle


def test_a_manual_close_on_the_entry_candle_is_queued_to_the_next_close() -> None:
    """Queued at the entry candle; the next candle's close sells at 101 * 0.9995 = 100.9495,
    after that candle's protective exits; the queue survives a restart."""
    trader = make_trader(SHORTS_CONFIG)
    bar = candle(0, "100 101 99 100")
    step(trader, 0, [market(bar)], [signal(bar)])
    assert trader.is_on_entry_candle(BTC)
    assert trader.queue_close(BTC, T0)
    assert not trader.queue_close(BTC, T0)
    copy = restart(trader)
    assert copy.pending_closes == {BTC: T0}
    (trade,) = step(copy, 1, [market(candle(1, "100 101.5 99.5 101"))]).trades
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.MANUAL,
        FillModel.MARKET_CLOSE,
        D("100.9495"),
    )
    assert (trade.opened_candle_ms, trade.closed_candle_ms) == (T0, T0 + MINUTE)
    assert copy.pending_closes == {}


def test_a_queued_close_gives_way_to_a_stop_in_the_same_candle() -> None:
    """The next candle touches the stop 96.05 first: a stop-loss, and the queue is emptied."""
    trader = make_trader(SHORTS_CONFIG)
    bar = candle(0, "100 101 99 100")
    step(trader, 0, [market(bar)], [signal(bar)])
    trader.queue_close(BTC, T0)
    (trade,) = step(trader, 1, [market(candle(1, "99 99.5 95.5 97"))]).trades
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trader.pending_closes == {}


def test_a_state_written_before_the_queue_existed_restores_without_one() -> None:
    """An old state_json without pending_closes gives an empty queue."""
    trader = make_trader(SHORTS_CONFIG)
    state = json.loads(trader.state_json())
    del state["pending_closes"]
    assert Trader(SHORTS_CONFIG, Ledger(CASH), state=state).pending_closes == {}


# breakers


def test_a_losing_streak_reduces_trading_and_rejects_entries() -> None:
    """Two stop-outs in a row with a limit of 2: REDUCING, the BUY at that instant is refused."""
    trader = make_trader(breakers=replace(CONFIG.breakers, max_consecutive_losses=2))
    enter(trader)
    step(trader, 1, [market(candle(1, "99 99.5 95.5 96.5"))])
    bar = candle(2, QUIET)
    assert [d.action for d in step(trader, 2, [market(bar)], [signal(bar)]).decisions] == [
        Action.ENTERED
    ]
    bar = candle(3, "99 99.5 95.5 96.5")
    result = step(trader, 3, [market(bar)], [signal(bar)])
    assert [t.exit_reason for t in result.trades] == [ExitReason.STOP_LOSS]
    assert [(t.breaker, t.tripped, t.state) for t in result.transitions] == [
        ("losing_streak", True, TradingState.REDUCING)
    ]
    assert [(d.action, d.rule) for d in result.decisions] == [(Action.REJECTED, "trading_state")]
    assert trader.breakers.state is TradingState.REDUCING


def test_a_daily_loss_reduces_trading_until_the_next_utc_day() -> None:
    """A 1.06101924375 % loss against a 1 % limit trips at the stop-out; the next day resets
    it."""
    trader = make_trader(breakers=replace(CONFIG.breakers, max_daily_loss=0.01))
    enter(trader)
    bar = candle(1, "99 99.5 95.5 96.5")
    result = step(trader, 1, [market(bar)], [signal(bar)])
    assert [(t.breaker, t.tripped, t.state, t.observed) for t in result.transitions] == [
        ("daily_loss", True, TradingState.REDUCING, "0.01061")
    ]
    assert [(d.action, d.rule) for d in result.decisions] == [(Action.REJECTED, "trading_state")]
    next_day = DAY_MS // MINUTE
    bar = candle(next_day, QUIET)
    result = step(trader, next_day, [market(bar)], [signal(bar)])
    assert [(t.breaker, t.tripped) for t in result.transitions] == [("daily_loss", False)]
    assert [d.action for d in result.decisions] == [Action.ENTERED]


def test_a_drawdown_halts_trading_and_closes_positions_at_the_close() -> None:
    """Marked at 98, equity 9946.24875 is 0.5375 % under the peak 10000 (limit 0.5 %).

    The position is sold at 98 * 0.9995 = 97.951 with reason halted; the BUY is refused.
    """
    trader = make_trader(breakers=replace(CONFIG.breakers, max_drawdown=0.005))
    enter(trader)
    bar = candle(1, "100 100 97.5 98")
    result = step(trader, 1, [market(bar)], [signal(bar)])
    assert [(t.breaker, t.state) for t in result.transitions] == [
        ("max_drawdown", TradingState.HALTED)
    ]
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.HALTED,
        FillModel.MARKET_CLOSE,
        D("97.951"),
    )
    assert [(d.action, d.rule) for d in result.decisions] == [(Action.REJECTED, "trading_state")]
    assert trader.ledger.cash == D("9942.574975")  # 7496.24875 + 2448.775 - 2.448775
    assert result.snapshot is not None
    assert (result.snapshot.open_positions, result.snapshot.equity) == (0, D("9942.574975"))


def test_a_halt_closes_a_position_without_a_candle_at_its_next_candle() -> None:
    """ETH has no candle when BTC's fall halts trading: it is closed at its next close."""
    trader = make_trader(breakers=replace(CONFIG.breakers, max_drawdown=0.005))
    btc, eth = candle(0, "100 101 99 100"), candle(0, "50 50.5 49.5 50", symbol=ETH)
    step(trader, 0, [market(btc), market(eth, "1")], [signal(btc), signal(eth)])
    halted = step(trader, 1, [market(candle(1, "100 100 95.5 96.5"))])
    assert trader.breakers.state is TradingState.HALTED
    assert [t.symbol for t in halted.trades] == [BTC]
    later = step(trader, 2, [market(candle(2, "50 50.5 49.5 50.2", symbol=ETH), "1")])
    (trade,) = later.trades
    assert (trade.symbol, trade.exit_reason, trade.exit_price) == (
        ETH,
        ExitReason.HALTED,
        D("50.1749"),  # 50.2 * 0.9995
    )
    assert trader.ledger.positions == {}
