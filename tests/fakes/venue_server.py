"""What the loopback venues (``FakeBitvavo``, ``FakeKraken``) share: state and lifecycle.

``FakeVenueServer`` holds the exchange clock, the counters the tests read, the stored history,
the fault switches (silence, REST failures, rejected symbols) and the aiohttp server on
``127.0.0.1:0``. A subclass names its paths (``ws_path``, ``rest_path``, ``rest_routes``), makes
its connection objects, serves one WebSocket connection (``_serve``), says what a REST
failure looks like (``failure_body``, ``_failure_response``) and may refuse a request for rate
(``_refusal``) or add headers to every answer (``_stamp``).

The exchange clock is two clocks. ``server_time_ms`` is market time, set by the test and
still until it is set again: what ``/time`` answers and which candles exist. ``venue_now_ms()``
runs on from the last setting at real speed: the venue's rate-limit windows and the ``Date``
header of every answer live on it, so a window that resets one second ahead really resets.
"""

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from aiohttp import WSCloseCode, web

from paper_trader.domain import Candle, Interval

DEFAULT_SERVER_TIME_MS = 1_704_153_600_000  # 2024-01-02T00:00:00Z

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(eq=False)
class VenueConnection:
    """One WebSocket connection; subclasses add what they subscribe to."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    last_sent: float = 0.0  # loop time of the last frame sent

    async def send(self, text: str) -> None:
        """Send ``text`` unless the connection is closed or the client went away."""
        if self.ws.closed:
            return
        try:
            await self.ws.send_str(text)
        except ConnectionError:
            return  # the client went away mid-send; its handler cleans up
        self.last_sent = asyncio.get_running_loop().time()


ConnT = TypeVar("ConnT", bound=VenueConnection)


class FakeVenueServer(Generic[ConnT]):
    """A venue's WebSocket and REST server on ``127.0.0.1:0``: the shared part."""

    ws_path: ClassVar[str]  # the WebSocket endpoint
    rest_path: ClassVar[str]  # the REST base path ("" for the root)
    failure_body: ClassVar[dict[str, object]]  # the body of a ``fail_rest`` answer

    def __init__(self, *, markets: Iterable[str], interval: Interval, server_time_ms: int) -> None:
        self.markets = set(markets)
        self.interval = interval
        self._server_time_ms = server_time_ms
        self._time_set_at = time.monotonic()
        self.connections = 0
        self.subscribe_messages = 0
        self.rest_requests = 0
        self.pings = 0
        self.received: list[str] = []
        self.rest_log: list[tuple[str, dict[str, str]]] = []
        self._history: dict[str, dict[int, Candle]] = {m: {} for m in self.markets}
        self._rejected: set[str] = set()
        self._silent = False
        self._failures = 0
        self._failure_status = 429
        self._retry_after_s = 0.0
        self._conns: set[ConnT] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- hooks ----------------------------------------------------------------------------

    def rest_routes(self) -> dict[str, Handler]:
        """Return the REST handlers by path; each is counted and can be failed."""
        raise NotImplementedError

    def _connection(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> ConnT:
        raise NotImplementedError

    def _websocket(self) -> web.WebSocketResponse:
        return web.WebSocketResponse()

    async def _serve(self, conn: ConnT) -> None:
        """Serve one prepared, registered connection until it closes."""
        raise NotImplementedError

    def _failure_response(self) -> web.Response:
        headers = {"Retry-After": f"{self._retry_after_s:g}"}
        return web.json_response(self.failure_body, status=self._failure_status, headers=headers)

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Return a refusal for rate of this request, or None to serve it (no limit here)."""
        return None

    def _stamp(self, response: web.StreamResponse) -> None:
        """Add what every answer carries: the ``Date`` on the venue's clock."""
        moment = datetime.fromtimestamp(self.venue_now_ms() / 1000, tz=UTC)
        response.headers["Date"] = email.utils.format_datetime(moment, usegmt=True)

    # -- public API -----------------------------------------------------------------------

    @property
    def server_time_ms(self) -> int:
        """Return the market time the test set (Unix ms): ``/time``, and which candles exist."""
        return self._server_time_ms

    @server_time_ms.setter
    def server_time_ms(self, value: int) -> None:
        self._server_time_ms = value
        self._time_set_at = time.monotonic()

    def venue_now_ms(self) -> int:
        """Return the venue's running clock: ``server_time_ms`` plus the real time since set."""
        return self._server_time_ms + int((time.monotonic() - self._time_set_at) * 1000)

    @property
    def ws_url(self) -> str:
        """Return the WebSocket URL (``ws://127.0.0.1:<port>`` and ``ws_path``)."""
        return f"ws://127.0.0.1:{self._port}{self.ws_path}"

    @property
    def rest_url(self) -> str:
        """Return the REST base URL (``http://127.0.0.1:<port>`` and ``rest_path``)."""
        return f"http://127.0.0.1:{self._port}{self.rest_path}"

    @property
    def open_connections(self) -> int:
        """Return how many WebSocket connections are open now."""
        return len(self._conns)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get(self.ws_path, self._ws)
        for path, handler in self.rest_routes().items():
            app.router.add_get(path, self._rest(handler))
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
        """Store candles the fake serves (upserted by open time)."""
        for candle in candles:
            self._store(symbol, candle)

    async def send_raw(self, text: str) -> None:
        """Send ``text`` as is to every open connection (garbage, unknown shapes, errors)."""
        for conn in list(self._conns):
            await conn.send(text)

    async def drop_connections(self, *, abort: bool = False) -> None:
        """Close every connection: with a close frame, or ``abort`` the TCP connection."""
        for conn in list(self._conns):
            if abort and conn.transport is not None:
                conn.transport.abort()
            else:
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake drop")

    def silence(self, silent: bool = True) -> None:
        """Keep connections open but send no candle data (``False`` resumes)."""
        self._silent = silent

    def fail_rest(self, times: int, status: int = 429, retry_after_s: float = 60.0) -> None:
        """Answer the next ``times`` REST requests with ``status`` and ``Retry-After``."""
        self._failures, self._failure_status, self._retry_after_s = times, status, retry_after_s

    def reject_symbols(self, symbols: Iterable[str]) -> None:
        """Refuse these symbols (internal form, ``BTC-EUR``) in subscriptions from now on."""
        self._rejected |= set(symbols)

    # -- internals ------------------------------------------------------------------------

    def _store(self, symbol: str, candle: Candle) -> None:
        self._history.setdefault(symbol, {})[candle.open_time_ms] = candle

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = self._websocket()
        await ws.prepare(request)
        conn = self._connection(ws, request.transport)
        self._conns.add(conn)
        self.connections += 1
        try:
            await self._serve(conn)
        finally:
            self._conns.discard(conn)
        return ws

    def _decode(self, text: str) -> dict[str, Any] | None:
        """Record a received text frame; return it as a JSON object, None if it is not one."""
        self.received.append(text)
        try:
            message = json.loads(text)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def _rest(self, handler: Handler) -> Handler:
        async def counted(request: web.Request) -> web.StreamResponse:
            self.rest_requests += 1
            self.rest_log.append((request.path, dict(request.query)))
            response: web.StreamResponse | None = self._failure()
            if response is None:
                response = self._refusal(request)
            if response is None:
                response = await handler(request)
            self._stamp(response)
            return response

        return counted

    def _failure(self) -> web.Response | None:
        if self._failures <= 0:
            return None
        self._failures -= 1
        return self._failure_response()
