"""A loopback Kraken: WebSocket v2 ``ohlc`` and REST ``/0/public`` on one port.

What it reproduces (docs.kraken.com WS v2, krakenfx/api-specs, captured frames): a ``status``
frame on connect; one subscribe answer *per symbol*, refusing unknown symbols and the legacy
``XBT/USD`` spelling with ``"Currency pair not supported …"``; a ``snapshot`` of the latest
candles after the answers, then ``update`` frames when the test pushes, numbers as JSON
numbers; ``{"channel":"heartbeat"}`` about once a second on a subscribed connection with no
other traffic (also while silenced: the "heartbeats flow, data does not" stall); ``pong`` for
``ping``. REST: ``/0/public/Time``; ``/0/public/OHLC`` with only the last 720 rows, the last
of them the current, uncommitted candle, keyed by Kraken's own pair name (``XXBTZUSD``);
errors as ``{"error":["EQuery:Unknown asset pair"]}`` with HTTP 200, throttling too
(docs "REST rate limits"): ``throttle(times, error)`` answers the next requests with
``EAPI:Rate limit exceeded``, ``EGeneral:Too many requests`` or ``EService:Throttled: <unix s>``
(``throttled_until`` spells that one). The exchange clock is ``server_time_ms``, set by the
test, never the local wall clock.

    async with FakeKraken(markets={"BTC-USD"}) as fake:
        fake.add_history("BTC-USD", candles)
        adapter = KrakenAdapter(subs, ws_base=fake.ws_url, rest_base=fake.rest_url)
"""

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import msgspec
from aiohttp import WSMsgType, web
from fakes.venue_server import DEFAULT_SERVER_TIME_MS, FakeVenueServer, Handler, VenueConnection

from paper_trader.domain import Candle, Interval

MAX_ROWS = 720
MINUTES = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
_LEGACY = {"BTC": "XBT", "DOGE": "XDG"}  # REST altnames keep Kraken's old asset codes
_PAIR_KEYS = {
    "XBTUSD": "XXBTZUSD",
    "XBTEUR": "XXBTZEUR",
    "ETHUSD": "XETHZUSD",
    "ETHEUR": "XETHZEUR",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ENCODE = msgspec.json.Encoder(decimal_format="number").encode
_HEARTBEAT = '{"channel":"heartbeat"}'


@dataclass(eq=False)
class _Connection(VenueConnection):
    subscriptions: set[tuple[str, int]] = field(default_factory=set)  # (BTC/USD, minutes)


class FakeKraken(FakeVenueServer[_Connection]):
    """A Kraken WebSocket v2 and REST server on ``127.0.0.1:0``.

    ``pings`` counts application pings (``{"method":"ping"}``); while silenced heartbeats go
    on; ``reject_symbols`` takes the internal form (``BTC-USD``); ``fail_rest(status=200)``
    answers Kraken's own way: ``{"error":["EGeneral:Too many requests"]}``.
    """

    ws_path = "/v2"
    rest_path = ""
    failure_body: ClassVar[dict[str, object]] = {"error": ["EGeneral:Too many requests"]}

    def __init__(
        self,
        *,
        markets: Iterable[str] = ("BTC-USD",),
        interval: Interval = Interval.M1,
        server_time_ms: int = DEFAULT_SERVER_TIME_MS,
        heartbeat_interval_s: float | None = 1.0,
        snapshot_candles: int = 10,
        max_rows: int = MAX_ROWS,
    ) -> None:
        super().__init__(markets=markets, interval=interval, server_time_ms=server_time_ms)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.snapshot_candles = snapshot_candles
        self.max_rows = max_rows
        self._throttles: list[str] = []

    def rest_routes(self) -> dict[str, Handler]:
        return {"/0/public/Time": self._time, "/0/public/OHLC": self._ohlc}

    def throttle(self, times: int, error: str) -> None:
        """Answer the next ``times`` REST requests with HTTP 200 and ``{"error":[error]}``."""
        self._throttles.extend([error] * times)

    def _refusal(self, request: web.Request) -> web.Response | None:
        if not self._throttles:
            return None
        return web.json_response({"error": [self._throttles.pop(0)]})

    async def push(self, symbol: str, candle: Candle, *, event: str = "update") -> None:
        """Store ``candle`` and send it as an ``ohlc`` frame of type ``event`` to subscribers."""
        self._store(symbol, candle)
        if self._silent:
            return
        frame = self._ohlc_frame(event, [candle], symbol)
        key = (_ws_symbol(symbol), candle.interval.ms // 60_000)
        for conn in list(self._conns):
            if key in conn.subscriptions:
                await conn.send(frame)

    def _connection(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None
    ) -> _Connection:
        return _Connection(ws, transport)

    async def _serve(self, conn: _Connection) -> None:
        status = {"api_version": "v2", "connection_id": 13834774380200032777, "system": "online"}
        await conn.send(json.dumps({"channel": "status", "type": "update", "data": [status]}))
        async with asyncio.TaskGroup() as tg:
            beats = tg.create_task(self._heartbeats(conn), name="fake-kraken-heartbeats")
            try:
                async for msg in conn.ws:
                    if msg.type is WSMsgType.TEXT:
                        await self._on_text(conn, msg.data)
            finally:
                beats.cancel()

    async def _heartbeats(self, conn: _Connection) -> None:
        interval = self.heartbeat_interval_s
        if interval is None:
            return
        loop = asyncio.get_running_loop()
        while not conn.ws.closed:
            await asyncio.sleep(interval)
            if conn.subscriptions and loop.time() - conn.last_sent >= interval * 0.9:
                await conn.send(_HEARTBEAT)

    async def _on_text(self, conn: _Connection, text: str) -> None:
        message = self._decode(text)
        if message is None:
            await conn.send(json.dumps({"error": "EGeneral:Invalid arguments", "success": False}))
            return
        method = message.get("method")
        answer = {"method": method, **self._times(), **_req_id(message)}
        if method == "ping":
            self.pings += 1
            await conn.send(json.dumps({**answer, "method": "pong"}))
        elif method == "subscribe":
            self.subscribe_messages += 1
            await self._subscribe(conn, message, answer)
        else:
            await conn.send(json.dumps({**answer, "error": "Method not found", "success": False}))

    async def _subscribe(
        self, conn: _Connection, message: dict[str, Any], answer: dict[str, object]
    ) -> None:
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        minutes, symbols = params.get("interval", 1), params.get("symbol")
        minutes = minutes if type(minutes) is int else 0
        if params.get("channel") != "ohlc" or minutes not in MINUTES or type(symbols) is not list:
            refusal = {**answer, "error": "EGeneral:Invalid arguments", "success": False}
            await conn.send(json.dumps(refusal))
            return
        accepted = []
        for wire in symbols:
            market = _market(wire) if isinstance(wire, str) else None
            if market is None or market not in self.markets or market in self._rejected:
                error = f"Currency pair not supported {wire}"
                refusal = {**answer, "error": error, "success": False, "symbol": wire}
                await conn.send(json.dumps(refusal))
                continue
            conn.subscriptions.add((wire, minutes))
            accepted.append(market)
            result = {"channel": "ohlc", "interval": minutes, "snapshot": True, "symbol": wire}
            await conn.send(json.dumps({**answer, "result": result, "success": True}))
        if params.get("snapshot", True) is not False and not self._silent:
            for market in accepted:
                latest = self._series(market, minutes, flat_current=False)
                latest = latest[max(0, len(latest) - self.snapshot_candles) :]
                await conn.send(self._ohlc_frame("snapshot", latest, market))

    def _ohlc_frame(self, kind: str, candles: list[Candle], market: str) -> str:
        rows = [
            {
                "symbol": _ws_symbol(market),
                "open": c.open,
                "high": c.high,
                "low": c.low,
                "close": c.close,
                "trades": 1,
                "volume": c.volume,
                "vwap": c.close,
                "interval_begin": _rfc3339(c.open_time_ms, digits=9),
                "interval": c.interval.ms // 60_000,
                "timestamp": _rfc3339(c.close_time_ms, digits=6),  # deprecated: the END
            }
            for c in candles
        ]
        stamp = _rfc3339(self.server_time_ms, digits=9)
        frame = {"channel": "ohlc", "type": kind, "timestamp": stamp, "data": rows}
        return _ENCODE(frame).decode()

    def _times(self) -> dict[str, str]:
        now = _rfc3339(self.server_time_ms, digits=6)
        return {"time_in": now, "time_out": now}

    def _failure_response(self) -> web.Response:
        if self._failure_status == 200:
            return web.json_response(self.failure_body)
        return super()._failure_response()

    async def _time(self, request: web.Request) -> web.Response:
        now = _EPOCH + timedelta(milliseconds=self.server_time_ms)
        result = {
            "unixtime": self.server_time_ms // 1000,
            "rfc1123": now.strftime("%a, %d %b %y %H:%M:%S +0000"),
        }
        return web.json_response({"error": [], "result": result})

    async def _ohlc(self, request: web.Request) -> web.Response:
        query = request.query
        names = {_rest_pair(m): m for m in self.markets}
        names |= {_PAIR_KEYS[n]: m for n, m in names.items() if n in _PAIR_KEYS}
        market = names.get(query.get("pair", ""))
        if market is None:
            return web.json_response({"error": ["EQuery:Unknown asset pair"]})
        minutes, since = query.get("interval", "1"), query.get("since", "0")
        if not (minutes.isdigit() and int(minutes) in MINUTES and since.isdigit()):
            return web.json_response({"error": ["EGeneral:Invalid arguments"]})
        series = self._series(market, int(minutes))
        committed = series[:-1][-(self.max_rows - 1) :] if self.max_rows > 1 else []
        # ``since`` keeps rows strictly after it (it is the ``last`` of an earlier answer).
        rows = [_rest_row(c) for c in committed if c.open_time_ms // 1000 > int(since)]
        rows += [_rest_row(c) for c in series[-1:]]
        last = committed[-1].open_time_ms // 1000 if committed else int(since)
        key = _PAIR_KEYS.get(_rest_pair(market), _rest_pair(market))
        return web.json_response({"error": [], "result": {key: rows, "last": last}})

    def _series(self, market: str, minutes: int, *, flat_current: bool = True) -> list[Candle]:
        """Return the committed candles by server time, then the current one.

        REST always has a current row (``flat_current``: a flat one if nothing traded yet).
        """
        if minutes != self.interval.ms // 60_000:
            return []
        current = self.server_time_ms - self.server_time_ms % self.interval.ms
        stored = self._history.get(market, {})
        committed = [stored[t] for t in sorted(stored) if t < current]
        if current in stored:
            return [*committed, stored[current]]
        if not committed or not flat_current:
            return committed
        price = committed[-1].close
        moved = replace(committed[-1], interval=self.interval, open_time_ms=current)
        return [*committed, replace(moved, open=price, high=price, low=price, volume=Decimal(0))]


def throttled_until(ms: int) -> str:
    """Return Kraken's concurrency throttle error naming ``ms`` (in whole seconds)."""
    return f"EService:Throttled: {ms // 1000}"


def _ws_symbol(market: str) -> str:
    return market.replace("-", "/")


def _market(wire: str) -> str | None:
    """Return the internal form of a v2 symbol; the legacy ``XBT/USD`` is not one."""
    base, sep, quote = wire.partition("/")
    if not sep or base in _LEGACY.values() or quote in _LEGACY.values():
        return None
    return f"{base}-{quote}"


def _rest_pair(market: str) -> str:
    base, _, quote = market.partition("-")
    return _LEGACY.get(base, base) + _LEGACY.get(quote, quote)


def _rest_row(c: Candle) -> list[object]:
    values = (c.open, c.high, c.low, c.close, c.close, c.volume)  # vwap: the close will do
    return [c.open_time_ms // 1000, *(str(v) for v in values), 1]


def _rfc3339(ms: int, *, digits: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    fraction = f"{ms % 1000:03d}".ljust(digits, "0")
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction}Z"


def _req_id(message: dict[str, object]) -> dict[str, object]:
    req_id = message.get("req_id")
    return {} if req_id is None else {"req_id": req_id}
