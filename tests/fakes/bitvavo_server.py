"""A loopback Bitvavo: the ``candles`` WebSocket channel and REST candles on one port.

What it reproduces (docs.bitvavo.com, official SDKs): one subscribe message answered by a
*cumulative* ``subscribed`` event (markets the fake does not list, or was told to reject, are
left out of it); candle updates as ``{"event":"candle"}`` with an integer timestamp (or the
docs' ``"candles"`` with a string one), only when the test pushes one; ``GET /v2/time``;
``GET /v2/{market}/candles`` newest-first, at most ``limit`` ≤ 1440 rows, ``start`` and ``end``
aligned to the interval (400 ``{"errorCode":205,…}`` otherwise), ``end`` exclusive; 429 with
``Retry-After`` and ``{"errorCode":110,…}`` on demand. The exchange clock is
``server_time_ms``, set by the test, never the local wall clock.

    async with FakeBitvavo(markets={"BTC-EUR"}) as fake:
        fake.add_history("BTC-EUR", candles)
        adapter = BitvavoAdapter(subs, ws_base=fake.ws_url, rest_base=fake.rest_url)
"""

import asyncio
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Self

from aiohttp import WSCloseCode, WSMsgType, web

from paper_trader.domain import Candle, Interval

DEFAULT_SERVER_TIME_MS = 1_704_153_600_000  # 2024-01-02T00:00:00Z
MAX_LIMIT = 1440
INTERVALS = frozenset({"1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"})


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    subscriptions: dict[str, set[str]] = field(default_factory=dict)  # interval -> markets


class FakeBitvavo:
    """A Bitvavo WebSocket and REST server on ``127.0.0.1:0``."""

    def __init__(
        self,
        *,
        markets: Iterable[str] = ("BTC-EUR",),
        interval: Interval = Interval.M1,
        server_time_ms: int = DEFAULT_SERVER_TIME_MS,
    ) -> None:
        self.markets = set(markets)
        self.interval = interval
        self.server_time_ms = server_time_ms
        self.connections = 0
        self.subscribe_messages = 0
        self.rest_requests = 0
        self.pings = 0  # WebSocket protocol pings: Bitvavo has no application ping
        self.received: list[str] = []
        self.rest_log: list[tuple[str, dict[str, str]]] = []
        self._history: dict[str, dict[int, Candle]] = {m: {} for m in self.markets}
        self._rejected: set[str] = set()
        self._silent = False
        self._failures = 0
        self._failure_status = 429
        self._retry_after_s = 0.0
        self._conns: set[_Connection] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def ws_url(self) -> str:
        """Return the WebSocket URL (``ws://127.0.0.1:<port>/v2/``)."""
        return f"ws://127.0.0.1:{self._port}/v2/"

    @property
    def rest_url(self) -> str:
        """Return the REST base URL (``http://127.0.0.1:<port>/v2``)."""
        return f"http://127.0.0.1:{self._port}/v2"

    @property
    def open_connections(self) -> int:
        """Return how many WebSocket connections are open now."""
        return len(self._conns)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/v2/", self._ws)
        app.router.add_get("/v2/time", self._time)
        app.router.add_get("/v2/{market}/candles", self._candles)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with asyncio.timeout(5):
            await self.drop_connections()
        assert self._runner is not None
        await self._runner.cleanup()

    def add_history(self, symbol: str, candles: Iterable[Candle]) -> None:
        """Store candles REST serves (upserted by open time)."""
        for candle in candles:
            self._store(symbol, candle)

    async def push(self, symbol: str, candle: Candle, *, event: str = "candle") -> None:
        """Store ``candle`` and send it to every connection subscribed to its market.

        ``event="candle"`` sends the SDK form (integer timestamp); ``"candles"`` the docs form
        (string timestamp). Nothing is sent while silenced.
        """
        self._store(symbol, candle)
        if self._silent:
            return
        stamp: int | str = candle.open_time_ms if event == "candle" else str(candle.open_time_ms)
        row = [stamp, *(str(v) for v in _values(candle))]
        frame = {
            "event": event,
            "market": symbol,
            "interval": candle.interval.value,
            "candle": [row],
        }
        text = json.dumps(frame)
        for conn in list(self._conns):
            if symbol in conn.subscriptions.get(candle.interval.value, ()):
                await _send(conn, text)

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as is to every open connection (garbage, unknown shapes, errors)."""
        for conn in list(self._conns):
            await _send(conn, text)

    async def drop_connections(self, *, abort: bool = False) -> None:
        """Close every connection: with a close frame, or ``abort`` the TCP connection."""
        for conn in list(self._conns):
            if abort and conn.transport is not None:
                conn.transport.abort()
            else:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake drop")

    def silence(self, silent: bool = True) -> None:
        """Keep connections open but send no candle updates (``False`` resumes)."""
        self._silent = silent

    def fail_rest(self, times: int, status: int = 429, retry_after_s: float = 60.0) -> None:
        """Answer the next ``times`` REST requests with ``status`` and ``Retry-After``."""
        self._failures, self._failure_status, self._retry_after_s = times, status, retry_after_s

    def reject_symbols(self, symbols: Iterable[str]) -> None:
        """Leave these markets out of every ``subscribed`` answer from now on."""
        self._rejected |= set(symbols)

    def _store(self, symbol: str, candle: Candle) -> None:
        self._history.setdefault(symbol, {})[candle.open_time_ms] = candle

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = _Connection(ws, request.transport)
        self._conns.add(conn)
        self.connections += 1
        try:
            async for msg in ws:
                if msg.type is WSMsgType.PING:
                    self.pings += 1
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
        finally:
            self._conns.discard(conn)
        return ws

    async def _on_text(self, conn: _Connection, text: str) -> None:
        self.received.append(text)
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await _send(conn, _error_frame(102, "The JSON object you sent is invalid."))
            return
        action = message.get("action")
        if action == "subscribe":
            self.subscribe_messages += 1
            await self._subscribe(conn, message)
        else:
            await _send(conn, _error_frame(110, f"Invalid endpoint: {action}", action=action))

    async def _subscribe(self, conn: _Connection, message: dict[str, object]) -> None:
        channels = message.get("channels")
        for channel in channels if isinstance(channels, list) else []:
            intervals = channel.get("interval", []) if isinstance(channel, dict) else None
            if not isinstance(intervals, list) or channel.get("name") != "candles":
                await _send(conn, _error_frame(203, "Missing channel parameters.", "subscribe"))
                return
            if not all(isinstance(i, str) and i in INTERVALS for i in intervals):
                await _send(conn, _error_frame(205, "Invalid parameter: interval", "subscribe"))
                return
            for interval in intervals:
                for market in channel.get("markets", []):
                    if market in self.markets and market not in self._rejected:
                        conn.subscriptions.setdefault(interval, set()).add(market)
        active = {interval: sorted(ms) for interval, ms in conn.subscriptions.items()}
        ack = {"event": "subscribed", "subscriptions": {"candles": active} if active else {}}
        await _send(conn, json.dumps(ack))

    def _failure(self) -> web.Response | None:
        if self._failures <= 0:
            return None
        self._failures -= 1
        body = {"errorCode": 110, "error": "Rate limit exceeded. Your IP is blocked."}
        headers = {"Retry-After": f"{self._retry_after_s:g}"}
        return web.json_response(body, status=self._failure_status, headers=headers)

    def _count(self, request: web.Request) -> None:
        self.rest_requests += 1
        self.rest_log.append((request.path, dict(request.query)))

    async def _time(self, request: web.Request) -> web.Response:
        self._count(request)
        failure = self._failure()
        return failure if failure is not None else web.json_response({"time": self.server_time_ms})

    async def _candles(self, request: web.Request) -> web.Response:
        self._count(request)
        failure = self._failure()
        if failure is not None:
            return failure
        market = request.match_info["market"]
        if market not in self.markets:
            return _bad_request(205, "Invalid parameter: market")
        query = request.query
        interval = query.get("interval")
        if interval is None:
            return _bad_request(203, "interval parameter is required.")
        if interval not in INTERVALS:
            return _bad_request(205, "Invalid parameter: interval")
        step = Interval(interval).ms
        limit, start, end = (_int(query.get(k)) for k in ("limit", "start", "end"))
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            return _bad_request(205, "Invalid parameter: limit")
        for name, value in (("start", start), ("end", end)):
            if value == -1 or (value is not None and value % step):
                return _bad_request(205, f"Invalid parameter: {name} must align with the interval")
        rows = self._rows(market, interval, MAX_LIMIT if limit is None else limit, start, end)
        return web.json_response(rows)

    def _rows(
        self, market: str, interval: str, limit: int, start: int | None, end: int | None
    ) -> list[list[object]]:
        """Return candles in ``[start, end)`` that exist by server time, newest first."""
        candles = sorted(
            (
                c
                for c in self._history.get(market, {}).values()
                if c.interval.value == interval
                and c.open_time_ms <= self.server_time_ms
                and (start is None or c.open_time_ms >= start)
                and (end is None or c.open_time_ms < end)
            ),
            key=lambda c: c.open_time_ms,
            reverse=True,
        )
        return [[c.open_time_ms, *(str(v) for v in _values(c))] for c in candles[:limit]]


def _values(candle: Candle) -> tuple[Decimal, ...]:
    return candle.open, candle.high, candle.low, candle.close, candle.volume


def _int(value: str | None) -> int | None:
    """Return a query integer, None if absent, -1 if it is not a non-negative integer."""
    if value is None:
        return None
    return int(value) if value.isascii() and value.isdigit() else -1


def _error_frame(code: int, text: str, action: object = None) -> str:
    if action is None:
        return json.dumps({"event": "error", "errorCode": code, "error": text})
    return json.dumps({"action": action, "errorCode": code, "error": text})


def _bad_request(code: int, text: str) -> web.Response:
    return web.json_response({"errorCode": code, "error": text}, status=400)


async def _send(conn: _Connection, text: str) -> None:
    if conn.ws.closed:
        return
    with contextlib.suppress(ConnectionError):  # the client went away; its handler cleans up
        await conn.ws.send_str(text)
