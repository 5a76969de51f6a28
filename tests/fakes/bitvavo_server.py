"""A loopback Bitvavo: the ``candles`` WebSocket channel and REST candles on one port.

What it reproduces (docs.bitvavo.com, official SDKs): one subscribe message answered by a
*cumulative* ``subscribed`` event (markets the fake does not list, or was told to reject, are
left out of it); candle updates as ``{"event":"candle"}`` with an integer timestamp (or the
docs' ``"candles"`` with a string one), only when the test pushes one; ``GET /v2/time``;
``GET /v2/{market}/candles`` newest-first, at most ``limit`` ≤ 1440 rows, ``start`` and ``end``
aligned to the interval (400 ``{"errorCode":205,…}`` otherwise), ``end`` exclusive. The market
clock is ``server_time_ms``, set by the test, never the local wall clock.

Rate limits (docs "Rate limits"): every REST request costs weight 1 from a window of
``rate_limit`` points that resets at ``resetat`` (60 s after it opened, on the venue's running
clock); every answer carries ``bitvavo-ratelimit-limit``, ``-remaining`` and ``-resetat``
(Unix ms). A request heavier than what is left gets HTTP 429 ``{"errorCode":110,…}`` without
``Retry-After`` until the window resets. ``set_rate_window`` arranges the window, ``ban`` makes
every request answer the older code 105 naming the ban's end (HTTP 403: the docs do not say
which status it comes with) until that time. ``fail_rest`` injects failures as before.

    async with FakeBitvavo(markets={"BTC-EUR"}) as fake:
        fake.add_history("BTC-EUR", candles)
        adapter = BitvavoAdapter(subs, ws_base=fake.ws_url, rest_base=fake.rest_url)
"""

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import WSMsgType, web
from fakes.venue_server import DEFAULT_SERVER_TIME_MS, FakeVenueServer, Handler, VenueConnection

from paper_trader.domain import Candle, Interval

MAX_LIMIT = 1440
RATE_LIMIT = 1000
WINDOW_MS = 60_000
REQUEST_WEIGHT = 1  # /time and /{market}/candles alike
BAN_TEXT = (
    "Your IP or API key has been banned for not respecting the rate limit. "
    "The ban expires at {until}."
)
INTERVALS = frozenset({"1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"})


@dataclass(eq=False)
class _Connection(VenueConnection):
    subscriptions: dict[str, set[str]] = field(default_factory=dict)  # interval -> markets


class FakeBitvavo(FakeVenueServer[_Connection]):
    """A Bitvavo WebSocket and REST server on ``127.0.0.1:0``.

    ``pings`` counts WebSocket protocol pings: Bitvavo has no application ping.
    """

    ws_path = "/v2/"
    rest_path = "/v2"
    failure_body: ClassVar[dict[str, object]] = {
        "errorCode": 110,
        "error": "Rate limit exceeded. Your IP is blocked.",
    }

    def __init__(
        self,
        *,
        markets: Iterable[str] = ("BTC-EUR",),
        interval: Interval = Interval.M1,
        server_time_ms: int = DEFAULT_SERVER_TIME_MS,
        rate_limit: int = RATE_LIMIT,
    ) -> None:
        super().__init__(markets=markets, interval=interval, server_time_ms=server_time_ms)
        self.rate_limit = rate_limit
        self.rate_limited_answers = 0  # 429 / 110 sent
        self.ban_answers = 0  # 105 sent
        self.windows = 0  # rate-limit windows opened
        self.lowest_remaining = rate_limit  # the least weight ever left in a window
        self._remaining = 0
        self._reset_at_ms = 0  # the current window is closed: the next request opens one
        self._banned_until_ms = 0

    def set_rate_window(self, *, remaining: int, reset_at_ms: int) -> None:
        """Make the current window have ``remaining`` weight left until ``reset_at_ms``."""
        self._remaining, self._reset_at_ms = remaining, reset_at_ms

    def ban(self, until_ms: int) -> None:
        """Answer every REST request with code 105 until the venue's clock reaches ``until_ms``."""
        self._banned_until_ms = until_ms

    def rest_routes(self) -> dict[str, Handler]:
        return {"/v2/time": self._time, "/v2/{market}/candles": self._candles}

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
                await conn.send(text)

    def _connection(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None
    ) -> _Connection:
        return _Connection(ws, transport)

    def _websocket(self) -> web.WebSocketResponse:
        return web.WebSocketResponse(autoping=False)

    async def _serve(self, conn: _Connection) -> None:
        async for msg in conn.ws:
            if msg.type is WSMsgType.PING:
                self.pings += 1
                await conn.ws.pong(msg.data)
            elif msg.type is WSMsgType.TEXT:
                await self._on_text(conn, msg.data)

    async def _on_text(self, conn: _Connection, text: str) -> None:
        message = self._decode(text)
        if message is None:
            await conn.send(_error_frame(102, "The JSON object you sent is invalid."))
            return
        action = message.get("action")
        if action == "subscribe":
            self.subscribe_messages += 1
            await self._subscribe(conn, message)
        else:
            await conn.send(_error_frame(110, f"Invalid endpoint: {action}", action=action))

    async def _subscribe(self, conn: _Connection, message: dict[str, Any]) -> None:
        channels = message.get("channels")
        for channel in channels if isinstance(channels, list) else []:
            intervals = channel.get("interval", []) if isinstance(channel, dict) else None
            if not isinstance(intervals, list) or channel.get("name") != "candles":
                await conn.send(_error_frame(203, "Missing channel parameters.", "subscribe"))
                return
            if not all(isinstance(i, str) and i in INTERVALS for i in intervals):
                await conn.send(_error_frame(205, "Invalid parameter: interval", "subscribe"))
                return
            for interval in intervals:
                for market in channel.get("markets", []):
                    if market in self.markets and market not in self._rejected:
                        conn.subscriptions.setdefault(interval, set()).add(market)
        active = {interval: sorted(ms) for interval, ms in conn.subscriptions.items()}
        ack = {"event": "subscribed", "subscriptions": {"candles": active} if active else {}}
        await conn.send(json.dumps(ack))

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Charge the request's weight; refuse it with 105 while banned, 429/110 if over."""
        now = self.venue_now_ms()
        if now < self._banned_until_ms:
            self.ban_answers += 1
            text = BAN_TEXT.format(until=self._banned_until_ms)
            return web.json_response({"errorCode": 105, "error": text}, status=403)
        if now >= self._reset_at_ms:
            self._remaining, self._reset_at_ms = self.rate_limit, now + WINDOW_MS
            self.windows += 1
        if self._remaining < REQUEST_WEIGHT:
            self.rate_limited_answers += 1
            return web.json_response(dict(self.failure_body), status=429)
        self._remaining -= REQUEST_WEIGHT
        self.lowest_remaining = min(self.lowest_remaining, self._remaining)
        return None

    def _stamp(self, response: web.StreamResponse) -> None:
        super()._stamp(response)
        response.headers["bitvavo-ratelimit-limit"] = str(self.rate_limit)
        response.headers["bitvavo-ratelimit-remaining"] = str(self._remaining)
        response.headers["bitvavo-ratelimit-resetat"] = str(self._reset_at_ms)

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"time": self.server_time_ms})

    async def _candles(self, request: web.Request) -> web.Response:
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
