"""One WebSocket client of the simulated exchange, speaking Binance's stream protocol.

The connection answers control messages (``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY``, ``GET_PROPERTY``) with Binance's replies and errors, pings every
``ping_interval_s`` and drops a client whose pong is late, closes with 1008 past 5 incoming
messages per second and at the age limit, and injects its share of duplicate, reordered and
garbage frames from its own seeded random stream.
"""

import asyncio
import collections
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from paper_trader.runtime.logs import get_logger
from paper_trader.simulator.faults import Faults, StatsCounter, garbage_frame
from paper_trader.simulator.market import KlineFrame

log = get_logger("simulator")

GOING_AWAY = 1001
POLICY_VIOLATION = 1008
_METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
_METHOD_VALUE = re.compile(r'"method"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)')
_MAX_ID_LENGTH = 36
_END_TYPES = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


@dataclass(frozen=True, slots=True, kw_only=True)
class WsLimits:
    """Keepalive, lifetime and flood limits of every connection (wall seconds)."""

    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_connection_age_s: float = 86_400.0
    shutdown_grace_s: float = 1.0
    max_messages_per_s: int = 5


@dataclass(slots=True)
class _Held:
    """A frame held back to be sent after a later one (reordering)."""

    text: str
    kind: str
    until_final_of: str | None


@dataclass(frozen=True, slots=True)
class _Stop:
    """How the server ends the connection."""

    code: int = GOING_AWAY
    reason: str = ""
    abort: bool = False
    shutdown: bool = False


class WsConnection:
    """Serve one accepted WebSocket until either side ends it."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        conn_id: int,
        combined: bool,
        streams: Iterable[str],
        limits: WsLimits,
        faults: Faults,
        stats: StatsCounter,
        clock: Callable[[], int],
        on_subscribe: Callable[[], None],
    ) -> None:
        self.conn_id = conn_id
        self._ws = ws
        self._request = request
        self._combined = combined
        self._streams = dict.fromkeys(streams)
        self._limits = limits
        self._faults = faults
        self._rng = random.Random(f"{faults.seed}:{conn_id}")  # noqa: S311 -- seeded faults
        self._stats = stats
        self._clock = clock
        self._on_subscribe = on_subscribe
        self._held: _Held | None = None
        self._incoming: collections.deque[float] = collections.deque()
        self._unanswered_since: float | None = None
        self._stop: _Stop | None = None
        self._stop_requested = asyncio.Event()
        self._closing = False
        self._close_started = False
        self._methods: dict[str, Callable[[object, object], str]] = {
            "SUBSCRIBE": self._subscribe,
            "UNSUBSCRIBE": self._unsubscribe,
            "LIST_SUBSCRIPTIONS": self._list_subscriptions,
            "SET_PROPERTY": self._set_property,
            "GET_PROPERTY": self._get_property,
        }

    @property
    def is_stopping(self) -> bool:
        """Return whether the server already decided to end this connection."""
        return self._stop is not None

    def request_close(
        self, code: int = GOING_AWAY, reason: str = "", *, abort: bool = False
    ) -> None:
        """End the connection: a close frame, or ``abort`` the TCP connection without one."""
        self._closing = True
        self._request_stop(_Stop(code=code, reason=reason, abort=abort))

    def request_shutdown(self) -> None:
        """Send ``serverShutdown``, then close after the grace period."""
        self._request_stop(_Stop(reason="server shutdown", shutdown=True))

    def _request_stop(self, stop: _Stop) -> None:
        if self._stop is None:
            self._stop = stop
            self._stop_requested.set()

    async def serve(self) -> None:
        """Read and answer the client until the connection ends; keep it alive meanwhile."""
        name = f"sim-ws-{self.conn_id}"
        async with asyncio.TaskGroup() as tg:
            keepalive = tg.create_task(self._keepalive(), name=f"{name}-keepalive")
            closer = tg.create_task(self._closer(), name=f"{name}-closer")
            await self._read_loop()
            self._closing = True
            keepalive.cancel()
            if not self._close_started:
                closer.cancel()

    async def deliver(self, frames: Sequence[KlineFrame]) -> None:
        """Send the frames this connection subscribed to, with the configured faults."""
        for frame in frames:
            if frame.stream in self._streams and not self._closing:
                await self._deliver_one(frame)

    async def flush(self) -> None:
        """Send a frame held back for reordering, if any."""
        held, self._held = self._held, None
        if held is not None:
            await self._send(held.text, held.kind)

    async def _deliver_one(self, frame: KlineFrame) -> None:
        text = frame.combined if self._combined else frame.raw
        kind = "kline_final" if frame.is_final else "kline"
        faults, rng = self._faults, self._rng
        if frame.is_final and faults.final_drop_rate and rng.random() < faults.final_drop_rate:
            self._stats.finals_dropped += 1
            return
        if faults.garbage_rate and rng.random() < faults.garbage_rate:
            self._stats.garbage += 1
            await self._send(garbage_frame(rng, text)[1], "garbage")
        if faults.reorder_rate and self._held is None and rng.random() < faults.reorder_rate:
            swap_finals = frame.is_final and rng.random() < 0.5
            self._held = _Held(text, kind, frame.stream if swap_finals else None)
            self._stats.reorders += 1
            return
        await self._send(text, kind)
        if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
            self._stats.duplicates += 1
            await self._send(text, "duplicate")
        held = self._held
        if held is not None and (
            held.until_final_of is None or (frame.is_final and held.until_final_of == frame.stream)
        ):
            await self.flush()

    async def _send(self, text: str, kind: str) -> None:
        if self._closing:
            return
        try:
            await self._ws.send_str(text)
        except ConnectionError:
            self._closing = True
            return
        self._stats.frames_sent[kind] += 1

    async def _read_loop(self) -> None:
        while True:
            msg = await self._ws.receive()
            if msg.type in _END_TYPES:
                return
            if self._is_flooding():
                self.request_close(POLICY_VIOLATION, "Too many requests")
                continue
            if msg.type is WSMsgType.PING:
                await self._pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                self._unanswered_since = None
            elif msg.type is WSMsgType.TEXT:
                await self._send(self._control(msg.data), "response")

    async def _pong(self, payload: bytes) -> None:
        try:
            await self._ws.pong(payload)
        except ConnectionError:
            self._closing = True

    def _is_flooding(self) -> bool:
        """Count an incoming message; return whether the last second holds too many."""
        now = asyncio.get_running_loop().time()
        self._incoming.append(now)
        while self._incoming and self._incoming[0] <= now - 1.0:
            self._incoming.popleft()
        return len(self._incoming) > self._limits.max_messages_per_s

    async def _keepalive(self) -> None:
        """Ping every interval; end the connection on a late pong or at the age limit."""
        loop = asyncio.get_running_loop()
        limits = self._limits
        retire_at = loop.time() + limits.max_connection_age_s
        next_ping = loop.time() + limits.ping_interval_s
        while True:
            now = loop.time()
            if now >= retire_at:
                self.request_close(GOING_AWAY, "connection age limit")
                return
            unanswered = self._unanswered_since
            if unanswered is not None and now - unanswered >= limits.pong_timeout_s:
                self.request_close(POLICY_VIOLATION, "pong timeout")
                return
            if now >= next_ping:
                await self._ping()
                next_ping = now + limits.ping_interval_s
            wake = min(retire_at, next_ping)
            if self._unanswered_since is not None:
                wake = min(wake, self._unanswered_since + limits.pong_timeout_s)
            await asyncio.sleep(max(0.0, wake - loop.time()))

    async def _ping(self) -> None:
        if self._closing:
            return
        try:
            await self._ws.ping(b"")
        except ConnectionError:
            self._closing = True
            return
        if self._unanswered_since is None:
            self._unanswered_since = asyncio.get_running_loop().time()

    async def _closer(self) -> None:
        """Carry out the server's decision to end the connection."""
        await self._stop_requested.wait()
        stop = self._stop
        assert stop is not None
        if stop.shutdown:
            await self._send(self._shutdown_frame(), "server_shutdown")
            await asyncio.sleep(self._limits.shutdown_grace_s)
        self._closing = True
        self._close_started = True
        log.info(
            "ws_closing", conn=self.conn_id, code=stop.code, reason=stop.reason, abort=stop.abort
        )
        if stop.abort:
            transport = self._request.transport
            if transport is not None:
                transport.abort()
            return
        await self._ws.close(code=stop.code, message=stop.reason.encode())

    def _shutdown_frame(self) -> str:
        raw = f'{{"e":"serverShutdown","E":{self._clock()}}}'
        return f'{{"stream":"!serverShutdown","data":{raw}}}' if self._combined else raw

    def _control(self, text: str) -> str:
        """Answer one control message with Binance's reply or error text."""
        try:
            message = json.loads(text)
        except ValueError as exc:
            line, column = (
                (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (1, 1)
            )
            return _error(3, f"Invalid JSON: expected value at line {line} column {column}")
        if not isinstance(message, dict) or "method" not in message:
            return _error(
                2, f"Invalid request: missing field `method` at line 1 column {len(text)}"
            )
        request_id = message.get("id")
        if not _is_valid_id(request_id):
            return _error(2, "Invalid request: request ID must be an unsigned integer")
        method = message["method"]
        handler = self._methods.get(method) if isinstance(method, str) else None
        if handler is None:
            return _unknown_method(text, method)
        return handler(message.get("params"), request_id)

    def _subscribe(self, params: object, request_id: object) -> str:
        if not _is_stream_list(params):
            return _error(2, "Invalid request: params must be a list of stream names")
        assert isinstance(params, list)
        self._streams.update(dict.fromkeys(params))
        if self._streams:
            self._on_subscribe()
        return _result(None, request_id)

    def _unsubscribe(self, params: object, request_id: object) -> str:
        if not _is_stream_list(params):
            return _error(2, "Invalid request: params must be a list of stream names")
        assert isinstance(params, list)
        for stream in params:
            self._streams.pop(stream, None)
        return _result(None, request_id)

    def _list_subscriptions(self, _params: object, request_id: object) -> str:
        return _result(list(self._streams), request_id)

    def _set_property(self, params: object, request_id: object) -> str:
        if not isinstance(params, list) or len(params) != 2 or params[0] != "combined":
            return json.dumps({"code": 0, "msg": "Unknown property", "id": request_id})
        if not isinstance(params[1], bool):
            return _error(1, "Invalid value type: expected Boolean")
        self._combined = params[1]
        return _result(None, request_id)

    def _get_property(self, params: object, request_id: object) -> str:
        if params != ["combined"]:
            return json.dumps({"code": 0, "msg": "Unknown property", "id": request_id})
        return _result(self._combined, request_id)


def _result(result: object, request_id: object) -> str:
    return json.dumps({"result": result, "id": request_id}, separators=(",", ":"))


def _error(code: int, msg: str) -> str:
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":"))


def _unknown_method(text: str, method: object) -> str:
    match = _METHOD_VALUE.search(text)
    column = match.end() if match else len(text)
    shown = method if isinstance(method, str) else json.dumps(method)
    return _error(
        2,
        f"Invalid request: unknown variant `{shown}`, expected one of {_METHODS} "
        f"at line 1 column {column}",
    )


def _is_valid_id(request_id: object) -> bool:
    if request_id is None:
        return True
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return -(2**63) <= request_id < 2**63
    return isinstance(request_id, str) and len(request_id) <= _MAX_ID_LENGTH


def _is_stream_list(params: object) -> bool:
    return isinstance(params, list) and all(isinstance(p, str) for p in params)
