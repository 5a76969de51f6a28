"""Tests for the bounded channels and their overflow policies."""

import asyncio

import pytest
from conftest import eventually

from paper_trader.runtime.channel import BlockingChannel, ChannelClosed, DropOldestChannel


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_refused(capacity: int) -> None:
    """A channel must be able to hold at least one item."""
    with pytest.raises(ValueError, match="capacity"):
        BlockingChannel[int](capacity)
    with pytest.raises(ValueError, match="capacity"):
        DropOldestChannel[int](capacity)


async def test_blocking_channel_delivers_items_in_fifo_order() -> None:
    """Items come out in the order they were put in."""
    channel = BlockingChannel[int](10)
    for item in range(5):
        await channel.put(item)

    received = [await channel.get() for _ in range(5)]

    assert received == [0, 1, 2, 3, 4]
    assert len(channel) == 0


async def test_put_blocks_when_full_until_a_get_makes_room() -> None:
    """A put on a full channel waits, reports the block to on_full, and completes after a get."""
    blocked: list[int] = []
    channel = BlockingChannel[str](1, on_full=blocked.append)
    await channel.put("first")

    producer = asyncio.create_task(channel.put("second"))
    await eventually(lambda: blocked == [1])
    assert not producer.done()
    assert channel.blocked_puts == 1

    assert await channel.get() == "first"
    await producer
    assert await channel.get() == "second"


async def test_on_full_receives_the_running_count_of_blocked_puts() -> None:
    """Each producer that has to wait is counted, and on_full sees 1, 2, …"""
    blocked: list[int] = []
    channel = BlockingChannel[int](1, on_full=blocked.append)
    await channel.put(0)

    producers = [asyncio.create_task(channel.put(n)) for n in (1, 2)]
    await eventually(lambda: blocked == [1, 2])

    received = [await channel.get() for _ in range(3)]
    await asyncio.gather(*producers)
    assert received == [0, 1, 2]
    assert channel.blocked_puts == 2


async def test_put_that_never_blocks_does_not_call_on_full() -> None:
    """on_full is only for producers that actually had to wait."""
    blocked: list[int] = []
    channel = BlockingChannel[int](2, on_full=blocked.append)

    await channel.put(1)
    await channel.put(2)

    assert blocked == []
    assert channel.blocked_puts == 0


async def test_closed_channel_lets_consumers_drain_then_raises_channel_closed() -> None:
    """After close, get returns the remaining items and then raises ChannelClosed."""
    channel = BlockingChannel[int](5)
    await channel.put(1)
    await channel.put(2)

    channel.close()

    assert channel.closed
    assert await channel.get() == 1
    assert await channel.get() == 2
    with pytest.raises(ChannelClosed):
        await channel.get()


async def test_close_wakes_a_consumer_waiting_on_an_empty_channel() -> None:
    """A get blocked on an empty channel raises ChannelClosed when the channel closes."""
    channel = BlockingChannel[int](5)
    consumer = asyncio.create_task(channel.get())
    await asyncio.sleep(0)  # let the consumer block on the empty channel

    channel.close()

    with pytest.raises(ChannelClosed):
        await consumer


async def test_close_fails_a_producer_blocked_on_a_full_channel() -> None:
    """A put waiting for room raises ChannelClosed on close; the queued item is still drained."""
    blocked: list[int] = []
    channel = BlockingChannel[int](1, on_full=blocked.append)
    await channel.put(1)
    producer = asyncio.create_task(channel.put(2))
    await eventually(lambda: blocked == [1])

    channel.close()

    with pytest.raises(ChannelClosed):
        await producer
    assert await channel.get() == 1
    with pytest.raises(ChannelClosed):
        await channel.get()


async def test_put_after_close_raises_channel_closed() -> None:
    """Neither kind of channel accepts items once closed."""
    blocking = BlockingChannel[int](5)
    dropping = DropOldestChannel[int](5)
    blocking.close()
    dropping.close()

    with pytest.raises(ChannelClosed):
        await blocking.put(1)
    with pytest.raises(ChannelClosed):
        dropping.put_nowait(1)
    assert len(blocking) == 0
    assert len(dropping) == 0


def test_drop_oldest_channel_discards_the_oldest_item_and_counts_it() -> None:
    """When full, put_nowait drops the oldest item and increments dropped."""
    channel = DropOldestChannel[int](3)

    for item in range(5):
        channel.put_nowait(item)

    assert channel.dropped == 2
    assert channel.drain(10) == [2, 3, 4]


def test_put_after_close_on_a_full_drop_oldest_channel_keeps_the_queued_items() -> None:
    """A refused put must not discard an item the consumers are still due to drain."""
    channel = DropOldestChannel[int](2)
    channel.put_nowait(1)
    channel.put_nowait(2)
    channel.close()

    with pytest.raises(ChannelClosed):
        channel.put_nowait(3)

    assert channel.dropped == 0
    assert channel.drain(10) == [1, 2]


async def test_drop_oldest_channel_delivers_fifo_and_ends_with_channel_closed() -> None:
    """Items come out oldest first; after close and drain, get raises ChannelClosed."""
    channel = DropOldestChannel[str](4)
    channel.put_nowait("a")
    channel.put_nowait("b")
    channel.close()

    assert [await channel.get(), await channel.get()] == ["a", "b"]
    with pytest.raises(ChannelClosed):
        await channel.get()


async def test_drain_returns_at_most_limit_queued_items_without_waiting() -> None:
    """drain(limit) takes up to limit items, oldest first, and never waits."""
    channel = BlockingChannel[int](10)
    for item in range(5):
        await channel.put(item)

    assert channel.drain(3) == [0, 1, 2]
    assert channel.drain(0) == []
    assert channel.drain(10) == [3, 4]
    assert channel.drain(10) == []


async def test_drain_makes_room_for_a_blocked_producer() -> None:
    """Draining a full blocking channel lets a waiting put complete."""
    blocked: list[int] = []
    channel = BlockingChannel[int](2, on_full=blocked.append)
    await channel.put(1)
    await channel.put(2)
    producer = asyncio.create_task(channel.put(3))
    await eventually(lambda: blocked == [1])

    assert channel.drain(2) == [1, 2]
    await producer

    assert channel.drain(2) == [3]


def test_get_nowait_returns_the_oldest_item_or_none() -> None:
    """get_nowait never waits: the oldest item, or None when empty."""
    channel = DropOldestChannel[int](3)
    assert channel.get_nowait() is None

    channel.put_nowait(7)
    channel.put_nowait(8)

    assert channel.get_nowait() == 7
    assert len(channel) == 1


async def test_cancelled_get_loses_no_item() -> None:
    """A get cancelled while waiting leaves the next item for the following get."""
    channel = BlockingChannel[str](5)
    consumer = asyncio.create_task(channel.get())
    await asyncio.sleep(0)  # let the consumer block on the empty channel

    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await channel.put("candle")

    assert await channel.get() == "candle"


async def test_get_cancelled_after_being_woken_leaves_the_item_queued() -> None:
    """An item that arrives just before the waiting get is cancelled stays in the channel."""
    channel = BlockingChannel[str](5)
    consumer = asyncio.create_task(channel.get())
    await asyncio.sleep(0)  # let the consumer block on the empty channel

    await channel.put("candle")  # wakes the consumer …
    consumer.cancel()  # … which is cancelled before it gets to run

    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert len(channel) == 1
    assert await channel.get() == "candle"


async def test_get_timing_out_loses_no_item() -> None:
    """A get abandoned by asyncio.timeout leaves later items intact."""
    channel = BlockingChannel[int](5)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await channel.get()
    await channel.put(42)

    assert await channel.get() == 42


async def test_each_item_goes_to_exactly_one_of_several_consumers() -> None:
    """With several consumers waiting, every item is delivered once."""
    channel = BlockingChannel[int](3)
    consumers = [asyncio.create_task(channel.get()) for _ in range(3)]
    await asyncio.sleep(0)  # let the consumers block on the empty channel

    for item in (1, 2, 3):
        await channel.put(item)
    received = await asyncio.gather(*consumers)

    assert sorted(received) == [1, 2, 3]
    assert len(channel) == 0
