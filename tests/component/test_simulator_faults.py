"""The simulated exchange's faults: failing and slow REST answers, dropped, duplicated,
reordered and garbage frames, dropped and refused connections, shutdowns, silence, deleted
candles, and the server's ping and age limits."""

import asyncio
import itertools
import json

import aiohttp
import pytest
from conftest import eventually
from fakes.simulator_rig import (
    HISTORY,
    MINUTE,
    RECV_TIMEOUT_S,
    START_MS,
    STREAM,
    candle_values,
    http_get,
    recv_json,
    recv_until_closed,
    recv_until_response,
    rest_values,
    simulator,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from paper_trader.simulator import Faults


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
