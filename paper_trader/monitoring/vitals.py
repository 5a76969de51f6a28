"""The run's vital signs besides the components' own health, and the two the monitor judges.

Thresholds (each a health component with its reason, so ``/health`` shows it):

* ``loop_lag`` is DEGRADED when the check window's p99 lag exceeds ``LOOP_LAG_P99_MS``
  (100 ms: a candle, a Telegram answer or a status message waits a noticeable time behind
  something that blocks the loop, which invariant 5 forbids) or its max exceeds
  ``LOOP_LAG_MAX_MS`` (1 s: one block that long stalls every connection's pings and every
  timer at once).
* ``memory`` is DEGRADED when the resident set exceeds ``MEMORY_DEGRADED_MB`` (1024 MB). A
  demo run with its models loaded holds about 260 MB; four times that leaves room for more
  symbols and every bounded buffer full, so more is a leak (invariant 6) or a host about to
  swap, worth a look before the kernel's OOM killer takes it.
* ``feed:SYMBOL`` (one per symbol, in a live run) is DEGRADED when the symbol's last candle
  handled closed more than ``LATE_INTERVALS`` intervals plus ``FRESHNESS_GRACE_S`` ago on the
  venue's clock (a candle is overdue: right before the next close the age is one interval plus
  the delivery delay), and CRITICAL past ``STALE_INTERVALS`` intervals plus the grace (three
  candles overdue: the symbol's data is dead, whatever the connection says). With 1m candles:
  late after 2.5 min, stale after 4.5 min. Either also needs ``FRESHNESS_GRACE_S`` of the
  monitor's own (monotonic) time without a new candle: live that always holds by then, while
  a simulator's accelerated clock, or the venue clock's jump on a resync before the backfill
  lands, never makes a symbol whose candles keep coming look dead.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from paper_trader.control.health import SYMBOL_FEED
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.monitoring.loop_lag import LagStats

LOOP_LAG_P99_MS = 100.0
LOOP_LAG_MAX_MS = 1000.0
MEMORY_DEGRADED_MB = 1024.0
LATE_INTERVALS = 2
STALE_INTERVALS = 4
FRESHNESS_GRACE_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Book:
    """The portfolio at the latest closes: what the performance log shows of it."""

    open_positions: int
    equity: float


def _no_closes() -> Mapping[str, int]:
    return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Vitals:
    """What the monitor reads of the run on each check (each reader cheap, none blocking).

    ``candle_closes``: symbol → close time (Unix ms) of its latest candle handled, aged on
    ``venue_now_ms`` (the venue's clock, 0 while unknown: no ages) or else the monitor's clock;
    ``predictions`` and ``errors``: cumulative counts (the monitor turns them into rates);
    ``cache_hit_rate``: the feature cache's, None before its first restore;
    ``book``: open positions and equity, None before the ledger is restored.
    """

    candle_closes: Callable[[], Mapping[str, int]] = _no_closes
    venue_now_ms: Callable[[], int] | None = None
    predictions: Callable[[], int] | None = None
    errors: Callable[[], int] | None = None
    cache_hit_rate: Callable[[], float | None] | None = None
    book: Callable[[], Book | None] | None = None


def loop_lag_health(lag: LagStats) -> ComponentHealth:
    """Return DEGRADED when the window's p99 or max lag is past its threshold."""
    if lag.samples == 0:
        return ComponentHealth(component="loop_lag", status=HealthStatus.OK, detail="no samples")
    detail = f"p99 {lag.p99_ms:.1f} ms, max {lag.max_ms:.1f} ms over {lag.samples} samples"
    too_high = []
    if lag.p99_ms > LOOP_LAG_P99_MS:
        too_high.append(f"p99 above {LOOP_LAG_P99_MS:g} ms")
    if lag.max_ms > LOOP_LAG_MAX_MS:
        too_high.append(f"max above {LOOP_LAG_MAX_MS:g} ms")
    if too_high:
        return ComponentHealth(
            component="loop_lag",
            status=HealthStatus.DEGRADED,
            detail=f"{detail}: {', '.join(too_high)}",
        )
    return ComponentHealth(component="loop_lag", status=HealthStatus.OK, detail=detail)


def memory_health(rss_mb: float, limit_mb: float = MEMORY_DEGRADED_MB) -> ComponentHealth:
    """Return DEGRADED when the resident set is above ``limit_mb``."""
    if rss_mb > limit_mb:
        return ComponentHealth(
            component="memory",
            status=HealthStatus.DEGRADED,
            detail=f"rss {rss_mb:.0f} MB, above {limit_mb:g} MB",
        )
    return ComponentHealth(
        component="memory", status=HealthStatus.OK, detail=f"rss {rss_mb:.0f} MB"
    )


def candle_ages(closes: Mapping[str, int], now_ms: int) -> tuple[tuple[str, float], ...]:
    """Return each symbol's seconds since its latest candle closed, by symbol (none while
    ``now_ms`` is unknown: 0)."""
    if now_ms <= 0:
        return ()
    return tuple((s, round(max(0, now_ms - ms) / 1000, 1)) for s, ms in sorted(closes.items()))


class FreshnessWatch:
    """Judge each symbol's candle freshness (see the module docstring), remembering when each
    symbol's last close last changed (one entry per symbol seen at the latest check)."""

    def __init__(self, interval_s: float) -> None:
        self._late_s = LATE_INTERVALS * interval_s + FRESHNESS_GRACE_S
        self._stale_s = STALE_INTERVALS * interval_s + FRESHNESS_GRACE_S
        self._changed: dict[str, tuple[int, float]] = {}  # symbol -> (close ms, when seen)

    def judge(
        self, closes: Mapping[str, int], ages: tuple[tuple[str, float], ...], now_s: float
    ) -> list[ComponentHealth]:
        """Return one ``feed:SYMBOL`` component per symbol of ``ages`` (seconds since its last
        candle closed, on the venue's clock); ``closes`` are the close times they come from,
        ``now_s`` the monitor's monotonic time."""
        changed = {}
        for symbol, close_ms in closes.items():
            seen = self._changed.get(symbol)
            changed[symbol] = (
                seen if seen is not None and seen[0] == close_ms else (close_ms, now_s)
            )
        self._changed = changed
        return [
            self._component(symbol, age, now_s - changed[symbol][1])
            for symbol, age in ages
            if symbol in changed
        ]

    def _component(self, symbol: str, age_s: float, still_s: float) -> ComponentHealth:
        detail = f"last candle closed {age_s:g} s ago"
        status = HealthStatus.OK
        if still_s >= FRESHNESS_GRACE_S and age_s > self._stale_s:
            status, detail = HealthStatus.CRITICAL, f"{detail}: stale (over {self._stale_s:g} s)"
        elif still_s >= FRESHNESS_GRACE_S and age_s > self._late_s:
            status, detail = HealthStatus.DEGRADED, f"{detail}: late (over {self._late_s:g} s)"
        return ComponentHealth(component=f"{SYMBOL_FEED}{symbol}", status=status, detail=detail)


class RateMeter:
    """Per-minute rate of a cumulative count between successive readings."""

    def __init__(self, read: Callable[[], int] | None) -> None:
        self._read = read
        self._last: tuple[float, int] | None = None

    def per_minute(self, now_s: float) -> float | None:
        """Return the rate since the previous reading (None at the first, or with no count)."""
        if self._read is None:
            return None
        count = self._read()
        last, self._last = self._last, (now_s, count)
        if last is None or now_s <= last[0]:
            return None
        return round((count - last[1]) * 60 / (now_s - last[0]), 2)
