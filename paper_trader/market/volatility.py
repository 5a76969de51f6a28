"""Recent volatility of a candle series, and the price-jump test built on it."""

import math
from array import array
from collections import deque
from collections.abc import Mapping
from typing import Any

from paper_trader.domain import Candle

# Floor of the per-interval volatility in log units (1 bp), so that after a series sat flat
# (a pegged coin, a halt) an ordinary tick is not taken for a jump.
_SIGMA_FLOOR = 1e-4


class RollingRms:
    """Root mean square of the last ``size`` values, O(1) amortised per value.

    Used on log returns it is the realised volatility about zero rather than about the mean,
    so a steady trend does not look like calm. The running sum of squares is recomputed from
    the window every ``size`` pushes, so rounding error cannot build up over a long run, and
    whenever the value leaving the window held most of it (a spike followed by calm).
    """

    __slots__ = ("_pushes", "_sum_sq", "_values")

    def __init__(self, size: int) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._sum_sq = 0.0
        self._pushes = 0

    def __len__(self) -> int:
        """Return how many values are in the window."""
        return len(self._values)

    def push(self, value: float) -> None:
        """Add ``value``, dropping the oldest one when the window is full."""
        cancels = False
        if len(self._values) == self._values.maxlen:
            oldest = self._values[0] * self._values[0]
            cancels = oldest > 0.5 * self._sum_sq  # the rest would be mostly rounding error
            self._sum_sq -= oldest
        self._values.append(value)
        self._sum_sq += value * value
        self._pushes += 1
        if cancels or self._pushes == self._values.maxlen:
            self._pushes = 0
            self._sum_sq = math.fsum(v * v for v in self._values)

    def state(self) -> dict[str, object]:
        """Return the window and its running sum, exactly (``restore`` takes it back)."""
        return {"values": array("d", self._values).tobytes(), "sum_sq": self._sum_sq,
                "pushes": self._pushes}  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``state()``; raise ``ValueError`` if it does not fit this window."""
        values = array("d", bytes(state["values"]))
        size = self._values.maxlen or 0
        if len(values) > size or not 0 <= int(state["pushes"]) < max(size, 1):
            raise ValueError(f"a volatility window of another size (this one holds {size})")
        self._values = deque(values, maxlen=size)
        self._sum_sq, self._pushes = float(state["sum_sq"]), int(state["pushes"])

    def rms(self) -> float:
        """Return the root mean square of the window (0 when it is empty)."""
        if not self._values:
            return 0.0
        return math.sqrt(max(self._sum_sq, 0.0) / len(self._values))


def _log_prices(candle: Candle) -> tuple[float, float] | None:
    """Return the log close and the log high-low range, or None beyond float range."""
    close, high, low = float(candle.close), float(candle.high), float(candle.low)
    if not all(0.0 < p < math.inf for p in (close, high, low)):
        return None
    return math.log(close), math.log(high) - math.log(low)


class JumpDetector:
    """Tell whether a candle moves far beyond the recent volatility of its series.

    Volatility is the root mean square of recent per-interval log returns; a return across a
    gap of k intervals is divided by sqrt(k), the growth of its expected spread.
    """

    __slots__ = ("_last_log_close", "_last_open_ms", "_min_history", "_multiple", "_returns")

    def __init__(self, *, window: int, min_history: int, multiple: float) -> None:
        self._returns = RollingRms(window)
        self._min_history = min_history
        self._multiple = multiple
        self._last_open_ms: int | None = None
        self._last_log_close = 0.0

    def observe(self, candle: Candle, *, learn: bool) -> bool:
        """Return whether ``candle`` is a jump; when ``learn``, add its return to the history.

        ``candle`` must be possible (`check_candle` passed); one that is not newer than the
        last learned candle is never a jump and teaches nothing.
        """
        prices = _log_prices(candle)
        last_ms = self._last_open_ms
        if prices is None or (last_ms is not None and candle.open_time_ms <= last_ms):
            return False  # beyond float range, or a late duplicate: no return to measure
        log_close, log_range = prices
        is_jump = False
        if last_ms is not None:
            steps = max(1, (candle.open_time_ms - last_ms) // candle.interval.ms)
            log_return = (log_close - self._last_log_close) / math.sqrt(steps)
            is_jump = self._is_beyond(log_return, log_range)
            if learn:
                self._returns.push(log_return)
        if learn:
            self._last_open_ms, self._last_log_close = candle.open_time_ms, log_close
        return is_jump

    def state(self) -> dict[str, object]:
        """Return what the detector learned, exactly (``restore`` takes it back)."""
        return {"returns": self._returns.state(), "last_open_ms": self._last_open_ms,
                "last_log_close": self._last_log_close}  # fmt: skip

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``state()``; raise ``ValueError`` if it does not fit this detector."""
        self._returns.restore(state["returns"])
        last = state["last_open_ms"]
        self._last_open_ms = None if last is None else int(last)
        self._last_log_close = float(state["last_log_close"])

    def _is_beyond(self, log_return: float, log_range: float) -> bool:
        if len(self._returns) < self._min_history:
            return False
        limit = self._multiple * max(self._returns.rms(), _SIGMA_FLOOR)
        return abs(log_return) > limit or log_range > limit
