"""Bounded channels between tasks, each with a stated overflow policy.

Every queue in the daemon is one of these. ``BlockingChannel`` makes the producer wait when
full and reports each time that happens (for persistence: losing a write is never acceptable);
``DropOldestChannel`` discards the oldest item and counts it (for status clients and other
observers that must never slow the producer). Closing a channel lets consumers drain what is
left and then see ``ChannelClosed``.
"""

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ChannelClosed(Exception):
    """Raised by ``get`` on a closed, drained channel and by ``put`` on a closed channel."""


class _Channel(Generic[T]):
    __slots__ = ("_capacity", "_closed", "_items", "_not_empty", "_not_full")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a channel needs a capacity of at least 1")
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._closed = False
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()

    @property
    def capacity(self) -> int:
        """Return the maximum number of items held."""
        return self._capacity

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """Return whether ``close`` was called."""
        return self._closed

    def close(self) -> None:
        """Refuse further puts; consumers drain the remaining items, then get ``ChannelClosed``."""
        self._closed = True
        self._not_empty.set()
        self._not_full.set()

    async def get(self) -> T:
        """Wait for and return the oldest item; raise ``ChannelClosed`` once closed and empty."""
        while not self._items:
            if self._closed:
                raise ChannelClosed
            self._not_empty.clear()
            await self._not_empty.wait()
        return self._take()

    def get_nowait(self) -> T | None:
        """Return the oldest item, or ``None`` if there is none right now."""
        return self._take() if self._items else None

    def drain(self, limit: int) -> list[T]:
        """Return up to ``limit`` items that are already queued, oldest first, without waiting."""
        count = min(limit, len(self._items))
        return [self._take() for _ in range(count)]

    def _take(self) -> T:
        item = self._items.popleft()
        self._not_full.set()
        return item

    def _append(self, item: T) -> None:
        if self._closed:
            raise ChannelClosed
        self._items.append(item)
        self._not_empty.set()


class BlockingChannel(_Channel[T]):
    """Overflow policy: the producer waits, and ``on_full`` is called each time it has to."""

    __slots__ = ("_on_full", "blocked_puts")

    def __init__(self, capacity: int, *, on_full: Callable[[int], None] | None = None) -> None:
        super().__init__(capacity)
        self._on_full = on_full
        self.blocked_puts = 0

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the channel is full."""
        if len(self._items) >= self._capacity and not self._closed:
            self.blocked_puts += 1
            if self._on_full is not None:
                self._on_full(self.blocked_puts)
            while len(self._items) >= self._capacity and not self._closed:
                self._not_full.clear()
                await self._not_full.wait()
        self._append(item)


class DropOldestChannel(_Channel[T]):
    """Overflow policy: the oldest item is discarded and counted in ``dropped``."""

    __slots__ = ("dropped",)

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.dropped = 0

    def put_nowait(self, item: T) -> None:
        """Append ``item`` without waiting, discarding the oldest item if full."""
        if self._closed:
            raise ChannelClosed
        if len(self._items) >= self._capacity:
            self._items.popleft()
            self.dropped += 1
        self._append(item)
