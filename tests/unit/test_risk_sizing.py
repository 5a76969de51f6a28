"""Position sizing: fixed fractional, half-Kelly and volatility, scaled by confidence."""

from collections.abc import Sequence
from decimal import Decimal

import pytest
from fakes.trading import closed_trade
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_trader.domain.trading import ClosedTrade, ExitReason, FillModel, Rejection, SizingMethod
from paper_trader.risk.config import SizingConfig
from paper_trader.risk.sizing import QUANTITY_STEP, Sizing, round_quantity, size_position

FIXED = SizingConfig(method=SizingMethod.FIXED_FRACTIONAL, risk_per_trade=0.01)
KELLY = SizingConfig(
    method=SizingMethod.HALF_KELLY, kelly_min_trades=30, kelly_window=40, kelly_cap=0.5
)
VOLATILITY = SizingConfig(method=SizingMethod.VOLATILITY, volatility_target=0.005)


def trade(net_pnl: int) -> ClosedTrade:
    """Return a closed trade of notional 1000, so its return is ``net_pnl / 1000``."""
    won = net_pnl > 0
    return closed_trade(
        net_pnl,
        entry="1000",
        reason=ExitReason.TAKE_PROFIT if won else ExitReason.STOP_LOSS,
        exit_fill_model=FillModel.TARGET_LIMIT if won else FillModel.STOP_TOUCH,
    )


def trades(wins: int, win_pnl: int, losses: int, loss_pnl: int, even: int = 0) -> list[ClosedTrade]:
    """Return ``wins`` winners, ``losses`` losers and ``even`` break-evens, interleaved."""
    sample = [trade(win_pnl)] * wins + [trade(-loss_pnl)] * losses + [trade(0)] * even
    return sample[::2] + sample[1::2]


def size(
    config: SizingConfig,
    *,
    confidence: float = 1.0,
    equity: str = "10000",
    stop_distance: str = "50",
    atr: str = "25",
    history: Sequence[ClosedTrade] = (),
) -> Sizing | Rejection:
    """Size an entry at price 2000 with the given inputs."""
    return size_position(
        config,
        equity=Decimal(equity),
        price=Decimal(2000),
        stop_distance=Decimal(stop_distance),
        atr=Decimal(atr),
        confidence=confidence,
        history=history,
    )


def sized(result: Sizing | Rejection) -> Sizing:
    """Return the sizing, failing the test on a rejection."""
    assert isinstance(result, Sizing), result
    return result


def test_fixed_fractional_risks_one_percent_over_the_stop_distance() -> None:
    """10000 x 0.01 / 50 = 2 at full confidence, risking exactly 1 % of equity."""
    assert size(FIXED) == Sizing(
        quantity=Decimal(2),
        method=SizingMethod.FIXED_FRACTIONAL,
        risk_fraction=0.01,
        scale=1.0,
        detail="fixed fractional: risk 0.01 of equity 10000 over stop distance 50 = 2; "
        "scaled by 1 to 2 (notional 4000 at 2000)",
    )


def test_confidence_below_full_size_scales_the_quantity_down() -> None:
    """Confidence 0.25 with full size at 0.5 halves 2 to 1; the risk fraction is unscaled."""
    result = sized(size(FIXED, confidence=0.25))
    assert (result.quantity, result.scale, result.risk_fraction) == (Decimal(1), 0.5, 0.01)


def test_confidence_above_full_size_never_scales_up() -> None:
    """Confidence 0.9 with full size at 0.5 keeps the scale at 1."""
    result = sized(size(FIXED, confidence=0.9))
    assert (result.quantity, result.scale) == (Decimal(2), 1.0)


def test_quantity_is_rounded_down_to_the_step() -> None:
    """10000 x 0.01 / 3 = 33.333… is cut to 33.33333333, never rounded up."""
    assert sized(size(FIXED, stop_distance="3")).quantity == Decimal("33.33333333")


def test_round_quantity_floors_to_eight_decimals() -> None:
    """0.123456789 becomes 0.12345678 and a whole number keeps its value."""
    assert round_quantity(Decimal("0.123456789")) == Decimal("0.12345678")
    assert round_quantity(Decimal(7)) == Decimal(7)


def test_half_kelly_falls_back_to_fixed_fractional_below_the_minimum_sample() -> None:
    """29 closed trades of a 30 minimum: fixed fractional sizes it, and the detail says why."""
    result = sized(size(KELLY, history=trades(20, 20, 9, 10)))
    assert result.method is SizingMethod.FIXED_FRACTIONAL
    assert result.quantity == Decimal(2)
    assert result.detail.startswith("half-Kelly needs 30 closed trades, has 29; fixed fractional")


def test_half_kelly_risks_half_the_kelly_fraction() -> None:
    """W = 24/40 = 0.6, R = 2 % / 1 % = 2, K = 0.6 - 0.4/2 = 0.4: risk 0.2, 10000 x 0.2 / 50."""
    result = sized(size(KELLY, history=trades(24, 20, 16, 10)))
    assert result.method is SizingMethod.HALF_KELLY
    assert (result.quantity, result.risk_fraction) == (Decimal(40), 0.2)
    assert result.detail.startswith(
        "half-Kelly: K=0.4000 (W=0.6000, R=2.0000, n=40); "
        "risk 0.2 of equity 10000 over stop distance 50 = 40"
    )


def test_half_kelly_reads_only_the_last_kelly_window_trades() -> None:
    """Twenty older losers before the 40-trade window change nothing (all 60 would give K 0.1)."""
    history = [trade(-10)] * 20 + trades(24, 20, 16, 10)
    assert sized(size(KELLY, history=history)).quantity == Decimal(40)


def test_half_kelly_is_capped_at_kelly_cap() -> None:
    """K/2 = 0.2 is capped at 0.05: 10000 x 0.05 / 50 = 10, and the detail says so."""
    config = SizingConfig(method=SizingMethod.HALF_KELLY, kelly_window=40, kelly_cap=0.05)
    result = sized(size(config, history=trades(24, 20, 16, 10)))
    assert (result.quantity, result.risk_fraction) == (Decimal(10), 0.05)
    assert "K=0.4000 (W=0.6000, R=2.0000, n=40), capped at 0.05;" in result.detail


def test_half_kelly_without_losses_takes_k_as_one() -> None:
    """Thirty winners and no loser: K = 1, K/2 = 0.5 under a 0.8 cap, so 10000 x 0.5 / 50."""
    config = SizingConfig(method=SizingMethod.HALF_KELLY, kelly_window=40, kelly_cap=0.8)
    result = sized(size(config, history=trades(30, 20, 0, 10)))
    assert (result.quantity, result.risk_fraction) == (Decimal(100), 0.5)
    assert "K=1.0000 (W=1.0000, R=inf, n=30)" in result.detail


def test_half_kelly_counts_break_even_trades_as_not_winning() -> None:
    """15 wins of 2 %, 5 losses of 1 %, 10 at zero: W = 0.5, R = 2, K = 0.25, risk 0.125."""
    result = sized(size(KELLY, history=trades(15, 20, 5, 10, even=10)))
    assert (result.quantity, result.risk_fraction) == (Decimal(25), 0.125)


def test_half_kelly_rejects_a_sample_without_edge() -> None:
    """W = 0.4 and R = 1 give K = 0.4 - 0.6 = -0.2: rule kelly, naming K, W, R and n."""
    assert size(KELLY, history=trades(16, 10, 24, 10)) == Rejection(
        rule="kelly",
        detail="Kelly fraction K=-0.2000 (W=0.4000, R=1.0000, n=40) is not positive",
        observed=-0.2,
        limit=0.0,
    )


def test_half_kelly_rejects_a_sample_without_wins() -> None:
    """Thirty losers: no winning trade, so no Kelly fraction at all."""
    assert size(KELLY, history=trades(0, 20, 30, 10)) == Rejection(
        rule="kelly",
        detail="no winning trade among the last 30 closed trades: K=-inf (W=0, R=0, n=30)",
        limit=0.0,
    )


def test_volatility_holds_the_quantity_whose_atr_move_is_the_target() -> None:
    """10000 x 0.005 / ATR 25 = 2; at stop distance 50 that risks 2 x 50 / 10000 = 1 %."""
    result = sized(size(VOLATILITY))
    assert result.method is SizingMethod.VOLATILITY
    assert (result.quantity, result.risk_fraction) == (Decimal(2), 0.01)
    assert result.detail.startswith(
        "volatility: 0.005 of equity 10000 per ATR 25 = 2, risking 0.0100 of equity"
    )


def test_volatility_rejects_a_non_positive_atr() -> None:
    """An ATR of 0 cannot size by volatility: rule sizing."""
    assert size(VOLATILITY, atr="0") == Rejection(
        rule="sizing", detail="ATR 0 is not positive", observed=0.0
    )


def test_fixed_fractional_does_not_need_an_atr() -> None:
    """An ATR of 0 is irrelevant to fixed fractional sizing."""
    assert sized(size(FIXED, atr="0")).quantity == Decimal(2)


@pytest.mark.parametrize(
    ("equity", "stop_distance", "detail", "observed"),
    [
        ("0", "50", "equity 0 is not positive", 0.0),
        ("-5", "50", "equity -5 is not positive", -5.0),
        ("10000", "0", "stop distance 0 is not positive", 0.0),
        ("10000", "-1.5", "stop distance -1.5 is not positive", -1.5),
    ],
)
def test_non_positive_inputs_are_rejected(
    equity: str, stop_distance: str, detail: str, observed: float
) -> None:
    """Equity and stop distance must be positive, whatever the method: rule sizing."""
    for config in (FIXED, KELLY, VOLATILITY):
        result = size(config, equity=equity, stop_distance=stop_distance)
        assert result == Rejection(rule="sizing", detail=detail, observed=observed)


def test_zero_confidence_is_rejected() -> None:
    """Confidence 0 sizes nothing: rule sizing, with the confidence as observed."""
    assert size(FIXED, confidence=0.0) == Rejection(
        rule="sizing", detail="confidence 0 is not positive", observed=0.0
    )


def test_a_quantity_that_rounds_to_zero_is_rejected() -> None:
    """100 x 0.01 / 1e9 = 0.000000001, below one step of 0.00000001: rule sizing."""
    assert size(FIXED, equity="100", stop_distance="1000000000") == Rejection(
        rule="sizing",
        detail="fixed fractional: risk 0.01 of equity 100 over stop distance 1000000000 = "
        "0.000000001; scaled by 1 to 0.000000001, which rounds down to 0 at the step 0.00000001",
        observed=1e-9,
        limit=1e-8,
    )


METHODS = st.sampled_from([FIXED, KELLY, VOLATILITY])
MONEY = st.decimals(min_value=Decimal(1), max_value=Decimal(10_000_000), places=2)
DISTANCES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4)
CONFIDENCES = st.floats(min_value=0.0, max_value=1.0)
HISTORIES = st.lists(st.integers(min_value=-50, max_value=50).map(trade), max_size=45)


@settings(max_examples=300, deadline=None)
@given(METHODS, MONEY, DISTANCES, DISTANCES, HISTORIES, CONFIDENCES, CONFIDENCES)
def test_quantity_is_monotone_in_confidence(
    config: SizingConfig,
    equity: Decimal,
    stop_distance: Decimal,
    atr: Decimal,
    history: list[ClosedTrade],
    first: float,
    second: float,
) -> None:
    """More confidence never sizes smaller; every quantity is a whole number of steps."""
    low, high = sorted((first, second))
    quantities = []
    for confidence in (low, high):
        result = size_position(
            config,
            equity=equity,
            price=Decimal(100),
            stop_distance=stop_distance,
            atr=atr,
            confidence=confidence,
            history=history,
        )
        quantity = result.quantity if isinstance(result, Sizing) else Decimal(0)
        assert quantity % QUANTITY_STEP == 0
        quantities.append(quantity)
    assert quantities[0] <= quantities[1]
