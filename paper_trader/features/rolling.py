"""Fixed-size rolling windows for the incremental engine: O(1) per value, exact at the edges.

Running sums drift by rounding, and a window that should sum to exactly zero (no volume in an
exchange halt) or have exactly zero spread (a flat market) would otherwise come out as 1e-17
and turn a defined 0/0 into noise. So each window re-sums exactly every n values, re-sums when
a large value leaving it would cancel most of the total, and tracks the run of identical
values so "all equal" and "all zero" are decided exactly, the way the batch reference does.
"""

import math

_CANCELLATION = 1e-6  # re-sum when the total falls below this share of the value that left


class Ring:
    """A ring of the last n values, how many were pushed, and the run of identical values."""

    __slots__ = ("buf", "count", "last", "n", "pos", "run")

    def __init__(self, n: int) -> None:
        self.n = n
        self.buf = [0.0] * n
        self.pos = 0
        self.count = 0
        self.last = math.nan
        self.run = 0


class Window(Ring):
    """The last n values with their running sum and the run of identical values."""

    __slots__ = ("since_resum", "total")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.total = 0.0
        self.since_resum = 0

    def push(self, x: float) -> None:
        """Add x, dropping the oldest value once the window is full."""
        buf = self.buf
        pos = self.pos
        old = buf[pos]
        buf[pos] = x
        pos += 1
        self.pos = 0 if pos == self.n else pos
        self.count += 1
        self.run = self.run + 1 if x == self.last else 1
        self.last = x
        total = self.total + x - old
        self.since_resum += 1
        if self.since_resum >= self.n or abs(total) < abs(old) * _CANCELLATION:
            total = sum(buf)
            self.since_resum = 0
        self.total = total

    def sum(self) -> float:
        """Return the sum of the window, exactly 0.0 when every value in it is 0."""
        if self.run >= self.n and self.last == 0.0:
            return 0.0
        return self.total

    def values(self) -> list[float]:
        """Return the window's values, oldest first (fewer than n while filling)."""
        if self.count < self.n:
            return self.buf[: self.count]
        return self.buf[self.pos :] + self.buf[: self.pos]


class Moments(Ring):
    """The last n values' mean and population variance, anchored to keep precision."""

    __slots__ = ("anchor", "s1", "s2", "since")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.anchor = 0.0
        self.s1 = 0.0
        self.s2 = 0.0
        self.since = 0

    def push(self, x: float) -> None:
        """Add x, dropping the oldest value once the window is full."""
        buf = self.buf
        pos = self.pos
        full = self.count >= self.n
        old = buf[pos]
        buf[pos] = x
        pos += 1
        self.pos = 0 if pos == self.n else pos
        self.count += 1
        self.run = self.run + 1 if x == self.last else 1
        self.last = x
        if self.count == 1:
            self.anchor = x
        k = self.anchor
        d = x - k
        s1 = self.s1 + d
        s2 = self.s2 + d * d
        if full:
            e = old - k
            s1 -= e
            s2 -= e * e
        self.since += 1
        if self.since >= self.n:
            self._reanchor(x)
        else:
            self.s1 = s1
            self.s2 = s2

    def _reanchor(self, anchor: float) -> None:
        values = self.buf if self.count >= self.n else self.buf[: self.count]
        self.anchor = anchor
        self.s1 = sum(v - anchor for v in values)
        self.s2 = sum((v - anchor) * (v - anchor) for v in values)
        self.since = 0

    def mean_var(self) -> tuple[float, float]:
        """Return the mean and population variance of a full window (exact when flat)."""
        if self.run >= self.n:
            return self.last, 0.0
        n = self.n
        m = self.s1 / n
        var = self.s2 / n - m * m
        return self.anchor + m, var if var > 0.0 else 0.0


class History(Ring):
    """The last ``SIZE`` closes of a series, shared by every indicator that looks back."""

    SIZE = 256  # a power of two above the longest look-back of the spec
    MASK = SIZE - 1
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(self.SIZE)

    def push(self, x: float) -> None:
        """Record the next close."""
        self.buf[self.pos] = x
        self.pos = (self.pos + 1) & self.MASK
        self.count += 1
        self.run = self.run + 1 if x == self.last else 1
        self.last = x

    def last_n(self, n: int) -> list[float]:
        """Return the last n closes, oldest first (n <= SIZE and n <= count)."""
        start = (self.pos - n) & self.MASK
        if start < self.pos:
            return self.buf[start : self.pos]
        return self.buf[start:] + self.buf[: self.pos]
