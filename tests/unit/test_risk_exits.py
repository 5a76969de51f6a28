"""Exit rules: entry levels, the conservative stop/target order, the trail, time and signal exits.

Most cases are written for a long around an entry of 100 and run for the short as the mirror
image around the same entry (every price p becomes 200 - p, high and low swap).
"""

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from fakes.candles import candle_of
from fakes.trading import open_position
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.domain.candle import Candle, Interval
from paper_trader.domain.signal import Strength
from paper_trader.domain.trading import ExitReason, FillModel, Position, Rejection, Side
from paper_trader.risk.config import ExitConfig
from paper_trader.risk.exits import (
    ExitSignal,
    Levels,
    active_stop,
    advance,
    entry_levels,
    protective_exit,
    signal_exit,
    stop_distance,
    time_exit,
)

D = Decimal
MINUTE = Interval.M1.ms
CONFIG = ExitConfig()  # stop 2 ATR, target 2R, trail from 1R at 1.5 ATR, 4 h, opposite exits


def mirror(side: Side, price: str) -> Decimal:
    """Return a long's price as is, or its mirror image around 100 for a short."""
    return D(price) if side is Side.LONG else 200 - D(price)


def bar(side: Side, open_: str, high: str, low: str, close: str, *, index: int = 1) -> Candle:
    """Return the 1m candle ``index`` with a long's OHLC, mirrored for a short."""
    highest, lowest = mirror(side, high), mirror(side, low)
    if side is Side.SHORT:
        highest, lowest = lowest, highest
    open_price, close_price = mirror(side, open_), mirror(side, close)
    return candle_of(index * MINUTE, open_price, highest, lowest, close_price, D(10))


def position(side: Side = Side.LONG, *, trailing: str | None = None, **fields: Any) -> Position:
    """Return a position entered at 100 with ATR 2: stop 96, target 108 (mirrored for a short)."""
    base = open_position(
        side=side,
        stop_price=mirror(side, "96"),
        take_profit_price=mirror(side, "108"),
        trailing_stop_price=None if trailing is None else mirror(side, trailing),
    )
    return replace(base, **fields)


SIDES = pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])


# entry levels


def test_long_levels_lie_stop_distance_below_and_reward_above() -> None:
    """27123.45 with ATR 13.7 x 1.5: stop 27102.90, risk 20.55, target + 2.5 x 20.55."""
    config = ExitConfig(stop_loss_atr_multiplier=1.5, take_profit_risk_reward=2.5)
    levels = entry_levels(Side.LONG, D("27123.45"), D("13.7"), config)
    assert levels == Levels(
        stop=D("27102.90"), take_profit=D("27174.825"), risk_per_unit=D("20.55")
    )


def test_short_levels_are_the_mirror_image() -> None:
    """The short's stop is 20.55 above the entry and its target 51.375 below."""
    config = ExitConfig(stop_loss_atr_multiplier=1.5, take_profit_risk_reward=2.5)
    levels = entry_levels(Side.SHORT, D("27123.45"), D("13.7"), config)
    assert levels == Levels(
        stop=D("27144.00"), take_profit=D("27072.075"), risk_per_unit=D("20.55")
    )


def test_zero_risk_reward_gives_no_target() -> None:
    """A take-profit risk/reward of 0 leaves the position without a target."""
    levels = entry_levels(Side.LONG, D(100), D(2), ExitConfig(take_profit_risk_reward=0.0))
    assert levels == Levels(stop=D(96), take_profit=None, risk_per_unit=D(4))


def test_short_target_at_or_below_zero_is_dropped() -> None:
    """A short at 3 with ATR 2: stop 7, risk 4, target 3 - 8 = -5 is unreachable, so None."""
    levels = entry_levels(Side.SHORT, D(3), D(2), CONFIG)
    assert levels == Levels(stop=D(7), take_profit=None, risk_per_unit=D(4))


@pytest.mark.parametrize("atr", ["0", "-1.5", "NaN", "Infinity"])
@SIDES
def test_entry_is_rejected_without_a_positive_atr(side: Side, atr: str) -> None:
    """No stop can be placed from a zero, negative or non-finite ATR."""
    levels = entry_levels(side, D(100), D(atr), CONFIG)
    assert isinstance(levels, Rejection)
    assert levels.rule == "stop_distance"


@pytest.mark.parametrize("price", ["4", "3"])
def test_long_entry_is_rejected_when_the_stop_is_not_above_zero(price: str) -> None:
    """ATR 2 x 2 = 4 below a price of 4 (stop 0) or 3 (stop -1) is not a stop."""
    levels = entry_levels(Side.LONG, D(price), D(2), CONFIG)
    assert isinstance(levels, Rejection)
    assert levels.rule == "stop_distance"
    assert levels.observed == float(D(price) - 4)


def test_risk_per_unit_is_the_stop_distance_sizing_risked() -> None:
    """From a fill with ten decimals and an ATR with many digits, the risk per unit is exactly
    the stop distance that sizing used, and the levels lie that far from the fill."""
    atr = D("0.000123456789012345678")
    distance = stop_distance(atr, CONFIG)
    levels = entry_levels(Side.LONG, D("27123.4512345678"), atr, CONFIG)
    assert isinstance(levels, Levels)
    assert levels.risk_per_unit == distance == 2 * atr
    assert levels.stop == D("27123.4512345678") - distance


def test_entry_is_rejected_with_a_zero_stop_multiplier() -> None:
    """A stop at the entry price has no distance to size or trail from."""
    levels = entry_levels(Side.LONG, D(100), D(2), ExitConfig(stop_loss_atr_multiplier=0.0))
    assert isinstance(levels, Rejection)
    assert levels.rule == "stop_distance"


# protective exit: the conservative order


@SIDES
def test_stop_fills_at_open_when_candle_gaps_through(side: Side) -> None:
    """A long opening at 95 below its stop of 96 exits at the open, 95."""
    signal = protective_exit(position(side), bar(side, "95", "97", "94", "96.5"))
    assert signal == ExitSignal(
        reason=ExitReason.STOP_LOSS, price=mirror(side, "95"), fill_model=FillModel.STOP_GAP_OPEN
    )


@SIDES
def test_open_exactly_at_the_stop_counts_as_a_gap(side: Side) -> None:
    """Opening at the stop itself (96) exits at the open, which equals the stop."""
    signal = protective_exit(position(side), bar(side, "96", "99", "95", "98"))
    assert signal == ExitSignal(
        reason=ExitReason.STOP_LOSS, price=mirror(side, "96"), fill_model=FillModel.STOP_GAP_OPEN
    )


@SIDES
def test_stop_fills_at_the_stop_when_the_range_touches_it(side: Side) -> None:
    """A long whose candle opens at 99 and trades down to 96 exits at the stop, 96."""
    signal = protective_exit(position(side), bar(side, "99", "100", "96", "97"))
    assert signal == ExitSignal(
        reason=ExitReason.STOP_LOSS, price=mirror(side, "96"), fill_model=FillModel.STOP_TOUCH
    )


@SIDES
def test_stop_wins_when_one_candle_reaches_stop_and_target(side: Side) -> None:
    """A range of 95..109 contains both the stop 96 and the target 108: the stop is assumed."""
    signal = protective_exit(position(side), bar(side, "100", "109", "95", "104"))
    assert signal == ExitSignal(
        reason=ExitReason.STOP_LOSS, price=mirror(side, "96"), fill_model=FillModel.STOP_TOUCH
    )


@SIDES
def test_target_fills_at_the_target_when_the_range_reaches_it(side: Side) -> None:
    """A high of exactly 108 reaches the target and fills at 108."""
    signal = protective_exit(position(side), bar(side, "101", "108", "99", "107"))
    assert signal == ExitSignal(
        reason=ExitReason.TAKE_PROFIT, price=mirror(side, "108"), fill_model=FillModel.TARGET_LIMIT
    )


@SIDES
def test_target_fills_at_the_target_even_on_a_gap_beyond_it(side: Side) -> None:
    """Opening at 110 above the target 108 still fills at 108, the resting limit's price."""
    signal = protective_exit(position(side), bar(side, "110", "112", "109", "111"))
    assert signal == ExitSignal(
        reason=ExitReason.TAKE_PROFIT, price=mirror(side, "108"), fill_model=FillModel.TARGET_LIMIT
    )


@SIDES
def test_nothing_touched_gives_no_exit(side: Side) -> None:
    """A range of 96.01..107.99 stays strictly between the stop and the target."""
    assert protective_exit(position(side), bar(side, "100", "107.99", "96.01", "101")) is None


@SIDES
def test_without_a_target_only_the_stop_can_exit(side: Side) -> None:
    """With no take-profit, a rally to 150 is no exit."""
    held = position(side, take_profit_price=None)
    assert protective_exit(held, bar(side, "100", "150", "99", "149")) is None


# a short's margin call


def short_with_margin_call(margin_call: str) -> Position:
    """Return the short entered at 100 (stop 104, target 92) with a margin call."""
    return position(Side.SHORT, margin_call_price=D(margin_call), collateral=D(300))


def test_a_short_opening_at_or_beyond_its_margin_call_is_force_closed_at_the_open() -> None:
    """Opening at 130 (or 175) with a margin call at 130: margin_call at the open."""
    for open_ in ("130", "175"):
        candle = bar(Side.LONG, open_, str(D(open_) + 1), str(D(open_) - 1), open_)
        assert protective_exit(short_with_margin_call("130"), candle) == ExitSignal(
            reason=ExitReason.MARGIN_CALL, price=D(open_), fill_model=FillModel.STOP_GAP_OPEN
        )


def test_a_short_gapping_inside_its_margin_call_is_a_stop_loss_at_the_open() -> None:
    """Opening at 110, through the stop 104 but short of the margin call 130: a stop gap."""
    candle = bar(Side.LONG, "110", "111", "109", "110")
    assert protective_exit(short_with_margin_call("130"), candle) == ExitSignal(
        reason=ExitReason.STOP_LOSS, price=D(110), fill_model=FillModel.STOP_GAP_OPEN
    )


def test_a_margin_call_inside_the_stop_binds_on_a_touch() -> None:
    """A margin call at 102 below the stop 104 is the binding level: touched at 102.5."""
    held = short_with_margin_call("102")
    assert active_stop(held) == (D(102), ExitReason.MARGIN_CALL)
    assert protective_exit(held, bar(Side.LONG, "100", "102.5", "99", "101")) == ExitSignal(
        reason=ExitReason.MARGIN_CALL, price=D(102), fill_model=FillModel.STOP_TOUCH
    )


def test_a_margin_call_beyond_the_stop_leaves_the_stop_binding() -> None:
    """With the margin call at 130 the stop 104 binds and is reported as the stop-loss."""
    assert active_stop(short_with_margin_call("130")) == (D(104), ExitReason.STOP_LOSS)


# the trailing stop


@SIDES
def test_trailing_stop_waits_for_the_activation_distance(side: Side) -> None:
    """At 1R the trail needs a best price of 104; 103.99 only moves the best price."""
    moved = advance(position(side), bar(side, "101", "103.99", "100.5", "103"), CONFIG)
    assert moved.extreme_price == mirror(side, "103.99")
    assert moved.trailing_stop_price is None


@SIDES
def test_trailing_stop_activates_at_the_activation_distance(side: Side) -> None:
    """A best price of exactly 104 sets the trail 1.5 x ATR 2 = 3 behind it, at 101."""
    moved = advance(position(side), bar(side, "101", "104", "100.5", "103"), CONFIG)
    assert moved.extreme_price == mirror(side, "104")
    assert moved.trailing_stop_price == mirror(side, "101")


@SIDES
def test_trailing_stop_ratchets_with_the_best_price(side: Side) -> None:
    """Best prices 104 then 106.5 move the trail from 101 to 103.5."""
    first = advance(position(side), bar(side, "101", "104", "100.5", "103"), CONFIG)
    second = advance(first, bar(side, "103", "106.5", "102", "106", index=2), CONFIG)
    assert second.extreme_price == mirror(side, "106.5")
    assert second.trailing_stop_price == mirror(side, "103.5")


@SIDES
def test_trailing_stop_never_loosens(side: Side) -> None:
    """A trail at 104 stays there when the best price 106 would only justify 103."""
    held = position(side, trailing="104", extreme_price=mirror(side, "106"))
    moved = advance(held, bar(side, "105", "106", "104.5", "105"), CONFIG)
    assert moved.trailing_stop_price == mirror(side, "104")


@SIDES
def test_advance_returns_the_same_position_when_nothing_changes(side: Side) -> None:
    """A candle inside the best price leaves the very same object."""
    held = position(side, trailing="103", extreme_price=mirror(side, "106"))
    assert advance(held, bar(side, "105", "105.5", "104", "105"), CONFIG) is held


@SIDES
def test_disabled_trail_still_ratchets_the_best_price(side: Side) -> None:
    """Without a trailing stop the best price still follows the candles."""
    moved = advance(
        position(side), bar(side, "101", "110", "100", "109"), ExitConfig(trailing_stop=False)
    )
    assert moved.extreme_price == mirror(side, "110")
    assert moved.trailing_stop_price is None


@SIDES
def test_tighter_trailing_stop_binds_with_its_own_reason(side: Side) -> None:
    """A trail at 101 is tighter than the stop at 96 and exits as TRAILING_STOP."""
    held = position(side, trailing="101")
    assert active_stop(held) == (mirror(side, "101"), ExitReason.TRAILING_STOP)
    assert protective_exit(held, bar(side, "102", "103", "100.5", "101.5")) == ExitSignal(
        reason=ExitReason.TRAILING_STOP, price=mirror(side, "101"), fill_model=FillModel.STOP_TOUCH
    )
    assert protective_exit(held, bar(side, "100", "100.5", "99", "99.5")) == ExitSignal(
        reason=ExitReason.TRAILING_STOP,
        price=mirror(side, "100"),
        fill_model=FillModel.STOP_GAP_OPEN,
    )


@pytest.mark.parametrize("trailing", ["95", "96"])
@SIDES
def test_looser_or_equal_trailing_stop_leaves_the_initial_stop_binding(
    side: Side, trailing: str
) -> None:
    """A trail at or behind the stop of 96 does not bind: the reason stays STOP_LOSS."""
    assert active_stop(position(side, trailing=trailing)) == (
        mirror(side, "96"),
        ExitReason.STOP_LOSS,
    )


@SIDES
def test_trail_set_by_a_candle_is_first_tested_on_the_next_one(side: Side) -> None:
    """A candle to 106 then down to 102.5 sets a trail at 103 but only the next candle hits it."""
    held = position(side)
    run_up = bar(side, "101", "106", "102.5", "105")
    assert protective_exit(held, run_up) is None
    trailed = advance(held, run_up, CONFIG)
    assert trailed.trailing_stop_price == mirror(side, "103")
    assert protective_exit(trailed, bar(side, "104", "104.5", "102.9", "103", index=2)) == (
        ExitSignal(
            reason=ExitReason.TRAILING_STOP,
            price=mirror(side, "103"),
            fill_model=FillModel.STOP_TOUCH,
        )
    )


# time and signal exits


@SIDES
def test_time_exit_at_the_close_once_held_long_enough(side: Side) -> None:
    """Entered at the close of candle 0, at the close of candle 3 it has been held 180 000 ms."""
    config = ExitConfig(max_holding_ms=3 * MINUTE)
    signal = time_exit(position(side), bar(side, "100", "101", "99", "100.5", index=3), config)
    assert signal == ExitSignal(
        reason=ExitReason.MAX_HOLDING,
        price=mirror(side, "100.5"),
        fill_model=FillModel.MARKET_CLOSE,
    )


def test_time_exit_waits_when_one_ms_short() -> None:
    """Held 180 000 ms against a limit of 180 001 ms: no exit yet."""
    config = ExitConfig(max_holding_ms=3 * MINUTE + 1)
    assert time_exit(position(), bar(Side.LONG, "100", "101", "99", "100", index=3), config) is None


def test_zero_max_holding_disables_the_time_exit() -> None:
    """With max_holding_ms 0 a position held for 10 000 candles stays open."""
    candle = bar(Side.LONG, "100", "101", "99", "100", index=10_000)
    assert time_exit(position(), candle, ExitConfig(max_holding_ms=0)) is None


@pytest.mark.parametrize(
    ("side", "strength"), [(Side.LONG, Strength.STRONG_SELL), (Side.SHORT, Strength.STRONG_BUY)]
)
def test_strong_opposite_signal_exits_at_the_close(side: Side, strength: Strength) -> None:
    """A strong signal against the position closes it at the candle's close."""
    signal = signal_exit(position(side), strength, bar(side, "100", "101", "99", "99.5"), CONFIG)
    assert signal == ExitSignal(
        reason=ExitReason.OPPOSITE_SIGNAL,
        price=mirror(side, "99.5"),
        fill_model=FillModel.MARKET_CLOSE,
    )


@pytest.mark.parametrize(
    ("side", "strength"),
    [(Side.LONG, s) for s in Strength if s is not Strength.STRONG_SELL]
    + [(Side.SHORT, s) for s in Strength if s is not Strength.STRONG_BUY],
)
def test_other_signals_do_not_exit(side: Side, strength: Strength) -> None:
    """A plain SELL (or anything but the strong opposite) keeps a long open; mirrored for shorts."""
    candle = bar(side, "100", "101", "99", "99.5")
    assert signal_exit(position(side), strength, candle, CONFIG) is None


def test_opposite_signal_exit_can_be_disabled() -> None:
    """With exit_on_opposite_signal off, even STRONG_SELL keeps a long open."""
    config = ExitConfig(exit_on_opposite_signal=False)
    candle = bar(Side.LONG, "100", "101", "99", "99.5")
    assert signal_exit(position(), Strength.STRONG_SELL, candle, config) is None


# properties

CENTS = st.integers(min_value=1, max_value=100_000).map(lambda c: D(c) / 100)


@st.composite
def candles(draw: DrawFn) -> Candle:
    """Draw a possible candle: low <= open, close <= high."""
    low, high = sorted((draw(CENTS), draw(CENTS)))
    inside = st.integers(min_value=int(low * 100), max_value=int(high * 100)).map(
        lambda c: D(c) / 100
    )
    return replace(
        bar(Side.LONG, "1", "1", "1", "1"),
        open=draw(inside),
        high=high,
        low=low,
        close=draw(inside),
    )


@st.composite
def long_positions(draw: DrawFn) -> Position:
    """Draw a long with any stop below its entry, any target above it, and any trail or none."""
    entry_cents = draw(st.integers(min_value=2, max_value=100_000))
    entry = D(entry_cents) / 100
    risk = D(draw(st.integers(min_value=1, max_value=entry_cents - 1))) / 100
    return replace(
        position(),
        entry_price=entry,
        stop_price=entry - risk,
        risk_per_unit=risk,
        take_profit_price=draw(st.none() | CENTS.map(lambda p: entry + p)),
        trailing_stop_price=draw(st.none() | CENTS),
        extreme_price=entry,
    )


@settings(max_examples=300)
@given(held=long_positions(), candle=candles())
def test_protective_exits_fill_inside_the_candle_or_at_the_target(
    held: Position, candle: Candle
) -> None:
    """A fill is within [low, high], or a target below an open beyond it; stops never above."""
    signal = protective_exit(held, candle)
    if signal is None:
        return
    inside = candle.low <= signal.price <= candle.high
    beyond_target = (
        signal.fill_model is FillModel.TARGET_LIMIT
        and signal.price == held.take_profit_price
        and candle.open > signal.price
    )
    assert inside or beyond_target
    if signal.fill_model in {FillModel.STOP_GAP_OPEN, FillModel.STOP_TOUCH}:
        assert signal.price <= active_stop(held)[0]


@given(
    held=long_positions(),
    path=st.lists(candles(), max_size=20),
    activation=st.floats(min_value=0, max_value=3),
    multiplier=st.floats(min_value=0.1, max_value=5),
)
def test_long_trailing_stop_never_decreases(
    held: Position, path: list[Candle], activation: float, multiplier: float
) -> None:
    """After any sequence of candles a long's trail and best price only ever move up."""
    config = ExitConfig(trailing_activation_r=activation, trailing_atr_multiplier=multiplier)
    current = replace(held, trailing_stop_price=None)
    for candle in path:
        moved = advance(current, candle, config)
        assert moved.extreme_price >= current.extreme_price
        if current.trailing_stop_price is not None:
            assert moved.trailing_stop_price is not None
            assert moved.trailing_stop_price >= current.trailing_stop_price
        current = moved
