"""The Binance feed against the loopback simulator: every closed candle exactly once, in order."""

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest
from conftest import eventually
from fakes.feed_rig import FAST, FeedRig, ohlcv, running_feed

from paper_trader.domain import EventKind, GapReason, HealthStatus, Interval
from paper_trader.domain.symbols import parse_pair
from paper_trader.errors import ConfigError
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.feed import FeedConfig, MarketFeed
from paper_trader.exchange.wire import Subscription
from paper_trader.simulator import Faults, Simulator, SimulatorConfig

MINUTE = 60_000
QUICK_SILENCE = dataclasses.replace(FAST, silence_timeout_s=1.0)


def subscriptions(*symbols: str) -> list[Subscription]:
    """Return 1m subscriptions for ``symbols``."""
    return [Subscription(parse_pair(s), Interval.M1) for s in symbols]


def adapter(sim: Simulator, *symbols: str) -> BinanceAdapter:
    """Return a Binance adapter pointed at the simulator."""
    return BinanceAdapter(
        subscriptions(*(symbols or ("BTCUSDT",))), ws_base=sim.ws_url, rest_base=sim.rest_url
    )


def manual(history: int = 50, **changes: object) -> SimulatorConfig:
    """Return a manual-clock simulator config with ``history`` closed candles."""
    return dataclasses.replace(SimulatorConfig(speed="manual", history=history), **changes)


@contextlib.asynccontextmanager
async def simulated(
    sim_config: SimulatorConfig, *symbols: str, feed: FeedConfig = FAST
) -> AsyncIterator[tuple[Simulator, FeedRig]]:
    """Run the simulator and a Binance feed on it for ``symbols`` (default BTCUSDT)."""
    symbols = symbols or ("BTCUSDT",)
    async with Simulator(sim_config) as sim:
        feed_adapter = adapter(sim, *symbols)
        async with running_feed(feed_adapter, subscriptions(*symbols), config=feed) as rig:
            yield sim, rig


async def connected(feed: MarketFeed) -> None:
    """Wait until the feed is connected and caught up."""
    await eventually(lambda: feed.health().status is HealthStatus.OK, timeout=10)


async def test_warm_up_fetches_the_latest_closed_candles_over_rest() -> None:
    """At start-up the last WARMUP_CANDLES closed candles come from REST, in order."""
    async with simulated(manual(history=50)) as (sim, rig):
        await eventually(rig.ready.is_set, timeout=10)
        assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[30:50])
        assert {c.symbol for c in rig.emitted} == {"BTC-USDT"}


async def test_warm_up_continues_from_the_database() -> None:
    """With candles already stored, only the newer ones are fetched."""
    async with Simulator(manual(history=50)) as sim:
        stored = sim.candles("BTCUSDT")[44].open_time_ms
        async with running_feed(
            adapter(sim), subscriptions("BTCUSDT"), stored={"BTC-USDT": stored}
        ) as rig:
            await eventually(rig.ready.is_set, timeout=10)
            assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[45:50])


async def test_live_closed_candles_are_emitted_once_each() -> None:
    """Candles closing on the stream are emitted when ``x`` turns true, once, in order."""
    async with simulated(
        manual(history=30, symbols=("BTCUSDT", "ETHUSDT")), "BTCUSDT", "ETHUSDT"
    ) as (sim, rig):
        await connected(rig.feed)
        await sim.advance(candles=5)
        await eventually(lambda: len(rig.emitted) == 2 * (20 + 5))
        for symbol, internal in (("BTCUSDT", "BTC-USDT"), ("ETHUSDT", "ETH-USDT")):
            mine = [c for c in rig.emitted if c.symbol == internal]
            assert ohlcv(mine) == ohlcv(sim.candles(symbol)[10:35])


async def test_duplicates_reordering_and_garbage_change_nothing() -> None:
    """Duplicated, swapped and garbage frames are dropped and counted; candles stay exact."""
    faults = Faults(duplicate_rate=0.3, reorder_rate=0.3, garbage_rate=0.2, seed=5)
    async with simulated(manual(history=30, faults=faults)) as (sim, rig):
        await connected(rig.feed)
        await sim.advance(candles=40)
        await eventually(lambda: len(rig.emitted) == 60)
        assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[10:70])
        stats = rig.feed.stats
        assert stats.malformed > 0
        assert stats.unknown + stats.venue_errors > 0
        [seq] = rig.feed.sequencers()
        assert seq.duplicates > 0
        assert sim.stats.reorders > 0


async def test_candles_missed_while_disconnected_are_backfilled_in_order() -> None:
    """After a dropped connection the missed candles come over REST before newer ones."""
    async with simulated(manual(history=30)) as (sim, rig):
        await connected(rig.feed)
        for drops, abort in enumerate((False, True), start=1):
            sim.drop_connections(abort=abort)
            await sim.advance(candles=7)
            await eventually(
                lambda drops=drops: rig.feed.stats.reconnects >= drops,  # type: ignore[misc]
                timeout=10,
            )
            await connected(rig.feed)
        await sim.advance(candles=3)
        await eventually(lambda: len(rig.emitted) == 20 + 17, timeout=10)
        assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[10:47])


async def test_a_silent_stream_is_replaced() -> None:
    """A connection that stops sending data (pings still answered) is reconnected."""
    async with simulated(manual(history=30), feed=QUICK_SILENCE) as (sim, rig):
        await connected(rig.feed)
        await sim.advance(candles=1)
        sim.silence(2.0)
        await sim.advance(candles=2)
        await eventually(lambda: rig.feed.stats.reconnects >= 1, timeout=10)
        await eventually(lambda: len(rig.emitted) == 23, timeout=10)
        assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[10:33])


async def test_a_stream_that_never_sends_data_is_replaced() -> None:
    """Connected and subscribed but never a data frame: the watchdog still reconnects."""
    async with Simulator(manual(history=30)) as sim:
        sim.silence(3.0)
        async with running_feed(
            adapter(sim), subscriptions("BTCUSDT"), config=QUICK_SILENCE
        ) as rig:
            await eventually(lambda: rig.feed.stats.reconnects >= 1, timeout=10)
            assert rig.feed.stats.data_frames == 0


async def test_rest_429_is_waited_out_and_warm_up_completes() -> None:
    """429 answers with Retry-After delay the warm-up; it then completes with every candle."""
    async with Simulator(manual(history=50)) as sim:
        sim.fail_rest(2, 429, retry_after_s=0.3)
        async with running_feed(adapter(sim), subscriptions("BTCUSDT")) as rig:
            await eventually(rig.ready.is_set, timeout=10)
            assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[30:50])
            assert sim.stats.rest_429 == 2
            assert sim.stats.rest_418 == 0  # we did not hammer the venue during its 429


async def test_candles_the_venue_does_not_have_are_recorded_as_a_gap() -> None:
    """A gap REST cannot fill is recorded once as missing at the venue; later candles flow."""
    async with Simulator(manual(history=30)) as sim:
        candles = sim.candles("BTCUSDT")
        sim.delete_candles("BTCUSDT", [candles[32].open_time_ms, candles[33].open_time_ms])
        async with running_feed(adapter(sim), subscriptions("BTCUSDT")) as rig:
            await connected(rig.feed)
            await sim.advance(candles=6)
            await eventually(lambda: len(rig.emitted) == 20 + 4)
            expected = candles[10:32] + candles[34:36]
            assert ohlcv(rig.emitted) == ohlcv(expected)
            [gap] = rig.gaps
            assert (gap.start_ms, gap.end_ms, gap.missing) == (
                candles[32].open_time_ms,
                candles[34].open_time_ms,
                2,
            )
            assert gap.reason is GapReason.MISSING_AT_VENUE


async def test_server_shutdown_rotates_without_losing_or_doubling_candles() -> None:
    """On serverShutdown a new connection is opened before the old one is let go."""
    config = manual(history=30, shutdown_grace_s=0.5)
    async with simulated(config) as (sim, rig):
        await connected(rig.feed)
        sim.send_server_shutdown()
        await eventually(lambda: sim.stats.connections_accepted == 2, timeout=10)
        await sim.advance(candles=4)
        await eventually(lambda: len(rig.emitted) == 24, timeout=10)
        assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[10:34])
        assert rig.feed.stats.rotations == 1


async def test_connections_are_rotated_before_the_venue_lifetime_limit() -> None:
    """A connection older than rotate_after_s is replaced make-before-break."""
    config = dataclasses.replace(FAST, rotate_after_s=0.5)
    async with simulated(manual(history=30), feed=config) as (sim, rig):
        await connected(rig.feed)
        await eventually(lambda: sim.stats.connections_accepted >= 2, timeout=10)
        await sim.advance(candles=2)
        await eventually(lambda: rig.feed.stats.rotations >= 1, timeout=10)
        await eventually(lambda: len(rig.emitted) == 22, timeout=10)
        assert ohlcv(rig.emitted) == ohlcv(sim.candles("BTCUSDT")[10:32])


async def test_a_reconnect_storm_degrades_health_and_publishes_an_event() -> None:
    """Connections closed right after the handshake, repeatedly, are a storm."""
    async with simulated(manual(history=30)) as (sim, rig):
        await connected(rig.feed)
        sim.accept_then_close(5)
        sim.drop_connections()
        await eventually(lambda: rig.feed.stats.reconnects >= 3, timeout=10)
        kinds = [e.kind for e in rig.published()]
        assert EventKind.FEED_RECONNECT_STORM in kinds
        assert rig.feed.health().status is not HealthStatus.OK


async def test_a_symbol_the_venue_does_not_list_is_a_configuration_error() -> None:
    """An unknown symbol is refused at start-up with the venue's message, naming SYMBOLS."""
    async with simulated(manual(history=30), "DOGEUSDT") as (_, rig):
        rig.failure_expected = True
        with pytest.raises(ConfigError, match=r"SYMBOLS='DOGE-USDT'.*Invalid symbol"):
            await rig.task
