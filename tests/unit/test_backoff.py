"""Tests for capped full-jitter exponential backoff."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper_trader.runtime.backoff import Backoff


def test_ceiling_doubles_with_each_attempt_until_the_cap() -> None:
    """The largest delay is base * 2**attempt, never more than the cap."""
    backoff = Backoff(base_s=0.5, cap_s=10.0)

    ceilings = [backoff.ceiling(attempt) for attempt in range(8)]

    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_delay_is_drawn_between_zero_and_the_ceiling() -> None:
    """Every delay lies in [0, ceiling(attempt)], and the draws are not all the same."""
    backoff = Backoff(base_s=0.001, cap_s=0.01)
    rng = random.Random(0)

    delays = [backoff.delay(attempt, rng) for attempt in range(10) for _ in range(50)]

    assert all(0.0 <= d <= backoff.ceiling(i // 50) for i, d in enumerate(delays))
    assert len(set(delays)) > 1


def test_same_seed_gives_the_same_delays() -> None:
    """With a seeded rng the jitter is reproducible."""
    backoff = Backoff(base_s=0.1, cap_s=5.0)

    first = [backoff.delay(n, random.Random(0)) for n in range(6)]
    second = [backoff.delay(n, random.Random(0)) for n in range(6)]

    assert first == second


@pytest.mark.parametrize("attempt", [61, 1_000, 10**9, 10**100])
def test_huge_attempt_numbers_give_the_cap_and_a_finite_delay(attempt: int) -> None:
    """Attempt numbers far past any cap neither overflow nor exceed the cap."""
    backoff = Backoff(base_s=0.001, cap_s=30.0)

    delay = backoff.delay(attempt, random.Random(0))

    assert backoff.ceiling(attempt) == 30.0
    assert math.isfinite(delay)
    assert 0.0 <= delay <= 30.0


def test_ceiling_stays_finite_even_with_an_infinite_cap() -> None:
    """The exponent is clamped, so an uncapped backoff still yields finite delays."""
    backoff = Backoff(base_s=1.0, cap_s=math.inf)

    assert math.isfinite(backoff.ceiling(10**6))
    assert math.isfinite(backoff.delay(10**6, random.Random(0)))


@pytest.mark.parametrize(
    ("base_s", "cap_s"),
    [
        (0.0, 1.0),
        (-0.5, 1.0),
        (2.0, 1.0),
        (math.nan, 1.0),
        (1.0, math.nan),
        (math.inf, math.inf),
    ],
)
def test_invalid_parameters_are_refused(base_s: float, cap_s: float) -> None:
    """A non-positive, infinite or NaN base, a cap below the base, or a NaN cap is refused."""
    with pytest.raises(ValueError, match="0 < base_s <= cap_s"):
        Backoff(base_s=base_s, cap_s=cap_s)


def test_base_equal_to_cap_is_allowed() -> None:
    """base_s == cap_s is a valid (constant-ceiling) backoff."""
    backoff = Backoff(base_s=1.0, cap_s=1.0)

    assert [backoff.ceiling(n) for n in range(3)] == [1.0, 1.0, 1.0]


@given(
    base_s=st.floats(min_value=1e-6, max_value=1e3),
    cap_factor=st.floats(min_value=1.0, max_value=1e6),
    attempt=st.integers(min_value=0, max_value=10**12),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_always_within_zero_and_a_capped_ceiling(
    base_s: float, cap_factor: float, attempt: int, seed: int
) -> None:
    """For any valid parameters, 0 <= delay <= ceiling <= cap, all finite."""
    backoff = Backoff(base_s=base_s, cap_s=base_s * cap_factor)
    ceiling = backoff.ceiling(attempt)

    delay = backoff.delay(attempt, random.Random(seed))

    assert math.isfinite(ceiling)
    assert 0.0 <= delay <= ceiling <= backoff.cap_s


@given(
    base_s=st.floats(min_value=1e-6, max_value=1e3),
    cap_factor=st.floats(min_value=1.0, max_value=1e6),
    attempt=st.integers(min_value=0, max_value=59),
)
def test_ceiling_doubles_or_reaches_the_cap(base_s: float, cap_factor: float, attempt: int) -> None:
    """Each next ceiling is exactly min(cap, 2 * previous ceiling)."""
    backoff = Backoff(base_s=base_s, cap_s=base_s * cap_factor)

    assert backoff.ceiling(attempt + 1) == min(backoff.cap_s, 2 * backoff.ceiling(attempt))
