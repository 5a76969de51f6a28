"""The short collateral model: what a short holds out of free cash and where it is called."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_trader.broker.config import FillConfig
from paper_trader.broker.fills import fill_execution
from paper_trader.broker.margin import margin_call_price, short_collateral
from paper_trader.domain.trading import MONEY_STEP, PRICE_STEP, FillModel
from paper_trader.errors import ConfigError

D = Decimal


def test_collateral_is_the_proceeds_plus_the_margin_rounded_up() -> None:
    """2498.75 of proceeds with a margin of 0.5: 3748.125; a margin digit past 1e-12 rounds up."""
    assert short_collateral(D("2498.75"), D("0.5")) == D("3748.125")
    assert short_collateral(D("0.0000000000011"), D("0.5")) == D("0.0000000000011") + MONEY_STEP


def test_the_margin_call_is_where_buying_back_at_the_worst_costs_the_collateral() -> None:
    """3748.125 / (25 * 1.02 * 1.001) = 146.83845566...: rounded down to the tick."""
    price = margin_call_price(D("3748.125"), D(25), FillConfig())
    assert price == D("146.8384556619")


@settings(max_examples=200, deadline=None)
@given(
    notional=st.decimals(min_value=D("0.01"), max_value=D(10**7), places=8),
    quantity=st.decimals(min_value=D("0.00000001"), max_value=D(1000), places=8),
    margin=st.decimals(min_value=D("0.05"), max_value=D(10), places=3),
    fee=st.decimals(min_value=D(0), max_value=D("0.05"), places=4),
    cap=st.decimals(min_value=D(0), max_value=D(2000), places=0),
)
def test_buying_back_at_the_margin_call_never_costs_more_than_the_collateral(
    notional: Decimal, quantity: Decimal, margin: Decimal, fee: Decimal, cap: Decimal
) -> None:
    """At the worst slippage, the fill (tick and fee rounding included) stays within it."""
    config = FillConfig(fee_rate=fee, max_slippage_bps=cap)
    collateral = short_collateral(notional, margin)
    price = margin_call_price(collateral, quantity, config)
    worst = price * (1 + cap / 10_000)
    execution = fill_execution(worst, cap, quantity, FillModel.STOP_TOUCH, 0, config)
    cost = quantity * execution.price + execution.fee
    # the tick and the fee may each round up by one step
    assert cost <= collateral + quantity * PRICE_STEP * (1 + fee) + MONEY_STEP


def test_fill_execution_rounds_the_price_to_the_tick_and_the_fee_up() -> None:
    """100.00000000006 is 100.0000000001 at the tick; its fee on 3 units at a rate of
    1.1e-12, 3.300000000003e-10, is rounded up to 3.31e-10; no price goes below one tick."""
    config = FillConfig(fee_rate=D("0.0000000000011"))
    execution = fill_execution(D("100.00000000006"), D(0), D(3), FillModel.MARKET_CLOSE, 7, config)
    assert (execution.price, execution.fee) == (D("100.0000000001"), D("3.31E-10"))
    tiny = fill_execution(D("1E-12"), D(0), D(1), FillModel.MARKET_CLOSE, 7, config)
    assert tiny.price == PRICE_STEP  # never a price of zero


@pytest.mark.parametrize(
    "changes",
    [
        {"fee_rate": D(1)},
        {"fee_rate": D("-0.001")},
        {"slippage_bps": D(10_000)},
        {"max_slippage_bps": D(-1)},
        {"impact_bps": D(20_000)},
    ],
)
def test_costs_that_would_price_a_fill_at_or_below_zero_are_refused(
    changes: dict[str, Decimal],
) -> None:
    """A slippage of 100 % or more would sell at zero; a fee of 100 % would pay for nothing."""
    with pytest.raises(ConfigError):
        FillConfig(**changes)  # type: ignore[arg-type]
