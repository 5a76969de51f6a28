"""Clients of the simulated exchange in the tests: a manual-clock simulator, frames read
with a timeout, REST GETs, and the OHLCV of candles, klines and REST rows to compare."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from paper_trader.domain import Candle, Interval
from paper_trader.simulator import Simulator, SimulatorConfig

MINUTE = Interval.M1.ms
START_MS = 1_672_531_200_000
HISTORY = 10
STREAM = "btcusdt@kline_1m"
KLINE_KEYS = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
RECV_TIMEOUT_S = 5.0


def sim_config(**overrides: Any) -> SimulatorConfig:
    """Return a manual-clock simulator's settings: HISTORY closed candles of 40, unless
    ``overrides`` say otherwise."""
    settings: dict[str, Any] = {"speed": "manual", "history": HISTORY, "candles": 40}
    settings.update(overrides)
    return SimulatorConfig(**settings)


@asynccontextmanager
async def simulator(**overrides: Any) -> AsyncIterator[Simulator]:
    """Run a simulator of ``sim_config(**overrides)`` for the block."""
    async with Simulator(sim_config(**overrides)) as sim:
        yield sim


async def recv_json(ws: ClientConnection) -> Any:
    """Return the next frame, parsed, failing after RECV_TIMEOUT_S."""
    return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))


async def recv_until_response(ws: ClientConnection, request_id: int) -> list[str]:
    """Ask for the subscriptions and return every frame that arrived before the answer."""
    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
    frames: list[str] = []
    while True:
        text = str(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S))
        if text.startswith('{"result"') and f'"id":{request_id}}}' in text:
            return frames
        frames.append(text)


async def recv_until_closed(ws: ClientConnection) -> list[str]:
    """Return every frame until the server closes the connection."""
    frames: list[str] = []
    try:
        while True:
            frames.append(str(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)))
    except ConnectionClosed:
        return frames


async def http_get(session: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any, Any]:
    """Return the status, the JSON body and the headers of a GET."""
    async with session.get(url, params=params) as response:
        body = await response.json(content_type=None)
        return response.status, body, response.headers


def candle_values(candle: Candle) -> list[Decimal]:
    """Return a candle's open, high, low, close and volume."""
    return [candle.open, candle.high, candle.low, candle.close, candle.volume]


def kline_values(k: dict[str, Any]) -> list[Decimal]:
    """Return a kline payload's open, high, low, close and volume."""
    return [Decimal(k[key]) for key in ("o", "h", "l", "c", "v")]


def rest_values(row: list[Any]) -> list[Decimal]:
    """Return a REST kline row's open, high, low, close and volume."""
    return [Decimal(v) for v in row[1:6]]
