"""A loopback TCP proxy that a test can cut and restore, to drop a client's connection."""

import asyncio
import contextlib
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target``; ``cut()`` aborts every connection
    and stops listening (new ones are refused), ``restore()`` listens on the same port again."""

    target: int
    port: int = 0
    accepted: int = 0
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        """Listen (on the same port as before after a ``cut()``)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    restore = start

    async def cut(self) -> None:
        """Stop listening and abort every connection, both ways."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            target_in, target_out = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client.transport.abort()
            return
        self._open.update((client, target_out))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(client_in, target_out))
                group.create_task(_pipe(target_in, client))
        finally:
            for writer in (client, target_out):
                self._open.discard(writer)
                writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until the source ends, then close the sink."""
    with contextlib.suppress(OSError):
        while chunk := await source.read(CHUNK):
            sink.write(chunk)
            await sink.drain()
    sink.close()
