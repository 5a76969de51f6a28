"""The paper broker's fill model: slippage against us, limit fills at the target, taker fees."""

from decimal import Decimal

import pytest
from fakes.trading import open_position
from hypothesis import given
from hypothesis import strategies as st

from paper_trader.broker.config import FillConfig
from paper_trader.broker.fills import (
    entry_execution,
    execution_price,
    exit_execution,
    slippage_bps,
    taker_fee,
)
from paper_trader.domain.trading import ExitReason, FillModel, OrderSide, Position, Side
from paper_trader.risk.exits import ExitSignal

D = Decimal
CONFIG = FillConfig()  # fee 0.1 %, 5 bps + 10 bps per 1 % of the volume, at most 200 bps


def position(side: Side) -> Position:
    """Return 2 units entered at 100, stop 96 / target 108 for a long, 104 / 92 for a short."""
    long = side is Side.LONG
    stop, target = (D(96), D(108)) if long else (D(104), D(92))
    return open_position(side=side, stop_price=stop, take_profit_price=target)


# slippage


def test_slippage_adds_impact_per_percent_of_volume() -> None:
    """0.5 of a 100-unit candle is 0.5 %: 5 + 10 x 0.5 = 10 bps."""
    assert slippage_bps(D("0.5"), D(100), D(100), CONFIG) == D(10)


def test_slippage_is_exact_to_the_decimal_context() -> None:
    """0.3 of 7 units is 30/7 %: 5 + 300/7 rounds to 47.85714285714285714285714286 (28 digits)."""
    assert slippage_bps(D("0.3"), D(100), D(7), CONFIG) == D("47.85714285714285714285714286")


def test_slippage_does_not_depend_on_the_price() -> None:
    """The share of the volume is in base units: the same order costs the same bps at any price."""
    assert slippage_bps(D(1), D("0.01"), D(400), CONFIG) == D("7.5")
    assert slippage_bps(D(1), D(65_000), D(400), CONFIG) == D("7.5")


def test_slippage_is_capped() -> None:
    """Half of the candle's volume would be 5 + 500 bps; the cap is 200."""
    assert slippage_bps(D(50), D(100), D(100), CONFIG) == D(200)


def test_slippage_reaches_the_cap_exactly() -> None:
    """19.5 % of the volume is 5 + 195 = 200 bps, the cap itself."""
    assert slippage_bps(D("19.5"), D(100), D(100), CONFIG) == D(200)


@pytest.mark.parametrize("volume", ["0", "-1"])
def test_no_volume_gives_the_maximum_slippage(volume: str) -> None:
    """A candle without volume cannot absorb the order: the cap applies."""
    assert slippage_bps(D("0.001"), D(100), D(volume), CONFIG) == D(200)


def test_slippage_uses_the_configured_rates() -> None:
    """2 bps + 3 bps x (100 x 1 / 50 = 2 %) = 8 bps, under a cap of 9."""
    config = FillConfig(slippage_bps=D(2), impact_bps=D(3), max_slippage_bps=D(9))
    assert slippage_bps(D(1), D(100), D(50), config) == D(8)


# prices and fees


def test_buy_pays_up_and_sell_receives_less() -> None:
    """7 bps on 27123.45: a buy pays 27142.436415, a sell gets 27104.463585."""
    assert execution_price(OrderSide.BUY, D("27123.45"), D(7)) == D("27142.436415")
    assert execution_price(OrderSide.SELL, D("27123.45"), D(7)) == D("27104.463585")


@pytest.mark.parametrize("side", list(OrderSide))
def test_zero_bps_leaves_the_price(side: OrderSide) -> None:
    """Without slippage the order fills at the reference."""
    assert execution_price(side, D("123.45"), D(0)) == D("123.45")


def test_taker_fee_is_the_notional_times_the_rate() -> None:
    """0.1 % of 27142.436415 is 27.142436415; 0.25 % of 1234.56 is 3.0864."""
    assert taker_fee(D("27142.436415"), CONFIG) == D("27.142436415")
    assert taker_fee(D("1234.56"), FillConfig(fee_rate=D("0.0025"))) == D("3.0864")


# entries and exits


@pytest.mark.parametrize(("side", "price"), [(Side.LONG, "100.06"), (Side.SHORT, "99.94")])
def test_entry_moves_the_price_against_the_position(side: Side, price: str) -> None:
    """1 unit of 1000 is 0.1 %: 5 + 1 = 6 bps, a long buys at 100.06, a short sells at 99.94."""
    assert entry_execution(side, D(100), D(1), D(1000), CONFIG) == (D(price), D(6))


@pytest.mark.parametrize(("side", "target"), [(Side.LONG, "108"), (Side.SHORT, "92")])
def test_target_fills_at_the_target_without_slippage(side: Side, target: str) -> None:
    """A limit exit gets its limit price and 0 bps, even in a candle without volume."""
    signal = ExitSignal(
        reason=ExitReason.TAKE_PROFIT, price=D(target), fill_model=FillModel.TARGET_LIMIT
    )
    assert exit_execution(position(side), signal, D(0), CONFIG) == (D(target), D(0))


def test_long_stop_sells_below_the_stop() -> None:
    """2 units of 400 is 0.5 %: 10 bps, so the stop at 96 sells at 95.904."""
    signal = ExitSignal(reason=ExitReason.STOP_LOSS, price=D(96), fill_model=FillModel.STOP_TOUCH)
    assert exit_execution(position(Side.LONG), signal, D(400), CONFIG) == (D("95.904"), D(10))


def test_short_gap_buys_above_the_open() -> None:
    """A short gapped through at an open of 105 buys back 10 bps higher, at 105.105."""
    signal = ExitSignal(
        reason=ExitReason.STOP_LOSS, price=D(105), fill_model=FillModel.STOP_GAP_OPEN
    )
    assert exit_execution(position(Side.SHORT), signal, D(400), CONFIG) == (D("105.105"), D(10))


def test_market_exit_in_an_empty_candle_takes_the_maximum_slippage() -> None:
    """A time exit at a close of 101 with no volume sells 200 bps lower, at 98.98."""
    signal = ExitSignal(
        reason=ExitReason.MAX_HOLDING, price=D(101), fill_model=FillModel.MARKET_CLOSE
    )
    assert exit_execution(position(Side.LONG), signal, D(0), CONFIG) == (D("98.98"), D(200))


MONEY = st.decimals(min_value="0.00000001", max_value="1000000", places=8)


@given(side=st.sampled_from(Side), reference=MONEY, quantity=MONEY, volume=MONEY)
def test_slippage_is_always_against_the_entry(
    side: Side, reference: Decimal, quantity: Decimal, volume: Decimal
) -> None:
    """A long never buys below the reference, a short never sells above it; bps in [5, 200]."""
    price, bps = entry_execution(side, reference, quantity, volume, CONFIG)
    assert CONFIG.slippage_bps <= bps <= CONFIG.max_slippage_bps
    assert side.sign * (price - reference) >= 0
