"""Rolling returns per symbol and their correlation, for the entry correlation limit.

Each symbol keeps its last ``window`` simple returns, each keyed by the candle time of the
close that ended it, in one row of two numpy rings (times and returns) shared by all symbols.
Two symbols are compared only over the candle times both have, so a symbol that missed candles
(a gap, a late start) is compared on what the two share. The engine feeds candles in order; a
close at or before the last one seen for its symbol is a duplicate or stale and is ignored, as
is a close that is not positive.

``correlation`` compares two symbols as it always did (their oldest-first copies, cached until
the next close). ``correlations`` compares one symbol with many in one vectorised step: the
other symbols' ring rows are matched against the symbol's candle times (``np.searchsorted``)
and every pair's Pearson correlation over its common times is taken at once. It is the
pairwise definition, to rounding: the sums run over each ring row (zeros where a time is not
shared) rather than over the compacted common times, which can move a result by an ulp or so.
"""

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import numpy.typing as npt

MIN_COMMON_RETURNS = 3
_NO_TIME = np.iinfo(np.int64).min  # an empty ring slot: never a candle time
_INITIAL_ROWS = 16

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class ReturnHistory:
    """Rolling simple returns per symbol, keyed by candle time, for the correlation limit."""

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"the correlation window must be at least 1, not {window}")
        self._window = window
        self._min_common = max(MIN_COMMON_RETURNS, window // 2)
        self._last_close: dict[str, tuple[int, Decimal]] = {}
        self._rows: dict[str, int] = {}  # symbol -> its row in the rings
        self._free: list[int] = []
        self._times = np.full((_INITIAL_ROWS, window), _NO_TIME, dtype=np.int64)
        self._values = np.zeros((_INITIAL_ROWS, window))
        self._count = [0] * _INITIAL_ROWS  # returns held per row, up to window
        self._next = [0] * _INITIAL_ROWS  # the slot the next one takes
        # Oldest-first copies of a row, made on first use after the symbol's last close.
        self._series: dict[str, tuple[npt.NDArray[np.int64], FloatArray]] = {}

    def on_close(self, symbol: str, candle_time_ms: int, close: Decimal) -> None:
        """Record a candle's close: its return against the previous close seen for ``symbol``."""
        if close <= 0:
            return
        previous = self._last_close.get(symbol)
        if previous is not None:
            previous_time, previous_close = previous
            if candle_time_ms <= previous_time:
                return
            row = self._row(symbol)
            slot = self._next[row]
            self._times[row, slot] = candle_time_ms
            self._values[row, slot] = float(close / previous_close - 1)
            self._next[row] = (slot + 1) % self._window
            self._count[row] = min(self._window, self._count[row] + 1)
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

    def correlations(self, symbol: str, others: Sequence[str]) -> list[float | None]:
        """Return ``correlation(symbol, other)`` for each of ``others``, in one step."""
        out: list[float | None] = [None] * len(others)
        series = self._arrays(symbol)
        known = [(k, self._rows[o]) for k, o in enumerate(others) if o in self._rows]
        if series is None or not known:
            return out
        times, returns = series
        count = len(times)
        rows = np.array([r for _, r in known], dtype=np.int64)
        their_times = self._times[rows]
        at = np.minimum(np.searchsorted(times, their_times), count - 1)
        common = times[at] == their_times  # an empty slot (_NO_TIME) is never common
        values = _pearson(returns[at], self._values[rows], common, self._min_common)
        for (k, _), value in zip(known, values, strict=True):
            out[k] = value
        return out

    def forget(self, symbol: str) -> None:
        """Drop everything known about ``symbol`` (it left the watch list)."""
        self._last_close.pop(symbol, None)
        self._series.pop(symbol, None)
        row = self._rows.pop(symbol, None)
        if row is not None:
            self._times[row] = _NO_TIME
            self._count[row] = self._next[row] = 0
            self._free.append(row)

    def _arrays(self, symbol: str) -> tuple[npt.NDArray[np.int64], FloatArray] | None:
        """Return the candle times and returns of ``symbol``, oldest first; None if none."""
        series = self._series.get(symbol)
        if series is None:
            row = self._rows.get(symbol)
            if row is None or self._count[row] == 0:
                return None
            count = self._count[row]
            start = self._next[row] if count == self._window else 0
            order = (start + np.arange(count)) % self._window
            series = self._series[symbol] = (self._times[row, order], self._values[row, order])
        return series

    def _row(self, symbol: str) -> int:
        """Return the ring row of ``symbol``, taking a free one (growing the rings) if new."""
        row = self._rows.get(symbol)
        if row is not None:
            return row
        if not self._free:
            size = len(self._count)
            self._times = np.concatenate([self._times, np.full_like(self._times, _NO_TIME)])
            self._values = np.concatenate([self._values, np.zeros_like(self._values)])
            self._count += [0] * size
            self._next += [0] * size
            self._free.extend(range(2 * size - 1, size - 1, -1))
        row = self._rows[symbol] = self._free.pop()
        return row


def _pearson(x: FloatArray, y: FloatArray, common: BoolArray, least: int) -> list[float | None]:
    """Return each row's Pearson correlation of ``x`` and ``y`` over its ``common`` columns,
    or None below ``least`` common columns or where either side is constant there."""
    n = common.sum(axis=1)
    # Exact equality, not a tolerance: deviations from a float mean of identical values
    # are rounding noise, and their "correlation" would be any number in [-1, 1].
    varies = ~(_constant(x, common) | _constant(y, common))
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = np.where(common, x - (np.where(common, x, 0.0).sum(axis=1) / n)[:, None], 0.0)
        dy = np.where(common, y - (np.where(common, y, 0.0).sum(axis=1) / n)[:, None], 0.0)
        value = (dx * dy).sum(axis=1) / np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    # NaN (0/0, from deviations that underflow) becomes -1.0, as min(1, max(-1, nan)) did.
    clipped = np.clip(np.nan_to_num(value, nan=-1.0), -1.0, 1.0).tolist()
    ok = ((n >= least) & varies).tolist()
    return [v if good else None for v, good in zip(clipped, ok, strict=True)]


def _constant(values: FloatArray, mask: BoolArray) -> BoolArray:
    """Return whether each row's ``mask`` columns hold one value only (exactly equal)."""
    highest = np.where(mask, values, -np.inf).max(axis=1)
    return np.asarray(highest == np.where(mask, values, np.inf).min(axis=1))
