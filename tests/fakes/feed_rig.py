"""Run a real ``MarketFeed`` in a task and record what it emits, the gaps and the events."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

from paper_trader.clock import SystemClock
from paper_trader.domain import Candle, Event, Gap
from paper_trader.exchange.feed import FeedConfig, MarketFeed
from paper_trader.exchange.wire import Subscription, VenueAdapter
from paper_trader.runtime.channel import DropOldestChannel
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.service import Readiness

FAST = FeedConfig(
    warmup_candles=20,
    silence_timeout_s=10.0,  # a manual-clock simulator is silent until a test advances it
    reconnect_base_s=0.05,
    reconnect_max_s=0.2,
    healthy_after_s=0.2,
    storm_reconnects=3,
    storm_window_s=30.0,
    connect_timeout_s=2.0,
    ack_timeout_s=2.0,
    policy_close_backoff_s=0.3,
)


@dataclass
class FeedRig:
    """A running feed and everything it handed out."""

    feed: MarketFeed
    ready: Readiness
    task: asyncio.Task[None]
    events: DropOldestChannel[Event]
    emitted: list[Candle] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    failure_expected: bool = False

    def opens(self) -> list[int]:
        """Return the open times emitted, in emission order."""
        return [c.open_time_ms for c in self.emitted]

    def published(self) -> list[Event]:
        """Return the events published so far (drains the subscription)."""
        out = []
        while (event := self.events.get_nowait()) is not None:
            out.append(event)
        return out


def ohlcv(candles: Iterable[Candle]) -> list[tuple[object, ...]]:
    """Return what identifies candles across venues' symbol spellings."""
    return [(c.open_time_ms, c.open, c.high, c.low, c.close, c.volume) for c in candles]


@contextlib.asynccontextmanager
async def running_feed(
    adapter: VenueAdapter,
    subscriptions: Iterable[Subscription],
    *,
    config: FeedConfig = FAST,
    stored: Mapping[str, int] | None = None,
) -> AsyncIterator[FeedRig]:
    """Start the feed; cancel it and wait for it on exit (re-raising what it raised)."""
    bus = EventBus()
    events = bus.subscribe()
    emitted: list[Candle] = []
    gaps: list[Gap] = []

    async def emit(candle: Candle) -> None:
        emitted.append(candle)

    async def record_gap(gap: Gap) -> None:
        gaps.append(gap)

    async def last_stored(sub: Subscription) -> int | None:
        return (stored or {}).get(sub.symbol)

    feed = MarketFeed(
        adapter,
        subscriptions,
        emit=emit,
        last_stored=last_stored,
        record_gap=record_gap,
        events=bus,
        clock=SystemClock(),
        config=config,
        rng=random.Random(1),
    )
    ready = Readiness()
    task = asyncio.create_task(feed.run(ready), name="test-feed")
    rig = FeedRig(feed, ready, task, events, emitted, gaps)
    try:
        yield rig
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif not task.cancelled() and not rig.failure_expected and task.exception():
            raise AssertionError("the feed failed") from task.exception()
