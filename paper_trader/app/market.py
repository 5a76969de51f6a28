"""The live market feed's wiring: the venue adapter, its subscriptions, stored history, gaps."""

import aiosqlite

from paper_trader.app.configs import feed_config, venue_adapter
from paper_trader.clock import Clock
from paper_trader.domain import Event, EventKind, EventSource, Gap, MarketItem
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.feed import MarketFeed
from paper_trader.exchange.wire import Subscription
from paper_trader.features.engine import SeriesKey
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.events import EventBus
from paper_trader.settings import Settings
from paper_trader.storage import RecordGap, StorageWriter, last_open_time

_FEED_EVENTS = EventSource("market_feed")  # gaps are the feed's facts, reported as its own


def market_feed(  # noqa: PLR0917 -- the composition root hands over what it built
    settings: Settings,
    conn: aiosqlite.Connection,
    writer: StorageWriter,
    bus: EventBus,
    clock: Clock,
    candles: BlockingChannel[MarketItem],
    *,
    series: list[SeriesKey],
) -> MarketFeed:
    """Build the feed of ``series`` from ``EXCHANGE``; it resumes after the stored candles."""
    subs = subscriptions_of(series)
    adapter = venue_adapter(settings, subs=subs)

    async def last_stored(sub: Subscription) -> int | None:
        return await last_open_time(conn, adapter.venue, sub.symbol, sub.interval)

    async def record_gap(gap: Gap) -> None:
        # The data-quality score counts the missing candles when the engine sees the candle
        # after them (candle order), not here: a decision must not depend on when this ran.
        await writer.write(RecordGap(gap=gap, detected_at_ms=clock.now_ms()))  # then tell
        bus.publish(_gap_event(gap, clock.now_ms()))

    return MarketFeed(
        adapter,
        subs,
        emit=candles.put,
        emit_mark=candles.put,
        last_stored=last_stored,
        record_gap=record_gap,
        events=bus,
        clock=clock,
        config=feed_config(settings),
    )


def subscriptions_of(series: list[SeriesKey]) -> list[Subscription]:
    """Return the venue subscriptions of ``series``."""
    return [Subscription(parse_pair(symbol), interval) for _, symbol, interval in series]


def _gap_event(gap: Gap, now_ms: int) -> Event:
    return _FEED_EVENTS.warning(
        EventKind.DATA_GAP,
        f"{gap.symbol} {gap.interval.value}: {gap.missing} candle(s) from "
        f"{gap.start_ms} cannot be filled ({gap.reason.value})",
        at_ms=now_ms,
        data={
            "venue": gap.venue.value,
            "symbol": gap.symbol,
            "interval": gap.interval.value,
            "start_ms": gap.start_ms,
            "end_ms": gap.end_ms,
            "missing": gap.missing,
            "reason": gap.reason.value,
        },
    )
