"""Tests for the periodic health monitor: components, vital signs, performance.log, loop lag."""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import eventually
from fakes.services import FixedHealth

from paper_trader.app import supervision
from paper_trader.app.configs import log_config
from paper_trader.clock import SystemClock
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.monitoring.loop_lag import SAMPLE_PERIOD_S, LagStats
from paper_trader.monitoring.vitals import Book, Vitals
from paper_trader.runtime.logs import PERFORMANCE_LOG, configure_logging
from paper_trader.runtime.sdnotify import Heartbeat, SystemdNotifier
from paper_trader.runtime.service import HealthReporter, Readiness
from paper_trader.settings import Settings

OWN = ["loop_lag", "memory"]  # the monitor's own components, after the reporters'


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
        memory_limit_mb=1e6,  # the test process's size is not what these tests are about
    )


def test_check_reports_the_worst_component_status() -> None:
    """The overall status is the worst of the components', which are kept in order."""
    reporters: list[HealthReporter] = [
        FixedHealth("supervisor"),
        FixedHealth("storage_writer", HealthStatus.DEGRADED, "backlog 900"),
        FixedHealth("decision_engine"),
    ]
    monitor = make_monitor(reporters)

    snapshot = monitor.check()

    assert snapshot.status is HealthStatus.DEGRADED
    assert [c.component for c in snapshot.components] == [
        "supervisor",
        "storage_writer",
        "decision_engine",
        *OWN,
    ]
    assert snapshot.loop_lag_ms == 0.0


def test_check_with_no_reporters_and_a_fresh_heartbeat_is_ok() -> None:
    """Nothing to complain about gives OK and only the monitor's own components."""
    snapshot = make_monitor([]).check()

    assert snapshot.status is HealthStatus.OK
    assert [c.component for c in snapshot.components] == OWN


def test_stale_heartbeat_adds_a_critical_decision_loop_component() -> None:
    """A heartbeat older than stale_after_s makes the decision loop CRITICAL."""
    monitor = make_monitor([FixedHealth("supervisor")], heartbeat_age_s=45.0, stale_after_s=30.0)

    snapshot = monitor.check()

    assert snapshot.status is HealthStatus.CRITICAL
    assert snapshot.components[-1] == ComponentHealth(
        component="decision_loop", status=HealthStatus.CRITICAL, detail="no progress for 45.0 s"
    )
    assert snapshot.heartbeat_age_s == 45.0


def test_heartbeat_exactly_at_the_limit_is_not_stale() -> None:
    """Only an age strictly above stale_after_s counts as stale."""
    snapshot = make_monitor([], heartbeat_age_s=30.0, stale_after_s=30.0).check()

    assert snapshot.status is HealthStatus.OK
    assert [c.component for c in snapshot.components] == OWN


def test_check_reports_process_resources() -> None:
    """The snapshot carries this process's memory use and CPU share."""
    snapshot = make_monitor([]).check(LagStats(samples=10, p99_ms=12.345, max_ms=20.0))

    assert snapshot.rss_mb > 0
    assert snapshot.cpu_percent >= 0
    assert (snapshot.loop_lag_ms, snapshot.loop_lag_p99_ms) == (12.35, 12.35)
    assert (snapshot.loop_lag_max_ms, snapshot.loop_lag_samples) == (20.0, 10)


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


def test_a_slow_loop_and_a_large_memory_degrade_with_their_reasons() -> None:
    """A window's p99 over 100 ms degrades loop_lag; RSS over the limit degrades memory."""
    monitor = HealthMonitor(
        [],
        clock=SystemClock(),
        interval_s=60,
        heartbeat_age_s=lambda: 0.0,
        stale_after_s=30,
        publish_status=lambda _line: None,
        memory_limit_mb=1.0,  # this test process is certainly larger
    )

    snapshot = monitor.check(LagStats(samples=600, p99_ms=180.0, max_ms=400.0))

    lag, memory = snapshot.components
    assert snapshot.status is HealthStatus.DEGRADED
    assert (lag.component, lag.status) == ("loop_lag", HealthStatus.DEGRADED)
    assert lag.detail == "p99 180.0 ms, max 400.0 ms over 600 samples: p99 above 100 ms"
    assert (memory.component, memory.status) == ("memory", HealthStatus.DEGRADED)
    assert memory.detail.endswith("above 1 MB")


class SteppedClock:
    """A clock the test moves: monotonic seconds and wall-clock ms together."""

    def __init__(self) -> None:
        self.mono = 500.0
        self.wall_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z

    def monotonic(self) -> float:
        return self.mono

    def now_ms(self) -> int:
        return self.wall_ms

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_ms += round(seconds * 1000)


def test_check_reads_candle_ages_rates_cache_and_book_from_the_vitals() -> None:
    """Candle age per symbol from the last close; per-minute rates from the counts' deltas."""
    clock = SteppedClock()
    counts = {"predictions": 100, "errors": 3}
    vitals = Vitals(
        candle_closes=lambda: {"ETH-USDT": clock.wall_ms - 4_500, "BTC-USDT": clock.wall_ms},
        predictions=lambda: counts["predictions"],
        errors=lambda: counts["errors"],
        cache_hit_rate=lambda: 2 / 3,
        book=lambda: Book(open_positions=2, equity=10_123.456),
    )
    monitor = HealthMonitor(
        [],
        clock=clock,
        interval_s=30,
        heartbeat_age_s=lambda: 0.0,
        stale_after_s=30,
        publish_status=lambda _line: None,
        vitals=vitals,
    )

    first = monitor.check()
    clock.advance(30)
    counts["predictions"], counts["errors"] = 160, 4
    second = monitor.check()

    assert (first.predictions_per_min, first.errors_per_min) == (None, None)
    assert second.candle_age_s == (("BTC-USDT", 0.0), ("ETH-USDT", 4.5))
    assert (second.predictions_per_min, second.errors_per_min) == (120.0, 2.0)
    assert (second.cache_hit_rate, second.open_positions, second.equity) == (0.667, 2, 10_123.46)
    assert second.checked_ms == clock.wall_ms


def settings_for(tmp_path: Path) -> Settings:
    """Return settings checking health every second, logging into ``tmp_path``."""
    values: dict[str, Any] = {"health_check_interval": 1, "log_dir": tmp_path}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]  # pydantic-settings


@asynccontextmanager
async def running(monitor: HealthMonitor) -> AsyncIterator[None]:
    """Run ``monitor`` for the block, then cancel it."""
    task = asyncio.create_task(monitor.run(Readiness()), name="test-health-monitor")
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def performance_lines(path: Path) -> list[dict[str, Any]]:
    """Return every line of performance.log parsed (each must be one JSON object)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.usefixtures("settings_free_environment")
async def test_monitor_writes_one_json_line_per_interval_to_performance_log(
    tmp_path: Path,
) -> None:
    """Built from the settings (HEALTH_CHECK_INTERVAL=1), one line a window with every field,
    in performance.log alone; a 0.3 s block of the loop shows in a window's max and degrades
    loop_lag (with ~10 samples a window, the p99 is the max)."""
    settings = settings_for(tmp_path)
    clock = SystemClock()
    handle = configure_logging(log_config(settings))
    closes = {"BTC-USDT": clock.now_ms() - 2_000}
    vitals = Vitals(candle_closes=lambda: closes, predictions=lambda: 0, errors=lambda: 0)
    monitor = supervision.health_monitor(
        [FixedHealth("supervisor")],
        settings,
        clock,
        Heartbeat(clock),
        SystemdNotifier(None),
        vitals=vitals,
    )
    path = tmp_path / PERFORMANCE_LOG
    try:
        async with running(monitor):
            await eventually(lambda: len(performance_lines(path)) >= 2, timeout=10)
            time.sleep(0.3)  # noqa: ASYNC251 -- the point: block the loop, the sampler wakes late
            # The window that saw the block is the latest for one interval only: a loaded
            # machine's poll can miss it, so its line is waited for (the same snapshot).
            await eventually(
                lambda: any(_blocked_line(line) for line in performance_lines(path)), timeout=10
            )
    finally:
        handle.close()

    lines = performance_lines(path)
    first = lines[0]
    assert set(first) >= {
        "timestamp", "status", "rss_mb", "cpu_percent", "loop_lag_p99_ms", "loop_lag_max_ms",
        "candle_age_s", "predictions_per_min", "errors_per_min", "cache_hit_rate",
        "open_positions", "equity", "tasks", "threads", "open_fds",
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", first["timestamp"])
    assert first["status"] in {"ok", "degraded", "critical"}
    assert first["rss_mb"] > 0
    assert first["candle_age_s"]["BTC-USDT"] >= 2.0
    assert first["predictions_per_min"] == 0.0
    assert first["cache_hit_rate"] is None
    assert first["loop_lag_samples"] > 0
    assert first["tasks"] >= 2  # the test's own and the monitor's sampler, at least
    assert first["threads"] >= 1
    assert first["open_fds"] >= 3
    main_log = (tmp_path / "paper_trader.log").read_text(encoding="utf-8")
    assert "loop_lag_samples" not in main_log  # the performance lines stay in their own file


# A 0.3 s block wakes the sampler late by the block less what was left of its sleep when the
# block began: between 0.3 s - SAMPLE_PERIOD_S and 0.3 s (less a margin for the clock).
BLOCKED_MS = (0.3 - SAMPLE_PERIOD_S) * 1000 - 10


def _blocked_line(line: dict[str, Any]) -> bool:
    return line["loop_lag_max_ms"] >= BLOCKED_MS and line["status"] == "degraded"


def test_candle_ages_are_measured_on_the_venue_clock_once_it_is_known() -> None:
    """A simulator's or a skewed venue's time, not the local one; none before it is known."""
    venue = {"now": 0}
    vitals = Vitals(
        candle_closes=lambda: {"BTC-USDT": 1_000_000}, venue_now_ms=lambda: venue["now"]
    )
    monitor = HealthMonitor(
        [],
        clock=SteppedClock(),
        interval_s=30,
        heartbeat_age_s=lambda: 0.0,
        stale_after_s=30,
        publish_status=lambda _line: None,
        vitals=vitals,
    )

    unknown = monitor.check()
    venue["now"] = 1_061_000
    known = monitor.check()

    assert unknown.candle_age_s == ()
    assert known.candle_age_s == (("BTC-USDT", 61.0),)
