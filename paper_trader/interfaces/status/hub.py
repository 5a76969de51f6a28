"""The status feed's fan-out: each event numbered, encoded once, kept in a bounded ring for
clients that resume, and offered to every client's own bounded queue.

Telling never waits and never fails: a client whose queue is full is marked as fallen behind
(its connection closes it with code 4000) and loses nothing else's time. Frames are JSON text
encoded once by msgspec and shared by every client (``docs/status-protocol.md``).
"""

import asyncio
import itertools
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec

VERSION = 1
RING_FRAMES = 10_000  # events kept for ``since=`` resumes
CLIENT_QUEUE = 4096  # frames not yet sent to one client before it counts as fallen behind
TOPICS = frozenset({
    "candle", "signal", "decision", "fill", "trade_opened", "trade_closed", "breaker",
    "equity", "health", "data_gap", "model", "notification",
})  # fmt: skip


def _plain(value: object) -> Any:
    """Return what msgspec cannot encode itself as plain values (an event's read-only data)."""
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")  # msgspec's "unsupported"


_encoder = msgspec.json.Encoder(enc_hook=_plain)


@dataclass(frozen=True, slots=True)
class Frame:
    """One encoded message: its event number (0 for messages that are not events) and type."""

    seq: int
    type: str
    text: bytes


class Client:
    """One connection's queue of frames to send, filtered by its topics."""

    __slots__ = ("_missed", "_queue", "_wake", "behind", "capacity", "fell_behind", "topics")

    def __init__(self, capacity: int, topics: frozenset[str] | None) -> None:
        self._missed: deque[Frame] = deque()  # a resume's events from the ring: sent first
        self._queue: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self.capacity = capacity
        self.topics = topics  # None: every topic
        self.fell_behind = False
        self.behind = asyncio.Event()  # set when it falls behind: its sender may be blocked

    def __len__(self) -> int:
        return len(self._queue)

    def offer(self, frame: Frame) -> None:
        """Queue an event if the client wants its topic; mark the client fallen behind when
        its queue is full."""
        if self.topics is None or frame.type in self.topics:
            self.push(frame)

    def push(self, frame: Frame) -> None:
        """Queue a frame whatever its topic (snapshots, answers, heartbeats)."""
        if self.fell_behind:
            return
        if len(self._queue) >= self.capacity:
            self.fell_behind = True
            self._queue.clear()  # nothing more goes to it: free the frames now
            self.behind.set()
        else:
            self._queue.append(frame)
        self._wake.set()

    def resume(self, missed: list[Frame]) -> None:
        """Send ``missed`` (the ring's events after the client's last) before the queue; they
        do not count against its capacity (the ring bounds them)."""
        self._missed.extend(missed)
        self._wake.set()

    def drop_through(self, seq: int) -> None:
        """Drop the queued events numbered ``seq`` or less (a snapshot already holds them)."""
        kept = [f for f in self._queue if f.seq == 0 or f.seq > seq]
        self._queue.clear()
        self._queue.extend(kept)

    async def next(self) -> Frame | None:
        """Return the next frame to send; None once the client fell behind."""
        while self._missed and not self.fell_behind:
            frame = self._missed.popleft()
            if self.topics is None or frame.type in self.topics:
                return frame
        while not self._queue and not self.fell_behind:
            self._wake.clear()
            await self._wake.wait()
        return None if self.fell_behind else self._queue.popleft()


class StatusHub:
    """Number, encode, keep and fan out the events of one run (``run`` names it)."""

    def __init__(self, run: str, *, ring: int = RING_FRAMES) -> None:
        self.run = run
        self.seq = 0
        self.last_candle_ms: int | None = None
        self._ring: deque[Frame] = deque(maxlen=ring)
        self._clients: set[Client] = set()

    @property
    def clients(self) -> int:
        """Return how many clients are attached."""
        return len(self._clients)

    def tell(self, kind: str, candle_ms: int | None, data: object) -> None:
        """Publish one event to every client now, and keep it for resumes."""
        self.seq += 1
        if candle_ms is not None and (
            self.last_candle_ms is None or candle_ms > self.last_candle_ms
        ):
            self.last_candle_ms = candle_ms
        frame = Frame(self.seq, kind, self._encode(kind, self.seq, candle_ms, data))
        self._ring.append(frame)
        for client in self._clients:
            client.offer(frame)

    def broadcast(self, frame: Frame) -> None:
        """Queue a message that is not an event (a heartbeat) to every client."""
        for client in self._clients:
            client.push(frame)

    def message(self, kind: str, data: object, *, seq: int | None = None) -> Frame:
        """Return a message that is not an event (``snapshot``, ``heartbeat``, …), carrying
        ``seq`` (default: the last event's)."""
        number = self.seq if seq is None else seq
        return Frame(0, kind, self._encode(kind, number, self.last_candle_ms, data))

    def answer(self, body: Mapping[str, object]) -> Frame:
        """Return an answer to a client's message (``subscribed``, ``error``)."""
        return Frame(0, str(body["type"]), _encoder.encode({"v": VERSION, **body}))

    def attach(self, topics: frozenset[str] | None, capacity: int = CLIENT_QUEUE) -> Client:
        """Return a new client that receives every event told from now on."""
        client = Client(capacity, topics)
        self._clients.add(client)
        return client

    def detach(self, client: Client) -> None:
        """Stop offering events to ``client``."""
        self._clients.discard(client)

    def since(self, seq: int) -> list[Frame] | None:
        """Return the kept events after ``seq``, or None when some of them are no longer kept
        (or ``seq`` is not of this run's events)."""
        if seq > self.seq or seq < 0:
            return None
        oldest = self._ring[0].seq if self._ring else self.seq + 1
        if seq + 1 < oldest:
            return None
        return list(itertools.islice(self._ring, seq + 1 - oldest, None))

    def _encode(self, kind: str, seq: int, candle_ms: int | None, data: object) -> bytes:
        envelope = {
            "v": VERSION,
            "type": kind,
            "seq": seq,
            "run": self.run,
            "candle_ms": candle_ms,
            "data": data,
        }
        return _encoder.encode(envelope)


def parse_topics(topics: Collection[object]) -> frozenset[str] | None:
    """Return the topics named (None for every topic: ``*``); raise ValueError naming an
    unknown one."""
    names = {str(t) for t in topics}
    if "*" in names:
        return None
    unknown = sorted(names - TOPICS)
    if unknown:
        raise ValueError(
            f"unknown topic {unknown[0]!r}; the topics are {', '.join(sorted(TOPICS))}"
        )
    return frozenset(names)
