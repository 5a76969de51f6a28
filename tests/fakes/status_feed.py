"""A small status feed speaking docs/status-protocol.md, for tests of its clients.

On connect: a ``snapshot`` (of ``snapshot_data``), or, for ``?since=SEQ&run=RUN`` of this run,
the events after SEQ it holds. Then every published event, in ``seq`` order, through one
queue per client. With ``token`` set, a handshake without ``?token=`` that matches is refused
with 401, like the daemon's. ``stop()`` drops every client and stops listening;
``start()`` listens again on the same port.
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


@dataclass
class FakeStatusFeed:
    """The feed: what it holds, who is connected, and the handshakes it saw."""

    run: str = "run-1"
    token: str | None = None
    snapshot_data: dict[str, Any] = field(default_factory=dict)
    candle_ms: int | None = None
    port: int = 0
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    handshakes: list[dict[str, list[str]]] = field(default_factory=list)
    refused: int = 0
    _clients: set[asyncio.Queue[str]] = field(default_factory=set)
    _server: Server | None = None

    async def start(self) -> None:
        """Listen on loopback (the same port as before, after a ``stop()``)."""
        self._server = await serve(self._serve, "127.0.0.1", self.port, process_request=self._check)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        """Drop every client and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        """Return the feed's address."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def connected(self) -> int:
        """Return how many clients are connected now."""
        return len(self._clients)

    def publish(self, kind: str, data: dict[str, Any], candle_ms: int | None = None) -> int:
        """Number the next event, hold it, send it to every client; return its ``seq``."""
        self.seq += 1
        if candle_ms is not None:
            self.candle_ms = candle_ms
        event = self._message(kind, data)
        self.events.append(event)
        for queue in self._clients:
            queue.put_nowait(json.dumps(event))
        return self.seq

    def heartbeat(self) -> None:
        """Send every client a heartbeat (it carries the last event's ``seq``)."""
        for queue in self._clients:
            queue.put_nowait(json.dumps(self._message("heartbeat", {})))

    def _message(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "v": 1,
            "type": kind,
            "seq": self.seq,
            "run": self.run,
            "candle_ms": self.candle_ms,
            "data": data,
        }

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        self.handshakes.append(query)
        if self.token is not None and query.get("token") != [self.token]:
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "a token is required\n")
        return None

    def _first_messages(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Return the missed events of a resume of this run, else a snapshot."""
        since = query.get("since", [""])[0]
        if since.isdigit() and query.get("run") == [self.run]:
            return [e for e in self.events if e["seq"] > int(since)]
        return [self._message("snapshot", self.snapshot_data)]

    async def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        queue: asyncio.Queue[str] = asyncio.Queue()
        for message in self._first_messages(parse_qs(urlsplit(connection.request.path).query)):
            queue.put_nowait(json.dumps(message))
        self._clients.add(queue)
        pump = asyncio.create_task(_pump(connection, queue), name="fake-feed-pump")
        closed = asyncio.create_task(connection.wait_closed(), name="fake-feed-closed")
        try:
            await asyncio.wait({pump, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clients.discard(queue)
            for task in (pump, closed):
                task.cancel()
            await asyncio.gather(pump, closed, return_exceptions=True)


async def _pump(connection: ServerConnection, queue: "asyncio.Queue[str]") -> None:
    """Send the client its queue's messages, in order, until it is gone."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await connection.send(await queue.get())
