"""Release candles of several series in time order, one instant at a time.

The portfolio is shared by every symbol, so the order in which instants of different symbols
reach the trading step changes the ledger. Live, a warm-up or a backfill delivers one series
after another; in replay the files are merged by time. The aligner makes both the same: it
holds what it is given until every series has reached that open time (the watermark), then
releases it sorted by (open time, symbol).

A series that has delivered nothing for ``stall_s`` seconds (wall clock: a halted market, a
feed that fell silent) stops holding the others back until it delivers again; its late
candles are then released on their own, still in their series' order. Past ``max_items``
held, the oldest instant is released (and counted) whatever the watermark says: memory stays
bounded.
"""

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Series:
    last_open_ms: int | None
    last_seen_s: float


class InstantAligner(Generic[T]):
    """Hold items by (series, open time) and release them in time order."""

    def __init__(
        self,
        series: Iterable[Hashable],
        *,
        monotonic: Callable[[], float],
        stall_s: float,
        max_items: int = 200_000,
    ) -> None:
        self._monotonic = monotonic
        self._stall_s = stall_s
        self._max_items = max_items
        now = monotonic()
        self._series: dict[Hashable, _Series] = {key: _Series(None, now) for key in series}
        self._held: list[tuple[int, str, T]] = []
        self.forced = 0

    def __len__(self) -> int:
        return len(self._held)

    def seen(self, key: Hashable, open_time_ms: int) -> None:
        """Note that ``key`` has reached ``open_time_ms`` (also for a candle that was dropped)."""
        state = self._series.get(key)
        if state is None:
            self._series[key] = _Series(open_time_ms, self._monotonic())
            return
        if state.last_open_ms is None or open_time_ms > state.last_open_ms:
            state.last_open_ms = open_time_ms
        state.last_seen_s = self._monotonic()

    def push(self, key: Hashable, open_time_ms: int, symbol: str, item: T) -> None:
        """Hold ``item`` of series ``key`` at ``open_time_ms`` until its instant is complete."""
        self.seen(key, open_time_ms)
        self._held.append((open_time_ms, symbol, item))

    def release(self) -> list[T]:
        """Return the held items at or before the watermark, sorted by (time, symbol)."""
        if not self._held:
            return []
        watermark = self._watermark()
        if len(self._held) > self._max_items:
            oldest = min(time for time, _, _ in self._held)
            watermark = oldest if watermark is None else max(watermark, oldest)
            self.forced += 1
        if watermark is None:
            return []
        ready = [h for h in self._held if h[0] <= watermark]
        if not ready:
            return []
        self._held = [h for h in self._held if h[0] > watermark]
        ready.sort(key=lambda h: (h[0], h[1]))
        return [item for _, _, item in ready]

    def flush(self) -> list[T]:
        """Return everything held, in time order (the stream has ended)."""
        held, self._held = self._held, []
        held.sort(key=lambda h: (h[0], h[1]))
        return [item for _, _, item in held]

    def _watermark(self) -> int | None:
        """Return the earliest last open time over the series that are not stalled.

        A series never seen holds everything back until it stalls; when every series has
        stalled, everything seen is released.
        """
        now = self._monotonic()
        active = [s for s in self._series.values() if now - s.last_seen_s < self._stall_s]
        if not active:
            known = [s.last_open_ms for s in self._series.values() if s.last_open_ms is not None]
            return max(known) if known else None
        lasts = [s.last_open_ms for s in active]
        if any(t is None for t in lasts):
            return None
        return min(t for t in lasts if t is not None)
