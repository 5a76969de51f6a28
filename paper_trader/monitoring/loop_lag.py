"""The event loop's lag: how late a 100 ms sleep wakes up, sampled all the time.

A blocked loop (a CPU-bound call, a synchronous disk or network wait) delays every callback
queued behind it; a sleep that should last 100 ms then wakes up late by about as long as the
block lasted. The sampler sleeps ``SAMPLE_PERIOD_S`` again and again and records each oversleep
(on the monotonic clock, in ms) in a ring preallocated at start: a sample costs one store into
a numpy array and no allocation.

Statistics: the maximum and the p99 (nearest rank: the smallest sample that at least 99 % of
the samples do not exceed) of one check window (the samples since the previous window closed)
and of the last minute (the latest ``MINUTE_SAMPLES``). The ring holds the longer of the two, so a
window's max is always exact; its p99 covers the latest ``capacity`` samples should a window
run longer than the ring was sized for.
"""

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

SAMPLE_PERIOD_S = 0.1
MINUTE_SAMPLES = round(60 / SAMPLE_PERIOD_S)
_RING_SLACK = 1.1  # a window closes a little late now and then: room for its extra samples


@dataclass(frozen=True, slots=True, kw_only=True)
class LagStats:
    """The lag of some samples, in ms (zeros with no samples)."""

    samples: int
    p99_ms: float
    max_ms: float


NO_LAG = LagStats(samples=0, p99_ms=0.0, max_ms=0.0)


def ring_capacity(window_s: float, period_s: float = SAMPLE_PERIOD_S) -> int:
    """Return the ring size that holds a window of ``window_s`` and a minute of samples."""
    return max(MINUTE_SAMPLES, math.ceil(window_s / period_s * _RING_SLACK))


class LagRing:
    """The latest ``capacity`` lag samples, and the running max of the open window."""

    __slots__ = ("_total", "_values", "_window_max", "_window_start")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a lag ring holds at least one sample")
        self._values = np.zeros(capacity, dtype=np.float64)
        self._total = 0  # samples ever added
        self._window_start = 0  # ``_total`` when the open window began
        self._window_max = 0.0

    @property
    def capacity(self) -> int:
        """Return how many samples the ring holds."""
        return len(self._values)

    def add(self, lag_ms: float) -> None:
        """Record one sample (overwriting the oldest once the ring is full)."""
        self._values[self._total % len(self._values)] = lag_ms
        self._total += 1
        self._window_max = max(self._window_max, lag_ms)

    def close_window(self) -> LagStats:
        """Return the stats of the samples since the last window closed, and open a new one."""
        count = self._total - self._window_start
        latest = self._latest(min(count, len(self._values)))
        stats = LagStats(samples=count, p99_ms=_p99(latest), max_ms=self._window_max)
        self._window_start = self._total
        self._window_max = 0.0
        return stats

    def last(self, samples: int = MINUTE_SAMPLES) -> LagStats:
        """Return the stats of the latest ``samples`` samples (fewer if fewer were taken)."""
        latest = self._latest(min(samples, self._total, len(self._values)))
        peak = float(latest.max()) if len(latest) else 0.0
        return LagStats(samples=len(latest), p99_ms=_p99(latest), max_ms=peak)

    def _latest(self, count: int) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        end = self._total % len(self._values)
        if count <= end:
            return self._values[end - count : end]
        return np.concatenate(
            (self._values[len(self._values) - (count - end) :], self._values[:end])
        )


def _p99(values: np.ndarray[tuple[int], np.dtype[np.float64]]) -> float:
    """Return the nearest-rank 99th percentile (0 with no values); O(n), no full sort."""
    if len(values) == 0:
        return 0.0
    rank = math.ceil(0.99 * len(values)) - 1
    return float(np.partition(values, rank)[rank])


class LoopLagSampler:
    """Sleep ``period_s`` again and again; add each oversleep, in ms, to ``ring``."""

    def __init__(
        self,
        ring: LagRing,
        *,
        monotonic: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        period_s: float = SAMPLE_PERIOD_S,
    ) -> None:
        self.ring = ring
        self._monotonic = monotonic
        self._sleep = sleep
        self._period_s = period_s

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            before = self._monotonic()
            await self._sleep(self._period_s)
            self.ring.add(max(0.0, (self._monotonic() - before - self._period_s) * 1000))
