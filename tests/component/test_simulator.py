"""Tests for the simulated exchange: Binance's wire protocol over loopback, its clock, faults."""

import asyncio
import itertools
import json
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ROOT, eventually, subprocess_env
from fakes.candles import candle_of
from fakes.simulator_rig import (
    HISTORY,
    KLINE_KEYS,
    MINUTE,
    RECV_TIMEOUT_S,
    START_MS,
    STREAM,
    candle_values,
    http_get,
    kline_values,
    recv_json,
    recv_until_closed,
    recv_until_response,
    rest_values,
    sim_config,
    simulator,
)
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from paper_trader.simulator import CsvSource, Faults, Simulator
from paper_trader.simulator.market import CandleShape, kline_row


async def test_combined_stream_frames_match_binance_shape_and_finals_equal_source() -> None:
    """Frames are {"stream","data"} kline events; each final equals its source candle exactly."""
    async with simulator() as sim, connect(f"{sim.ws_url}/stream?streams={STREAM}") as ws:
        await sim.advance(candles=3)
        frames = [await recv_json(ws) for _ in range(9)]
    source = sim.candles("BTCUSDT")
    finals = [f["data"] for f in frames if f["data"]["k"]["x"]]
    assert len(finals) == 3
    for frame in frames:
        assert frame["stream"] == STREAM
        data = frame["data"]
        assert list(data) == ["e", "E", "s", "k"]
        assert (data["e"], data["s"]) == ("kline", "BTCUSDT")
        assert list(data["k"]) == KLINE_KEYS
        k = data["k"]
        assert (k["s"], k["i"], k["T"]) == ("BTCUSDT", "1m", k["t"] + MINUTE - 1)
        assert all(isinstance(k[key], str) for key in ("o", "c", "h", "l", "v", "q", "V", "Q"))
        assert all(isinstance(k[key], int) for key in ("t", "T", "f", "L", "n"))
    for data, candle in zip(finals, source[HISTORY : HISTORY + 3], strict=True):
        assert data["k"]["t"] == candle.open_time_ms
        assert kline_values(data["k"]) == candle_values(candle)
        assert data["E"] >= data["k"]["T"]


async def test_raw_stream_sends_bare_kline_payloads() -> None:
    """`/ws/<stream>` sends the payload without the combined wrapper."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        await sim.advance(candles=1)
        frames = [await recv_json(ws) for _ in range(3)]
    assert [f["e"] for f in frames] == ["kline"] * 3
    assert [f["k"]["x"] for f in frames] == [False, False, True]


async def test_partial_updates_are_consistent_and_close_in_on_the_final_candle() -> None:
    """Intra-candle frames keep high/low bounds, grow volume and are stamped with sim time."""
    async with simulator(updates_per_candle=4) as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        await sim.advance(candles=2)
        frames = [await recv_json(ws) for _ in range(10)]
    for candle_frames in (frames[:5], frames[5:]):
        volumes = [Decimal(f["k"]["v"]) for f in candle_frames]
        assert volumes == sorted(volumes)
        assert [f["E"] for f in candle_frames] == [
            candle_frames[0]["k"]["t"] + step * MINUTE // 5 for step in range(1, 6)
        ]
        for f in candle_frames:
            o, h, low, c, _ = kline_values(f["k"])
            assert h >= max(o, c) >= min(o, c) >= low


@given(
    prices=st.lists(
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4),
        min_size=4,
        max_size=4,
    ),
    volume=st.decimals(min_value=Decimal(0), max_value=Decimal(10_000), places=3),
    fraction=st.fractions(min_value=0, max_value=1),
)
def test_partial_klines_are_always_consistent(
    prices: list[Decimal], volume: Decimal, fraction: Any
) -> None:
    """Any candle at any progress gives high >= max(open, close) >= min >= low, volume <= final."""
    low, a, b, high = sorted(prices)
    candle = candle_of(START_MS, a, high, low, b, volume)
    progress = Decimal(fraction.numerator) / Decimal(fraction.denominator)
    row = kline_row(candle, CandleShape.of(candle, first_trade_id=1), progress)
    o, h, lo, c, v = (Decimal(x) for x in (row.open, row.high, row.low, row.close, row.volume))
    assert high >= h >= max(o, c) >= min(o, c) >= lo >= low
    assert 0 <= v <= volume
    if progress == 1:
        assert [o, h, lo, c, v] == candle_values(candle)


async def test_manual_clock_moves_only_when_advanced() -> None:
    """History candles are closed at start; time moves by whole candles on `advance`."""
    async with simulator() as sim:
        start = START_MS + HISTORY * MINUTE
        assert sim.now_ms == start
        await asyncio.sleep(0.05)
        assert sim.now_ms == start
        await sim.advance(candles=2)
        assert sim.now_ms == start + 2 * MINUTE
        await sim.advance(candles=0, updates=1)
        assert sim.now_ms == start + 2 * MINUTE + MINUTE // 3
        with pytest.raises(RuntimeError):
            await Simulator(sim_config(speed="max")).advance()


async def test_market_that_runs_out_stops_sending_klines_and_is_finished() -> None:
    """After the last candle closes there are no kline frames; the connection stays open."""
    async with simulator(candles=HISTORY + 2) as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        await sim.advance(candles=5)
        assert sim.finished
        await sim.wait_finished()
        frames = await recv_until_response(ws, 7)
        assert len(frames) == 6
        assert sim.now_ms == START_MS + (HISTORY + 2) * MINUTE


async def test_rest_klines_without_times_returns_the_latest_with_an_open_last_bar() -> None:
    """No start/end: the most recent `limit` bars, ascending; the newest is still forming."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        await sim.advance(candles=2, updates=1)
        url = f"{sim.rest_url}/api/v3/klines"
        status, rows, headers = await http_get(
            http, url, symbol="BTCUSDT", interval="1m", limit="5"
        )
        _, server, _ = await http_get(http, f"{sim.rest_url}/api/v3/time")
    now = START_MS + (HISTORY + 2) * MINUTE + MINUTE // 3
    assert status == 200
    assert headers["X-MBX-USED-WEIGHT-1M"] == "2"
    assert server == {"serverTime": now}
    assert [r[0] for r in rows] == [now - MINUTE // 3 - i * MINUTE for i in range(4, -1, -1)]
    source = {c.open_time_ms: c for c in sim.candles("BTCUSDT")}
    for row in rows[:-1]:
        assert row[6] == row[0] + MINUTE - 1 < now
        assert rest_values(row) == candle_values(source[row[0]])
    open_bar = rows[-1]
    assert open_bar[6] >= now
    assert Decimal(open_bar[5]) < source[open_bar[0]].volume
    assert len(open_bar) == 12
    assert open_bar[11] == "0"


async def test_rest_klines_follow_binance_start_and_end_time_rules() -> None:
    """startTime gives the oldest from it; endTime alone the latest up to it; both a window."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        url = f"{sim.rest_url}/api/v3/klines"
        base = {"symbol": "BTCUSDT", "interval": "1m"}

        async def opens(**params: str) -> list[int]:
            status, rows, _ = await http_get(http, url, **base, **params)
            assert status == 200
            return [r[0] for r in rows]

        t = [START_MS + i * MINUTE for i in range(HISTORY + 1)]
        assert await opens(startTime=str(t[2]), limit="3") == t[2:5]
        assert await opens(startTime=str(t[2] - 1), limit="2") == t[2:4]
        assert await opens(endTime=str(t[6]), limit="3") == t[4:7]
        assert await opens(startTime=str(t[1]), endTime=str(t[3])) == t[1:4]
        assert await opens(startTime=str(t[8])) == t[8:]
        assert await opens() == t
        assert await opens(startTime=str(t[-1] + MINUTE)) == []


async def test_rest_klines_never_show_candles_that_have_not_opened() -> None:
    """Candles after sim time are invisible even though they are preloaded."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        url = f"{sim.rest_url}/api/v3/klines"
        future = str(START_MS + (HISTORY + 5) * MINUTE)
        _, rows, _ = await http_get(http, url, symbol="BTCUSDT", interval="1m", startTime=future)
        assert rows == []
        await sim.advance(candles=6)
        _, rows, _ = await http_get(http, url, symbol="BTCUSDT", interval="1m", startTime=future)
        assert [r[0] for r in rows] == [int(future), int(future) + MINUTE]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"symbol": "NOPEUSDT", "interval": "1m"}, -1121),
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "1001"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "limit": "0"}, -1100),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "soon"}, -1100),
        ({"interval": "1m"}, -1102),
        ({"symbol": "BTCUSDT"}, -1102),
        ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "9", "endTime": "8"}, -1023),
    ],
)
async def test_rest_klines_reject_bad_parameters_with_binance_errors(
    params: dict[str, str], code: int
) -> None:
    """Bad symbol, interval, limit or times give HTTP 400 and Binance's error code."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        status, body, headers = await http_get(http, f"{sim.rest_url}/api/v3/klines", **params)
    assert status == 400
    assert body["code"] == code
    assert "X-MBX-USED-WEIGHT-1M" in headers
    if code == -1121:
        assert body == {"code": -1121, "msg": "Invalid symbol."}
    if code == -1102 and "symbol" not in params:
        assert body["msg"] == (
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
        )


async def test_exchange_info_lists_symbols_and_rejects_unknown_ones() -> None:
    """exchangeInfo describes every simulated symbol (weight 20) and 400s an unknown one."""
    async with simulator(symbols=("BTCUSDT", "ETHUSDT")) as sim, aiohttp.ClientSession() as http:
        url = f"{sim.rest_url}/api/v3/exchangeInfo"
        status, body, headers = await http_get(http, url, symbol="ETHUSDT")
        assert status == 200
        assert body["symbols"] == [
            {"symbol": "ETHUSDT", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "USDT"}
        ]
        assert headers["X-MBX-USED-WEIGHT-1M"] == "20"
        status, body, _ = await http_get(http, url, symbol="DOGEUSDT")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        _, body, _ = await http_get(http, url)
        assert [s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT"]


async def test_each_symbol_gets_its_own_market_on_one_timeline() -> None:
    """Several synthetic symbols differ in prices but share open times."""
    async with simulator(symbols=("BTCUSDT", "ETHUSDT")) as sim:
        btc, eth = sim.candles("BTCUSDT"), sim.candles("ETHUSDT")
    assert [c.open_time_ms for c in btc] == [c.open_time_ms for c in eth]
    assert btc[0].open != eth[0].open


async def test_unknown_streams_get_silence_not_an_error() -> None:
    """An unknown symbol or interval is accepted and never sends anything."""
    async with simulator() as sim:
        url = f"{sim.ws_url}/stream?streams=nopeusdt@kline_1m/btcusdt@kline_7m"
        async with connect(url) as ws:
            await sim.advance(candles=2)
            assert await recv_until_response(ws, 1) == []


async def test_subscribe_unsubscribe_and_list_subscriptions_are_acknowledged() -> None:
    """Control messages get {"result":…,"id":…}; subscribing starts the flow of frames."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": [STREAM], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await recv_json(ws) == {"result": [STREAM], "id": 2}
        await sim.advance(candles=1)
        assert len(await recv_until_response(ws, 3)) == 3
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": [STREAM], "id": 4}))
        assert await recv_json(ws) == {"result": None, "id": 4}
        await sim.advance(candles=1)
        assert await recv_until_response(ws, 5) == []


async def test_invalid_json_and_unknown_methods_get_binance_error_messages() -> None:
    """Invalid JSON gets code 3 and an unknown method code 2, as Binance words them."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws") as ws:
        await ws.send("not json")
        assert await recv_json(ws) == {
            "code": 3,
            "msg": "Invalid JSON: expected value at line 1 column 1",
        }
        await ws.send('{"method":"SUBSCRIBEX","params":[],"id":1}')
        error = await recv_json(ws)
        assert error["code"] == 2
        assert error["msg"].startswith("Invalid request: unknown variant `SUBSCRIBEX`, expected")
        await ws.send('{"params":[],"id":1}')
        assert (await recv_json(ws))["msg"].startswith("Invalid request: missing field `method`")


async def test_more_than_five_messages_a_second_closes_with_1008() -> None:
    """A client flooding control messages is disconnected with policy violation."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws") as ws:
        for request_id in range(8):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
        replies = await recv_until_closed(ws)
        assert len(replies) < 8
        assert ws.close_code == 1008
        assert ws.close_reason == "Too many requests"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            f"/stream?streams={STREAM}",
            {"stream": "!serverShutdown", "data": {"e": "serverShutdown"}},
        ),
        (f"/ws/{STREAM}", {"e": "serverShutdown"}),
    ],
)
async def test_server_shutdown_event_is_sent_then_the_connection_closes(
    path: str, expected: dict[str, Any]
) -> None:
    """serverShutdown (combined or raw) carries sim time and is followed by a close."""
    async with simulator(shutdown_grace_s=0.05) as sim, connect(sim.ws_url + path) as ws:
        assert sim.send_server_shutdown() == 1
        event = await recv_json(ws)
        data = event.get("data", event)
        assert data.pop("E") == sim.now_ms
        assert event == expected
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        assert ws.close_code == 1001
        assert sim.stats.shutdowns == 1


async def test_weight_limit_gives_429_with_retry_after_then_418_for_persisting() -> None:
    """Past the weight limit: 429 + Retry-After; asking again during it: 418 ban."""
    async with simulator(weight_limit=5) as sim, aiohttp.ClientSession() as http:
        url = f"{sim.rest_url}/api/v3/time"
        for used in range(1, 6):
            status, _, headers = await http_get(http, url)
            assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, str(used))
        status, body, headers = await http_get(http, url)
        assert status == 429
        assert body["code"] == -1003
        assert body["msg"].startswith("Too many requests;")
        assert int(headers["Retry-After"]) > 0
        status, body, headers = await http_get(http, url)
        assert status == 418
        assert body["code"] == -1003
        assert int(headers["Retry-After"]) > 0
        stats = sim.stats
        assert (stats.rest_requests, stats.rest_429, stats.rest_418) == (7, 1, 1)


async def test_injected_rest_failures_are_one_offs() -> None:
    """`fail_rest` answers the next requests with 503 (plain text), then serves again."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        sim.fail_rest(times=2, status=503, retry_after_s=2)
        url = f"{sim.rest_url}/api/v3/time"
        for _ in range(2):
            async with http.get(url) as response:
                assert response.status == 503
                assert response.headers["Retry-After"] == "2"
                assert response.content_type == "text/plain"
        status, body, _ = await http_get(http, url)
        assert (status, body) == (200, {"serverTime": sim.now_ms})
        sim.fail_rest(times=1, status=429)
        assert (await http_get(http, url))[0] == 429
        assert (await http_get(http, url))[0] == 200
        assert (sim.stats.rest_5xx, sim.stats.rest_429, sim.stats.rest_418) == (2, 1, 0)


async def test_seeded_rest_fault_rates_inject_429s_and_503s() -> None:
    """With rates set, some requests fail with 429 or 503, reproducibly for a seed."""
    faults = Faults(rest_429_rate=0.2, rest_5xx_rate=0.2, seed=3)
    statuses = []
    async with simulator(faults=faults) as sim, aiohttp.ClientSession() as http:
        for _ in range(40):
            async with http.get(f"{sim.rest_url}/api/v3/time") as response:
                statuses.append(response.status)
    assert {200, 429, 503} == set(statuses)
    assert sim.stats.rest_429 == statuses.count(429)


async def test_seeded_418s_and_rest_latency_come_with_retry_after() -> None:
    """A 418 rate answers some requests with 418 and Retry-After; latency delays each answer."""
    faults = Faults(rest_418_rate=0.3, rest_latency_s=0.01, retry_after_s=2.0, seed=4)
    statuses = []
    async with simulator(faults=faults) as sim, aiohttp.ClientSession() as http:
        for _ in range(30):
            async with http.get(f"{sim.rest_url}/api/v3/time") as response:
                statuses.append(response.status)
                if response.status == 418:
                    assert response.headers["Retry-After"] == "2"
    assert {200, 418} == set(statuses)
    assert sim.stats.rest_418 == statuses.count(418)


async def test_dropped_finals_are_never_sent_but_rest_serves_the_candles() -> None:
    """With every final frame dropped, the client sees partial updates only; REST has them."""
    faults = Faults(final_drop_rate=1.0, seed=1)
    config = {"faults": faults, "candles": HISTORY + 5, "updates_per_candle": 2}
    async with (
        simulator(**config) as sim,
        connect(f"{sim.ws_url}/ws/{STREAM}") as ws,
        aiohttp.ClientSession() as http,
    ):
        await sim.advance(candles=5)
        frames = [json.loads(f) for f in await recv_until_response(ws, 7)]
        status, rows, _ = await http_get(
            http, f"{sim.rest_url}/api/v3/klines", symbol="BTCUSDT", interval="1m", limit="1000"
        )
    assert frames
    assert not any(frame["k"]["x"] for frame in frames)
    assert sim.stats.finals_dropped == 5
    assert status == 200
    assert len(rows) >= HISTORY + 5


async def test_injected_duplicates_reorders_and_garbage_are_counted_and_delivered() -> None:
    """Every injected fault reaches the client; finals can arrive out of order; none are lost."""
    faults = Faults(duplicate_rate=0.15, reorder_rate=0.15, garbage_rate=0.15, seed=5)
    config = {"faults": faults, "candles": HISTORY + 60, "updates_per_candle": 1}
    async with simulator(**config) as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        await sim.advance(candles=60)
        frames = await recv_until_response(ws, 99)
        stats = sim.stats
    assert stats.duplicates > 0
    assert stats.reorders > 0
    assert stats.garbage > 0
    sent = dict(stats.frames_sent)
    assert sent.pop("response") == 1
    assert len(frames) == sum(sent.values())
    assert sent["garbage"] == stats.garbage
    assert sent["duplicate"] == stats.duplicates
    klines = []
    for text in frames:
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("e") == "kline":
            klines.append(message["k"])
    assert len(klines) == 120 + stats.duplicates
    final_opens = [k["t"] for k in klines if k["x"]]
    expected = [c.open_time_ms for c in sim.candles("BTCUSDT")[HISTORY:]]
    assert sorted(set(final_opens)) == expected
    assert any(later < earlier for earlier, later in itertools.pairwise(final_opens))


async def test_a_dropped_client_misses_frames_that_rest_still_serves() -> None:
    """Time moves on while a client is away; the missed candles are closed bars over REST."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
            await sim.advance(candles=1)
            assert len([await recv_json(ws) for _ in range(3)]) == 3
            assert sim.drop_connections() == 1
            await sim.advance(candles=3)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
            assert ws.close_code == 1001
        missed_from = START_MS + (HISTORY + 1) * MINUTE
        _, rows, _ = await http_get(
            http,
            f"{sim.rest_url}/api/v3/klines",
            symbol="BTCUSDT",
            interval="1m",
            startTime=str(missed_from),
        )
        source = sim.candles("BTCUSDT")[HISTORY + 1 : HISTORY + 4]
        assert [rest_values(r) for r in rows[:3]] == [candle_values(c) for c in source]
        assert rows[3][0] == sim.now_ms
        assert sim.stats.drops == 1


async def test_an_aborted_drop_ends_the_connection_without_a_close_frame() -> None:
    """`drop_connections(abort=True)` cuts TCP: the client sees no close frame."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        sim.drop_connections(abort=True)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        assert ws.close_code == 1006
        await eventually(lambda: sim.stats.connections_active == 0)


async def test_scheduled_drops_alternate_a_close_frame_and_a_cut_connection() -> None:
    """With drop_every_s, connections are closed with 1001, then aborted, and so on."""
    async with simulator(faults=Faults(drop_every_s=0.05)) as sim:
        codes = []
        for _ in range(2):
            async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
                await recv_until_closed(ws)
                codes.append(ws.close_code)
        assert codes == [1001, 1006]
        assert sim.stats.drops >= 2


async def test_scheduled_server_shutdowns_reach_connected_clients() -> None:
    """With shutdown_every_s, clients get serverShutdown and are then closed."""
    faults = Faults(shutdown_every_s=0.05)
    async with (
        simulator(faults=faults, shutdown_grace_s=0.01) as sim,
        connect(f"{sim.ws_url}/ws/{STREAM}") as ws,
    ):
        frames = await recv_until_closed(ws)
        assert json.loads(frames[0])["e"] == "serverShutdown"
        assert ws.close_code == 1001


async def test_set_and_get_property_switch_to_combined_frames() -> None:
    """SET_PROPERTY combined=true on /ws makes later frames combined."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}))
        assert await recv_json(ws) == {"result": True, "id": 2}
        await sim.advance(candles=1)
        assert (await recv_json(ws))["stream"] == STREAM


async def test_deleted_candles_leave_a_gap_that_rest_cannot_fill() -> None:
    """Deleted candles are never streamed nor served, like a maintenance window."""
    async with simulator() as sim, aiohttp.ClientSession() as http:
        gap = [START_MS + (HISTORY + i) * MINUTE for i in (1, 2)]
        old = [START_MS + 3 * MINUTE]
        assert sim.delete_candles("BTCUSDT", gap + old) == 3
        async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
            await sim.advance(candles=4)
            frames = [json.loads(f) for f in await recv_until_response(ws, 1)]
        assert sorted({f["k"]["t"] for f in frames}) == [gap[0] - MINUTE, gap[1] + MINUTE]
        _, rows, _ = await http_get(
            http,
            f"{sim.rest_url}/api/v3/klines",
            symbol="BTCUSDT",
            interval="1m",
            startTime=str(START_MS),
        )
        opens = [r[0] for r in rows]
        assert not set(gap + old) & set(opens)
        assert len(opens) == HISTORY + 5 - 3


async def test_silence_keeps_the_socket_open_and_answering_but_sends_no_data() -> None:
    """While silenced, control replies still come but kline frames do not; time moves on."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        sim.silence(60)
        await sim.advance(candles=2)
        assert await recv_until_response(ws, 1) == []
        sim.end_silence()
        await sim.advance(candles=1)
        frames = [json.loads(f) for f in await recv_until_response(ws, 2)]
        assert [f["k"]["t"] for f in frames] == [START_MS + (HISTORY + 2) * MINUTE] * 3
        assert sim.stats.silences == 1


async def test_accept_then_close_closes_the_next_connections_after_the_handshake() -> None:
    """The next N connections are closed right away; the one after that is served."""
    async with simulator(faults=Faults(accept_then_close=1)) as sim:
        async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
            await sim.advance(candles=1)
            assert len(await recv_until_response(ws, 1)) == 3
        assert sim.stats.connections_accepted == 2


async def test_a_client_that_never_pongs_is_disconnected() -> None:
    """Server pings go unanswered: the connection is closed after the pong timeout."""
    async with (
        simulator(ping_interval_s=0.05, pong_timeout_s=0.2) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}/ws/{STREAM}", autoping=False) as ws,
    ):
        kinds = []
        while (msg := await ws.receive(timeout=RECV_TIMEOUT_S)).type is not aiohttp.WSMsgType.CLOSE:
            kinds.append(msg.type)
        assert aiohttp.WSMsgType.PING in kinds
        assert msg.data == 1008


async def test_connections_are_closed_at_the_age_limit() -> None:
    """A connection older than max_connection_age_s is closed with 1001."""
    async with (
        simulator(max_connection_age_s=0.1) as sim,
        connect(f"{sim.ws_url}/ws/{STREAM}") as ws,
    ):
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
        assert ws.close_code == 1001


async def test_max_speed_starts_at_the_first_subscriber_and_sends_every_candle() -> None:
    """At speed max nothing runs before a client subscribes; then every final arrives."""
    async with simulator(speed="max", history=0, candles=300) as sim:
        assert sim.now_ms == START_MS
        async with connect(f"{sim.ws_url}/stream?streams={STREAM}") as ws:
            first = await recv_json(ws)
            finals: list[list[Decimal]] = []
            while len(finals) < 300:
                data = (await recv_json(ws))["data"]
                if data["k"]["x"]:
                    finals.append(kline_values(data["k"]))
            await sim.wait_finished()
    assert first["data"]["k"]["t"] == START_MS
    assert first["data"]["E"] == START_MS + MINUTE // 3
    assert finals == [candle_values(c) for c in sim.candles("BTCUSDT")]


async def test_finite_speed_clock_waits_for_a_subscriber_then_runs() -> None:
    """At a finite speed, a late client still gets the first update; time then moves on."""
    async with simulator(speed=6000.0) as sim:
        start = sim.now_ms
        async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
            first = await recv_json(ws)
            assert (first["k"]["t"], first["E"]) == (start, start + MINUTE // 3)
            await eventually(lambda: sim.now_ms >= start + 3 * MINUTE)


async def test_rest_never_shows_a_bar_closed_before_its_final_frame_at_finite_speed() -> None:
    """While the clock runs, every bar REST calls closed already has its exact final values."""
    async with (
        simulator(speed=600.0) as sim,
        connect(f"{sim.ws_url}/ws/{STREAM}") as ws,
        aiohttp.ClientSession() as http,
    ):
        await recv_json(ws)
        source = {c.open_time_ms: c for c in sim.candles("BTCUSDT")}
        for _ in range(5):
            url = f"{sim.rest_url}/api/v3/klines"
            _, rows, _ = await http_get(http, url, symbol="BTCUSDT", interval="1m", limit="3")
            for row in rows[:-1]:
                assert rest_values(row) == candle_values(source[row[0]])
            await asyncio.sleep(0.05)


async def test_csv_source_serves_exactly_the_file_candles(tmp_path: Path) -> None:
    """A CSV market serves its rows, bounded by `candles`."""
    csv = tmp_path / "candles.csv"
    rows = [
        f"{START_MS + i * MINUTE},{100 + i}.5,{102 + i},{99 + i},{101 + i},{i + 1}.25"
        for i in range(8)
    ]
    csv.write_text("timestamp_ms,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    async with simulator(source=CsvSource(paths=(csv,)), candles=6, history=2) as sim:
        candles = sim.candles("BTCUSDT")
        async with connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
            await sim.advance(candles=1)
            frames = [json.loads(f) for f in await recv_until_response(ws, 1)]
    assert len(candles) == 6
    assert candles[2].open == Decimal("102.5")
    assert frames[-1]["k"]["o"] == "102.5"
    assert frames[-1]["k"]["v"] == "3.25"


def _cli(*args: str, tmp_path: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paper_trader.simulator", *args],
        cwd=ROOT,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_help_exits_zero(tmp_path: Path) -> None:
    """`--help` documents the flags and exits 0."""
    result = _cli("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "--drop-every" in result.stdout
    assert "--exit-when-finished" in result.stdout


def test_cli_rejects_a_bad_csv_with_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    """An invalid CSV is a usage error: exit 2, one line naming file:line."""
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "timestamp_ms,open,high,low,close,volume\n1672531200000,1,2,0.5,1.5,3\nx,1,2,3\n"
    )
    result = _cli("--csv", str(csv), "--symbol", "BTCUSDT", tmp_path=tmp_path)
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert f"{csv}:3" in error


def test_cli_rejects_bad_arguments_with_exit_2(tmp_path: Path) -> None:
    """A bad speed or rate is reported by argparse with exit 2."""
    assert _cli("--speed", "fast", tmp_path=tmp_path).returncode == 2
    result = _cli("--duplicate-rate", "1.5", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "duplicate_rate" in result.stderr


def test_cli_exits_zero_when_the_market_is_finished(tmp_path: Path) -> None:
    """`--exit-when-finished` stops serving after the last candle; the port file is written."""
    port_file = tmp_path / "port"
    args = ["--speed", "max", "--start-now", "--candles", "30", "--history", "5"]
    result = _cli(
        *args, "--exit-when-finished", "0", "--port-file", str(port_file), tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    port = int(port_file.read_text())
    assert result.stdout.splitlines() == [f"simulator listening on http://127.0.0.1:{port}"]


async def test_cli_serves_rest_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    """The CLI serves the REST API until SIGTERM, then exits 0."""
    port_file = tmp_path / "port"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paper_trader.simulator",
        "--port-file",
        str(port_file),
        cwd=ROOT,
        env=subprocess_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(port_file.exists, timeout=20)
        url = f"http://127.0.0.1:{int(port_file.read_text())}/api/v3/time"
        async with aiohttp.ClientSession() as http:
            _, body, _ = await http_get(http, url)
        assert body == {"serverTime": START_MS + 100 * MINUTE}
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0
        assert out.decode().startswith("simulator listening on http://127.0.0.1:")
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
