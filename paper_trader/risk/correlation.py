"""Rolling returns per symbol and their pairwise correlation, for the entry correlation limit.

Each symbol keeps its last ``window`` simple returns, each keyed by the candle time of the
close that ended it. Two symbols are compared only over the candle times both have, so a
symbol that missed candles (a gap, a late start) is compared on what the two share. The
engine feeds candles in order; a close at or before the last one seen for its symbol is a
duplicate or stale and is ignored, as is a close that is not positive.
"""

from collections import deque
from decimal import Decimal

import numpy as np
import numpy.typing as npt

MIN_COMMON_RETURNS = 3

_Series = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


class ReturnHistory:
    """Rolling simple returns per symbol, keyed by candle time, for the correlation limit."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"the correlation window must be at least 1, not {window}")
        self._window = window
        self._min_common = max(MIN_COMMON_RETURNS, window // 2)
        self._last_close: dict[str, tuple[int, Decimal]] = {}
        self._returns: dict[str, deque[tuple[int, float]]] = {}
        # Arrays built on first use after a symbol's last close, shared by every pair it is in.
        self._series: dict[str, _Series] = {}

    def on_close(self, symbol: str, candle_time_ms: int, close: Decimal) -> None:
        """Record a candle's close: its return against the previous close seen for ``symbol``."""
        if close <= 0:
            return
        previous = self._last_close.get(symbol)
        if previous is not None:
            previous_time, previous_close = previous
            if candle_time_ms <= previous_time:
                return
            returns = self._returns.get(symbol)
            if returns is None:
                returns = self._returns[symbol] = deque(maxlen=self._window)
            returns.append((candle_time_ms, float(close / previous_close - 1)))
            self._series.pop(symbol, None)
        self._last_close[symbol] = (candle_time_ms, close)

    def correlation(self, a: str, b: str) -> float | None:
        """Return the Pearson correlation of ``a`` and ``b`` over the candle times both have.

        Return None when they share fewer than ``max(3, window // 2)`` candle times, or when
        either side's returns are all equal (zero variance): there is nothing to measure.
        """
        series_a = self._arrays(a)
        series_b = self._arrays(b)
        if series_a is None or series_b is None:
            return None
        (times_a, x), (times_b, y) = series_a, series_b
        if not np.array_equal(times_a, times_b):
            _, in_a, in_b = np.intersect1d(
                times_a, times_b, assume_unique=True, return_indices=True
            )
            x, y = x[in_a], y[in_b]
        if len(x) < self._min_common:
            return None
        # Exact equality, not a tolerance: deviations from a float mean of identical values
        # are rounding noise, and their "correlation" would be any number in [-1, 1].
        if x.max() == x.min() or y.max() == y.min():
            return None
        x = x - x.mean()
        y = y - y.mean()
        value = float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))
        return min(1.0, max(-1.0, value))

    def forget(self, symbol: str) -> None:
        """Drop everything known about ``symbol`` (it left the watch list)."""
        self._last_close.pop(symbol, None)
        self._returns.pop(symbol, None)
        self._series.pop(symbol, None)

    def _arrays(self, symbol: str) -> _Series | None:
        """Return the candle times and returns of ``symbol`` as arrays, or None if it has none."""
        series = self._series.get(symbol)
        if series is None:
            returns = self._returns.get(symbol)
            if returns is None:
                return None
            times = np.fromiter((time for time, _ in returns), dtype=np.int64, count=len(returns))
            values = np.fromiter((r for _, r in returns), dtype=np.float64, count=len(returns))
            series = self._series[symbol] = (times, values)
        return series
