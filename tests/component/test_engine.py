"""Tests for the decision engine: ordered hand-off to the store, drops, batching, heartbeat."""

import asyncio

import pytest
import structlog
from conftest import eventually
from fakes.candles import candle
from fakes.engine_rig import make_rig, running

from paper_trader.domain import HealthStatus, Interval
from paper_trader.engine import EngineStats
from paper_trader.runtime.latency import LatencyHistogram
from paper_trader.runtime.service import Readiness


async def test_candles_reach_the_store_in_order() -> None:
    """Candles put on the channel are handed to the store in the order they were sent."""
    rig = make_rig()
    sent = [candle(k) for k in range(1, 6)]

    async with running(rig):
        for c in sent:
            await rig.channel.put(c)
        await eventually(lambda: len(rig.store.candles) == 5)

    assert rig.store.candles == sent
    assert rig.engine.stats() == EngineStats(
        candles_processed=5,
        candles_dropped=0,
        candles_rejected=0,
        candles_failed=0,
        candles_late=0,
        last_open_time_ms=5 * 60_000,
    )


async def test_out_of_order_or_duplicate_candles_are_dropped_and_counted() -> None:
    """A candle at or before the last one of its series is dropped; other series are unaffected."""
    rig = make_rig()
    for c in (
        candle(1),
        candle(2),
        candle(2),  # duplicate
        candle(1),  # goes back in time
        candle(1, "ETHUSDT"),  # another symbol: its own series
        candle(1, interval=Interval.M5),  # another interval: its own series
        candle(3),
    ):
        await rig.channel.put(c)
    rig.channel.close()

    with structlog.testing.capture_logs() as logs:
        await rig.engine.run(Readiness())

    assert rig.store.candles == [
        candle(1),
        candle(2),
        candle(1, "ETHUSDT"),
        candle(1, interval=Interval.M5),
        candle(3),
    ]
    stats = rig.engine.stats()
    assert stats.candles_dropped == 2
    assert stats.candles_processed == 5
    dropped = [e for e in logs if e["event"] == "candle_out_of_order_dropped"]
    assert [(e["open_time_ms"], e["last_open_time_ms"]) for e in dropped] == [
        (120_000, 120_000),
        (60_000, 120_000),
    ]


async def test_closing_the_channel_ends_run_after_draining_every_candle() -> None:
    """run() returns normally once the channel is closed and everything queued is stored."""
    rig = make_rig()
    for k in range(1, 4):
        await rig.channel.put(candle(k))
    rig.channel.close()

    with structlog.testing.capture_logs() as logs:
        async with asyncio.timeout(5):
            await rig.engine.run(Readiness())

    assert rig.store.candles == [candle(1), candle(2), candle(3)]
    ended = [e for e in logs if e["event"] == "candle_stream_ended"]
    assert len(ended) == 1
    assert ended[0]["candles_processed"] == 3


async def test_queued_candles_are_stored_in_batches_of_at_most_batch_size() -> None:
    """Candles already waiting are handed over together, batch_size at a time."""
    rig = make_rig(batch_size=2)
    for k in range(1, 6):
        await rig.channel.put(candle(k))
    rig.channel.close()

    await rig.engine.run(Readiness())

    assert [len(batch) for batch in rig.store.batches] == [2, 2, 1]
    assert rig.store.candles == [candle(k) for k in range(1, 6)]


async def test_batch_with_only_dropped_candles_is_not_stored() -> None:
    """The store is not called with an empty batch."""
    rig = make_rig()
    await rig.channel.put(candle(5))

    async with running(rig):
        await eventually(lambda: len(rig.store.batches) == 1)
        await rig.channel.put(candle(4))
        await eventually(lambda: rig.engine.stats().candles_dropped == 1)

    assert rig.store.batches == [(candle(5),)]


async def test_heartbeat_beats_once_per_batch_handled() -> None:
    """Progress on candles beats the heartbeat, even without idle wake-ups."""
    rig = make_rig(batch_size=2)
    for k in range(1, 6):
        await rig.channel.put(candle(k))
    rig.channel.close()

    await rig.engine.run(Readiness())

    assert rig.heartbeat.beats == 3


async def test_heartbeat_beats_while_idle() -> None:
    """With no candles arriving the engine still beats every idle_beat_s."""
    rig = make_rig(idle_beat_s=0.02)

    async with running(rig):
        await eventually(lambda: rig.heartbeat.beats >= 3)

    assert rig.store.batches == []


async def test_engine_declares_itself_ready_at_once() -> None:
    """The engine is ready as soon as it runs, before any candle arrives."""
    rig = make_rig()
    ready = Readiness()
    task = asyncio.create_task(rig.engine.run(ready))

    await eventually(ready.is_set)

    rig.channel.close()
    await task


async def test_cancelled_engine_leaves_unread_candles_in_the_channel() -> None:
    """Cancelling the engine while idle loses nothing that was not yet taken."""
    rig = make_rig()
    task = asyncio.create_task(rig.engine.run(Readiness()))
    await asyncio.sleep(0)  # let the engine wait on the empty channel

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await rig.channel.put(candle(1))

    assert rig.channel.drain(10) == [candle(1)]


def test_health_is_ok_and_counts_candles() -> None:
    """health() reports OK with the number of candles handled."""
    rig = make_rig()

    health = rig.engine.health()

    assert health.component == "decision_engine"
    assert health.status is HealthStatus.OK
    assert health.detail == "0 candles"


async def test_decision_latency_is_recorded_once_per_decided_batch() -> None:
    """Each batch that reached a decision is one observation, timed from its arrival; a batch
    of drops alone is none."""
    ticks = iter(range(1000))
    latency = LatencyHistogram(lambda: next(ticks) / 64)  # each reading 1/64 s later (exact)
    rig = make_rig(batch_size=1, latency=latency)
    for k in range(1, 6):
        await rig.channel.put(candle(k))
    await rig.channel.put(candle(3))  # out of order: dropped, nothing decided
    rig.channel.close()

    await rig.engine.run(Readiness())

    snap = latency.snapshot()
    assert snap.count == 5  # the sixth batch, a drop alone, decided nothing
    assert snap.sum_s == 5 / 64
    assert snap.cumulative[snap.bounds.index(0.01)] == 0
    assert snap.cumulative[snap.bounds.index(0.025)] == 5
