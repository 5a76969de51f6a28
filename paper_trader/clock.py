"""Wall-clock and monotonic time as an injected dependency, and times as ISO 8601 text.

Trading rules never read this clock: they run on candle time. The clock is for timeouts,
watchdogs, rate limits, backoff and the wall-clock fields of logs and run metadata.
"""

import time
from datetime import UTC, datetime
from typing import Protocol


def iso_ms(ms: int) -> str:
    """Return a Unix-ms time as ISO 8601 UTC: ``2026-11-20T14:03:05Z``, with milliseconds
    (``…05.123Z``) when it has them."""
    whole = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ms % 1000:03d}Z" if ms % 1000 else f"{whole}Z"


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
