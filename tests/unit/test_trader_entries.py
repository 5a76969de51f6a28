"""The trading step's entries at one decision instant: sizing, caps, shorts, and the gates
that refuse or skip an entry (a stale candle, the prediction breaker, data quality, a
candle already handled). The rules and the standard entry (25 BTC at 100.05) are those of
``fakes.trader_rig`` unless a test says otherwise."""

from dataclasses import replace
from decimal import Decimal

from fakes.trader_rig import CASH, CONFIG, ENTRY_CASH, enter, make_trader, market, step
from fakes.trading import BTC, ETH, MINUTE, T0, candle, signal

from paper_trader.domain import Interval, Strength, Venue
from paper_trader.domain.trading import (
    Action,
    Decision,
    EquitySnapshot,
    Fill,
    FillModel,
    OrderSide,
    Position,
    Side,
)
from paper_trader.trading.trader import InstantResult

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
