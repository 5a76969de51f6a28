"""The feed's bookkeeping: counters, connection health, reconnect storms, log throttling."""

import collections
from dataclasses import asdict, dataclass

from paper_trader.clock import Clock
from paper_trader.domain import EventKind, EventSource, HealthStatus, Severity
from paper_trader.exchange.wire import VenueAdapter
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger

log = get_logger("market_feed")
_SOURCE = EventSource("market_feed")


@dataclass(slots=True)
class FeedStats:
    """Counters of one feed since start-up."""

    connections: int = 0
    reconnects: int = 0
    frames: int = 0
    data_frames: int = 0
    candles_emitted: int = 0
    backfilled: int = 0  # candles fetched over REST (the warm-up included)
    malformed: int = 0
    unknown: int = 0
    venue_errors: int = 0
    rejected: int = 0
    control: int = 0
    rotations: int = 0

    def to_json(self) -> dict[str, int]:
        """Return the counters as a plain dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEnd:
    """Why a connection ended and how soon to reconnect."""

    reason: str
    retry_after_s: float = 0.0


class StormWatch:
    """Detect ``limit`` reconnects within ``window_s``: health degraded plus one event."""

    def __init__(
        self, limit: int, window_s: float, events: EventSink, clock: Clock, adapter: VenueAdapter
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._events = events
        self._clock = clock
        self._venue = adapter.venue.value
        self._times: collections.deque[float] = collections.deque(maxlen=limit)
        self.active = False
        self.storms = 0

    def record(self, reason: str) -> None:
        """Count a reconnect; start a storm if there were too many lately."""
        now = self._clock.monotonic()
        self._times.append(now)
        if self.active or len(self._times) < self._limit:
            return
        if now - self._times[0] <= self._window_s:
            self.active = True
            self.storms += 1
            message = (
                f"{self._venue} feed reconnected {self._limit} times within "
                f"{self._window_s:g} s; last reason: {reason}"
            )
            log.error("feed_reconnect_storm", venue=self._venue, reason=reason)
            self._publish(EventKind.FEED_RECONNECT_STORM, Severity.WARNING, message, reason)

    def settle(self) -> None:
        """End the storm once a whole window passed without a reconnect."""
        if self.active and self._clock.monotonic() - self._times[-1] > self._window_s:
            self.active = False
            log.info("feed_recovered", venue=self._venue)
            message = f"{self._venue} feed stable again: no reconnect for {self._window_s:g} s"
            self._publish(EventKind.FEED_RECOVERED, Severity.INFO, message, "stable")

    def _publish(self, kind: EventKind, severity: Severity, message: str, reason: str) -> None:
        data = {"venue": self._venue, "reason": reason}
        self._events.publish(
            _SOURCE.event(kind, severity, message, at_ms=self._clock.now_ms(), data=data)
        )


class FeedHealth:
    """Whether the feed is connected, and why not."""

    def __init__(self, venue: str) -> None:
        self._venue = venue
        self._connected = False
        self._reason = "starting"
        self.rejected: dict[str, str] = {}

    @property
    def is_connected(self) -> bool:
        """Return whether a connection works now."""
        return self._connected

    def connected(self) -> None:
        """Record a working connection."""
        self._connected = True

    def disconnected(self, reason: str) -> None:
        """Record a lost connection."""
        self._connected = False
        self._reason = reason

    def assess(self, storm: bool) -> tuple[HealthStatus, str]:
        """Return the status and a short explanation."""
        if storm:
            state = "reconnect storm" if self._connected else "not connected, reconnect storm"
            return HealthStatus.DEGRADED, f"{self._venue}: {state} ({self._reason})"
        if self.rejected:
            refused = ", ".join(f"{s}: {m}" for s, m in sorted(self.rejected.items()))
            return HealthStatus.DEGRADED, f"{self._venue}: subscriptions refused ({refused})"
        if not self._connected:
            return HealthStatus.DEGRADED, f"{self._venue}: not connected ({self._reason})"
        return HealthStatus.OK, f"{self._venue}: connected"


class Throttle:
    """Allow one log line per key per ``period_s``; count what was held back."""

    def __init__(self, clock: Clock, period_s: float = 60.0, max_keys: int = 1000) -> None:
        self._clock = clock
        self._period_s = period_s
        self._max_keys = max_keys
        self._last: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.suppressed = 0

    def allow(self, key: str) -> bool:
        """Return whether a line for ``key`` may be logged now."""
        now = self._clock.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._period_s:
            self.suppressed += 1
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        return True
