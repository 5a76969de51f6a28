"""The simulated exchange's server: kline streams and REST on one aiohttp port.

``/stream?streams=…`` (combined) and ``/ws/<stream>`` (raw) serve the kline streams;
``/api/v3/klines``, ``/time`` and ``/exchangeInfo`` the REST API. The market clock is the
exchange's own: it runs at a multiple of real time, as fast as frames can be sent, or only
when a test calls `Simulator.advance`; it keeps running while clients are away, so a client
that drops must backfill over REST. Faults (drops, silence, duplicates, reordering, garbage,
serverShutdown, REST 429/418/5xx) are seeded and can be triggered at run time.
"""

import asyncio
import math
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from aiohttp import web

from paper_trader.domain import Candle
from paper_trader.runtime.logs import get_logger
from paper_trader.simulator.config import (
    DEFAULT_SYNTHETIC_CANDLES,
    CsvSource,
    SimulatorConfig,
)
from paper_trader.simulator.connection import GOING_AWAY, WsConnection
from paper_trader.simulator.faults import SimStats, StatsCounter
from paper_trader.simulator.market import SimMarket, load_csv, synthetic_series
from paper_trader.simulator.rest import RestApi, RestLimiter

log = get_logger("simulator")

_MAX_CONTROL_MESSAGE = 64 * 1024
_CLOSE_CONNECTIONS_TIMEOUT_S = 5.0
_MAX_SPEED_BURST = 16  # steps between two yields to the event loop at speed "max"


def build_market(config: SimulatorConfig) -> SimMarket:
    """Load or generate the candles of ``config`` and return the market over them."""
    source = config.source
    if isinstance(source, CsvSource):
        limit = config.candles or 2**62
        series = {
            symbol: load_csv(path, symbol=symbol, interval=config.interval, limit=limit)
            for symbol, path in zip(config.symbols, source.paths, strict=True)
        }
    else:
        series = synthetic_series(
            config.symbols,
            seed=source.seed,
            count=config.candles or DEFAULT_SYNTHETIC_CANDLES,
            interval=config.interval,
            start_ms=source.start_ms,
        )
    return SimMarket(
        series,
        interval=config.interval,
        history=config.history,
        updates_per_candle=config.updates_per_candle,
    )


class Simulator:
    """The simulated exchange; use as ``async with Simulator(config) as sim:``."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._stats = StatsCounter()
        self._conns: dict[int, WsConnection] = {}
        self._next_conn_id = 0
        self._reject_next = config.faults.accept_then_close
        self._stack = AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self._clock_started = asyncio.Event()
        self._finished = asyncio.Event()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._step_lock = asyncio.Lock()
        self._silenced_until = -math.inf
        self._pace: tuple[float, int, float] | None = None
        self._scheduled_drops = 0
        self._market_: SimMarket | None = None
        self._rest_: RestApi | None = None
        self._port = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The body's own exception is not handed to the task group, which would wrap it.
        await self.close()

    async def start(self) -> None:
        """Load the market, start listening and start the clock and fault schedules."""
        market = await asyncio.to_thread(build_market, self.config)
        self._market_ = market
        limiter = RestLimiter(weight_limit=self.config.weight_limit, ban_s=self.config.ban_s)
        self._rest_ = RestApi(
            market,
            limiter=limiter,
            weight_limit=self.config.weight_limit,
            faults=self.config.faults,
            stats=self._stats,
            now=lambda: self.now_ms,
        )
        try:
            await self._listen()
            tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
            self._stack.callback(self._cancel_tasks)
            self._spawn(tasks)
        except BaseException:
            await self._stack.aclose()
            raise
        log.info("simulator_listening", url=self.rest_url, symbols=list(market.symbols))

    async def close(self) -> None:
        """Stop the clock and faults, close every client with 1001, stop listening."""
        await self._stack.aclose()

    async def _listen(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get("/stream", self._ws_handler),
                web.get("/ws", self._ws_handler),
                web.get("/ws/{streams:.+}", self._ws_handler),
                *self._rest.routes(),
            ]
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        self._port = int(runner.addresses[0][1])
        self._stack.push_async_callback(self._close_connections)

    def _spawn(self, tasks: asyncio.TaskGroup) -> None:
        faults = self.config.faults
        if self.config.speed != "manual":
            self._tasks.append(tasks.create_task(self._run_clock(), name="sim-clock"))
            if not self.config.start_on_connect:
                self._clock_started.set()
        schedules: list[tuple[str, float | None, Callable[[], object]]] = [
            ("drop", faults.drop_every_s, self._scheduled_drop),
            ("silence", faults.silence_every_s, lambda: self.silence(faults.silence_for_s)),
            ("shutdown", faults.shutdown_every_s, self.send_server_shutdown),
        ]
        for name, period, action in schedules:
            if period is not None:
                task = tasks.create_task(_every(period, action), name=f"sim-fault-{name}")
                self._tasks.append(task)

    def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _close_connections(self) -> None:
        for conn in list(self._conns.values()):
            conn.request_close(GOING_AWAY, "server stopping")
        try:
            async with asyncio.timeout(_CLOSE_CONNECTIONS_TIMEOUT_S):
                await self._no_connections.wait()
        except TimeoutError:
            log.warning("ws_clients_not_closed", connections=len(self._conns))

    @property
    def _market(self) -> SimMarket:
        if self._market_ is None:
            raise RuntimeError("the simulator is not started")
        return self._market_

    @property
    def _rest(self) -> RestApi:
        if self._rest_ is None:
            raise RuntimeError("the simulator is not started")
        return self._rest_

    @property
    def port(self) -> int:
        """Return the TCP port the simulator listens on."""
        return self._port

    @property
    def ws_url(self) -> str:
        """Return the WebSocket base URL, e.g. ``ws://127.0.0.1:PORT``."""
        return f"ws://{self.config.host}:{self._port}"

    @property
    def rest_url(self) -> str:
        """Return the REST base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.config.host}:{self._port}"

    @property
    def now_ms(self) -> int:
        """Return the exchange's time (ms), which is never the local wall clock."""
        market = self._market
        if self._pace is not None:
            wall0, sim0, speed = self._pace
            elapsed = asyncio.get_running_loop().time() - wall0
            market.move_clock(sim0 + int(elapsed * speed * 1000))
        return market.now_ms

    @property
    def finished(self) -> bool:
        """Return whether the market ran out of candles (no more kline frames)."""
        return self._market.finished

    @property
    def stats(self) -> SimStats:
        """Return a snapshot of the counters."""
        return self._stats.snapshot(active=len(self._conns))

    def candles(self, symbol: str) -> list[Candle]:
        """Return every candle of ``symbol`` as loaded (deleted ones included)."""
        return self._market.candles(symbol)

    async def wait_finished(self) -> None:
        """Wait until the market ran out of candles and the last frames were sent."""
        await self._finished.wait()

    def start_clock(self) -> None:
        """Start a finite-speed or max clock now, without waiting for a subscriber."""
        self._clock_started.set()

    async def advance(self, candles: int = 1, *, updates: int = 0) -> None:
        """Move manual time by ``candles`` whole candles plus ``updates`` intra-candle steps.

        Return once the frames of every step were sent to every connected client.
        """
        if self.config.speed != "manual":
            raise RuntimeError("advance() needs speed='manual'")
        for _ in range(candles * self._market.steps_per_candle + updates):
            if self._market.finished:
                break
            await self._step()

    def drop_connections(self, abort: bool = False) -> int:
        """Close every WebSocket (1001), or ``abort`` them without a close frame; return count."""
        conns = [conn for conn in self._conns.values() if not conn.is_stopping]
        for conn in conns:
            conn.request_close(GOING_AWAY, "going away", abort=abort)
        if conns:
            self._stats.drops += len(conns)
            log.info("ws_dropped", connections=len(conns), abort=abort)
        return len(conns)

    def silence(self, seconds: float = math.inf) -> None:
        """Send no data frames for ``seconds`` (pings and replies continue, time moves on)."""
        now = asyncio.get_running_loop().time()
        self._silenced_until = now + seconds
        self._stats.silences += 1
        log.info("ws_silenced", seconds=seconds)

    def end_silence(self) -> None:
        """Resume sending data frames."""
        self._silenced_until = -math.inf

    def fail_rest(self, times: int, status: int, retry_after_s: float = 1.0) -> None:
        """Answer the next ``times`` REST requests with ``status`` (429, 418 or 5xx)."""
        self._rest.fail(times, status, retry_after_s)

    def send_server_shutdown(self) -> int:
        """Send ``serverShutdown`` to every client, then close each after the grace period."""
        conns = [conn for conn in self._conns.values() if not conn.is_stopping]
        for conn in conns:
            conn.request_shutdown()
        self._stats.shutdowns += 1
        log.info("ws_server_shutdown_sent", connections=len(conns))
        return len(conns)

    def accept_then_close(self, connections: int) -> None:
        """Close the next ``connections`` connections right after their handshake."""
        self._reject_next = connections

    def delete_candles(self, symbol: str, open_times: Iterable[int]) -> int:
        """Remove candles for good, from WS and REST (a maintenance gap); return how many."""
        return self._market.delete(symbol, open_times)

    def _scheduled_drop(self) -> None:
        if self.drop_connections(abort=self._scheduled_drops % 2 == 1):
            self._scheduled_drops += 1

    def _is_silenced(self) -> bool:
        return asyncio.get_running_loop().time() < self._silenced_until

    def _on_subscribe(self) -> None:
        if self.config.start_on_connect and not self._clock_started.is_set():
            self._clock_started.set()

    async def _run_clock(self) -> None:
        await self._clock_started.wait()
        log.info("market_clock_started", now_ms=self._market.now_ms, speed=self.config.speed)
        if self.config.speed == "max":
            while not self._market.finished:
                for _ in range(_MAX_SPEED_BURST):
                    await self._step()
                await asyncio.sleep(0)
        else:
            await self._run_paced(float(self.config.speed))

    async def _run_paced(self, speed: float) -> None:
        loop = asyncio.get_running_loop()
        market = self._market
        wall0, sim0 = loop.time(), market.now_ms
        self._pace = (wall0, sim0, speed)
        while (step_ms := market.next_step_ms) is not None:
            delay = wall0 + (step_ms - sim0) / (speed * 1000) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._step()
        self._pace = None

    async def _step(self) -> None:
        market = self._market
        async with self._step_lock:
            frames = market.step()
            if frames and not self._is_silenced():
                for conn in list(self._conns.values()):
                    await conn.deliver(frames)
            if market.finished and not self._finished.is_set():
                for conn in list(self._conns.values()):
                    await conn.flush()
                self._finished.set()
                log.info("market_finished", now_ms=market.now_ms)

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        combined, streams = _requested_streams(request)
        ws = web.WebSocketResponse(
            autoping=False,
            compress=False,
            timeout=self.config.close_timeout_s,
            max_msg_size=_MAX_CONTROL_MESSAGE,
        )
        await ws.prepare(request)
        self._stats.connections_accepted += 1
        self._next_conn_id += 1
        if self._reject_next > 0:
            self._reject_next -= 1
            log.info("ws_accepted_then_closed", conn=self._next_conn_id)
            await ws.close(code=GOING_AWAY, message=b"going away")
            return ws
        conn = WsConnection(
            ws,
            request,
            conn_id=self._next_conn_id,
            combined=combined,
            streams=streams,
            limits=self.config.ws_limits,
            faults=self.config.faults,
            stats=self._stats,
            clock=lambda: self.now_ms,
            on_subscribe=self._on_subscribe,
        )
        await self._serve_connection(conn, streams)
        return ws

    async def _serve_connection(self, conn: WsConnection, streams: list[str]) -> None:
        self._conns[conn.conn_id] = conn
        self._no_connections.clear()
        log.info("ws_connected", conn=conn.conn_id, streams=streams)
        try:
            if streams:
                self._on_subscribe()
            await conn.serve()
        finally:
            del self._conns[conn.conn_id]
            if not self._conns:
                self._no_connections.set()
            log.info("ws_disconnected", conn=conn.conn_id)


async def _every(period_s: float, action: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(period_s)
        action()


def _requested_streams(request: web.Request) -> tuple[bool, list[str]]:
    """Return ``(combined, stream names)`` from a ``/stream?streams=`` or ``/ws/`` URL."""
    if request.path == "/stream":
        names = request.query.get("streams", "")
        return True, [n for n in names.split("/") if n]
    names = request.match_info.get("streams", "")
    return False, [n for n in names.split("/") if n]
