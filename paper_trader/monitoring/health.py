"""Periodic health check: every component's health, process resources, event-loop lag.

Every ``interval_s`` the monitor asks each component for its health, adds its own
(``loop_lag``, ``memory`` and, given the candle interval, each symbol's candle freshness
``feed:SYMBOL``; thresholds in ``vitals.py``) and a CRITICAL ``decision_loop`` when the
heartbeat is stale, and reads the run's vital signs (candle age per symbol, predictions
and errors per minute, the feature cache's hit rate, the book). The result is logged (a
warning when not OK), kept as the latest snapshot for status queries, summarised in systemd's
``STATUS=`` line, and written as one JSON line to ``performance.log`` for every window after
the first check (the first, at start, has no window behind it).

Loop lag is sampled all the time by a child task (``loop_lag.py``: a 100 ms sleep's
oversleep); each check closes the window of samples since the previous one.
"""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import psutil

from paper_trader.clock import Clock, iso_ms
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.monitoring.loop_lag import (
    NO_LAG,
    LagRing,
    LagStats,
    LoopLagSampler,
    ring_capacity,
)
from paper_trader.monitoring.vitals import (
    MEMORY_DEGRADED_MB,
    FreshnessWatch,
    RateMeter,
    Vitals,
    candle_ages,
    loop_lag_health,
    memory_health,
)
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import HealthReporter, Readiness

log = get_logger("health_monitor")

PerformanceWriter = Callable[[Mapping[str, object]], None]


class _VitalFields(TypedDict):
    checked_ms: int
    candle_age_s: tuple[tuple[str, float], ...]
    predictions_per_min: float | None
    errors_per_min: float | None
    cache_hit_rate: float | None
    open_positions: int | None
    equity: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSnapshot:
    """One health check.

    ``loop_lag_ms`` is the window's p99 (the field predates the sampler); the ``_1m`` pair
    covers the last minute of samples, whatever the window. Rates are None at the first check.
    """

    status: HealthStatus
    components: tuple[ComponentHealth, ...]
    rss_mb: float
    cpu_percent: float
    loop_lag_ms: float
    heartbeat_age_s: float
    checked_ms: int = 0
    loop_lag_p99_ms: float = 0.0
    loop_lag_max_ms: float = 0.0
    loop_lag_samples: int = 0
    loop_lag_p99_1m_ms: float = 0.0
    loop_lag_max_1m_ms: float = 0.0
    candle_age_s: tuple[tuple[str, float], ...] = ()
    predictions_per_min: float | None = None
    errors_per_min: float | None = None
    cache_hit_rate: float | None = None
    open_positions: int | None = None
    equity: float | None = None
    tasks: int = 0
    threads: int = 0
    open_fds: int = 0


class HealthMonitor:
    """A service that checks health every ``interval_s`` seconds."""

    name = "health_monitor"

    def __init__(
        self,
        reporters: Sequence[HealthReporter],
        *,
        clock: Clock,
        interval_s: float,
        heartbeat_age_s: Callable[[], float],
        stale_after_s: float,
        publish_status: Callable[[str], None],
        vitals: Vitals | None = None,
        write_performance: PerformanceWriter | None = None,
        memory_limit_mb: float = MEMORY_DEGRADED_MB,
        candle_interval_s: float | None = None,
    ) -> None:
        """``candle_interval_s`` turns on the symbols' freshness components (a live run)."""
        self._reporters = tuple(reporters)
        self._clock = clock
        self._interval_s = interval_s
        self._heartbeat_age_s = heartbeat_age_s
        self._stale_after_s = stale_after_s
        self._publish_status = publish_status
        self._vitals = vitals or Vitals()
        self._write_performance = write_performance
        self._memory_limit_mb = memory_limit_mb
        self._freshness = None if candle_interval_s is None else FreshnessWatch(candle_interval_s)
        self._process = psutil.Process()
        self._predictions = RateMeter(self._vitals.predictions)
        self._errors = RateMeter(self._vitals.errors)
        self.sampler = LoopLagSampler(LagRing(ring_capacity(interval_s)), monotonic=clock.monotonic)
        self.latest: HealthSnapshot | None = None

    async def run(self, ready: Readiness) -> None:
        """Sample the loop's lag and check health forever; the first check happens right away."""
        self._process.cpu_percent(None)  # primes the counter: the first reading is meaningless
        async with asyncio.TaskGroup() as group:
            group.create_task(self.sampler.run(), name="loop_lag_sampler")
            ready.set()
            await self._check_forever()

    async def _check_forever(self) -> None:
        first = True
        while True:
            self.latest = self.check(self.sampler.ring.close_window())
            self._report(self.latest, write=not first)
            first = False
            await asyncio.sleep(self._interval_s)

    def check(self, lag: LagStats = NO_LAG) -> HealthSnapshot:
        """Return a snapshot of every component's health, the process's resources and the
        vital signs; ``lag`` is the window's loop lag."""
        with self._process.oneshot():
            rss_mb = round(self._process.memory_info().rss / 1_048_576, 1)
            cpu = self._process.cpu_percent(None)
            threads, fds = self._process.num_threads(), self._process.num_fds()
        closes = self._vitals.candle_closes()
        vitals = self._read_vitals(closes)
        age = self._heartbeat_age_s()
        components = [reporter.health() for reporter in self._reporters]
        components += self._own_components(lag, rss_mb, age)
        if self._freshness is not None:
            now_s = self._clock.monotonic()
            components += self._freshness.judge(closes, vitals["candle_age_s"], now_s)
        minute = self.sampler.ring.last()
        return HealthSnapshot(
            status=max((c.status for c in components), default=HealthStatus.OK),
            components=tuple(components),
            rss_mb=rss_mb,
            cpu_percent=cpu,
            loop_lag_ms=round(lag.p99_ms, 2),
            heartbeat_age_s=round(age, 3),
            loop_lag_p99_ms=round(lag.p99_ms, 2),
            loop_lag_max_ms=round(lag.max_ms, 2),
            loop_lag_samples=lag.samples,
            loop_lag_p99_1m_ms=round(minute.p99_ms, 2),
            loop_lag_max_1m_ms=round(minute.max_ms, 2),
            tasks=_task_count(),
            threads=threads,
            open_fds=fds,
            **vitals,
        )

    def _own_components(
        self, lag: LagStats, rss_mb: float, heartbeat_age_s: float
    ) -> list[ComponentHealth]:
        """Return the monitor's own components: loop lag, memory and, when the heartbeat is
        stale, the decision loop."""
        components = [loop_lag_health(lag), memory_health(rss_mb, self._memory_limit_mb)]
        if heartbeat_age_s > self._stale_after_s:
            components.append(
                ComponentHealth(
                    component="decision_loop",
                    status=HealthStatus.CRITICAL,
                    detail=f"no progress for {heartbeat_age_s:.1f} s",
                )
            )
        return components

    def _read_vitals(self, closes: Mapping[str, int]) -> _VitalFields:
        """Return the snapshot's fields that come from the run's vital signs; ``closes`` is
        each symbol's last close, just read."""
        vitals, now_ms = self._vitals, self._clock.now_ms()
        now_s = self._clock.monotonic()
        rate = vitals.cache_hit_rate() if vitals.cache_hit_rate is not None else None
        book = vitals.book() if vitals.book is not None else None
        venue_ms = now_ms if vitals.venue_now_ms is None else vitals.venue_now_ms()
        return {
            "checked_ms": now_ms,
            "candle_age_s": candle_ages(closes, venue_ms),
            "predictions_per_min": self._predictions.per_minute(now_s),
            "errors_per_min": self._errors.per_minute(now_s),
            "cache_hit_rate": None if rate is None else round(rate, 3),
            "open_positions": None if book is None else book.open_positions,
            "equity": None if book is None else round(book.equity, 2),
        }

    def _report(self, snap: HealthSnapshot, *, write: bool) -> None:
        problems = [f"{c.component}: {c.detail}" for c in snap.components if c.status]
        fields = {
            "status": snap.status.label,
            "rss_mb": snap.rss_mb,
            "cpu_percent": snap.cpu_percent,
            "loop_lag_p99_ms": snap.loop_lag_p99_ms,
            "loop_lag_max_ms": snap.loop_lag_max_ms,
            "heartbeat_age_s": snap.heartbeat_age_s,
            "problems": problems,
        }
        if snap.status is HealthStatus.OK:
            log.info("health_check", **fields)
        else:
            log.warning("health_check", **fields)
        if write and self._write_performance is not None:
            self._write_performance(performance_record(snap))
        details = "; ".join(problems) if problems else "all components ok"
        self._publish_status(f"health {snap.status.label}: {details}, rss {snap.rss_mb:.0f} MB")


def performance_record(snap: HealthSnapshot) -> dict[str, object]:
    """Return the ``performance.log`` line of one check, as a JSON-ready dict."""
    return {
        "timestamp": iso_ms(snap.checked_ms),
        "status": snap.status.label,
        "rss_mb": snap.rss_mb,
        "cpu_percent": snap.cpu_percent,
        "loop_lag_p99_ms": snap.loop_lag_p99_ms,
        "loop_lag_max_ms": snap.loop_lag_max_ms,
        "loop_lag_samples": snap.loop_lag_samples,
        "candle_age_s": dict(snap.candle_age_s),
        "predictions_per_min": snap.predictions_per_min,
        "errors_per_min": snap.errors_per_min,
        "cache_hit_rate": snap.cache_hit_rate,
        "open_positions": snap.open_positions,
        "equity": snap.equity,
        "tasks": snap.tasks,
        "threads": snap.threads,
        "open_fds": snap.open_fds,
        "problems": [f"{c.component}: {c.detail}" for c in snap.components if c.status],
    }


def _task_count() -> int:
    """Return how many asyncio tasks the running loop has (0 when checked off the loop)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0
