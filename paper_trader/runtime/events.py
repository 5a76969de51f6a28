"""Fan-out of events to their consumers (notifier outbox, status feed, …).

Publishing never waits: each subscriber has its own bounded drop-oldest channel, so a slow
consumer loses its oldest events (counted) and never slows the publisher.
"""

from collections.abc import Awaitable, Callable
from typing import Protocol

from paper_trader.domain import Event
from paper_trader.runtime.channel import ChannelClosed, DropOldestChannel
from paper_trader.runtime.service import Readiness


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
    """A service that hands every event from a subscription to ``record`` (e.g. the outbox)."""

    name = "event_recorder"

    def __init__(
        self, events: DropOldestChannel[Event], record: Callable[[Event], Awaitable[None]]
    ) -> None:
        self._events = events
        self._record = record

    async def run(self, ready: Readiness) -> None:
        """Record events until the subscription closes."""
        ready.set()
        while True:
            try:
                event = await self._events.get()
            except ChannelClosed:
                return
            await self._record(event)
