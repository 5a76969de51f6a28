"""Bitvavo and Kraken adapters against their loopback fakes.

REST goes through the real ``HttpRestClient`` and an aiohttp session; the WebSocket half checks
that the fakes speak the wire protocol the adapters parse (subscribe, ack or refusal, candles,
heartbeats, pings, silence and dropped connections).
"""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fakes.bitvavo_server import FakeBitvavo
from fakes.candles import candle
from fakes.kraken_server import FakeKraken

from paper_trader.clock import SystemClock
from paper_trader.domain import Candle, Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.bitvavo import BitvavoAdapter
from paper_trader.exchange.kraken import KrakenAdapter
from paper_trader.exchange.rest import HttpRestClient, WeightBudget
from paper_trader.exchange.wire import (
    Control,
    ControlKind,
    Frame,
    KlinePage,
    KlineUpdate,
    Subscription,
    VenueAdapter,
    VenueError,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def rest(session: aiohttp.ClientSession, adapter: VenueAdapter) -> HttpRestClient:
    return HttpRestClient.for_venue(session, adapter, WeightBudget(600, SystemClock()))


def series(symbol: str, venue: Venue, count: int, *, start_ms: int = T0) -> list[Candle]:
    return [candle(i, symbol, venue=venue, start_ms=start_ms) for i in range(count)]


def sub(symbol: str) -> Subscription:
    return Subscription(parse_pair(symbol), Interval.M1)


def bitvavo(fake: FakeBitvavo, *symbols: str) -> BitvavoAdapter:
    subs = [sub(s) for s in symbols or ("BTC-EUR",)]
    return BitvavoAdapter(subs, ws_base=fake.ws_url, rest_base=fake.rest_url)


def kraken(fake: FakeKraken, *symbols: str) -> KrakenAdapter:
    subs = [sub(s) for s in symbols or ("BTC-USD",)]
    return KrakenAdapter(subs, ws_base=fake.ws_url, rest_base=fake.rest_url)


async def fetch_all(
    adapter: VenueAdapter, client: HttpRestClient, symbol: str, start_ms: int, end_ms: int
) -> list[KlinePage]:
    """Page through ``[start_ms, end_ms)`` the way the feed does: from each ``next_start_ms``."""
    pages = []
    while start_ms < end_ms:
        page = await adapter.fetch_klines(client, sub(symbol), start_ms, end_ms)
        pages.append(page)
        start_ms = page.next_start_ms
    return pages


# Bitvavo REST


async def test_bitvavo_server_time_is_the_fake_exchange_clock(
    session: aiohttp.ClientSession,
) -> None:
    """``server_time_ms`` reads ``GET /time``, i.e. the fake's injected clock."""
    async with FakeBitvavo(server_time_ms=T0 + 12_345) as fake:
        assert await bitvavo(fake).server_time_ms(rest(session, bitvavo(fake))) == (T0 + 12_345)


async def test_bitvavo_pages_are_end_driven_and_come_back_ascending(
    session: aiohttp.ClientSession,
) -> None:
    """Pages of 1440 send an aligned ``end``, reverse the newest-first rows and cover the range."""
    history = series("BTC-EUR", Venue.BITVAVO, 3000)
    del history[1500]  # a minute without trades: Bitvavo sends no candle for it
    async with FakeBitvavo(server_time_ms=T0 + 3100 * MINUTE) as fake:
        fake.add_history("BTC-EUR", history)
        client = rest(session, bitvavo(fake))
        pages = await fetch_all(bitvavo(fake), client, "BTC-EUR", T0, T0 + 3000 * MINUTE)
    assert [p.next_start_ms for p in pages] == [T0 + n * MINUTE for n in (1440, 2880, 3000)]
    assert [len(p.candles) for p in pages] == [1440, 1439, 120]
    assert [c for p in pages for c in p.candles] == history
    params = [query for path, query in fake.rest_log]
    assert params[0] == {
        "interval": "1m",
        "limit": "1440",
        "start": str(T0),
        "end": str(T0 + 1440 * MINUTE),
    }
    assert params[2]["end"] == str(T0 + 3000 * MINUTE)


async def test_bitvavo_fake_serves_newest_first_and_refuses_misaligned_start(
    session: aiohttp.ClientSession,
) -> None:
    """The fake answers like Bitvavo: newest first, and 400/205 for a start off the grid."""
    async with FakeBitvavo(server_time_ms=T0 + 10 * MINUTE) as fake:
        fake.add_history("BTC-EUR", series("BTC-EUR", Venue.BITVAVO, 3))
        client = rest(session, bitvavo(fake))
        rows = await client.get_json("/BTC-EUR/candles", {"interval": "1m"}, weight=1)
        assert isinstance(rows, list)
        assert [row[0] for row in rows] == [T0 + 2 * MINUTE, T0 + MINUTE, T0]
        with pytest.raises(VenueError, match="Invalid parameter") as refused:
            await client.get_json("/BTC-EUR/candles", {"interval": "1m", "start": "1"}, weight=1)
    assert (refused.value.status, refused.value.code) == (400, "205")


async def test_bitvavo_unknown_market_is_a_venue_error_with_its_message(
    session: aiohttp.ClientSession,
) -> None:
    """An unlisted market fails with the venue's own message, not a retry."""
    async with FakeBitvavo() as fake:
        client = rest(session, bitvavo(fake))
        with pytest.raises(VenueError, match="Invalid parameter: market"):
            await bitvavo(fake).fetch_klines(client, sub("DOGE-EUR"), T0, T0 + MINUTE)


# Kraken REST


async def test_kraken_server_time_is_the_fake_exchange_clock(
    session: aiohttp.ClientSession,
) -> None:
    """``server_time_ms`` reads ``/0/public/Time`` in whole seconds."""
    async with FakeKraken(server_time_ms=T0 + 12_345) as fake:
        client = rest(session, kraken(fake))
        assert await kraken(fake).server_time_ms(client) == T0 + 12_000


async def test_kraken_returns_committed_rows_of_the_range_without_the_open_one(
    session: aiohttp.ClientSession,
) -> None:
    """One call covers the range; the current, uncommitted last row is never returned."""
    history = series("BTC-USD", Venue.KRAKEN, 101)  # the 101st is the current candle
    async with FakeKraken(server_time_ms=T0 + 100 * MINUTE + 30_000) as fake:
        fake.add_history("BTC-USD", history)
        client = rest(session, kraken(fake))
        pages = await fetch_all(
            kraken(fake), client, "BTC-USD", T0 + 10 * MINUTE, T0 + 200 * MINUTE
        )
    [page] = pages
    assert page.candles == tuple(history[10:100])
    assert (page.next_start_ms, page.history_start_ms) == (T0 + 200 * MINUTE, None)
    [(path, params)] = fake.rest_log
    assert (path, params) == (
        "/0/public/OHLC",
        {"pair": "XBTUSD", "interval": "1", "since": str((T0 + 10 * MINUTE) // 1000 - 1)},
    )


async def test_kraken_720_row_cap_reports_where_history_starts(
    session: aiohttp.ClientSession,
) -> None:
    """Older than the last 720 rows is gone: ``history_start_ms`` marks the first served row."""
    history = series("BTC-USD", Venue.KRAKEN, 1000)
    async with FakeKraken(server_time_ms=T0 + 999 * MINUTE) as fake:
        fake.add_history("BTC-USD", history)
        client = rest(session, kraken(fake))
        [page] = await fetch_all(kraken(fake), client, "BTC-USD", T0, T0 + 999 * MINUTE)
    first_served = T0 + (1000 - 720) * MINUTE
    assert page.history_start_ms == first_served
    assert page.candles == tuple(history[280:999])


async def test_kraken_unknown_pair_is_a_venue_error_with_its_message(
    session: aiohttp.ClientSession,
) -> None:
    """``EQuery:Unknown asset pair`` (HTTP 200) becomes a VenueError naming it."""
    async with FakeKraken() as fake:
        client = rest(session, kraken(fake))
        with pytest.raises(VenueError, match="EQuery:Unknown asset pair") as refused:
            await kraken(fake).fetch_klines(client, sub("DOGE-USD"), T0, T0 + MINUTE)
    assert refused.value.code == "EQuery"


# WebSocket


async def receive(ws: aiohttp.ClientWebSocketResponse, adapter: VenueAdapter) -> Frame:
    message = await ws.receive(timeout=2)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return adapter.parse(message.data)


async def receive_control(ws: aiohttp.ClientWebSocketResponse, adapter: VenueAdapter) -> Control:
    frame = await receive(ws, adapter)
    assert isinstance(frame, Control), frame
    return frame


async def receive_updates(
    ws: aiohttp.ClientWebSocketResponse, adapter: VenueAdapter
) -> tuple[KlineUpdate, ...]:
    frame = await receive(ws, adapter)
    assert isinstance(frame, tuple), frame
    return frame


async def test_bitvavo_fake_acks_streams_and_refuses(session: aiohttp.ClientSession) -> None:
    """Subscribe → cumulative ack (refused markets left out) → candles in both event forms."""
    async with FakeBitvavo(markets={"BTC-EUR", "ETH-EUR"}) as fake:
        fake.reject_symbols({"ETH-EUR"})
        adapter = bitvavo(fake, "BTC-EUR", "ETH-EUR")
        async with session.ws_connect(adapter.ws_url()) as ws:
            for message in adapter.subscribe_messages():
                await ws.send_str(message)
            refused = await receive_control(ws, adapter)
            assert refused == Control(
                kind=ControlKind.REJECTED,
                symbol="ETH-EUR",
                message="bitvavo did not subscribe candles for ETH-EUR 1m",
            )
            bar = candle(0, "BTC-EUR", venue=Venue.BITVAVO, start_ms=T0)
            await fake.push("BTC-EUR", bar)
            await fake.push("BTC-EUR", bar, event="candles")
            for _ in range(2):
                [update] = await receive_updates(ws, adapter)
                assert update.to_candle(Venue.BITVAVO) == bar
            fake.silence()
            await fake.push("BTC-EUR", bar)
            await fake.send_raw('{"event":"error","errorCode":110,"error":"limit"}')
            assert (await receive_control(ws, adapter)).kind is ControlKind.ERROR
            await fake.drop_connections()
            assert (await ws.receive(timeout=2)).type is aiohttp.WSMsgType.CLOSE
    assert (fake.connections, fake.subscribe_messages) == (1, 1)


async def test_kraken_fake_greets_acks_per_symbol_and_snapshots(
    session: aiohttp.ClientSession,
) -> None:
    """Status, one answer per symbol (XBT/USD refused), then a snapshot of the latest candles."""
    history = series("BTC-USD", Venue.KRAKEN, 5)
    async with FakeKraken(server_time_ms=T0 + 4 * MINUTE, snapshot_candles=3) as fake:
        fake.add_history("BTC-USD", history)
        fake.reject_symbols({"ETH-USD"})
        adapter = kraken(fake, "BTC-USD", "ETH-USD")
        async with session.ws_connect(adapter.ws_url()) as ws:
            assert (await receive_control(ws, adapter)).kind is ControlKind.STATUS
            [message] = adapter.subscribe_messages()
            await ws.send_str(message.replace('"ETH/USD"', '"ETH/USD","XBT/USD"'))
            answers = [await receive_control(ws, adapter) for _ in range(3)]
            assert [(a.kind, a.symbol) for a in answers] == [
                (ControlKind.ACK, "BTC-USD"),
                (ControlKind.REJECTED, "ETH-USD"),
                (ControlKind.REJECTED, "BTC-USD"),
            ]
            assert answers[2].message == "Currency pair not supported XBT/USD"
            snapshot = await receive_updates(ws, adapter)
            assert [u.to_candle(Venue.KRAKEN) for u in snapshot] == history[2:]


async def test_kraken_fake_updates_pongs_and_heartbeats_while_silent(
    session: aiohttp.ClientSession,
) -> None:
    """Pushed updates parse back exactly; ping gets pong; silenced, only heartbeats flow."""
    async with FakeKraken(heartbeat_interval_s=0.05, snapshot_candles=0) as fake:
        adapter = kraken(fake)
        async with session.ws_connect(adapter.ws_url()) as ws:
            await receive_control(ws, adapter)
            await ws.send_str(adapter.subscribe_messages()[0])
            assert (await receive_control(ws, adapter)).kind is ControlKind.ACK
            assert await receive(ws, adapter) == ()  # the empty snapshot
            bar = candle(3, "BTC-USD", venue=Venue.KRAKEN, start_ms=T0)
            await fake.push("BTC-USD", bar)
            [update] = await receive_updates(ws, adapter)
            assert update.to_candle(Venue.KRAKEN) == bar
            await ws.send_str(adapter.ping_message() or "")
            kinds = {(await receive_control(ws, adapter)).kind for _ in range(3)}
            assert ControlKind.PONG in kinds
            fake.silence()
            await fake.push("BTC-USD", bar)
            kinds = {(await receive_control(ws, adapter)).kind for _ in range(3)}
            assert kinds == {ControlKind.HEARTBEAT}
            await fake.drop_connections(abort=True)
            assert (await ws.receive(timeout=2)).type in (
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
                aiohttp.WSMsgType.CLOSE,
            )
            await asyncio.sleep(0)
    assert fake.pings == 1
