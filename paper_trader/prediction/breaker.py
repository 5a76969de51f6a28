"""A circuit breaker around predictions: stop calling a model that keeps failing.

CLOSED lets every prediction through and counts consecutive failures; reaching
``failure_threshold`` opens it. OPEN refuses predictions until ``recovery_timeout_s`` of the
injected (monotonic, wall-clock) time has passed since it opened; the next ``allow()`` then
moves it to HALF_OPEN and lets exactly one trial through. The trial's success closes it, its
failure opens it again with a fresh timeout. State changes are returned as
``BreakerTransition`` values for the caller to log and publish; nothing here raises on a trip.

Outcomes recorded while OPEN belong to predictions allowed before the trip; they are stale and
ignored, so neither a late success nor a late failure moves the breaker or its counters.
"""

import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass


class BreakerState(enum.StrEnum):
    """Whether predictions are let through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerTransition:
    """A change of state, with a short human sentence saying why."""

    name: str
    previous: BreakerState
    current: BreakerState
    reason: str
    consecutive_failures: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSnapshot:
    """The breaker as seen by health checks and status interfaces."""

    name: str
    state: BreakerState
    consecutive_failures: int
    trips: int
    last_error: str | None
    retry_in_s: float | None  # seconds until a trial is allowed while OPEN, else None


class CircuitBreaker:
    """Let predictions through while they succeed; stop them for a while when they do not."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        recovery_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"the failure threshold must be at least 1, not {failure_threshold}")
        if not (recovery_timeout_s > 0 and math.isfinite(recovery_timeout_s)):
            raise ValueError(
                f"the recovery timeout must be positive and finite, not {recovery_timeout_s}"
            )
        self._name = name
        self._threshold = failure_threshold
        self._timeout_s = recovery_timeout_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trips = 0
        self._last_error: str | None = None
        self._opened_at = 0.0

    @property
    def name(self) -> str:
        """Return the breaker's name."""
        return self._name

    @property
    def state(self) -> BreakerState:
        """Return the current state; reading it never changes it (only ``allow`` does)."""
        return self._state

    def allow(self) -> tuple[bool, BreakerTransition | None]:
        """Return whether one prediction may run now, and the transition this caused if any.

        While OPEN, the first call after the recovery timeout moves to HALF_OPEN and is the one
        trial; every other call until the trial's outcome is recorded is refused.
        """
        if self._state is BreakerState.CLOSED:
            return True, None
        if self._state is BreakerState.HALF_OPEN or self._retry_in_s() > 0.0:
            return False, None
        reason = f"recovery timeout of {self._timeout_s:g} s elapsed; trying one prediction"
        return True, self._move(BreakerState.HALF_OPEN, reason)

    def record_success(self) -> BreakerTransition | None:
        """Record a successful prediction: reset the failure count, close after a trial."""
        if self._state is BreakerState.OPEN:
            return None
        self._failures = 0
        if self._state is BreakerState.HALF_OPEN:
            return self._move(BreakerState.CLOSED, "trial prediction succeeded")
        return None

    def record_failure(self, error: str) -> BreakerTransition | None:
        """Record a failed prediction (``error`` as "Type: message"); open if it must."""
        if self._state is BreakerState.OPEN:
            return None
        self._failures += 1
        self._last_error = error
        if self._state is BreakerState.HALF_OPEN:
            return self._trip(f"trial prediction failed: {error}")
        if self._failures >= self._threshold:
            return self._trip(f"{self._failures} consecutive failures, last: {error}")
        return None

    def snapshot(self) -> BreakerSnapshot:
        """Return the state, counters and, while OPEN, the seconds until a trial is allowed."""
        return BreakerSnapshot(
            name=self._name,
            state=self._state,
            consecutive_failures=self._failures,
            trips=self._trips,
            last_error=self._last_error,
            retry_in_s=self._retry_in_s() if self._state is BreakerState.OPEN else None,
        )

    def _retry_in_s(self) -> float:
        """Return the seconds left of the recovery timeout (0 once elapsed)."""
        return max(0.0, self._timeout_s - (self._clock() - self._opened_at))

    def _trip(self, reason: str) -> BreakerTransition:
        """Open the breaker now, starting a fresh recovery timeout."""
        self._trips += 1
        self._opened_at = self._clock()
        return self._move(BreakerState.OPEN, reason)

    def _move(self, current: BreakerState, reason: str) -> BreakerTransition:
        """Change state and return the transition."""
        previous, self._state = self._state, current
        return BreakerTransition(
            name=self._name,
            previous=previous,
            current=current,
            reason=reason,
            consecutive_failures=self._failures,
        )
