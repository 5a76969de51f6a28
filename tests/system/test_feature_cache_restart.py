"""A restart resumes the features from the cache: the rows equal an uninterrupted run's."""

import json
import math
import signal
import sqlite3
import time
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import daemon, notify_socket, simulator

from paper_trader.domain import Interval, Venue
from paper_trader.features.cache import decode_rows
from paper_trader.features.engine import SeriesEngine
from paper_trader.features.spec import default_spec
from paper_trader.simulator.synthetic import generate_candles, write_csv

CANDLES = 1_500
HISTORY = 800
FIRST_STOP = 1_000
MINUTE = 60_000


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM candles").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _run_until(env: dict[str, str], db: Path, candles: int) -> list[dict[str, object]]:
    """Run the daemon until the database holds ``candles`` candles; return its log events."""
    log_file = Path(env["LOG_DIR"]) / "paper_trader.log"
    start = len(log_file.read_text().splitlines()) if log_file.exists() else 0
    with notify_socket() as notify, daemon({**env, "NOTIFY_SOCKET": notify.path}) as process:
        notify.wait_for("READY=1", timeout=30)
        deadline = time.monotonic() + 90
        while _count(db) < candles and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    return [json.loads(line) for line in log_file.read_text().splitlines()[start:]]


def _uninterrupted_rows(db: Path) -> dict[int, list[float]]:
    """Every stored candle through one engine that never stopped."""
    engine = SeriesEngine(default_spec(), MINUTE)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        stored = conn.execute(
            "SELECT open_time_ms, open, high, low, close, volume FROM candles "
            "WHERE symbol = 'BTC-USDT' ORDER BY open_time_ms"
        ).fetchall()
    rows = {}
    for t, *values in stored:
        row = engine.update(t, *(float(v) for v in values))
        assert row is not None
        rows[t] = row
    return rows


def _same(a: list[float], b: list[float]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def test_features_resume_from_the_cache_after_a_restart(tmp_path: Path) -> None:
    """Run, stop, start: the first rows after the restart equal an uninterrupted run's."""
    csv = tmp_path / "market.csv"
    write_csv(generate_candles(count=CANDLES, seed=31), csv)
    env = subprocess_env(
        tmp_path, SYMBOLS="BTCUSDT", WARMUP_CANDLES=str(HISTORY), STREAM_SILENCE_TIMEOUT="10"
    )
    db = tmp_path / "paper_trader.db"
    cache_file = tmp_path / "cache" / "features" / "binance_BTC-USDT_1m.json"
    args = ("--csv", str(csv), "--symbol", "BTCUSDT", "--history", str(HISTORY), "--speed", "3000")
    with simulator(env, *args) as sim:
        env.update(sim.env)
        first = _run_until(env, db, FIRST_STOP)
        saved = json.loads(cache_file.read_bytes().rsplit(b"\n", 2)[0])
        second = _run_until(env, db, CANDLES)

    [prepared] = [e for e in first if e["event"] == "features_prepared"]
    assert prepared["source"] == "database"
    [prepared] = [e for e in second if e["event"] == "features_prepared"]
    assert prepared["source"] == "cache"
    assert [e["event"] for e in second if e["event"].startswith("feature_cache")] == [
        "feature_cache_restored"
    ]

    resumed_after = saved["last_open_time_ms"]
    final = json.loads(cache_file.read_bytes().rsplit(b"\n", 2)[0])
    series = (Venue.BINANCE, "BTC-USDT", Interval.M1)
    rows = decode_rows(series, final["rows"], len(default_spec().names))
    after_restart = [(r.open_time_ms, r.values) for r in rows if r.open_time_ms > resumed_after]
    assert len(after_restart) >= 100
    assert after_restart[0][0] == resumed_after + MINUTE
    reference = _uninterrupted_rows(db)
    for t, values in after_restart:
        assert _same(values, reference[t]), f"row {t} differs from the uninterrupted run"
    assert all(math.isfinite(x) for x in after_restart[0][1])
