"""Each symbol's candle freshness as a health component, on the venue's clock: late is
degraded, stale is critical, and every symbol stale takes /health's level to Critical."""

from paper_trader.clock import SystemClock
from paper_trader.control.health import HealthLevel, assess_health, health_level
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.monitoring.vitals import Vitals

MINUTE_MS = 60_000
NOW_MS = 1_700_000_000_000


def monitor_of(closes: dict[str, int], *, interval_s: float | None = 60.0) -> HealthMonitor:
    """Return a monitor whose venue clock reads ``NOW_MS`` and whose symbols closed at
    ``closes`` (Unix ms)."""
    return HealthMonitor(
        [],
        clock=SystemClock(),
        interval_s=30,
        heartbeat_age_s=lambda: 0.0,
        stale_after_s=30,
        publish_status=lambda _line: None,
        vitals=Vitals(candle_closes=lambda: closes, venue_now_ms=lambda: NOW_MS),
        memory_limit_mb=1e6,
        candle_interval_s=interval_s,
    )


def feeds(components: tuple[ComponentHealth, ...]) -> dict[str, tuple[HealthStatus, str]]:
    """Return the freshness components by name."""
    return {
        c.component: (c.status, c.detail) for c in components if c.component.startswith("feed:")
    }


def test_each_symbol_is_fresh_late_or_stale_by_its_last_candles_age() -> None:
    """1m candles: fresh within 2.5 min, late past it, stale past 4.5 min, with the age."""
    monitor = monitor_of(
        {
            "BTC-USDT": NOW_MS - MINUTE_MS,
            "ETH-USDT": NOW_MS - 3 * MINUTE_MS,
            "SOL-USDT": NOW_MS - 5 * MINUTE_MS,
        }
    )

    found = feeds(monitor.check().components)

    assert found == {
        "feed:BTC-USDT": (HealthStatus.OK, "last candle closed 60 s ago"),
        "feed:ETH-USDT": (HealthStatus.DEGRADED, "last candle closed 180 s ago: late (over 150 s)"),
        "feed:SOL-USDT": (
            HealthStatus.CRITICAL,
            "last candle closed 300 s ago: stale (over 270 s)",
        ),
    }


def test_every_symbol_stale_makes_the_level_critical_and_one_fresh_keeps_it_serving() -> None:
    """The feed of every symbol dead fails /health; one symbol still flowing does not."""
    stale = NOW_MS - 10 * MINUTE_MS
    dead = monitor_of({"BTC-USDT": stale, "ETH-USDT": stale}).check()
    half = monitor_of({"BTC-USDT": stale, "ETH-USDT": NOW_MS - MINUTE_MS}).check()

    dead_score = assess_health(dead.components)
    assert health_level(dead_score.score) is HealthLevel.CRITICAL
    assert dead_score.limits[0].component == "feed:*"
    assert health_level(assess_health(half.components).score) is HealthLevel.FAIR


def test_without_a_candle_interval_no_freshness_is_judged() -> None:
    """A replay's candle times are not now: no freshness components."""
    check = monitor_of({"BTC-USDT": NOW_MS - 10 * MINUTE_MS}, interval_s=None).check()
    assert feeds(check.components) == {}
    assert check.candle_age_s == (("BTC-USDT", 600.0),)
