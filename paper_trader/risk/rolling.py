"""A rolling window with a cheap median, for the volatility breaker."""

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable


class RollingMedian:
    """The last ``size`` values in arrival order, also kept sorted for an O(size) median."""

    __slots__ = ("_size", "_sorted", "_values")

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        self._size = max(size, 0)
        self._values: deque[float] = deque()
        self._sorted: list[float] = []
        for value in values:
            self.push(value)

    def __len__(self) -> int:
        return len(self._values)

    def push(self, value: float) -> None:
        """Append ``value``, dropping the oldest value once the window is full."""
        if self._size == 0:
            return
        if len(self._values) == self._size:
            del self._sorted[bisect_left(self._sorted, self._values.popleft())]
        self._values.append(value)
        insort(self._sorted, value)

    def median(self) -> float:
        """Return the median (the mean of the two middle values for an even count)."""
        mid = len(self._sorted) // 2
        if len(self._sorted) % 2:
            return self._sorted[mid]
        return (self._sorted[mid - 1] + self._sorted[mid]) / 2

    def values(self) -> list[float]:
        """Return the values, oldest first."""
        return list(self._values)
