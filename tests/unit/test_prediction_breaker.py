"""The prediction breaker opens on repeated failures and lets one trial through after a pause."""

import pytest

from paper_trader.prediction.breaker import (
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
)

ERROR = "TimeoutError: prediction took longer than 2.0 s"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock."""
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    """A breaker that opens after three failures for 300 s."""
    return CircuitBreaker("model", failure_threshold=3, recovery_timeout_s=300, clock=clock)


def trip(breaker: CircuitBreaker) -> BreakerTransition:
    """Fail until the breaker opens; return the opening transition."""
    while True:
        transition = breaker.record_failure(ERROR)
        if transition is not None:
            return transition


def test_closed_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    """Two failures of three let predictions through and change nothing."""
    for _ in range(2):
        assert breaker.allow() == (True, None)
        assert breaker.record_failure(ERROR) is None
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() == (True, None)
    assert breaker.snapshot().consecutive_failures == 2


def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker.record_failure(ERROR)
    breaker.record_failure(ERROR)
    assert breaker.record_success() is None
    assert breaker.snapshot().consecutive_failures == 0
    breaker.record_failure(ERROR)
    assert breaker.record_failure(ERROR) is None
    assert breaker.state is BreakerState.CLOSED


def test_it_trips_at_exactly_the_threshold(breaker: CircuitBreaker) -> None:
    """The third consecutive failure opens it, with a sentence naming the last error."""
    breaker.record_failure("ValueError: one")
    breaker.record_failure("ValueError: two")
    assert breaker.record_failure(ERROR) == BreakerTransition(
        name="model",
        previous=BreakerState.CLOSED,
        current=BreakerState.OPEN,
        reason=f"3 consecutive failures, last: {ERROR}",
        consecutive_failures=3,
    )
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot().trips == 1


def test_open_refuses_until_the_timeout_then_allows_one_trial(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """Before 300 s nothing passes; at 300 s exactly one call passes, as HALF_OPEN."""
    trip(breaker)
    clock.advance(299.9)
    assert breaker.allow() == (False, None)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.1)
    assert breaker.state is BreakerState.OPEN  # reading the state never moves it
    allowed, transition = breaker.allow()
    assert allowed
    assert transition == BreakerTransition(
        name="model",
        previous=BreakerState.OPEN,
        current=BreakerState.HALF_OPEN,
        reason="recovery timeout of 300 s elapsed; trying one prediction",
        consecutive_failures=3,
    )
    assert breaker.state is BreakerState.HALF_OPEN
    clock.advance(1_000)
    assert breaker.allow() == (False, None)
    assert breaker.allow() == (False, None)


def test_a_trial_success_closes_the_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """After a good trial every prediction passes again and the count is zero."""
    trip(breaker)
    clock.advance(300)
    breaker.allow()
    transition = breaker.record_success()
    assert transition is not None
    assert (transition.previous, transition.current) == (
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    )
    assert transition.reason == "trial prediction succeeded"
    assert transition.consecutive_failures == 0
    assert breaker.allow() == (True, None)
    assert breaker.allow() == (True, None)


def test_a_trial_failure_reopens_with_a_fresh_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """A failed trial opens the breaker again for another full 300 s, counting a trip."""
    trip(breaker)
    clock.advance(400)
    breaker.allow()
    clock.advance(5)
    transition = breaker.record_failure("RuntimeError: model file is corrupt")
    assert transition is not None
    assert (transition.previous, transition.current) == (
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
    )
    assert transition.reason == "trial prediction failed: RuntimeError: model file is corrupt"
    assert breaker.snapshot().trips == 2
    clock.advance(299)
    assert breaker.allow() == (False, None)
    clock.advance(1)
    assert breaker.allow()[0]


def test_trips_count_every_opening(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Three trips through closing in between and a failed trial are all counted."""
    trip(breaker)
    clock.advance(300)
    breaker.allow()
    breaker.record_success()
    trip(breaker)
    clock.advance(300)
    breaker.allow()
    breaker.record_failure(ERROR)
    assert breaker.snapshot().trips == 3


def test_outcomes_recorded_while_open_are_ignored(breaker: CircuitBreaker) -> None:
    """A late result of a prediction allowed before the trip changes nothing."""
    trip(breaker)
    before = breaker.snapshot()
    assert breaker.record_success() is None
    assert breaker.record_failure("ValueError: late") is None
    assert breaker.snapshot() == before


def test_the_snapshot_reports_the_wait_until_a_trial(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    """retry_in_s counts down while OPEN, is 0 once due, and None otherwise."""
    assert breaker.snapshot() == BreakerSnapshot(
        name="model",
        state=BreakerState.CLOSED,
        consecutive_failures=0,
        trips=0,
        last_error=None,
        retry_in_s=None,
    )
    trip(breaker)
    assert breaker.snapshot().retry_in_s == pytest.approx(300)
    assert breaker.snapshot().last_error == ERROR
    clock.advance(120)
    assert breaker.snapshot().retry_in_s == pytest.approx(180)
    clock.advance(500)
    assert breaker.snapshot().retry_in_s == 0.0
    assert breaker.snapshot().state is BreakerState.OPEN
    breaker.allow()
    assert breaker.snapshot().retry_in_s is None
    assert breaker.snapshot().state is BreakerState.HALF_OPEN


def test_a_threshold_of_one_trips_on_the_first_failure(clock: FakeClock) -> None:
    """The smallest threshold opens at once; a fractional timeout reads naturally."""
    breaker = CircuitBreaker("m", failure_threshold=1, recovery_timeout_s=2.5, clock=clock)
    transition = breaker.record_failure(ERROR)
    assert transition is not None
    assert transition.reason == f"1 consecutive failures, last: {ERROR}"
    clock.advance(2.5)
    _, transition = breaker.allow()
    assert transition is not None
    assert transition.reason == "recovery timeout of 2.5 s elapsed; trying one prediction"


@pytest.mark.parametrize(
    ("threshold", "timeout", "message"),
    [
        (0, 300.0, "threshold"),
        (-1, 300.0, "threshold"),
        (3, 0.0, "timeout"),
        (3, -1.0, "timeout"),
        (3, float("nan"), "timeout"),
        (3, float("inf"), "timeout"),
    ],
)
def test_invalid_settings_are_rejected(threshold: int, timeout: float, message: str) -> None:
    """The threshold is at least 1 and the timeout positive and finite."""
    with pytest.raises(ValueError, match=message):
        CircuitBreaker("m", failure_threshold=threshold, recovery_timeout_s=timeout)
