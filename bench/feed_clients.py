"""The status feed's clients for ``bench/status.py``: a child process of its own (its own event
loop and GIL) that, on command, opens ``READERS`` reading ``websockets`` clients and one slow one.

Each reader decodes every message's ``type`` and ``seq`` (msgspec), checks that the events come
one ``seq`` after the other from its snapshot's, and writes its last ``seq`` to an array shared
with the parent. The slow one is a ``websockets`` client on a socket with ``SO_RCVBUF``
``SLOW_RCVBUF`` bytes and ``max_queue=1`` that reads nothing until its session is closed; then it
reads for at most ``SLOW_DRAIN_S`` to see how the feed ended it. Meanwhile the process samples
the machine's busy CPU time (``/proc/stat``) and its own every ``SAMPLE_S``.

Commands over the pipe: ``("connect", port)`` answers ``{"slow_port": ...}`` once every reader
has its snapshot; ``("disconnect",)`` closes the readers (a normal close), lets the slow client
read, and answers what every client saw; ``("samples",)`` answers the CPU samples; anything else
ends the process.
"""

import asyncio
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import msgspec
import websockets

from paper_trader.interfaces.status.hub import TOPICS

CLIENTS = 50
READERS = CLIENTS - 1
SLOW_RCVBUF = 4096  # bytes: the slow client's receive buffer (the kernel doubles it)
CONNECT_TIMEOUT_S = 60.0
SLOW_DRAIN_S = 5.0  # how long the slow client reads at a block's end
SAMPLE_S = 0.01  # how often the CPU time of the machine and of this process is sampled


class Envelope(msgspec.Struct):
    """The two fields of a feed message a client checks."""

    type: str
    seq: int


_envelope = msgspec.json.Decoder(Envelope)


@dataclass
class Reader:
    """One reading client: what it received, and whether the events came one after another."""

    slot: int
    messages: int = 0
    events: int = 0
    size: int = 0  # bytes received
    snapshot_seq: int = -1
    last_seq: int = -1
    out_of_order: int = 0
    first_fault: str = ""
    close_code: int | None = None

    def take(self, text: str | bytes, acks: Any) -> bool:
        """Count one message and check its ``seq``; return True for the snapshot."""
        message = _envelope.decode(text)
        self.messages += 1
        self.size += len(text)
        if message.type == "snapshot":
            self.snapshot_seq = self.last_seq = message.seq
            acks[self.slot] = message.seq
            return True
        if message.type not in TOPICS:  # heartbeat, subscribed, error
            return False
        self.events += 1
        if message.seq != self.last_seq + 1:
            self.out_of_order += 1
            self.first_fault = self.first_fault or f"{message.seq} after {self.last_seq}"
        self.last_seq = message.seq
        acks[self.slot] = message.seq
        return False


async def read(connection: Any, reader: Reader, acks: Any, snapshot: asyncio.Event) -> None:
    """Read ``connection`` until it closes."""
    try:
        async for text in connection:
            if reader.take(text, acks):
                snapshot.set()
    except websockets.ConnectionClosed:
        pass
    reader.close_code = connection.close_code


async def slow_client(url: str, port: int) -> Any:
    """Return a connected client on a small receive buffer that reads nothing until told."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    return await websockets.connect(url, sock=sock, compression=None, max_queue=1)


async def drain_slow(connection: Any) -> dict[str, Any]:
    """Read what the slow client was sent until the feed closes it (or ``SLOW_DRAIN_S``)."""
    started, messages, code = time.monotonic(), 0, "open"
    try:
        async with asyncio.timeout(SLOW_DRAIN_S):
            async for _ in connection:
                messages += 1
    except websockets.ConnectionClosed as exc:
        code = str(exc.rcvd.code) if exc.rcvd is not None else "none received (aborted)"
    except TimeoutError:
        await connection.close()
    else:
        code = str(connection.close_code)
    return {"read": messages, "close": code, "read_s": time.monotonic() - started}


@dataclass
class Session:
    """One B block's clients."""

    readers: list[Reader]
    connections: list[Any]
    tasks: list[asyncio.Task[None]]
    slow: Any
    cpu_s: float = field(default_factory=time.process_time)
    wall_s: float = field(default_factory=time.monotonic)


async def open_session(port: int, acks: Any) -> Session:
    """Connect the slow client, then the readers; return once every reader has its snapshot."""
    url = f"ws://127.0.0.1:{port}/"
    slow = await slow_client(url, port)
    readers = [Reader(k) for k in range(READERS)]
    connections = await asyncio.gather(*(
        websockets.connect(url, compression=None, max_size=None, open_timeout=CONNECT_TIMEOUT_S)
        for _ in readers
    ))  # fmt: skip
    snapshots = [asyncio.Event() for _ in readers]
    tasks = [
        asyncio.create_task(read(c, r, acks, s))
        for c, r, s in zip(connections, readers, snapshots, strict=True)
    ]
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        await asyncio.gather(*(s.wait() for s in snapshots))
    return Session(readers, connections, tasks, slow)


async def close_session(session: Session) -> dict[str, Any]:
    """Close the readers, let the slow client read; return what every client saw."""
    await asyncio.gather(*(c.close() for c in session.connections))
    await asyncio.gather(*session.tasks)
    cpu, wall = time.process_time() - session.cpu_s, time.monotonic() - session.wall_s
    slow = await drain_slow(session.slow)
    return {
        "readers": [asdict(r) for r in session.readers],
        "slow": slow,
        "cpu_s": cpu,
        "wall_s": wall,
    }


class CpuSamples:
    """Every ``SAMPLE_S``: the machine's busy CPU time (``/proc/stat``) and this process's."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, float, float]] = []

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.samples.append((time.perf_counter_ns(), machine_busy_s(), time.process_time()))
            await asyncio.sleep(SAMPLE_S)


def machine_busy_s() -> float:
    """Return the CPU time every CPU has spent busy since boot, in seconds."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(t) for t in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def serve_commands(commands: Connection, acks: Any) -> None:
    """Obey the parent: ``connect`` (a port), ``disconnect``, ``samples``, ``quit``."""
    session: Session | None = None
    cpu = CpuSamples()
    sampler = asyncio.create_task(cpu.run())
    while True:
        command, *rest = await asyncio.to_thread(commands.recv)
        if command == "samples":
            commands.send(cpu.samples)
        elif command == "connect":
            session = await open_session(rest[0], acks)
            local = session.slow.local_address
            commands.send({"slow_port": local[1]})
        elif command == "disconnect" and session is not None:
            commands.send(await close_session(session))
            session = None
        else:
            sampler.cancel()
            return


def feed_clients(commands: Connection, acks: Any) -> None:
    """The child process's body: one event loop for every client."""
    asyncio.run(serve_commands(commands, acks))
