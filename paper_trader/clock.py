"""Wall-clock and monotonic time as an injected dependency.

Trading rules never read this clock: they run on candle time. The clock is for timeouts,
watchdogs, rate limits, backoff and the wall-clock fields of logs and run metadata.
"""

import time
from typing import Protocol


class Clock(Protocol):
    """Source of wall-clock and monotonic time."""

    def monotonic(self) -> float:
        """Return seconds from an arbitrary origin that never goes backwards."""
        ...

    def now_ms(self) -> int:
        """Return the wall-clock time as Unix milliseconds (UTC)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def now_ms(self) -> int:
        """Return ``time.time()`` in whole milliseconds."""
        return time.time_ns() // 1_000_000
