"""The status feed as its clients see it: real websockets clients over loopback against the
real server, told by a hub as the daemon tells it."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
import websockets
from conftest import eventually
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from paper_trader.domain import HealthStatus
from paper_trader.interfaces.status.access import Access, dashboard_origins
from paper_trader.interfaces.status.hub import StatusHub
from paper_trader.interfaces.status.server import StatusServer, Timing
from paper_trader.runtime.service import Readiness

TOKEN = "a-token-of-twenty-chars"


@dataclass
class Feed:
    """A served feed: its hub, its server and its URL."""

    hub: StatusHub
    server: StatusServer
    snapshots: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    def tell(self, count: int, kind: str = "candle", size: int = 10) -> None:
        """Tell ``count`` events of ``kind``, each with ``size`` bytes of payload."""
        for _ in range(count):
            self.hub.tell(kind, 1_000 + self.hub.seq, {"n": self.hub.seq + 1, "pad": "x" * size})


@asynccontextmanager
async def served(
    *,
    token: str | None = None,
    max_clients: int = 100,
    origins: Callable[[], frozenset[str]] = lambda: dashboard_origins("127.0.0.1", 8766),
    timing: Timing | None = None,
    port: int = 0,
) -> AsyncIterator[Feed]:
    """Run a feed whose snapshot is the hub's event count, as the daemon's would be."""
    hub = StatusHub("run-1")
    feed: Feed

    async def snapshot() -> tuple[int, object]:
        feed.snapshots.append(hub.seq)
        return hub.seq, {"told": hub.seq}

    access = Access(token=token, origins=origins, max_clients=max_clients)
    server = StatusServer(hub, snapshot, access, host="127.0.0.1", port=port, timing=timing)
    feed = Feed(hub, server)
    ready = Readiness()
    task = asyncio.create_task(server.run(ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield feed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def receive(client: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(client.recv(), 10))
    return message


async def events(client: ClientConnection, count: int) -> list[dict[str, Any]]:
    """Return the next ``count`` events (heartbeats and answers skipped)."""
    found: list[dict[str, Any]] = []
    while len(found) < count:
        message = await receive(client)
        if message["type"] not in {"heartbeat", "subscribed", "error"}:
            found.append(message)
    return found


async def refused(url: str, **options: Any) -> tuple[int, str]:
    """Return the HTTP status and body a handshake was refused with."""
    with pytest.raises(InvalidStatus) as caught:
        async with websockets.connect(url, **options):
            pass
    response = caught.value.response
    return response.status_code, response.body.decode()


async def test_a_client_gets_a_snapshot_then_every_event_in_seq_order() -> None:
    async with served() as feed:
        feed.tell(3)
        async with websockets.connect(feed.url) as client:
            snapshot = await receive(client)
            feed.tell(5, "fill")
            got = await events(client, 5)
    assert snapshot["type"] == "snapshot"
    assert snapshot["v"] == 1
    assert snapshot["run"] == "run-1"
    assert (snapshot["seq"], snapshot["data"]) == (3, {"told": 3})
    assert [m["seq"] for m in got] == [4, 5, 6, 7, 8]
    assert {m["type"] for m in got} == {"fill"}
    assert got[0]["candle_ms"] == 1_003
    assert got[0]["data"]["n"] == 4


async def test_events_told_while_the_snapshot_is_read_come_after_it_once() -> None:
    """Events told before the snapshot's cut are in the snapshot only; after it, sent once."""
    hub = StatusHub("run-1")

    async def slow_snapshot() -> tuple[int, object]:
        hub.tell("candle", 1, {})  # before the cut: the snapshot holds it
        cut = hub.seq
        await asyncio.sleep(0.2)
        hub.tell("candle", 2, {})  # after the cut: sent after the snapshot
        return cut, {}

    access = Access(token=None, origins=frozenset, max_clients=10)
    server = StatusServer(hub, slow_snapshot, access, host="127.0.0.1", port=0)
    ready = Readiness()
    task = asyncio.create_task(server.run(ready))
    await ready.wait()
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}") as client:
            snapshot = await receive(client)
            hub.tell("candle", 3, {})
            got = await events(client, 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert snapshot["seq"] == 1
    assert [m["seq"] for m in got] == [2, 3]


async def test_a_client_that_resumes_gets_what_it_missed_and_no_snapshot() -> None:
    async with served() as feed:
        async with websockets.connect(feed.url) as client:
            await receive(client)
            feed.tell(2)
            seen = await events(client, 2)
        feed.tell(4)  # missed while away
        last = seen[-1]["seq"]
        async with websockets.connect(f"{feed.url}/?since={last}&run=run-1") as client:
            feed.tell(1)
            got = await events(client, 5)
    assert [m["seq"] for m in got] == [3, 4, 5, 6, 7]
    assert len(feed.snapshots) == 1  # the first connection's only


async def test_a_resume_too_old_or_from_another_run_gets_a_fresh_snapshot() -> None:
    async with served() as feed:
        feed.tell(10_050)  # more than the ring keeps
        async with websockets.connect(f"{feed.url}/?since=10&run=run-1") as client:
            too_old = await receive(client)
        async with websockets.connect(f"{feed.url}/?since=10050&run=an-earlier-run") as client:
            restarted = await receive(client)
        async with websockets.connect(f"{feed.url}/?since=50&run=run-1") as client:
            kept = await receive(client)
    assert (too_old["type"], too_old["seq"]) == ("snapshot", 10_050)
    assert (restarted["type"], restarted["seq"]) == ("snapshot", 10_050)
    assert (kept["type"], kept["seq"]) == ("candle", 51)


async def test_subscribe_narrows_the_events_and_is_answered() -> None:
    async with served() as feed, websockets.connect(feed.url) as client:
        await receive(client)
        await client.send(json.dumps({"type": "subscribe", "topics": ["trade_closed"]}))
        answer = await receive(client)
        feed.tell(3, "candle")
        feed.tell(1, "trade_closed")
        [only] = await events(client, 1)
        await client.send(json.dumps({"type": "subscribe", "topics": ["*"]}))
        assert (await receive(client))["topics"] == ["*"]
        feed.tell(1, "candle")
        [after] = await events(client, 1)
    assert answer == {"v": 1, "type": "subscribed", "topics": ["trade_closed"]}
    assert (only["type"], only["seq"]) == ("trade_closed", 4)
    assert (after["type"], after["seq"]) == ("candle", 5)


async def test_topics_in_the_url_filter_from_the_start() -> None:
    url = "{}/?topics=fill,equity"
    async with served() as feed, websockets.connect(url.format(feed.url)) as client:
        await receive(client)
        feed.tell(2, "candle")
        feed.tell(1, "equity")
        [got] = await events(client, 1)
    assert got["type"] == "equity"


async def test_a_bad_message_is_answered_and_the_connection_stays() -> None:
    async with served() as feed, websockets.connect(feed.url) as client:
        await receive(client)
        await client.send("not json")
        not_json = await receive(client)
        await client.send(json.dumps({"type": "subscribe", "topics": ["candles"]}))
        unknown = await receive(client)
        await client.send(json.dumps({"type": "unsubscribe"}))
        other = await receive(client)
        feed.tell(1)
        [still] = await events(client, 1)
    assert not_json["type"] == "error"
    assert "not JSON" in not_json["error"]
    assert "unknown topic 'candles'" in unknown["error"]
    assert "subscribe" in other["error"]
    assert still["seq"] == 1


async def test_a_client_that_does_not_read_is_dropped_and_others_get_everything() -> None:
    """The slow client's queue fills and the server lets go of it (closing with 4000, which a
    client that reads nothing never receives: its connection is dropped); the reading client
    misses nothing meanwhile."""
    async with served() as feed:
        slow_socket = socket.create_connection(("127.0.0.1", feed.server.port))
        slow_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with (
            websockets.connect(feed.url, sock=slow_socket, ping_interval=None) as slow,
            websockets.connect(feed.url) as reader,
        ):
            await receive(reader)
            await receive(slow)
            slow.transport.pause_reading()  # reads nothing more from its socket
            got: list[dict[str, Any]] = []
            while not feed.server.fell_behind and len(got) < 100_000:
                feed.tell(500, size=2_000)
                got.extend(await events(reader, 500))
            feed.tell(10)
            got.extend(await events(reader, 10))
            await eventually(lambda: feed.hub.clients == 1, timeout=20)  # the server let go
            feed.tell(10)
            got.extend(await events(reader, 10))
    assert feed.server.fell_behind == 1
    assert [m["seq"] for m in got] == list(range(1, len(got) + 1))


async def test_without_the_token_the_handshake_is_refused_with_401() -> None:
    async with served(token=TOKEN) as feed:
        status, body = await refused(feed.url)
        wrong, _ = await refused(f"{feed.url}/?token=not-the-token")
        async with websockets.connect(f"{feed.url}/?token={TOKEN}") as client:
            by_query = await receive(client)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with websockets.connect(feed.url, additional_headers=headers) as client:
            by_header = await receive(client)
    assert (status, wrong) == (HTTPStatus.UNAUTHORIZED, HTTPStatus.UNAUTHORIZED)
    assert "token" in body
    assert by_query["type"] == by_header["type"] == "snapshot"
    assert feed.server.refused == 2


async def test_a_page_of_a_foreign_origin_is_refused_with_403() -> None:
    """A browser sends its page's Origin: only the dashboard's (and configured) ones pass."""
    async with served() as feed:
        status, body = await refused(feed.url, origin="https://evil.example")
        null_status, _ = await refused(feed.url, origin="null")
        async with websockets.connect(feed.url, origin="http://localhost:8766") as client:
            dashboard = await receive(client)
        async with websockets.connect(feed.url) as client:  # not a browser: no Origin
            script = await receive(client)
    assert (status, null_status) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    assert "https://evil.example" in body
    assert dashboard["type"] == script["type"] == "snapshot"


async def test_past_the_connection_cap_the_handshake_is_refused_with_503() -> None:
    async with served(max_clients=2) as feed:
        async with websockets.connect(feed.url) as one, websockets.connect(feed.url) as two:
            await receive(one)
            await receive(two)
            status, body = await refused(feed.url)
        async with websockets.connect(feed.url) as three:  # room again
            after = await receive(three)
    assert status == HTTPStatus.SERVICE_UNAVAILABLE
    assert "STATUS_WS_MAX_CLIENTS" in body
    assert after["type"] == "snapshot"


async def test_a_malformed_query_is_refused_with_400() -> None:
    async with served() as feed:
        since, since_body = await refused(f"{feed.url}/?since=yesterday")
        topics, topics_body = await refused(f"{feed.url}/?topics=candle,nonsense")
    assert (since, topics) == (HTTPStatus.BAD_REQUEST, HTTPStatus.BAD_REQUEST)
    assert "since" in since_body
    assert "nonsense" in topics_body


async def test_heartbeats_carry_the_last_seq_and_are_not_events() -> None:
    async with served(timing=Timing(heartbeat_s=0.2, poll_s=0.1)) as feed:
        feed.tell(2)
        async with websockets.connect(feed.url) as client:
            await receive(client)
            beat = await receive(client)
            feed.tell(1)
            [event] = await events(client, 1)
    assert (beat["type"], beat["seq"], beat["data"]) == ("heartbeat", 2, {})
    assert event["seq"] == 3


async def test_a_port_in_use_leaves_the_feed_degraded_not_the_daemon_down() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        async with served(port=taken.getsockname()[1]) as feed:
            health = feed.server.health()
    assert health.status is HealthStatus.DEGRADED
    assert "not listening" in health.detail


async def test_a_stop_closes_the_clients_with_going_away() -> None:
    running = served()
    feed = await running.__aenter__()
    client = await websockets.connect(feed.url)
    await receive(client)
    await running.__aexit__(None, None, None)  # the daemon stops
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(client.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
