"""Bitvavo and Kraken feeds against their loopback fakes: no closed flag, closure inferred."""

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest
from conftest import eventually
from fakes.bitvavo_server import FakeBitvavo
from fakes.candles import candle
from fakes.feed_rig import FAST, FeedRig, ohlcv, running_feed
from fakes.kraken_server import FakeKraken

from paper_trader.domain import Candle, GapReason, HealthStatus, Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.errors import ConfigError
from paper_trader.exchange.bitvavo import BitvavoAdapter
from paper_trader.exchange.feed import FeedConfig, MarketFeed
from paper_trader.exchange.kraken import KrakenAdapter
from paper_trader.exchange.wire import Subscription

MINUTE = 60_000
START = 1_704_067_200_000  # 2024-01-01T00:00Z
FLAGLESS = dataclasses.replace(FAST, close_grace_ms=200)


def series(symbol: str, venue: Venue, count: int) -> list[Candle]:
    """Return ``count`` consecutive 1m candles from START."""
    return [candle(k, symbol, venue=venue, start_ms=START - MINUTE) for k in range(1, count + 1)]


def subscription(symbol: str) -> Subscription:
    """Return the 1m subscription of ``symbol``."""
    return Subscription(parse_pair(symbol), Interval.M1)


@contextlib.asynccontextmanager
async def feed_on(
    fake: FakeBitvavo | FakeKraken,
    symbol: str,
    history: list[Candle],
    config: FeedConfig = FLAGLESS,
) -> AsyncIterator[FeedRig]:
    """Give the fake ``history`` and run the venue's feed of ``symbol`` against it."""
    fake.add_history(symbol, history)
    make = BitvavoAdapter if isinstance(fake, FakeBitvavo) else KrakenAdapter
    adapter = make([subscription(symbol)], ws_base=fake.ws_url, rest_base=fake.rest_url)
    async with running_feed(adapter, [subscription(symbol)], config=config) as rig:
        yield rig


async def connected(feed: MarketFeed) -> None:
    """Wait until the feed is connected and caught up."""
    await eventually(lambda: feed.health().status is HealthStatus.OK, timeout=10)


async def test_bitvavo_candle_is_final_when_the_next_one_starts() -> None:
    """Warm-up over REST, then a candle is emitted when an update for the next one arrives."""
    history = series("BTC-EUR", Venue.BITVAVO, 60)
    async with (
        FakeBitvavo(server_time_ms=START + 50 * MINUTE + 1000) as fake,
        feed_on(fake, "BTC-EUR", history[:50]) as rig,
    ):
        await connected(rig.feed)
        assert ohlcv(rig.emitted) == ohlcv(history[30:50])
        await fake.push("BTC-EUR", history[50], event="candles")  # the docs' variant
        await fake.push("BTC-EUR", history[51])  # the SDKs' variant
        await eventually(lambda: len(rig.emitted) == 21)
        assert ohlcv(rig.emitted[-1:]) == ohlcv(history[50:51])


async def test_bitvavo_quiet_candle_is_confirmed_over_rest_when_its_time_is_up() -> None:
    """With no later update, the venue clock passing the candle's end closes it via REST."""
    history = series("BTC-EUR", Venue.BITVAVO, 60)
    async with (
        FakeBitvavo(server_time_ms=START + 51 * MINUTE - 500) as fake,
        feed_on(fake, "BTC-EUR", history[:50]) as rig,
    ):
        await connected(rig.feed)
        await fake.push("BTC-EUR", history[50])  # the current candle, half a second left
        fake.server_time_ms = START + 51 * MINUTE + 500  # the venue's clock moves on
        await eventually(lambda: len(rig.emitted) == 21, timeout=10)
        assert ohlcv(rig.emitted[-1:]) == ohlcv(history[50:51])
        assert rig.feed.sequencers()[0].pending is None


async def test_bitvavo_candles_missed_while_disconnected_are_backfilled() -> None:
    """Candles that closed during a dropped connection come over REST after reconnecting."""
    history = series("BTC-EUR", Venue.BITVAVO, 60)
    async with (
        FakeBitvavo(server_time_ms=START + 40 * MINUTE + 1000) as fake,
        feed_on(fake, "BTC-EUR", history[:40]) as rig,
    ):
        await connected(rig.feed)
        await fake.drop_connections(abort=True)
        fake.add_history("BTC-EUR", history[40:46])
        fake.server_time_ms = START + 46 * MINUTE + 1000
        await eventually(lambda: len(rig.emitted) == 26, timeout=10)
        assert ohlcv(rig.emitted) == ohlcv(history[20:46])
        assert rig.feed.stats.reconnects >= 1


async def test_kraken_history_beyond_720_candles_is_an_unfillable_gap() -> None:
    """Warm-up further back than Kraken serves records the older part as beyond history."""
    history = series("BTC-USD", Venue.KRAKEN, 1000)
    config = dataclasses.replace(FLAGLESS, warmup_candles=900)
    async with (
        FakeKraken(server_time_ms=START + 1000 * MINUTE + 1000) as fake,
        feed_on(fake, "BTC-USD", history, config=config) as rig,
    ):
        await eventually(rig.ready.is_set, timeout=10)
        [gap] = rig.gaps
        assert gap.reason is GapReason.BEYOND_HISTORY
        assert gap.start_ms == history[100].open_time_ms
        first = rig.emitted[0].open_time_ms
        assert gap.end_ms == first
        assert gap.missing + len(rig.emitted) == 900
        assert ohlcv(rig.emitted) == ohlcv(history[-len(rig.emitted) :])


async def test_kraken_snapshot_and_re_emissions_do_not_double_candles() -> None:
    """The subscribe snapshot repeats stored candles and updates re-send one: each emitted once."""
    history = series("BTC-USD", Venue.KRAKEN, 60)
    async with (
        FakeKraken(server_time_ms=START + 50 * MINUTE + 1000) as fake,
        feed_on(fake, "BTC-USD", history[:50]) as rig,
    ):
        await connected(rig.feed)
        for c in (history[50], history[50], history[51]):
            await fake.push("BTC-USD", c)
        await eventually(lambda: len(rig.emitted) == 21)
        assert ohlcv(rig.emitted) == ohlcv(history[30:51])


async def test_kraken_heartbeats_without_data_are_a_silent_stream() -> None:
    """Heartbeats keep flowing but no data: the feed still reconnects."""
    history = series("BTC-USD", Venue.KRAKEN, 40)
    config = dataclasses.replace(FLAGLESS, silence_timeout_s=1.5)
    async with FakeKraken(
        server_time_ms=START + 40 * MINUTE + 1000, heartbeat_interval_s=0.2, snapshot_candles=0
    ) as fake:
        fake.silence(True)
        async with feed_on(fake, "BTC-USD", history, config=config) as rig:
            await eventually(lambda: rig.feed.stats.reconnects >= 1, timeout=10)
            assert rig.feed.stats.control > 0  # heartbeats arrived all along


async def test_kraken_refused_subscription_at_start_up_is_a_configuration_error() -> None:
    """A symbol Kraken refuses on the WebSocket stops the daemon, quoting Kraken."""
    history = series("BTC-USD", Venue.KRAKEN, 40)
    async with FakeKraken(server_time_ms=START + 40 * MINUTE + 1000) as fake:
        fake.reject_symbols({"BTC-USD"})
        async with feed_on(fake, "BTC-USD", history) as rig:
            rig.failure_expected = True
            with pytest.raises(ConfigError, match=r"SYMBOLS='BTC-USD'.*not supported"):
                await rig.task
