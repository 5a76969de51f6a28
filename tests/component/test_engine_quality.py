"""The decision engine's data-quality gate: impossible and future candles, tradable events."""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from conftest import eventually
from fakes.candles import candle
from fakes.engine_rig import Rig, running
from fakes.engine_rig import make_rig as engine_rig

from paper_trader.domain import Candle, EventKind
from paper_trader.engine import FUTURE_TOLERANCE_MS
from paper_trader.market.quality import QualityConfig
from paper_trader.runtime.service import Readiness

# A short score window: 5 good candles then 2 rejected ones score 100 * (1 - 2/7) = 71.4 < 80;
# tradable again at 85, i.e. once at most one rejection is left among the last 10 candles.
SMALL_WINDOW = QualityConfig(min_score=80.0, window=10, jump_history=5, recover_margin=5.0)


def make_rig(
    *, config: QualityConfig | None = None, venue_now: Callable[[], int] | None = None
) -> Rig:
    """Build the engine with ``config`` as its quality gate."""
    return engine_rig(quality=config, venue_now=venue_now)


async def feed(rig: Rig, candles: list[Candle]) -> None:
    """Put every candle on the channel, close it and run the engine until it has drained."""
    for c in candles:
        await rig.channel.put(c)
    rig.channel.close()
    async with asyncio.timeout(5):
        await rig.engine.run(Readiness())


def high_below_close(index: int) -> Candle:
    """Return candle ``index`` with its high under its close: it cannot have happened."""
    good = candle(index)
    return replace(good, high=good.close - Decimal("0.01"))


def misaligned(index: int) -> Candle:
    """Return candle ``index`` opening 1 ms off the minute grid."""
    good = candle(index)
    return replace(good, open_time_ms=good.open_time_ms + 1)


async def test_impossible_candles_are_not_stored_and_later_good_ones_still_flow() -> None:
    """High below close and an off-grid open time are rejected and counted; the rest is stored."""
    rig = make_rig()

    await feed(rig, [candle(1), high_below_close(2), misaligned(3), candle(4), candle(5)])

    assert rig.store.candles == [candle(1), candle(4), candle(5)]
    stats = rig.engine.stats()
    assert (stats.candles_processed, stats.candles_rejected, stats.candles_dropped) == (3, 2, 0)
    assert stats.last_open_time_ms == candle(5).open_time_ms
    assert rig.engine.quality.counts() == {"high_below_open_close": 1, "misaligned_open_time": 1}


async def test_good_candle_after_a_rejected_one_at_the_same_open_time_is_stored() -> None:
    """A rejected candle does not count as seen: its corrected version is not an out-of-order."""
    rig = make_rig()

    await feed(rig, [candle(1), high_below_close(2), candle(2), candle(3)])

    assert rig.store.candles == [candle(1), candle(2), candle(3)]
    assert (rig.engine.stats().candles_rejected, rig.engine.stats().candles_dropped) == (1, 0)


async def test_candle_closing_beyond_the_venue_clock_is_rejected_as_future() -> None:
    """With venue_now given, a candle that closes after the venue's time is not stored."""
    venue_ms = candle(3).close_time_ms
    rig = make_rig(venue_now=lambda: venue_ms)

    await feed(rig, [candle(1), candle(2), candle(3), candle(10)])

    assert rig.store.candles == [candle(1), candle(2), candle(3)]
    assert rig.engine.stats().candles_rejected == 1
    assert rig.engine.quality.counts() == {"in_future": 1}


async def test_candle_closing_within_the_tolerance_of_the_venue_clock_is_accepted() -> None:
    """A final frame may be stamped up to FUTURE_TOLERANCE_MS before its candle's end, no more."""
    close_ms = candle(1).close_time_ms
    at_tolerance = make_rig(venue_now=lambda: close_ms - FUTURE_TOLERANCE_MS)
    beyond = make_rig(venue_now=lambda: close_ms - FUTURE_TOLERANCE_MS - 1)

    await feed(at_tolerance, [candle(1)])
    await feed(beyond, [candle(1)])

    assert at_tolerance.store.candles == [candle(1)]
    assert beyond.store.candles == []
    assert beyond.engine.stats().candles_rejected == 1


async def test_candle_rejected_as_future_is_accepted_once_the_venue_clock_has_passed_it() -> None:
    """The judgement uses the venue clock at the time of handling, read for every candle."""
    clock = {"now": candle(1).close_time_ms}
    rig = make_rig(venue_now=lambda: clock["now"])

    async with running(rig):
        await rig.channel.put(candle(1))
        await rig.channel.put(candle(5))
        await eventually(lambda: rig.engine.stats().candles_rejected == 1)
        clock["now"] = candle(5).close_time_ms
        await rig.channel.put(candle(5))
        await eventually(lambda: len(rig.store.candles) == 2)

    assert rig.store.candles == [candle(1), candle(5)]


async def test_without_venue_clock_a_candle_is_judged_at_its_own_close() -> None:
    """In replay (no venue_now) a candle far in the past or future is never 'in the future'."""
    rig = make_rig()

    await feed(rig, [candle(1), candle(1_000_000)])

    assert rig.store.candles == [candle(1), candle(1_000_000)]
    assert rig.engine.stats().candles_rejected == 0


async def test_rejected_run_makes_symbol_not_tradable_and_good_candles_recover_it() -> None:
    """Below MIN: SYMBOL_NOT_TRADABLE at the candle's close; back above: SYMBOL_TRADABLE."""
    rig = make_rig(config=SMALL_WINDOW)
    good_before = [candle(k) for k in range(1, 6)]
    bad = [high_below_close(6), high_below_close(7)]
    good_after = [candle(k) for k in range(8, 20)]

    await feed(rig, [*good_before, *bad, *good_after])

    events = rig.events.drain(100)
    assert [e.kind for e in events] == [EventKind.SYMBOL_NOT_TRADABLE, EventKind.SYMBOL_TRADABLE]
    down, up = events
    assert down.at_ms == bad[1].close_time_ms
    assert down.data["symbol"] == "BTCUSDT"
    assert down.data["score"] == pytest.approx(100 * (1 - 2 / 7))
    # The first rejection leaves the 10-candle window with candle 16: score 90 >= 80 + 5.
    assert up.at_ms == candle(16).close_time_ms
    assert up.data["score"] == pytest.approx(90.0)
    assert rig.store.candles == [*good_before, *good_after]
    assert rig.engine.stats().candles_rejected == 2
    assert rig.engine.quality.is_tradable(candle(1).venue, "BTCUSDT", candle(1).interval)


async def test_not_tradable_event_is_published_as_soon_as_the_candle_is_handled() -> None:
    """The transition is on the bus right after the rejected candle, before any later candle."""
    rig = make_rig(config=SMALL_WINDOW)

    async with running(rig):
        for c in [*(candle(k) for k in range(1, 6)), high_below_close(6)]:
            await rig.channel.put(c)
        await eventually(lambda: rig.engine.stats().candles_rejected == 1)
        assert rig.events.get_nowait() is None  # 100 * (1 - 1/6) = 83.3: still tradable

        await rig.channel.put(high_below_close(7))
        await eventually(lambda: rig.engine.stats().candles_rejected == 2)
        event = rig.events.get_nowait()

    assert event is not None
    assert event.kind is EventKind.SYMBOL_NOT_TRADABLE
    assert event.at_ms == candle(7).close_time_ms
    assert not rig.engine.quality.is_tradable(candle(1).venue, "BTCUSDT", candle(1).interval)
