"""/health over loopback says why it fails: the ceilings that hold the score down, lowest
first, and the lowest as the one-line reason."""

from pathlib import Path

from fakes.control_rig import running_rig
from fakes.trading import T0
from test_http import serving

from paper_trader.control.health import assess_health
from paper_trader.control.system import HealthView
from paper_trader.domain import ComponentHealth, HealthStatus

OK, DEGRADED, CRITICAL = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.CRITICAL


def checked(*components: ComponentHealth) -> HealthView:
    """Return a health check of ``components``, scored as the daemon scores it."""
    assessed = assess_health(components)
    return HealthView(
        status=max(c.status for c in components),
        score=assessed.score,
        limits=assessed.limits,
        components=components,
        rss_mb=100.0,
        cpu_percent=1.0,
        loop_lag_ms=0.5,
        checked_ms=T0,
    )


async def test_a_dead_feed_is_503_with_its_reason_among_healthy_parts(tmp_path: Path) -> None:
    """The feed critical among a dozen ok parts: Critical and 503, the feed's reason first."""
    side_parts = [ComponentHealth(component=f"side{i}", status=OK) for i in range(12)]
    dead = ComponentHealth(
        component="market_feed", status=CRITICAL, detail="binance: not connected (refused)"
    )
    queue = ComponentHealth(component="storage_writer", status=DEGRADED, detail="queue 90% full")
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        served.latest[0] = checked(*side_parts, queue, dead)
        status, body = await served.get("/health")
        _, api = await served.get("/api/status")
    assert (status, body["level"], body["score"]) == (503, "Critical", 39)
    assert body["limits"] == [
        {
            "component": "market_feed",
            "status": "critical",
            "at_most": 39,
            "detail": "binance: not connected (refused)",
        },
        {"component": "storage_writer", "status": "degraded", "at_most": 74,
         "detail": "queue 90% full"},
    ]  # fmt: skip
    assert body["reason"] == (
        "market_feed critical (binance: not connected (refused)): "
        "a vital component, so the score is at most 39"
    )
    assert api["health"]["reason"] == body["reason"]


async def test_all_well_has_no_reason_and_no_limits(tmp_path: Path) -> None:
    """Nothing holds the score down: 200, reason null, limits empty."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        served.latest[0] = checked(ComponentHealth(component="market_feed", status=OK))
        status, body = await served.get("/health")
    assert (status, body["score"], body["reason"], body["limits"]) == (200, 100, None, [])
