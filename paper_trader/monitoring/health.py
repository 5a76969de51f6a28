"""Periodic health check: every component's health, process resources, event-loop lag.

The result is logged (a warning when not OK), kept as the latest snapshot for status queries,
and summarised in systemd's ``STATUS=`` line.
"""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from paper_trader.clock import Clock
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import HealthReporter, Readiness

log = get_logger("health_monitor")


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSnapshot:
    """One health check."""

    status: HealthStatus
    components: tuple[ComponentHealth, ...]
    rss_mb: float
    cpu_percent: float
    loop_lag_ms: float
    heartbeat_age_s: float


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
    ) -> None:
        self._reporters = tuple(reporters)
        self._clock = clock
        self._interval_s = interval_s
        self._heartbeat_age_s = heartbeat_age_s
        self._stale_after_s = stale_after_s
        self._publish_status = publish_status
        self._process = psutil.Process()
        self.latest: HealthSnapshot | None = None

    async def run(self, ready: Readiness) -> None:
        """Check health forever; the first check happens right away."""
        self._process.cpu_percent(None)  # primes the counter: the first reading is meaningless
        lag_ms = 0.0
        ready.set()
        while True:
            self.latest = self.check(lag_ms)
            self._report(self.latest)
            started = self._clock.monotonic()
            await asyncio.sleep(self._interval_s)
            lag_ms = max(0.0, (self._clock.monotonic() - started - self._interval_s) * 1000)

    def check(self, loop_lag_ms: float) -> HealthSnapshot:
        """Return a snapshot of every component's health and the process's resources."""
        components = [reporter.health() for reporter in self._reporters]
        age = self._heartbeat_age_s()
        if age > self._stale_after_s:
            components.append(
                ComponentHealth(
                    component="decision_loop",
                    status=HealthStatus.CRITICAL,
                    detail=f"no progress for {age:.1f} s",
                )
            )
        status = max((c.status for c in components), default=HealthStatus.OK)
        with self._process.oneshot():
            rss_mb = self._process.memory_info().rss / 1_048_576
            cpu = self._process.cpu_percent(None)
        return HealthSnapshot(
            status=status,
            components=tuple(components),
            rss_mb=round(rss_mb, 1),
            cpu_percent=cpu,
            loop_lag_ms=round(loop_lag_ms, 2),
            heartbeat_age_s=round(age, 3),
        )

    def _report(self, snap: HealthSnapshot) -> None:
        problems = [f"{c.component}: {c.detail}" for c in snap.components if c.status]
        fields = {
            "status": snap.status.label,
            "rss_mb": snap.rss_mb,
            "cpu_percent": snap.cpu_percent,
            "loop_lag_ms": snap.loop_lag_ms,
            "heartbeat_age_s": snap.heartbeat_age_s,
            "problems": problems,
        }
        if snap.status is HealthStatus.OK:
            log.info("health_check", **fields)
        else:
            log.warning("health_check", **fields)
        details = "; ".join(problems) if problems else "all components ok"
        self._publish_status(f"health {snap.status.label}: {details}, rss {snap.rss_mb:.0f} MB")
