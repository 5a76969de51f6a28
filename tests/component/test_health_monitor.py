"""Tests for the periodic health monitor."""

import asyncio
import re

import pytest
import structlog
from conftest import eventually
from fakes.services import FixedHealth

from paper_trader.clock import SystemClock
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.runtime.service import HealthReporter, Readiness


def make_monitor(
    reporters: list[HealthReporter],
    *,
    heartbeat_age_s: float = 0.0,
    stale_after_s: float = 30.0,
    statuses: list[str] | None = None,
) -> HealthMonitor:
    """Build a monitor checking every 50 ms with a fixed heartbeat age."""
    return HealthMonitor(
        reporters,
        clock=SystemClock(),
        interval_s=0.05,
        heartbeat_age_s=lambda: heartbeat_age_s,
        stale_after_s=stale_after_s,
        publish_status=(statuses if statuses is not None else []).append,
    )


def test_check_reports_the_worst_component_status() -> None:
    """The overall status is the worst of the components', which are kept in order."""
    reporters: list[HealthReporter] = [
        FixedHealth("supervisor"),
        FixedHealth("storage_writer", HealthStatus.DEGRADED, "backlog 900"),
        FixedHealth("decision_engine"),
    ]
    monitor = make_monitor(reporters)

    snapshot = monitor.check(0.0)

    assert snapshot.status is HealthStatus.DEGRADED
    assert [c.component for c in snapshot.components] == [
        "supervisor",
        "storage_writer",
        "decision_engine",
    ]
    assert snapshot.loop_lag_ms == 0.0


def test_check_with_no_reporters_and_a_fresh_heartbeat_is_ok() -> None:
    """Nothing to complain about gives OK and no components."""
    snapshot = make_monitor([]).check(0.0)

    assert snapshot.status is HealthStatus.OK
    assert snapshot.components == ()


def test_stale_heartbeat_adds_a_critical_decision_loop_component() -> None:
    """A heartbeat older than stale_after_s makes the decision loop CRITICAL."""
    monitor = make_monitor([FixedHealth("supervisor")], heartbeat_age_s=45.0, stale_after_s=30.0)

    snapshot = monitor.check(0.0)

    assert snapshot.status is HealthStatus.CRITICAL
    assert snapshot.components[-1] == ComponentHealth(
        component="decision_loop", status=HealthStatus.CRITICAL, detail="no progress for 45.0 s"
    )
    assert snapshot.heartbeat_age_s == 45.0


def test_heartbeat_exactly_at_the_limit_is_not_stale() -> None:
    """Only an age strictly above stale_after_s counts as stale."""
    snapshot = make_monitor([], heartbeat_age_s=30.0, stale_after_s=30.0).check(0.0)

    assert snapshot.status is HealthStatus.OK
    assert snapshot.components == ()


def test_check_reports_process_resources() -> None:
    """The snapshot carries this process's memory use and CPU share."""
    snapshot = make_monitor([]).check(12.345)

    assert snapshot.rss_mb > 0
    assert snapshot.cpu_percent >= 0
    assert snapshot.loop_lag_ms == 12.35


async def test_running_monitor_publishes_status_lines_with_the_health_label() -> None:
    """Each check publishes a STATUS line naming the status and the problems."""
    statuses: list[str] = []
    writer = FixedHealth("storage_writer", HealthStatus.DEGRADED, "backlog 900")
    monitor = make_monitor([FixedHealth("supervisor"), writer], statuses=statuses)
    ready = Readiness()

    task = asyncio.create_task(monitor.run(ready), name="test-health-monitor")
    try:
        await eventually(lambda: len(statuses) >= 1)
        assert ready.is_set()
        writer.status = HealthStatus.OK
        await eventually(lambda: statuses[-1].startswith("health ok:"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert re.fullmatch(r"health degraded: storage_writer: backlog 900, rss \d+ MB", statuses[0])
    assert re.fullmatch(r"health ok: all components ok, rss \d+ MB", statuses[-1])
    assert monitor.latest is not None
    assert monitor.latest.status is HealthStatus.OK


async def test_running_monitor_logs_a_warning_only_when_not_ok() -> None:
    """health_check is logged at info when OK and at warning otherwise."""
    statuses: list[str] = []
    engine = FixedHealth("decision_engine")
    monitor = make_monitor([engine], statuses=statuses)

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(monitor.run(Readiness()), name="test-health-monitor")
        try:
            await eventually(lambda: len(statuses) >= 1)
            engine.status, engine.detail = HealthStatus.CRITICAL, "wedged"
            await eventually(lambda: statuses[-1].startswith("health critical:"))
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    checks = [e for e in logs if e["event"] == "health_check"]
    assert checks[0]["log_level"] == "info"
    assert checks[0]["status"] == "ok"
    assert checks[-1]["log_level"] == "warning"
    assert checks[-1]["status"] == "critical"
    assert checks[-1]["problems"] == ["decision_engine: wedged"]
