"""A latency histogram of fixed buckets: constant memory, one bisect per observation.

The decision task records how long each batch of candles took from its arrival to the committed
decision; the HTTP metrics read the counts at scrape time (Prometheus histogram semantics:
cumulative buckets, a count and a sum). Nothing here allocates per observation.
"""

import bisect
from collections.abc import Callable
from dataclasses import dataclass

# Upper bounds in seconds: a decision takes milliseconds; a catch-up batch may take seconds.
DEFAULT_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencySnapshot:
    """Counts so far: ``cumulative[i]`` observations at most ``bounds[i]`` seconds, then
    ``count`` in all (the +Inf bucket) and their ``sum_s``."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    sum_s: float


class LatencyHistogram:
    """Observations of one latency, counted into fixed buckets."""

    __slots__ = ("_bounds", "_counts", "_monotonic", "_sum_s")

    def __init__(
        self, monotonic: Callable[[], float], bounds_s: tuple[float, ...] = DEFAULT_BUCKETS_S
    ) -> None:
        """``monotonic`` is the clock the observations are timed with (seconds)."""
        if list(bounds_s) != sorted(set(bounds_s)) or not bounds_s:
            raise ValueError("bucket bounds must be increasing and distinct")
        self._monotonic = monotonic
        self._bounds = bounds_s
        self._counts = [0] * (len(bounds_s) + 1)  # the last one is above every bound
        self._sum_s = 0.0

    def now(self) -> float:
        """Return the clock's time: the start of an observation."""
        return self._monotonic()

    def observe_since(self, started: float) -> None:
        """Record the time elapsed since ``started`` (a value of ``now()``)."""
        self.observe(max(0.0, self._monotonic() - started))

    def observe(self, seconds: float) -> None:
        """Record one observation of ``seconds``."""
        self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self._sum_s += seconds

    def snapshot(self) -> LatencySnapshot:
        """Return the cumulative counts."""
        cumulative: list[int] = []
        running = 0
        for n in self._counts[:-1]:
            running += n
            cumulative.append(running)
        return LatencySnapshot(
            bounds=self._bounds,
            cumulative=tuple(cumulative),
            count=running + self._counts[-1],
            sum_s=self._sum_s,
        )
