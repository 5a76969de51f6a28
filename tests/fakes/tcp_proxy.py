"""A loopback TCP proxy that a test can cut and restore, to drop a client's connection."""

import asyncio
import contextlib
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``127.0.0.1:target``; ``cut()`` aborts every connection
    and stops listening (new ones are refused), ``restore()`` listens on the same port again.
    ``request_lines`` holds the first line each client sent (an HTTP request line, say)."""

    target: int
    port: int = 0
    request_lines: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        """Listen (on the same port as before after a ``cut()``)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    restore = start

    async def __aenter__(self) -> "TcpProxy":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.cut()

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
        try:
            target_in, target_out = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            client.transport.abort()
            return
        self._open.update((client, target_out))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(client_in, target_out, self.request_lines))
                group.create_task(_pipe(target_in, client))
        finally:
            for writer in (client, target_out):
                self._open.discard(writer)
                writer.close()


async def _pipe(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, first_lines: list[str] | None = None
) -> None:
    """Copy until the source ends, then close the sink; note the first line in ``first_lines``."""
    with contextlib.suppress(OSError):
        while chunk := await source.read(CHUNK):
            if first_lines is not None:
                first_lines.append(chunk.split(b"\r\n", 1)[0].decode("latin-1"))
                first_lines = None
            sink.write(chunk)
            await sink.drain()
    sink.close()
