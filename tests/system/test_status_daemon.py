"""The status feed of a daemon trading on the simulated exchange, as real websockets clients
see it: a snapshot, then every event in ``seq`` order, each already committed when it
arrives; a resume with ``since=``; topics; the token, Origin and connection-cap refusals; a
client that falls behind let go while the others miss nothing."""

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import subprocess_env
from daemon_harness import BUSY, daemon, notify_socket, query, simulator
from fakes.models import publish_model
from test_http_daemon import free_port
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "status-protocol.schema.json").read_text())
# Built (and the schema checked) once: jsonschema.validate does both on every call, about
# 60-160 ms a message here, which left the client minutes behind the daemon's first events.
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
VALIDATOR.check_schema(SCHEMA)
HISTORY = 800  # the features are ready from candle 660
SYMBOLS = "BTCUSDT,ETHUSDT"
TOKEN = "status-feed-token-for-the-test"
TRADING = {**BUSY, "WARMUP_CANDLES": str(HISTORY), "STOP_LOSS_COOLDOWN": "0"}


def check(message: dict[str, Any]) -> dict[str, Any]:
    """Return the message once it is valid against the protocol's JSON Schema."""
    VALIDATOR.validate(message)
    return message


def receive(client: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    return check(json.loads(client.recv(timeout=timeout)))


@contextmanager
def feed_of(port: int, path: str = "/", **options: Any) -> Iterator[ClientConnection]:
    """Connect to the daemon's feed, retrying while it is not listening yet."""
    deadline = time.monotonic() + 60
    while True:
        try:
            # max_queue=None: a client read later keeps reading its socket (pings included)
            client = connect(
                f"ws://127.0.0.1:{port}{path}", open_timeout=10, max_queue=None, **options
            )
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the status feed never listened"
            time.sleep(0.1)
    with client:
        yield client


def refused(port: int, path: str = "/", **options: Any) -> int:
    with pytest.raises(InvalidStatus) as caught, connect(f"ws://127.0.0.1:{port}{path}", **options):
        pass
    return caught.value.response.status_code


def committed(db: Path, message: dict[str, Any]) -> bool:
    """Return whether what the event reports is in SQLite (fills and trades)."""
    data = message["data"]
    if message["type"] == "fill":
        sql, key = "SELECT count(*) FROM fills WHERE fill_id = ?", data["fill_id"]
    elif message["type"] == "trade_closed":
        sql, key = "SELECT count(*) FROM trades WHERE exit_fill_id = ?", data["exit_fill_id"]
    else:
        return True
    rows = query(db, sql, (key,))
    return bool(rows) and rows[0][0] == 1


@pytest.mark.timeout(420)
def test_a_trading_daemon_feeds_a_snapshot_then_committed_events_in_order(
    tmp_path: Path,
) -> None:
    publish_model(tmp_path / "models", mirrored=True)
    port = free_port()
    env = subprocess_env(
        tmp_path,
        **TRADING,
        STATUS_WS_PORT=str(port),
        STATUS_WS_TOKEN=TOKEN,
        STATUS_WS_MAX_CLIENTS="3",
        HEALTH_CHECK_INTERVAL="2",
    )
    db = Path(env["DB_PATH"])
    auth = f"/?token={TOKEN}"
    with simulator(env, "--speed", "600", "--history", str(HISTORY), "--symbols", SYMBOLS) as sim:
        live = {**env, **sim.env, "SYMBOLS": SYMBOLS}
        with notify_socket() as notify, daemon({**live, "NOTIFY_SOCKET": notify.path}):
            notify.wait_for("READY=1", timeout=60)
            with feed_of(port, auth) as client, feed_of(port, f"{auth}&topics=equity") as narrow:
                snapshot = receive(client)
                seen, late = _until_a_trade_closed(client, db)
                narrowed = [receive(narrow)["type"] for _ in range(6)]
                refusals = {
                    "no token": refused(port),
                    "wrong token": refused(port, "/?token=not-it"),
                    "foreign page": refused(port, auth, origin="https://evil.example"),
                    "third and fourth": _past_the_cap(port, auth),
                }
            with feed_of(port, auth, origin=_dashboard(env)) as dashboard:
                assert receive(dashboard)["type"] == "snapshot"
            resumed = _resumed(port, auth, seen[-1])
    assert snapshot["type"] == "snapshot"
    assert snapshot["data"]["status"]["state"] == "active"
    assert {s["symbol"] for s in snapshot["data"]["symbols"]} == {"BTC-USDT", "ETH-USDT"}
    seqs = [m["seq"] for m in seen]
    assert seqs == list(range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(seqs)))
    kinds = {m["type"] for m in seen}
    assert {"candle", "signal", "decision", "fill", "trade_opened", "trade_closed"} <= kinds
    assert {"equity", "notification", "health"} <= kinds
    assert late == [], "events that arrived before their commit"
    assert narrowed[0] == "snapshot"
    assert set(narrowed[1:]) == {"equity"}
    assert refusals == {
        "no token": 401, "wrong token": 401, "foreign page": 403, "third and fourth": 503,
    }  # fmt: skip
    assert resumed[0]["type"] != "snapshot"
    assert resumed[0]["seq"] == seen[-1]["seq"] + 1


def _until_a_trade_closed(
    client: ClientConnection, db: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read events until a trade closed and a health check came; return them, and those that
    reported a fill or a trade SQLite did not hold yet when they arrived."""
    seen: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    deadline = time.monotonic() + 240
    kinds: set[str] = set()
    while not {"trade_closed", "health"} <= kinds:
        assert time.monotonic() < deadline, f"no trade closed; saw {sorted(kinds)}"
        message = receive(client)
        if message["type"] == "heartbeat":
            continue
        if not committed(db, message):
            late.append(message)
        seen.append(message)
        kinds.add(message["type"])
    return seen, late


def _past_the_cap(port: int, auth: str) -> int:
    """With two clients on, the third is admitted and a fourth refused: return its status."""
    with feed_of(port, auth) as third:
        receive(third)
        return refused(port, auth)


def _resumed(port: int, auth: str, last: dict[str, Any]) -> list[dict[str, Any]]:
    """Reconnect after ``last``; return the first messages that are not heartbeats."""
    with feed_of(port, f"{auth}&since={last['seq']}&run={last['run']}") as client:
        found: list[dict[str, Any]] = []
        while len(found) < 3:
            message = receive(client)
            if message["type"] != "heartbeat":
                found.append(message)
        return found


def _dashboard(env: dict[str, str]) -> str:
    """Return the origin of the dashboard page the daemon serves on its HTTP port."""
    log = Path(env["LOG_DIR"]) / "paper_trader.log"
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["event"] == "http_listening":
            return str(entry["url"])
    raise AssertionError("the HTTP service never listened")


@pytest.mark.timeout(300)
def test_a_client_that_falls_behind_is_let_go_and_the_others_miss_nothing(
    tmp_path: Path,
) -> None:
    """A client that stops reading (a tiny receive window) on a fast market: the daemon closes
    it and logs it, while a reading client gets every event in order, before and after."""
    publish_model(tmp_path / "models", mirrored=True)
    port = free_port()
    env = subprocess_env(tmp_path, **{**TRADING, "WARMUP_CANDLES": "100"}, STATUS_WS_PORT=str(port))
    fast_market = (
        "--speed",
        "6000",
        "--updates-per-candle",
        "1",
        "--history",
        "100",
        "--candles",
        "30000",  # 300 s of market, past the reading's 180 s deadline; made before it listens
    )
    symbols = "BTCUSDT,ETHUSDT,SOLUSDT"
    with simulator(env, *fast_market, "--symbols", symbols, timeout=60) as sim:
        live = {**env, **sim.env, "SYMBOLS": symbols}
        with notify_socket() as notify, daemon({**live, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            tiny = socket.create_connection(("127.0.0.1", port))
            tiny.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            with feed_of(port) as reader, connect(f"ws://127.0.0.1:{port}/", sock=tiny) as slow:
                first = receive(slow)  # then it reads nothing more: its queue of 16 fills
                seqs, after = _read_until_let_go(reader, Path(env["LOG_DIR"]))
            assert p.poll() is None
    assert first["type"] == "snapshot"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert after >= 100, "the reading client got few events after the slow one was let go"


def _read_until_let_go(reader: ClientConnection, logs: Path) -> tuple[list[int], int]:
    """Read events until the daemon logged a client let go, and 100 more; return every event
    number read and how many came after the log line."""
    seqs: list[int] = []
    deadline = time.monotonic() + 180
    let_go_at: int | None = None
    while let_go_at is None or len(seqs) < let_go_at + 100:
        assert time.monotonic() < deadline, f"no client was let go after {len(seqs)} events"
        message = receive(reader)
        if message["type"] != "heartbeat":
            seqs.append(message["seq"])
        if (
            let_go_at is None
            and len(seqs) % 200 == 0
            and _logged(logs, "status_client_fell_behind")
        ):
            let_go_at = len(seqs)
    return seqs, len(seqs) - (let_go_at or 0)


def _logged(logs: Path, event: str) -> bool:
    lines = (logs / "paper_trader.log").read_text().splitlines()
    return any(json.loads(line)["event"] == event for line in lines)
