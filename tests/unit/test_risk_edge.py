"""The cost edge: an entry's target must lie more than a multiple of its round trip's costs
away from the fill."""

from dataclasses import replace
from decimal import Decimal

import pytest

from paper_trader.domain.trading import Rejection, Side
from paper_trader.risk.edge import RoundTrip, cost_edge

D = Decimal


def trip(side: Side, target: str | None, *, fill: str = "100.05", bps: str = "5") -> RoundTrip:
    """A round trip decided at 100, filled at ``fill``, 0.1 % fees, ``bps`` at the exit."""
    return RoundTrip(
        side=side,
        reference=D(100),
        fill_price=D(fill),
        target=None if target is None else D(target),
        fee_rate=D("0.001"),
        exit_bps=D(bps),
    )


def test_a_target_far_beyond_the_costs_passes() -> None:
    """8 away, against 0.05 + 0.10005 + 0.10805 + 0.054025 = 0.312125 per unit: passes."""
    assert cost_edge(trip(Side.LONG, "108.05"), 2.0) is None


def test_a_target_within_the_multiple_of_the_costs_is_refused_with_every_figure() -> None:
    """0.6 away, against 2 x 0.301025 (0.05 + 0.10005 + 0.10065 + 0.050325): refused."""
    result = cost_edge(trip(Side.LONG, "100.65"), 2.0)
    assert result == Rejection(
        rule="cost_edge",
        detail="target distance 0.6 (target 100.65 from the fill 100.05) does not exceed 2 x "
        "the round trip's costs of 0.301025 per unit = 0.60205 (entry slippage 0.05, entry fee "
        "0.10005, exit fee 0.10065, exit slippage 0.050325)",
        observed=0.6,
        limit=0.60205,
    )


def test_a_distance_exactly_at_the_bar_does_not_exceed_it() -> None:
    """No fees, no exit slippage: the 0.05 of entry slippage twice is 0.1; a target 0.1 away
    does not exceed it, 0.1000000001 does."""
    free = RoundTrip(
        side=Side.LONG,
        reference=D(100),
        fill_price=D("100.05"),
        target=D("100.15"),
        fee_rate=D(0),
        exit_bps=D(0),
    )
    refused = cost_edge(free, 2.0)
    assert refused is not None
    assert (refused.observed, refused.limit) == (0.1, 0.1)
    assert cost_edge(replace(free, target=D("100.1500000001")), 2.0) is None


def test_a_short_is_the_mirror_image() -> None:
    """Sold at 99.95 from 100, target 99.4: 0.55 below, against 2 x 0.29905 (0.05 + 0.09995
    + 0.0994 + 0.0497): refused."""
    result = cost_edge(trip(Side.SHORT, "99.4", fill="99.95"), 2.0)
    assert result is not None
    assert result.detail.startswith(
        "target distance 0.55 (target 99.4 from the fill 99.95) does not exceed 2 x the round "
        "trip's costs of 0.29905 per unit"
    )
    assert "entry slippage 0.05," in result.detail


@pytest.mark.parametrize(("target", "multiple"), [(None, 2.0), ("100.06", 0.0)])
def test_no_target_or_a_multiple_of_zero_turns_the_rule_off(
    target: str | None, multiple: float
) -> None:
    """Without a target there is no distance to weigh; a multiple of 0 is the rule off."""
    assert cost_edge(trip(Side.LONG, target), multiple) is None
