"""The soak's status-feed clients: ``websockets`` clients reading every message of the daemon's
feed in a thread of their own (its own event loop), each checking that ``seq`` only rises by one.

A client the feed closes (it fell behind, or the daemon restarted its feed) reconnects with
``?since=SEQ&run=RUN`` as the protocol says, and the closes are counted: a soak at the pace the
daemon keeps up with should see none.
"""

import asyncio
import threading
import time
from dataclasses import dataclass
from types import TracebackType

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


class Envelope(msgspec.Struct):
    """The fields of a feed message a client checks."""

    type: str
    seq: int
    run: str = ""


_decode = msgspec.json.Decoder(Envelope)


@dataclass
class Client:
    """One reader's counts."""

    messages: int = 0
    last_seq: int = -1
    run: str = ""
    gaps: int = 0
    closes: int = 0


class FeedClients:
    """``count`` readers of the feed at ``url``, in a thread, for a ``with`` block."""

    def __init__(self, url: str, count: int) -> None:
        self._url = url
        self.clients = [Client() for _ in range(count)]
        self.started = time.monotonic()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="feed-clients", daemon=True)
        self._failure: BaseException | None = None

    def __enter__(self) -> "FeedClients":
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def messages(self) -> int:
        """Return the messages every client has read so far, together."""
        return sum(c.messages for c in self.clients)

    def check(self) -> None:
        """Raise if a client failed or saw a ``seq`` out of order."""
        if self._failure is not None:
            raise SystemExit(f"a status-feed client failed: {self._failure!r}")
        gaps = sum(c.gaps for c in self.clients)
        if gaps:
            raise SystemExit(f"the status-feed clients saw {gaps} seq gaps")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as exc:  # noqa: BLE001 -- reported by check()
            self._failure = exc
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._read(c)) for c in self.clients]
            await self._stop.wait()
            for task in tasks:
                task.cancel()

    async def _read(self, client: Client) -> None:
        """Read every message; reconnect from the last ``seq`` when the feed closes."""
        while True:
            url = self._url
            if client.run:
                url += f"/?since={client.last_seq}&run={client.run}"
            try:
                async with connect(url, max_size=2**24) as ws:
                    async for raw in ws:
                        self._take(client, _decode.decode(raw))
            except ConnectionClosed:
                client.closes += 1
                await asyncio.sleep(0.5)

    @staticmethod
    def _take(client: Client, message: Envelope) -> None:
        client.messages += 1
        if message.type == "snapshot":
            client.run = message.run or client.run
        elif client.last_seq >= 0 and message.seq not in (client.last_seq, client.last_seq + 1):
            client.gaps += 1
        client.last_seq = max(client.last_seq, message.seq)
