"""The status feed: a WebSocket server of the daemon's state and events (docs/status-protocol.md).

A connection gets one ``snapshot`` (or, resuming with ``?since=``, the events it missed), then
the events the hub tells, as they happen, filtered by its topics. Each connection has its own
bounded queue; one that falls behind is closed with code 4000 and logged, and slows nothing
else. No compression: a frame is encoded once for every client and sent as it is.
"""

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.interfaces.status.access import Access, Wanted, wanted
from paper_trader.interfaces.status.hub import Client, Frame, StatusHub, parse_topics
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("status_feed")

Snapshot = Callable[[], Awaitable[tuple[int, object]]]
FELL_BEHIND = 4000
TRY_AGAIN_LATER = 1013
MAX_MESSAGE = 65_536  # bytes a client may send in one message (subscriptions are small)
CLOSE_TIMEOUT_S = 2.0
YIELD_EVERY = 32  # frames one client's sender writes before it lets the loop run
BEHIND_CLOSE_S = 3.0  # for the close frame to get past what a slow client has yet to read


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The feed's clocks: heartbeats to every client, and the calls of ``poll``."""

    heartbeat_s: float = 10.0
    poll_s: float = 1.0


class StatusServer:
    """The supervised status feed on ``host:port`` (0: any free port, see ``port``)."""

    name = "status_feed"

    def __init__(
        self,
        hub: StatusHub,
        snapshot: Snapshot,
        access: Access,
        *,
        host: str,
        port: int,
        poll: Callable[[], None] | None = None,
        timing: Timing | None = None,
    ) -> None:
        """``snapshot`` returns the last event number it includes and its data; ``poll`` is
        called every ``timing.poll_s`` (the health checks it tells)."""
        self._hub = hub
        self._snapshot = snapshot
        self._access = access
        self._host = host
        self._requested_port = port
        self._poll = poll
        self._timing = timing or Timing()
        self.port: int | None = None
        self._problem = ""
        self.connected = 0
        self.fell_behind = 0
        self.refused = 0

    async def run(self, ready: Readiness) -> None:
        """Serve until cancelled; a stop closes every connection with 1001. A port that
        cannot be bound leaves the daemon trading without the feed (logged, degraded)."""
        try:
            server = await serve(
                self._serve,
                self._host,
                self._requested_port,
                process_request=self._check,
                compression=None,
                max_size=MAX_MESSAGE,
                close_timeout=CLOSE_TIMEOUT_S,
                server_header=None,
            )
        except OSError as exc:
            where = f"{self._host}:{self._requested_port}"
            self._problem = f"not listening on {where}: {exc.strerror or exc}"
            log.error("status_feed_unavailable", error=self._problem)  # noqa: TRY400
            ready.set()
            await asyncio.Event().wait()
        async with server:
            self.port = _bound_port(server)
            log.info("status_feed_listening", url=f"ws://{self._host}:{self.port}")
            ready.set()
            await self._beat()

    def health(self) -> ComponentHealth:
        """Return OK with the clients connected and those closed for falling behind; DEGRADED
        if the port could not be bound."""
        if self._problem:
            return ComponentHealth(
                component=self.name, status=HealthStatus.DEGRADED, detail=self._problem
            )
        detail = (
            f"{self._hub.clients} clients on port {self.port}, {self.fell_behind} fell behind, "
            f"{self.refused} refused"
        )
        return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)

    async def _beat(self) -> None:
        """Call ``poll`` and send heartbeats, forever."""
        every = max(1, round(self._timing.heartbeat_s / self._timing.poll_s))
        for tick in itertools.count(1):
            await asyncio.sleep(self._timing.poll_s)
            if self._poll is not None:
                self._poll()
            if tick % every == 0:
                self._hub.broadcast(self._hub.message("heartbeat", {}))

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        refusal = self._access.refusal(request.path, headers, self._hub.clients)
        if refusal is None:
            return None
        self.refused += 1
        log.warning(
            "status_client_refused",
            peer=_peer(connection),
            status=int(refusal.status),
            reason=refusal.reason,
        )
        return connection.respond(refusal.status, refusal.reason + "\n")

    async def _serve(self, connection: ServerConnection) -> None:
        if self._hub.clients >= self._access.max_clients:  # handshakes that raced the cap
            await connection.close(TRY_AGAIN_LATER, "too many clients")
            return
        assert connection.request is not None  # the handshake is done
        asked = wanted(connection.request.path)
        client = self._hub.attach(asked.topics)
        self.connected += 1
        try:
            resumed = await self._start(connection, client, asked)
            log.info("status_client_connected", peer=_peer(connection), resumed=resumed)
            await self._pump(connection, client)
        except ConnectionClosed:
            pass
        finally:
            self._hub.detach(client)
        log.info("status_client_closed", peer=_peer(connection), code=connection.close_code)

    async def _start(self, connection: ServerConnection, client: Client, asked: Wanted) -> bool:
        """Queue the missed events (a resume, True), or send a fresh snapshot (False)."""
        missed = None
        if asked.since is not None and asked.run == self._hub.run:
            missed = self._hub.since(asked.since)  # attached just before: nothing in between
        if missed is not None:
            client.resume(missed)
            return True
        seq, data = await self._snapshot()
        client.drop_through(seq)
        await connection.send(self._hub.message("snapshot", data, seq=seq).text, text=True)
        return False

    async def _pump(self, connection: ServerConnection, client: Client) -> None:
        """Send the client's frames and read its messages until either side ends it."""
        tasks = (
            asyncio.create_task(self._write(connection, client)),
            asyncio.create_task(self._read(connection, client)),
            asyncio.create_task(client.behind.wait()),  # a blocked send does not see it
        )
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
        if client.fell_behind:
            self.fell_behind += 1
            log.warning(
                "status_client_fell_behind",
                peer=_peer(connection),
                queued=client.capacity,
                detail="closed with 4000: it did not read its messages fast enough",
            )
            await _close(connection, FELL_BEHIND, "fell behind: reconnect with since=")

    @staticmethod
    async def _write(connection: ServerConnection, client: Client) -> None:
        sent = 0
        while (frame := await client.next()) is not None:
            await connection.send(frame.text, text=True)  # suspends only on a full buffer
            sent += 1
            if sent % YIELD_EVERY == 0:  # let the loop (and the other clients) run meanwhile
                await asyncio.sleep(0)

    async def _read(self, connection: ServerConnection, client: Client) -> None:
        async for message in connection:
            client.push(self._answer(client, message))

    def _answer(self, client: Client, message: str | bytes) -> Frame:
        """Apply a client's message; return the answer to send it."""
        try:
            client.topics = subscription(message)
        except ValueError as exc:
            return self._hub.answer({"type": "error", "error": str(exc)})
        shown = ["*"] if client.topics is None else sorted(client.topics)
        return self._hub.answer({"type": "subscribed", "topics": shown})


def subscription(message: str | bytes) -> frozenset[str] | None:
    """Return the topics a ``subscribe`` message asks for (None: every topic); raise
    ValueError saying what is wrong with any other message."""
    try:
        body = json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deep") from None
    topics = body.get("topics") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("type") != "subscribe"
        or not isinstance(topics, list)
    ):
        raise ValueError('expected {"type": "subscribe", "topics": [...]}')
    return parse_topics(topics)


async def _close(connection: ServerConnection, code: int, reason: str) -> None:
    """Close with ``code``; drop the TCP connection if the close cannot be written in time (a
    client that reads nothing never lets the close frame through)."""
    try:
        async with asyncio.timeout(BEHIND_CLOSE_S):
            await connection.close(code, reason)
    except TimeoutError:
        connection.transport.abort()


def _bound_port(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("the status feed listens on no socket")


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return "?" if not address else f"{address[0]}:{address[1]}"
