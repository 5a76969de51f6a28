"""The simulated exchange's WebSocket: Binance's kline frames and control messages over
loopback, its clock (manual, finite speed, max speed) and its markets."""

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import eventually
from fakes.candles import candle_of
from fakes.simulator_rig import (
    HISTORY,
    KLINE_KEYS,
    MINUTE,
    RECV_TIMEOUT_S,
    START_MS,
    STREAM,
    candle_values,
    kline_values,
    recv_json,
    recv_until_closed,
    recv_until_response,
    sim_config,
    simulator,
)
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from paper_trader.simulator import CsvSource, Simulator
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


async def test_set_and_get_property_switch_to_combined_frames() -> None:
    """SET_PROPERTY combined=true on /ws makes later frames combined."""
    async with simulator() as sim, connect(f"{sim.ws_url}/ws/{STREAM}") as ws:
        await ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}))
        assert await recv_json(ws) == {"result": True, "id": 2}
        await sim.advance(candles=1)
        assert (await recv_json(ws))["stream"] == STREAM


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
