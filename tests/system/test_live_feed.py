"""The daemon against the simulated exchange with faults: the database equals the CSV."""

import json
import signal
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import daemon, notify_socket, simulator

from paper_trader.simulator.synthetic import generate_candles, write_csv

CANDLES = 900
HISTORY = 300


def _stored(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT open_time_ms, open, high, low, close, volume FROM candles "
            "WHERE venue = 'binance' AND symbol = 'BTC-USDT' AND interval = '1m' "
            "ORDER BY open_time_ms"
        ).fetchall()
    return [(t, *(Decimal(v) for v in values)) for t, *values in rows]


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM candles").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_faults_on_the_wire_leave_the_stored_candles_equal_to_the_csv(tmp_path: Path) -> None:
    """Drops, silence, duplicates, reordering and garbage: every candle stored once, exactly."""
    csv = tmp_path / "market.csv"
    candles = list(generate_candles(count=CANDLES, seed=23))
    write_csv(iter(candles), csv)
    env = subprocess_env(tmp_path)
    faults = (
        "--drop-every", "1.5",
        "--silence-every", "4", "--silence-for", "1",
        "--duplicate-rate", "0.05",
        "--reorder-rate", "0.05",
        "--garbage-rate", "0.03",
        "--rest-5xx-rate", "0.05",
        "--fault-seed", "3",
    )  # fmt: skip
    args = ("--csv", str(csv), "--symbol", "BTCUSDT", "--history", str(HISTORY), "--speed", "3000")
    db = tmp_path / "paper_trader.db"
    with simulator(env, *args, *faults) as sim, notify_socket() as notify:
        daemon_env = subprocess_env(
            tmp_path,
            NOTIFY_SOCKET=notify.path,
            SYMBOLS="BTCUSDT",
            WARMUP_CANDLES=str(HISTORY),
            STREAM_SILENCE_TIMEOUT="5",
            RECONNECT_BACKOFF_BASE="0.05",
            RECONNECT_BACKOFF_MAX="0.5",
            **sim.env,
        )
        with daemon(daemon_env) as process:
            notify.wait_for("READY=1", timeout=30)
            deadline = time.monotonic() + 90
            while _count(db) < CANDLES and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.25)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
    expected = [(c.open_time_ms, c.open, c.high, c.low, c.close, c.volume) for c in candles]
    assert _stored(db) == expected
    lines = (tmp_path / "logs" / "paper_trader.log").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    [stopped] = [e for e in log if e["event"] == "feed_stopped"]
    assert stopped["reconnects"] >= 2
    assert stopped["malformed"] + stopped["unknown"] + stopped["venue_errors"] > 0
    assert stopped["duplicates"] > 0
    assert stopped["candles_emitted"] == CANDLES
    print("fault figures:", json.dumps(stopped))  # shown with -s: the fault figures of a run
