"""Monte Carlo of the closed trades: the bootstrap's percentiles, its seed, its edge cases."""

import math
from decimal import Decimal

import numpy as np
import pytest
from fakes.trading import closed_trade
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_trader.broker.montecarlo import SEED, MonteCarlo, TradeReturns, simulate

START = Decimal(10_000)


def run(returns: list[float], runs: int = 1000, seed: int = SEED) -> MonteCarlo:
    """Simulate ``returns`` from 10 000; fail if there is no simulation."""
    result = simulate(np.array(returns), initial_equity=START, runs=runs, seed=seed)
    assert result is not None
    return result


def test_equal_returns_give_the_deterministic_compounding_at_every_percentile() -> None:
    """Every run of 30 trades of +1 % is the same run: 10 000 x 1.01^30, never under a peak;
    30 of -1 % fall all the way: drawdown 1 - 0.99^30."""
    up, down = run([0.01] * 30), run([-0.01] * 30)
    assert up.final_equity.p5 == up.final_equity.p50 == up.final_equity.p95
    assert up.final_equity.p50 == pytest.approx(10_000 * 1.01**30, rel=1e-12)
    assert (up.max_drawdown.p5, up.max_drawdown.p50, up.max_drawdown.p95) == (0.0, 0.0, 0.0)
    assert down.final_equity.p5 == down.final_equity.p95
    assert down.final_equity.p50 == pytest.approx(10_000 * 0.99**30, rel=1e-12)
    assert down.max_drawdown.p5 == down.max_drawdown.p95
    assert down.max_drawdown.p50 == pytest.approx(1 - 0.99**30, rel=1e-12)
    assert (up.runs, up.trades, up.seed, up.initial_equity) == (1000, 30, SEED, START)


def test_two_trades_give_the_three_outcomes_of_drawing_them_with_replacement() -> None:
    """+10 % and -10 %, two draws: 1.21 (1 in 4), 0.99 (2 in 4), 0.81 (1 in 4) of the start;
    drawdowns 0, 10 % and 19 % as often."""
    result = run([0.1, -0.1], runs=4000)
    assert result.final_equity.p5 == pytest.approx(8100)
    assert result.final_equity.p50 == pytest.approx(9900)
    assert result.final_equity.p95 == pytest.approx(12_100)
    assert result.max_drawdown.p5 == pytest.approx(0.0)
    assert result.max_drawdown.p50 == pytest.approx(0.1)
    assert result.max_drawdown.p95 == pytest.approx(0.19)


def test_the_same_seed_gives_the_same_figures_and_another_seed_others() -> None:
    """Seeded: the same record gives the same percentiles however often it is simulated."""
    returns = list(np.random.default_rng(5).normal(0.001, 0.02, 500))
    assert run(returns) == run(returns)
    assert run(returns, seed=SEED + 1).final_equity != run(returns).final_equity


def test_a_total_loss_ends_a_run_at_zero_for_good() -> None:
    """A return of -100 % or worse leaves nothing: every run that draws it ends at 0, fully
    drawn down, whatever it draws after."""
    result = run([-1.5, 0.5, 0.5, 0.5], runs=2000)
    # a run misses the loss with probability 0.75^4 = 32 %: the 5th and 50th percentile are 0
    assert (result.final_equity.p5, result.final_equity.p50) == (0.0, 0.0)
    assert result.final_equity.p95 == pytest.approx(10_000 * 1.5**4)
    assert result.max_drawdown.p50 == 1.0


@pytest.mark.parametrize("returns", [[], [0.05]])
def test_no_simulation_under_two_trades_or_without_runs(returns: list[float]) -> None:
    """No trade, or one (resampled, it is that trade again): None; no runs: None."""
    assert simulate(np.array(returns), initial_equity=START, runs=1000) is None
    assert simulate(np.array([0.01, 0.02]), initial_equity=START, runs=0) is None


def test_a_start_that_is_not_positive_is_refused() -> None:
    """The returns compound from the start: zero or less is an error, not a figure."""
    with pytest.raises(ValueError, match="must be positive"):
        simulate(np.array([0.01, 0.02]), initial_equity=Decimal(0), runs=10)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.99, 1.0, allow_nan=False), min_size=2, max_size=60),
    st.integers(1, 300),
)
def test_percentiles_are_ordered_and_drawdowns_a_fraction(returns: list[float], runs: int) -> None:
    """Whatever the returns: p5 <= p50 <= p95, equity never below 0, drawdown in [0, 1]."""
    result = run(returns, runs=runs)
    final, drawdown = result.final_equity, result.max_drawdown
    assert 0 <= final.p5 <= final.p50 <= final.p95
    assert 0 <= drawdown.p5 <= drawdown.p50 <= drawdown.p95 <= 1


def test_returns_on_the_realised_equity_compound_back_to_the_record() -> None:
    """Each trade's return is on the equity before it (start plus earlier trades' PnL), so
    compounded in their order they give the record's realised equity exactly."""
    pnls = ["250", "-400", "125.5", "-30", "990"]
    returns = TradeReturns(START)
    for pnl in pnls:
        returns.add(closed_trade(pnl))
    values = returns.returns()
    assert len(returns) == 5
    assert values[0] == 0.025
    assert values[1] == pytest.approx(-400 / 10_250)
    assert 10_000 * math.prod(1 + v for v in values) == pytest.approx(
        float(START + sum(Decimal(p) for p in pnls)), rel=1e-12
    )


def test_a_trade_after_the_realised_equity_is_gone_is_a_total_loss() -> None:
    """The record lost more than it had: a later trade has no equity to be a fraction of."""
    returns = TradeReturns(Decimal(100))
    for pnl in ("-150", "20"):
        returns.add(closed_trade(pnl))
    assert list(returns.returns()) == [-1.5, -1.0]


def test_json_rounds_figures_and_keeps_the_start_exact() -> None:
    """Money of the start as exact text; the percentiles as numbers of 6 decimals."""
    result = run([0.1, -0.1], runs=4000)
    data = result.to_json()
    assert data["initial_equity"] == "10000"
    assert data["final_equity"] == {"p5": 8100.0, "p50": 9900.0, "p95": 12100.0}
    assert data["max_drawdown"] == {"p5": 0.0, "p50": 0.1, "p95": 0.19}
    assert (data["runs"], data["trades"], data["seed"]) == (4000, 2, SEED)
