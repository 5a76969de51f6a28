"""Release candles of several series in time order, one complete instant at a time.

The portfolio is shared by every symbol, so the order in which instants of different symbols
reach the trading step, and which candles make up an instant, change the ledger. Live, a
warm-up or a backfill delivers one series after another; in replay the files are merged by
time. The aligner makes both the same: it holds what it is given until every series is
*complete* through that open time, then releases it sorted by (open time, symbol).

A series is complete through the open time of its last candle (each series arrives in order),
or through a ``mark``: its source's word that nothing at or before that time is still to come
(the feed's warm-up start, a candle the venue does not have, a replay file's merge order).
Nothing here reads a clock to decide what is complete, so the same candles and marks give the
same instants whenever they arrive.

Two bounds keep a broken source from holding the others forever, and both are reported: when
the oldest held instant has waited ``stall_s`` seconds of wall time, each series holding it
back is *stalled* (``on_stall``) and no longer waited for until it delivers again; past
``max_items`` held, the oldest instant is released whatever the marks say. A candle that
arrives for an instant already released is *late* (``is_decided``): it is released on its own,
and its instant can no longer be decided as a replay of the same candles would decide it.
"""

import heapq
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Stall:
    """A series the aligner stopped waiting for: why, and where it and the others stood."""

    key: Hashable
    through_ms: int | None  # the series is complete through this open time (None: nothing yet)
    waiting_ms: int  # the oldest held instant, which the series was holding back
    reason: str


@dataclass(slots=True)
class _Series:
    through_ms: int | None = None
    stalled: bool = False


class InstantAligner(Generic[T]):
    """Hold items by (series, open time) and release complete instants in time order."""

    def __init__(
        self,
        series: Iterable[Hashable],
        *,
        monotonic: Callable[[], float],
        stall_s: float,
        max_items: int = 200_000,
        on_stall: Callable[[Stall], None] | None = None,
    ) -> None:
        self._monotonic = monotonic
        self._stall_s = stall_s
        self._max_items = max_items
        self._on_stall = on_stall
        self._series: dict[Hashable, _Series] = {key: _Series() for key in series}
        self._held: dict[int, list[tuple[str, T]]] = {}
        self._times: list[int] = []  # heap of the held instants' open times
        self._held_since: dict[int, float] = {}  # instant -> monotonic time of its first item
        self._count = 0
        self._released_through: int | None = None
        self.forced = 0
        self.stalls = 0

    def __len__(self) -> int:
        return self._count

    def progress(self) -> dict[str, object]:
        """Return where each series and the released instants stand (for logs)."""
        return {
            "released_through_ms": self._released_through,
            "series": {str(key): (s.through_ms, s.stalled) for key, s in self._series.items()},
        }

    def is_decided(self, open_time_ms: int) -> bool:
        """Return whether the instant at ``open_time_ms`` was already released (a late item)."""
        released = self._released_through
        return released is not None and open_time_ms <= released

    def mark(self, key: Hashable | None, through_ms: int) -> None:
        """Record that series ``key`` (None: every series) is complete through ``through_ms``."""
        targets = self._series.values() if key is None else [self._state(key)]
        for state in targets:
            if state.through_ms is None or through_ms > state.through_ms:
                state.through_ms = through_ms
                state.stalled = False

    def push(self, key: Hashable, open_time_ms: int, symbol: str, item: T) -> None:
        """Hold ``item`` of series ``key`` at ``open_time_ms`` until its instant is complete."""
        self.mark(key, open_time_ms)
        group = self._held.get(open_time_ms)
        if group is None:
            group = self._held[open_time_ms] = []
            heapq.heappush(self._times, open_time_ms)
            self._held_since[open_time_ms] = self._monotonic()
        group.append((symbol, item))
        self._count += 1

    def release(self) -> list[T]:
        """Return the held items of every complete instant, sorted by (time, symbol)."""
        if not self._times:
            return []
        watermark = self._watermark()
        if self._count > self._max_items:
            oldest = self._times[0]
            watermark = oldest if watermark is None else max(watermark, oldest)
            self.forced += 1
            self._report_blockers(oldest, f"more than {self._max_items} candles held")
        if watermark is None:
            return []
        released = self._pop_through(watermark)
        if self._released_through is None or watermark > self._released_through:
            self._released_through = watermark
        return released

    def flush(self) -> list[T]:
        """Return everything held, in time order (the stream has ended)."""
        return self._pop_through(max(self._times)) if self._times else []

    def _pop_through(self, watermark: int) -> list[T]:
        out: list[T] = []
        while self._times and self._times[0] <= watermark:
            time_ms = heapq.heappop(self._times)
            group = self._held.pop(time_ms)
            del self._held_since[time_ms]
            self._count -= len(group)
            group.sort(key=lambda entry: entry[0])
            out.extend(item for _, item in group)
        return out

    def _watermark(self) -> int | None:
        """Return the time through which every series not stalled is complete.

        None while a series that is not stalled has delivered nothing; when every series is
        stalled, everything held is released.
        """
        oldest = self._times[0]
        if self._monotonic() - self._held_since[oldest] > self._stall_s:
            waited = f"the candles of {oldest} waited more than {self._stall_s:g} s"
            self._report_blockers(oldest, waited)
        marks = [s.through_ms for s in self._series.values() if not s.stalled]
        if not marks:
            return max(self._times)
        if any(t is None for t in marks):
            return None
        return min(t for t in marks if t is not None)

    def _report_blockers(self, oldest: int, reason: str) -> None:
        """Stall every series that holds the instant ``oldest`` back; report each once."""
        for key, state in self._series.items():
            blocking = state.through_ms is None or state.through_ms < oldest
            if blocking and not state.stalled:
                state.stalled = True
                self.stalls += 1
                if self._on_stall is not None:
                    stall = Stall(
                        key=key, through_ms=state.through_ms, waiting_ms=oldest, reason=reason
                    )
                    self._on_stall(stall)

    def _state(self, key: Hashable) -> _Series:
        state = self._series.get(key)
        if state is None:
            state = self._series[key] = _Series()
        return state
