"""A decision engine wired to a real channel, a recording store, a heartbeat and an event bus."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from paper_trader.clock import SystemClock
from paper_trader.domain import Candle, Event, JudgedCandles
from paper_trader.engine import DecisionEngine
from paper_trader.market.quality import QualityConfig, QualityMonitor
from paper_trader.runtime.channel import BlockingChannel, DropOldestChannel
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.latency import LatencyHistogram
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.runtime.service import Readiness


@dataclass
class RecordingStore:
    """A candle store that records every batch it is handed."""

    batches: list[tuple[Candle, ...]] = field(default_factory=list)

    async def __call__(self, judged: JudgedCandles) -> None:
        if judged.candles:
            self.batches.append(judged.candles)

    @property
    def candles(self) -> list[Candle]:
        """Return every stored candle, in the order stored."""
        return [c for batch in self.batches for c in batch]


@dataclass
class Rig:
    """The engine and everything it talks to."""

    engine: DecisionEngine
    channel: BlockingChannel[Candle]
    store: RecordingStore
    heartbeat: Heartbeat
    events: DropOldestChannel[Event]


def make_rig(
    *,
    idle_beat_s: float = 60.0,
    batch_size: int = 512,
    quality: QualityConfig | None = None,
    venue_now: Callable[[], int] | None = None,
    latency: LatencyHistogram | None = None,
) -> Rig:
    """Build the engine; the default idle beat is long enough never to fire in a test."""
    channel = BlockingChannel[Candle](64)
    store = RecordingStore()
    heartbeat = Heartbeat(SystemClock())
    bus = EventBus()
    events = bus.subscribe()
    engine = DecisionEngine(
        channel,
        store,
        heartbeat,
        quality=QualityMonitor(quality or QualityConfig()),
        events=bus,
        venue_now=venue_now,
        latency=latency,
        idle_beat_s=idle_beat_s,
        batch_size=batch_size,
    )
    return Rig(engine, channel, store, heartbeat, events)


@asynccontextmanager
async def running(rig: Rig) -> AsyncIterator[asyncio.Task[None]]:
    """Run the engine in a task; on exit close the channel and wait for it to finish."""
    task = asyncio.create_task(rig.engine.run(Readiness()), name="test-engine")
    try:
        yield task
    finally:
        rig.channel.close()
        async with asyncio.timeout(5):
            await task
