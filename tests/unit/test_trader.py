"""The trading step: exits, breakers and entries at one decision instant, on candle time.

Unless a test says otherwise: 10,000 cash, fee 0.1 %, a flat 5 bps of slippage (no volume
impact), fixed fractional sizing risking 1 % of equity, full size from a confidence of 0.5,
stops 2 ATR away, targets at 2R, a trail from 1R at 1.5 ATR, and no spacing or cooldown
between entries. The standard entry is a BUY on BTC at a close of 100 with an ATR of 2:

- quantity 10000 * 0.01 / (2 * 2) = 25, filled at 100 * 1.0005 = 100.05;
- stop 100.05 - 4 = 96.05, risk per unit 4, target 100.05 + 2 * 4 = 108.05 (from the fill);
- fee 25 * 100.05 * 0.001 = 2.50125; cash 10000 - 2501.25 - 2.50125 = 7496.24875.
"""

from dataclasses import replace
from decimal import Decimal

from fakes.candles import candle_of
from fakes.trader_rig import (
    CASH,
    CONFIG,
    ENTRY_CASH,
    QUIET,
    Instant,
    enter,
    make_trader,
    market,
    restart,
    step,
    walk_prices,
)
from fakes.trading import BTC, ETH, MINUTE, T0, candle, signal
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.broker.config import FillConfig
from paper_trader.broker.ledger import Ledger
from paper_trader.domain import Candle, Interval, Strength, Venue
from paper_trader.domain.trading import (
    DAY_MS,
    Action,
    Decision,
    EquitySnapshot,
    ExitReason,
    Fill,
    FillModel,
    OrderSide,
    Position,
    Side,
    TradingState,
)
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.trading.trader import InstantResult, MarketInput, Trader, TraderConfig

D = Decimal


# entries


def test_a_buy_opens_a_long_at_the_close_plus_slippage_with_levels_from_the_fill() -> None:
    """25 at 100.05; stop 96.05 and target 108.05 come from the fill, not the close 100."""
    trader = make_trader()
    result = enter(trader)
    position = Position(
        venue=Venue.BINANCE,
        symbol=BTC,
        interval=Interval.M1,
        side=Side.LONG,
        quantity=D(25),
        entry_price=D("100.05"),
        entry_fee=D("2.50125"),
        entry_fill_id=1,
        opened_candle_ms=T0,
        stop_price=D("96.05"),
        take_profit_price=D("108.05"),
        trailing_stop_price=None,
        extreme_price=D("100.05"),
        risk_per_unit=D(4),
        atr=D(2),
    )
    assert trader.ledger.positions == {BTC: position}
    assert result.positions == {BTC: position}
    assert result.fills == [
        Fill(
            fill_id=1,
            venue=Venue.BINANCE,
            symbol=BTC,
            interval=Interval.M1,
            side=OrderSide.BUY,
            quantity=D(25),
            price=D("100.05"),
            fee=D("2.50125"),
            candle_time_ms=T0,
            reason="entry",
            fill_model=FillModel.MARKET_CLOSE,
            slippage_bps=D(5),
        )
    ]
    assert result.decisions == [
        Decision(
            venue=Venue.BINANCE,
            symbol=BTC,
            interval=Interval.M1,
            candle_time_ms=T0,
            strength="buy",
            score=0.3,
            confidence=0.5,
            model_version="v1",
            action=Action.ENTERED,
            side=Side.LONG,
            quantity=D(25),
            price=D("100.05"),
            rule=None,
            detail="entered",
        )
    ]
    assert trader.ledger.cash == ENTRY_CASH
    # The equity was marked (peak 10000) before the entry; the snapshot marks BTC at 100.
    assert result.snapshot == EquitySnapshot(
        candle_time_ms=T0,
        cash=ENTRY_CASH,
        positions_value=D(2500),
        equity=D("9996.24875"),
        peak_equity=CASH,
        open_positions=1,
    )
    assert trader.handled == {BTC: T0}
    assert trader.last_candle_ms == T0


def test_a_lower_confidence_scales_the_quantity_down() -> None:
    """Confidence 0.2 of a full size at 0.5 scales 25 by 0.4 to 10."""
    trader = make_trader()
    bar = candle(0, "100 101 99 100")
    result = step(trader, 0, [market(bar)], [signal(bar, confidence=0.2)])
    assert [(f.quantity, f.price) for f in result.fills] == [(D(10), D("100.05"))]


def test_an_entry_over_the_position_size_limit_is_capped_and_says_so() -> None:
    """A 10 % cap is 1000 of equity: 1000 / 100.05 is 9.99500249 whole steps, not 25."""
    trader = make_trader(limits=replace(CONFIG.limits, max_position_size=0.1))
    result = enter(trader)
    assert result.fills[0].quantity == D("9.99500249")
    assert result.decisions[0].detail == "entered (capped by max_position_size)"


def test_a_candle_without_an_atr_has_no_stop_and_is_rejected() -> None:
    """Features not warm yet: rule stop_distance, nothing filled."""
    trader = make_trader()
    bar = candle(0, "100 101 99 100")
    result = step(trader, 0, [market(bar, atr=None)], [signal(bar)])
    assert [(d.action, d.rule) for d in result.decisions] == [(Action.REJECTED, "stop_distance")]
    assert result.fills == []


def test_a_hold_signal_makes_no_decision() -> None:
    """HOLD is not an entry signal, and SELL is none while shorts are disabled."""
    trader = make_trader()
    btc, eth = candle(0, "100 101 99 100"), candle(0, "50 51 49 50", symbol=ETH)
    result = step(
        trader,
        0,
        [market(btc), market(eth, "1")],
        [signal(btc, Strength.HOLD), signal(eth, Strength.SELL)],
    )
    assert result.decisions == []
    assert result.snapshot is not None


def test_a_sell_opens_a_short_below_the_close_when_shorts_are_allowed() -> None:
    """Short 25 at 100 * 0.9995 = 99.95; stop 103.95, target 91.95; cash + 2498.75 - 2.49875,
    of which the proceeds and a margin of half of them are held out of free cash."""
    trader = make_trader(limits=replace(CONFIG.limits, allow_short=True))
    bar = candle(0, "100 101 99 100")
    result = step(trader, 0, [market(bar)], [signal(bar, Strength.SELL)])
    position = trader.ledger.positions[BTC]
    assert (position.side, position.quantity, position.entry_price) == (
        Side.SHORT,
        D(25),
        D("99.95"),
    )
    assert (position.stop_price, position.take_profit_price) == (D("103.95"), D("91.95"))
    assert result.fills[0].side is OrderSide.SELL
    assert trader.ledger.cash == D("12496.25125")
    assert trader.ledger.free_cash == D("12496.25125") - D("3748.125")


def test_two_symbols_at_one_instant_are_handled_in_symbol_order() -> None:
    """BTC (given last) enters first; ETH is then sized on 9996.24875 of equity.

    ETH closes at 50 with an ATR of 1: stop distance 2, quantity 9996.24875 * 0.01 / 2 =
    49.98124375, filled at 50.025.
    """
    trader = make_trader()
    btc, eth = candle(0, "100 101 99 100"), candle(0, "50 50.5 49.5 50", symbol=ETH)
    result = step(trader, 0, [market(eth, "1"), market(btc)], [signal(eth), signal(btc)])
    assert [(f.fill_id, f.symbol, f.quantity, f.price) for f in result.fills] == [
        (1, BTC, D(25), D("100.05")),
        (2, ETH, D("49.98124375"), D("50.025")),
    ]
    assert [d.symbol for d in result.decisions] == [BTC, ETH]
    assert trader.handled == {BTC: T0, ETH: T0}


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


# gates


def test_a_stale_candle_skips_the_entry_but_still_exits_as_recovered() -> None:
    """Catching up: the stop exit is taken (recovered) and the BUY is recorded as skipped."""
    trader = make_trader()
    enter(trader)
    bar = candle(1, "99 99.5 95.5 96.5")
    result = step(trader, 1, [market(bar, stale=True, recovered=True)], [signal(bar)])
    (trade,) = result.trades
    assert (trade.exit_price, trade.recovered) == (D("96.001975"), True)
    assert [(d.action, d.rule, d.quantity, d.detail) for d in result.decisions] == [
        (Action.SKIPPED, None, None, "catching up: the candle is stale")
    ]
    assert [f.reason for f in result.fills] == ["stop_loss"]
    assert trader.ledger.positions == {}


def test_entries_blocked_by_the_prediction_breaker_are_rejected() -> None:
    """``entries_blocked="no model"``: rule prediction, the reason as the detail."""
    trader = make_trader()
    bar = candle(0, "100 101 99 100")
    result = step(trader, 0, [market(bar)], [signal(bar)], entries_blocked="no model")
    assert [(d.action, d.rule, d.detail) for d in result.decisions] == [
        (Action.REJECTED, "prediction", "no model")
    ]
    assert result.fills == []
    assert trader.ledger.cash == CASH


def test_an_untradable_series_is_rejected_by_the_data_quality_gate() -> None:
    """tradable=False: rule data_quality."""
    trader = make_trader()
    bar = candle(0, "100 101 99 100")
    result = step(trader, 0, [market(bar, tradable=False)], [signal(bar)])
    assert [(d.action, d.rule, d.detail) for d in result.decisions] == [
        (Action.REJECTED, "data_quality", "BTCUSDT is not tradable")
    ]
    assert result.fills == []


def test_a_symbol_candle_already_handled_is_ignored() -> None:
    """The same or an older open time than ``handled`` changes nothing, even a stop touch."""
    trader = make_trader()
    enter(trader)
    eth = candle(0, "50 50.5 49.5 50", symbol=ETH)
    for minute in (0, -1):
        bar = candle(minute, "99 99.5 90 91")
        assert step(trader, minute, [market(bar)], [signal(bar)]) == InstantResult(
            candle_time_ms=T0 + minute * MINUTE
        )
    mixed = step(trader, 0, [market(candle(0, "99 99.5 90 91")), market(eth, "1")])
    assert mixed.trades == []
    assert trader.handled == {BTC: T0, ETH: T0}
    assert trader.ledger.cash == ENTRY_CASH


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


# restart


def test_a_trader_rebuilt_from_its_persisted_state_continues_identically() -> None:
    """The entry spacing, the trail and the peak survive a restart: both copies act the same."""
    config = replace(
        CONFIG,
        breakers=replace(
            CONFIG.breakers, min_time_between_trades_ms=5 * MINUTE, stop_loss_cooldown_ms=MINUTE
        ),
    )
    original = make_trader(config)
    btc, eth = candle(0, "100 101 99 100"), candle(0, "50 50.5 49.5 50", symbol=ETH)
    first = step(original, 0, [market(btc), market(eth, "1")], [signal(btc), signal(eth)])
    assert [d.rule for d in first.decisions] == [None, "min_time_between_trades"]
    step(
        original,
        1,
        [market(candle(1, "100 105 99.5 104.5")), market(candle(1, QUIET, symbol=ETH), "1")],
    )
    copy = restart(original)
    assert copy.state_json() == original.state_json()
    following = [
        (2, "104 104.5 101.5 102", "50 50.5 49.5 50"),
        (3, QUIET, "50 50.5 47 48"),
        (6, QUIET, "48 48.5 47.5 48"),
        (7, "100 100.5 95 96", "48 49 47.5 48.5"),
    ]
    outcomes = []
    for minute, btc_ohlc, eth_ohlc in following:
        btc, eth = candle(minute, btc_ohlc), candle(minute, eth_ohlc, symbol=ETH)
        inputs = ([market(btc), market(eth, "1")], [signal(btc), signal(eth)])
        expected = step(original, minute, *inputs)
        assert step(copy, minute, *inputs) == expected
        outcomes.append(
            [t.exit_reason for t in expected.trades]
            + [(d.symbol, d.rule or d.action) for d in expected.decisions]
        )
    assert outcomes == [
        [
            ExitReason.TRAILING_STOP,
            (BTC, "min_time_between_trades"),
            (ETH, "min_time_between_trades"),
        ],
        [(BTC, "min_time_between_trades"), (ETH, "min_time_between_trades")],
        [(BTC, Action.ENTERED), (ETH, "min_time_between_trades")],
        [ExitReason.STOP_LOSS, (BTC, "stop_loss_cooldown"), (ETH, "min_time_between_trades")],
    ]
    assert copy.state_json() == original.state_json()
    assert copy.ledger.cash == original.ledger.cash
    assert copy.ledger.positions == original.ledger.positions
    assert copy.ledger.next_fill_id == original.ledger.next_fill_id


def test_a_rebuilt_trader_keeps_refusing_an_entry_correlated_with_a_held_position() -> None:
    """ETH moves exactly with a held BTC: refused by the correlation rule, before and after."""
    original = make_trader(limits=replace(CONFIG.limits, correlation_window=6))
    enter(original)
    stored: list[Candle] = []
    for minute, close in enumerate(("101", "100.5", "102", "101", "103", "102.5"), start=1):
        half = str(D(close) / 2)
        btc = candle(minute, " ".join([close] * 4))
        eth = candle(minute, " ".join([half] * 4), symbol=ETH)
        step(original, minute, [market(btc), market(eth, "1")])
        stored.extend([btc, eth])
    copy = restart(original, stored)
    btc, eth = candle(7, "104 104 104 104"), candle(7, "52 52 52 52", symbol=ETH)
    inputs = ([market(btc), market(eth, "1")], [signal(eth)])
    expected = step(original, 7, *inputs)
    assert [(d.action, d.rule) for d in expected.decisions] == [(Action.REJECTED, "correlation")]
    assert step(copy, 7, *inputs) == expected


# properties

PROPERTY_CONFIG = TraderConfig(
    breakers=BreakerConfig(
        max_daily_loss=0.015,
        max_drawdown=0.02,
        max_consecutive_losses=3,
        losing_streak_cooldown_ms=10 * MINUTE,
        min_time_between_trades_ms=MINUTE,
        stop_loss_cooldown_ms=3 * MINUTE,
        volatility_window=20,
        volatility_min_samples=5,
    ),
    limits=LimitsConfig(allow_short=True, correlation_window=10),
    sizing=SizingConfig(),
    exits=ExitConfig(max_holding_ms=10 * MINUTE),
    fills=FillConfig(),
)
SYMBOLS = (BTC, ETH)
CENT = D("0.01")


def bps(value: Decimal, points: int) -> Decimal:
    """Return ``value`` moved by ``points`` basis points, to the cent and at least 0.01."""
    return max((value * (10_000 + points) / 10_000).quantize(CENT), CENT)


@st.composite
def walk_bar(draw: DrawFn, symbol: str, minute: int, previous: Decimal) -> MarketInput:
    """Draw the next candle of a random walk from ``previous`` close, and its ATR."""
    open_, high, low, close = walk_prices(draw, previous, bps)
    atr_bps = draw(st.integers(20, 500))
    volume = D(draw(st.integers(0, 5_000)))
    bar = candle_of(T0 + minute * MINUTE, open_, high, low, close, volume, symbol=symbol)
    stale = draw(st.integers(0, 9)) == 0
    return MarketInput(
        candle=bar,
        atr=(close * atr_bps / 10_000).quantize(D("0.0001")),
        atr_pct=atr_bps / 100,
        stale=stale,
        recovered=stale,
        tradable=draw(st.integers(0, 9)) > 0,
    )


@st.composite
def walks(draw: DrawFn) -> list[Instant]:
    """Draw up to 40 instants of two random walks with random signals."""
    closes = {BTC: D(100), ETH: D(50)}
    instants, minute = [], 0
    for _ in range(draw(st.integers(1, 40))):
        minute += draw(st.integers(1, 3))
        present = draw(st.sampled_from([SYMBOLS, SYMBOLS, SYMBOLS, (BTC,), (ETH,)]))
        markets, signals = [], []
        for symbol in present:
            bar = draw(walk_bar(symbol, minute, closes[symbol]))
            closes[symbol] = bar.candle.close
            markets.append(bar)
            strength = draw(st.sampled_from(Strength))
            confidence = draw(st.sampled_from([0.0, 0.04, 0.1, 0.3, 0.5, 0.9]))
            signals.append(signal(bar.candle, strength, confidence))
        blocked = draw(st.sampled_from([None, None, None, None, "no model"]))
        instants.append(
            Instant(
                minute=minute,
                markets=tuple(markets),
                signals=tuple(signals),
                entries_blocked=blocked,
            )
        )
    return instants


def check_instant(trader: Trader, result: InstantResult, held: set[str]) -> None:
    """Assert the invariants after one instant; ``held`` tracks open symbols from the fills."""
    ledger = trader.ledger
    assert ledger.cash >= 0
    for fill in result.fills:
        if fill.reason == "entry":
            assert fill.symbol not in held
            held.add(fill.symbol)
        else:
            held.remove(fill.symbol)
    assert held == set(ledger.positions)
    assert all(p.symbol == s for s, p in ledger.positions.items())
    for symbol, position in result.positions.items():
        assert ledger.positions[symbol] == position
    for trade in result.trades:
        assert trade.closed_candle_ms > trade.opened_candle_ms
    snapshot = result.snapshot
    assert snapshot is not None
    marks = trader.marks
    values = sum((p.value(marks[s]) for s, p in ledger.positions.items()), D(0))
    assert snapshot.cash == ledger.cash
    assert snapshot.positions_value == values
    assert snapshot.equity == snapshot.cash + snapshot.positions_value
    assert snapshot.open_positions == len(ledger.positions)


def run_walk(instants: list[Instant]) -> tuple[list[InstantResult], str]:
    """Run ``instants`` through a fresh trader, checking every instant; return what it did."""
    trader = make_trader(PROPERTY_CONFIG)
    held: set[str] = set()
    results = []
    for instant in instants:
        result = step(
            trader,
            instant.minute,
            instant.markets,
            instant.signals,
            entries_blocked=instant.entries_blocked,
        )
        check_instant(trader, result, held)
        results.append(result)
    return results, trader.state_json()


@settings(max_examples=80, deadline=None)
@given(instants=walks())
def test_random_walks_keep_the_ledger_consistent_and_deterministic(
    instants: list[Instant],
) -> None:
    """Two random walks with random signals: cash, equity and positions stay consistent.

    Running the same candles and signals again gives the same fills, trades and decisions.
    """
    first = run_walk(instants)
    assert run_walk(instants) == first
