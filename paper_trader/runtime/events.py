"""Fan-out of events to their consumers (notifier outbox, status feed, …).

Publishing never waits: each subscriber has its own bounded drop-oldest channel, so a slow
consumer loses its oldest events (counted) and never slows the publisher. The recorder says
so: a log line and its health.
"""

from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from paper_trader.domain import ComponentHealth, Event, EventKind, HealthStatus
from paper_trader.domain.notifications import LEDGER_KINDS
from paper_trader.runtime.channel import ChannelClosed, DropOldestChannel
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

_log = get_logger("event_recorder")
_DEGRADED_FILL = 0.8


class EventSink(Protocol):
    """Where components report events; ``publish`` returns at once."""

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every consumer without waiting."""
        ...


class EventBus:
    """An ``EventSink`` that copies each event into every subscriber's channel."""

    __slots__ = ("_subscribers",)

    def __init__(self) -> None:
        self._subscribers: list[DropOldestChannel[Event]] = []

    def subscribe(self, capacity: int = 1000) -> DropOldestChannel[Event]:
        """Return a new channel that receives every event published from now on."""
        channel: DropOldestChannel[Event] = DropOldestChannel(capacity)
        self._subscribers.append(channel)
        return channel

    def publish(self, event: Event) -> None:
        """Copy ``event`` into each open subscriber channel."""
        for channel in self._subscribers:
            if not channel.closed:
                channel.put_nowait(event)

    def close(self) -> None:
        """Close every subscriber channel; consumers drain what is left."""
        for channel in self._subscribers:
            channel.close()


class EventRecorder:
    """A service that hands every event from a subscription to ``record`` (e.g. the outbox).

    Events of the ``skip`` kinds are left out: by default the trading stage's
    (``LEDGER_KINDS``), which it writes to the outbox in its ledger transaction itself. The
    subscription drops its oldest events when ``record`` falls behind: each drop is counted
    in ``dropped``, logged (``events_dropped``, at 1, 2, 4, 8, … drops) and reported by
    ``health``.
    """

    name = "event_recorder"

    def __init__(
        self,
        events: DropOldestChannel[Event],
        record: Callable[[Event], Awaitable[None]],
        *,
        skip: Collection[EventKind] = LEDGER_KINDS,
    ) -> None:
        self._events = events
        self._record = record
        self._skip = frozenset(skip)
        self._logged_drops = 0
        self._observers: list[Callable[[Event], None]] = []
        self.recorded = 0

    def observe(self, observer: Callable[[Event], None]) -> None:
        """Call ``observer`` with each event once recorded (the status feed; durable before
        visible); it must return at once and not raise."""
        self._observers.append(observer)

    @property
    def dropped(self) -> int:
        """Return how many events the subscription dropped before they were recorded."""
        return self._events.dropped

    async def run(self, ready: Readiness) -> None:
        """Record events until the subscription closes."""
        ready.set()
        while True:
            try:
                event = await self._events.get()
            except ChannelClosed:
                return
            self._say_drops()
            if event.kind in self._skip:
                continue
            await self._record(event)
            self.recorded += 1
            for observer in self._observers:
                observer(event)

    def health(self) -> ComponentHealth:
        """Return DEGRADED while the queue is over 80 % full; the drops so far in the detail."""
        queued, capacity = len(self._events), self._events.capacity
        status = HealthStatus.DEGRADED if queued > _DEGRADED_FILL * capacity else HealthStatus.OK
        detail = f"{queued}/{capacity} queued, {self.dropped} dropped"
        return ComponentHealth(component=self.name, status=status, detail=detail)

    def _say_drops(self) -> None:
        dropped = self._events.dropped
        if dropped > self._logged_drops and dropped >= 2 * self._logged_drops:
            _log.warning(
                "events_dropped",
                dropped=dropped,
                capacity=self._events.capacity,
                detail="the outbox fell behind; the oldest queued events were not recorded",
            )
            self._logged_drops = dropped
