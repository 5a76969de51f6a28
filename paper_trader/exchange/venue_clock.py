"""The venue's notion of "now", for market data: never the local wall clock.

Synchronised from the venue's server-time endpoint, carried forward on the monotonic clock,
and pulled forward by the event times in frames. A skewed local clock changes nothing, and a
simulator replaying 2017 at 600 times real speed is followed as faithfully as the live venue.
"""

from paper_trader.clock import Clock


class VenueClock:
    """The venue's clock as far as this process can tell."""

    __slots__ = ("_base_mono", "_base_ms", "_clock", "_latest_event_ms")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._base_ms: int | None = None
        self._base_mono = 0.0
        self._latest_event_ms = 0

    @property
    def synced(self) -> bool:
        """Return whether the venue's time is known."""
        return self._base_ms is not None or self._latest_event_ms > 0

    def sync(self, server_ms: int) -> None:
        """Take the venue's server time, just read."""
        self._base_ms = server_ms
        self._base_mono = self._clock.monotonic()
        self._latest_event_ms = min(self._latest_event_ms, server_ms)

    def observe(self, event_ms: int) -> None:
        """Take an event time from a frame (the venue's clock when it sent the frame)."""
        self._latest_event_ms = max(self._latest_event_ms, event_ms)

    def now_ms(self) -> int:
        """Return the venue's current time in Unix ms (0 before anything is known)."""
        if self._base_ms is None:
            return self._latest_event_ms
        carried = self._base_ms + int((self._clock.monotonic() - self._base_mono) * 1000)
        return max(carried, self._latest_event_ms)
