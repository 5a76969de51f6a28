"""Tests for the loop-lag ring and sampler: statistics on fed samples, a fake clock and sleep."""

import asyncio

import pytest

from paper_trader.domain import HealthStatus
from paper_trader.monitoring.loop_lag import (
    MINUTE_SAMPLES,
    NO_LAG,
    LagRing,
    LagStats,
    LoopLagSampler,
    ring_capacity,
)
from paper_trader.monitoring.vitals import RateMeter, loop_lag_health, memory_health


def filled(capacity: int, samples: list[float]) -> LagRing:
    """Return a ring of ``capacity`` with ``samples`` added in order."""
    ring = LagRing(capacity)
    for sample in samples:
        ring.add(sample)
    return ring


def test_window_of_a_hundred_samples_has_the_nearest_rank_p99_and_the_max() -> None:
    """1..100 ms: the p99 is the 99th smallest (99 ms), the max 100 ms."""
    stats = filled(1000, [float(v) for v in range(100, 0, -1)]).close_window()

    assert stats == LagStats(samples=100, p99_ms=99.0, max_ms=100.0)


def test_one_outlier_in_a_hundred_samples_is_the_max_but_not_the_p99() -> None:
    """99 quiet samples and one 300 ms block: max 300, p99 still quiet."""
    stats = filled(1000, [1.0] * 99 + [300.0]).close_window()

    assert (stats.p99_ms, stats.max_ms) == (1.0, 300.0)


def test_empty_window_has_no_lag() -> None:
    """No sample since the last window: zeros."""
    ring = filled(10, [5.0])
    ring.close_window()

    assert ring.close_window() == NO_LAG
    assert LagRing(10).last() == NO_LAG


def test_each_window_covers_only_the_samples_since_the_last() -> None:
    """Closing a window resets its max; the next one sees only the new samples."""
    ring = filled(100, [1.0, 500.0])
    assert ring.close_window().max_ms == 500.0
    for sample in (2.0, 3.0):
        ring.add(sample)

    assert ring.close_window() == LagStats(samples=2, p99_ms=3.0, max_ms=3.0)


def test_wrapped_ring_keeps_the_window_max_exact_and_the_p99_over_the_latest() -> None:
    """More samples than the ring holds: the max is still the window's, the p99 the latest's."""
    ring = filled(4, [900.0, 1.0, 2.0, 3.0, 4.0, 5.0])

    assert ring.close_window() == LagStats(samples=6, p99_ms=5.0, max_ms=900.0)
    assert ring.last(3) == LagStats(samples=3, p99_ms=5.0, max_ms=5.0)


def test_last_minute_spans_the_wrap_point_and_ignores_windows() -> None:
    """``last`` reads the latest samples across the ring's end, whatever the windows did."""
    ring = filled(5, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    ring.close_window()

    assert ring.last(4) == LagStats(samples=4, p99_ms=7.0, max_ms=7.0)
    assert ring.last(50) == LagStats(samples=5, p99_ms=7.0, max_ms=7.0)


def test_ring_holds_the_longer_of_a_window_and_a_minute() -> None:
    """A short window still keeps a minute; a long one its own samples, with slack."""
    assert ring_capacity(1.0) == MINUTE_SAMPLES
    assert ring_capacity(600.0) >= 6000
    with pytest.raises(ValueError, match="at least one"):
        LagRing(0)


class ScriptedLoop:
    """A monotonic clock and a sleep that oversleeps by the scripted amounts, then stops."""

    def __init__(self, oversleeps_s: list[float]) -> None:
        self.now = 100.0
        self._oversleeps = list(oversleeps_s)
        self.asked: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if not self._oversleeps:
            raise asyncio.CancelledError
        self.asked.append(seconds)
        self.now += seconds + self._oversleeps.pop(0)


async def test_sampler_records_each_oversleep_in_ms() -> None:
    """Each 100 ms sleep's oversleep lands in the ring, in ms; waking early counts as zero."""
    loop = ScriptedLoop([0.001, 0.0, 0.3, -0.01])
    sampler = LoopLagSampler(LagRing(10), monotonic=loop.monotonic, sleep=loop.sleep)

    with pytest.raises(asyncio.CancelledError):
        await sampler.run()

    stats = sampler.ring.close_window()
    assert loop.asked == [0.1] * 4
    assert stats.samples == 4
    assert stats.max_ms == pytest.approx(300.0)
    assert sampler.ring.last(4).p99_ms == pytest.approx(300.0)


def test_loop_lag_is_degraded_past_either_threshold_with_the_reason() -> None:
    """p99 over 100 ms or max over 1 s degrades; below both it is OK with the figures."""
    quiet = loop_lag_health(LagStats(samples=600, p99_ms=2.0, max_ms=40.0))
    slow = loop_lag_health(LagStats(samples=600, p99_ms=150.0, max_ms=200.0))
    blocked = loop_lag_health(LagStats(samples=600, p99_ms=2.0, max_ms=1500.0))

    assert quiet.status is HealthStatus.OK
    assert quiet.detail == "p99 2.0 ms, max 40.0 ms over 600 samples"
    assert slow.status is HealthStatus.DEGRADED
    assert slow.detail.endswith("p99 above 100 ms")
    assert blocked.status is HealthStatus.DEGRADED
    assert blocked.detail.endswith("max above 1000 ms")
    assert loop_lag_health(NO_LAG).status is HealthStatus.OK


def test_memory_is_degraded_above_its_limit() -> None:
    """RSS above the limit degrades, naming both; at or below it is OK."""
    assert memory_health(300.0, 1024).status is HealthStatus.OK
    high = memory_health(1500.0, 1024)
    assert (high.status, high.detail) == (HealthStatus.DEGRADED, "rss 1500 MB, above 1024 MB")


def test_rate_meter_gives_per_minute_deltas_from_the_second_reading() -> None:
    """A cumulative count read every 30 s: the first reading has no rate, then the delta x 2."""
    counts = iter([10, 25, 25])
    meter = RateMeter(lambda: next(counts))

    assert meter.per_minute(0.0) is None
    assert meter.per_minute(30.0) == 30.0
    assert meter.per_minute(60.0) == 0.0
    assert RateMeter(None).per_minute(0.0) is None
