"""Each symbol's candle freshness as a health component, on the venue's clock: late is
degraded, stale is critical, and every symbol stale takes /health's level to Critical; a
symbol whose candles keep coming is never called dead, however far its clock jumped."""

from collections.abc import Callable

from test_health_monitor import SteppedClock

from paper_trader.control.health import HealthLevel, assess_health, health_level
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.monitoring.health import HealthMonitor
from paper_trader.monitoring.vitals import FRESHNESS_GRACE_S, Vitals

MINUTE_MS = 60_000
NOW_MS = 1_700_000_000_000
OK, DEGRADED, CRITICAL = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.CRITICAL


def monitor_of(
    closes: Callable[[], dict[str, int]], clock: SteppedClock, *, interval_s: float | None = 60.0
) -> HealthMonitor:
    """Return a monitor whose venue clock reads ``NOW_MS`` and whose symbols' last closes
    (Unix ms) ``closes`` returns."""
    return HealthMonitor(
        [],
        clock=clock,
        interval_s=30,
        heartbeat_age_s=lambda: 0.0,
        stale_after_s=30,
        publish_status=lambda _line: None,
        vitals=Vitals(candle_closes=closes, venue_now_ms=lambda: NOW_MS),
        memory_limit_mb=1e6,
        candle_interval_s=interval_s,
    )


def feeds(components: tuple[ComponentHealth, ...]) -> dict[str, tuple[HealthStatus, str]]:
    """Return the freshness components by name."""
    return {
        c.component: (c.status, c.detail) for c in components if c.component.startswith("feed:")
    }


def test_each_symbol_is_fresh_late_or_stale_by_its_last_candles_age() -> None:
    """1m candles: fresh within 2.5 min, late past it, stale past 4.5 min, with the age; the
    first check, right after the symbols are first seen, calls none of them dead yet."""
    clock = SteppedClock()
    closes = {
        "BTC-USDT": NOW_MS - MINUTE_MS,
        "ETH-USDT": NOW_MS - 3 * MINUTE_MS,
        "SOL-USDT": NOW_MS - 5 * MINUTE_MS,
    }
    monitor = monitor_of(lambda: closes, clock)

    first = feeds(monitor.check().components)
    clock.advance(FRESHNESS_GRACE_S)
    later = feeds(monitor.check().components)

    assert {status for status, _ in first.values()} == {OK}
    assert later == {
        "feed:BTC-USDT": (OK, "last candle closed 60 s ago"),
        "feed:ETH-USDT": (DEGRADED, "last candle closed 180 s ago: late (over 150 s)"),
        "feed:SOL-USDT": (CRITICAL, "last candle closed 300 s ago: stale (over 270 s)"),
    }


def test_a_symbol_whose_candles_keep_coming_is_never_stale_however_old() -> None:
    """An accelerated simulator, or a catch-up after the venue clock jumped: the last close
    moves between checks, so the symbol is fresh even while far behind the venue's clock."""
    clock = SteppedClock()
    close = {"BTC-USDT": NOW_MS - 60 * MINUTE_MS}
    monitor = monitor_of(lambda: dict(close), clock)
    seen = []
    for _ in range(5):
        seen.append(feeds(monitor.check().components)["feed:BTC-USDT"][0])
        clock.advance(FRESHNESS_GRACE_S)
        close["BTC-USDT"] += MINUTE_MS
    assert seen == [OK] * 5


def test_every_symbol_stale_makes_the_level_critical_and_one_fresh_keeps_it_serving() -> None:
    """The feed of every symbol dead fails /health; one symbol still flowing does not."""
    clock = SteppedClock()
    stale = NOW_MS - 10 * MINUTE_MS
    dead_monitor = monitor_of(lambda: {"BTC-USDT": stale, "ETH-USDT": stale}, clock)
    half_monitor = monitor_of(lambda: {"BTC-USDT": stale, "ETH-USDT": NOW_MS - MINUTE_MS}, clock)
    dead_monitor.check()
    half_monitor.check()
    clock.advance(FRESHNESS_GRACE_S)

    dead = assess_health(dead_monitor.check().components)
    half = assess_health(half_monitor.check().components)

    assert health_level(dead.score) is HealthLevel.CRITICAL
    assert dead.limits[0].component == "feed:*"
    assert health_level(half.score) is HealthLevel.FAIR


def test_without_a_candle_interval_no_freshness_is_judged() -> None:
    """A replay's candle times are not now: no freshness components."""
    clock = SteppedClock()
    monitor = monitor_of(lambda: {"BTC-USDT": NOW_MS - 10 * MINUTE_MS}, clock, interval_s=None)
    check = monitor.check()
    assert feeds(check.components) == {}
    assert check.candle_age_s == (("BTC-USDT", 600.0),)
