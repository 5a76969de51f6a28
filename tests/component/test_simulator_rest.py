"""The simulated exchange's REST API: Binance's klines, exchangeInfo and time endpoints, their
errors and weight limits, and no bar shown closed before its final frame."""

import asyncio
from decimal import Decimal

import aiohttp
import pytest
from fakes.simulator_rig import (
    HISTORY,
    MINUTE,
    START_MS,
    STREAM,
    candle_values,
    http_get,
    recv_json,
    rest_values,
    simulator,
)
from websockets.asyncio.client import connect


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
