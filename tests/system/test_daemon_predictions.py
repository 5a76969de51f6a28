"""The daemon predicts live against the simulator, logs and resolves; a bad model is refused."""

import json
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import subprocess_env
from daemon_harness import daemon, notify_socket, simulator
from fakes.models import RULE, publish_model

from paper_trader.prediction.dataset import classify

HISTORY = 800  # the features are ready from candle 660


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def _run(env: dict[str, str], until: str, count: int) -> list[dict[str, object]]:
    """Run the daemon until ``until`` (a count query) reaches ``count``; return its log."""
    db = Path(env["DB_PATH"])
    with notify_socket() as notify, daemon({**env, "NOTIFY_SOCKET": notify.path}) as process:
        notify.wait_for("READY=1", timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            rows = _query(db, until)
            if rows and int(rows[0][0]) >= count:  # type: ignore[call-overload]
                break
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = Path(env["LOG_DIR"]) / "paper_trader.log"
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.timeout(300)
def test_the_daemon_predicts_logs_resolves_and_adapts_its_weights(tmp_path: Path) -> None:
    """Every stored prediction carries the model's version; each resolution matches the closes."""
    version = publish_model(tmp_path / "models").version
    env = subprocess_env(
        tmp_path, AUTO_TRAIN="false", RETRAIN_INTERVAL="0", WARMUP_CANDLES=str(HISTORY)
    )
    with simulator(env, "--speed", "600", "--history", str(HISTORY)) as sim:
        events = _run(
            {**env, **sim.env, "SYMBOLS": "BTCUSDT"},
            "SELECT count(*) FROM predictions WHERE outcome = 'resolved'",
            80,
        )
    db = tmp_path / "paper_trader.db"
    assert any(e["event"] == "model_installed" and e["version"] == version for e in events)
    versions = _query(db, "SELECT DISTINCT model_version, spec_hash FROM predictions")
    assert [v[0] for v in versions] == [version]
    closes = dict(_query(db, "SELECT open_time_ms, CAST(close AS REAL) FROM candles"))
    resolved = _query(
        db,
        "SELECT open_time_ms, label, resolved_open_time_ms, horizon, threshold FROM predictions "
        "WHERE outcome = 'resolved' ORDER BY open_time_ms",
    )
    assert len(resolved) >= 80
    for t, label, at, horizon, threshold in resolved:
        assert at == t + horizon * 60_000  # type: ignore[operator]
        forward = closes[at] / closes[t] - 1  # type: ignore[operator]
        assert label == int(classify(np.array([forward]), threshold)[0])
    assert resolved[0][3] == RULE.horizon
    weights = [json.loads(w) for (w,) in _query(db, "SELECT weights_json FROM predictions")]
    assert len({tuple(sorted(w.items())) for w in weights}) > 1  # the weights adapted


@pytest.mark.timeout(300)
def test_a_tampered_model_is_refused_and_the_daemon_runs_without_entries(
    tmp_path: Path,
) -> None:
    """A changed file: logged with its reason, no prediction made, candles still stored."""
    version = publish_model(tmp_path / "models").version
    forest = tmp_path / "models" / version / "forest.skops"
    forest.write_bytes(forest.read_bytes()[:-10] + b"0123456789")
    env = subprocess_env(
        tmp_path, AUTO_TRAIN="false", RETRAIN_INTERVAL="0", WARMUP_CANDLES=str(HISTORY)
    )
    with simulator(env, "--speed", "600", "--history", str(HISTORY)) as sim:
        events = _run(
            {**env, **sim.env, "SYMBOLS": "BTCUSDT"}, "SELECT count(*) FROM candles", HISTORY + 20
        )
    refused = [e for e in events if e["event"] == "model_unavailable"]
    assert refused
    assert "forest.skops has SHA-256" in str(refused[0]["reason"])
    assert "AUTO_TRAIN=false: nothing is trained here" in str(refused[0]["reason"])
    assert _query(tmp_path / "paper_trader.db", "SELECT count(*) FROM predictions") == [(0,)]
    assert not any(e["event"] == "model_installed" for e in events)


@pytest.mark.timeout(420)
def test_a_first_start_without_a_model_trains_one_from_the_backfilled_history(
    tmp_path: Path,
) -> None:
    """AUTO_TRAIN: warm up TRAINING_CANDLES, train in a separate process, then predict."""
    (tmp_path / "models").mkdir()
    env = subprocess_env(
        tmp_path,
        AUTO_TRAIN="true",
        TRAINING_CANDLES="3000",
        WARMUP_CANDLES="100",
        PREDICTION_HORIZON="5",
        WALK_FORWARD_FOLDS="2",
        FEE_RATE="0.0002",  # a narrow flat band, so 3,000 synthetic candles hold every class
        SLIPPAGE_BPS="0",
    )
    with simulator(env, "--speed", "60", "--history", "3000", "--candles", "4000") as sim:
        events = _run(
            {**env, **sim.env, "SYMBOLS": "BTCUSDT"},
            "SELECT count(*) FROM predictions",
            5,
        )
    names = [e["event"] for e in events]
    assert "model_unavailable" in names
    started = next(e for e in events if e["event"] == "retrain_started")
    assert "no usable model at start" in str(started["reason"])
    finished = next(e for e in events if e["event"] == "retrain_finished")
    failed = [e.get("output") for e in events if e["event"] == "retrain_failed"]
    assert finished["exit_code"] == 0, failed
    assert finished["promoted"] is True
    assert float(finished["loop_lag_max_ms"]) >= 0.0  # type: ignore[arg-type]
    meta_versions = [p.name for p in (tmp_path / "models").iterdir() if p.is_dir()]
    assert meta_versions == [finished["version"]]
    assert (tmp_path / "models" / "current").read_text().strip() == finished["version"]
    db = tmp_path / "paper_trader.db"
    assert _query(db, "SELECT count(*) FROM candles")[0][0] >= 3000  # type: ignore[operator]
    assert _query(db, "SELECT DISTINCT model_version FROM predictions") == [(finished["version"],)]


@pytest.mark.timeout(300)
def test_predictions_pending_at_a_stop_are_resolved_after_the_restart(tmp_path: Path) -> None:
    """Crash-only: the log's pending rows are reloaded and resolved by the candles that follow."""
    publish_model(tmp_path / "models")
    env = subprocess_env(
        tmp_path, AUTO_TRAIN="false", RETRAIN_INTERVAL="0", WARMUP_CANDLES=str(HISTORY)
    )
    db = tmp_path / "paper_trader.db"
    pending_sql = "SELECT open_time_ms FROM predictions WHERE outcome = 'pending'"
    with simulator(env, "--speed", "600", "--history", str(HISTORY)) as sim:
        live = {**env, **sim.env, "SYMBOLS": "BTCUSDT"}
        _run(live, "SELECT count(*) FROM predictions", 20)
        left = [t for (t,) in _query(db, pending_sql)]
        assert left
        marks = ",".join(str(t) for t in left)
        events = _run(
            live,
            f"SELECT count(*) FROM predictions WHERE open_time_ms IN ({marks}) "
            "AND outcome = 'resolved'",
            len(left),
        )
    assert any(e["event"] == "predictions_restored" for e in events)
    outcomes = _query(
        db, f"SELECT DISTINCT outcome FROM predictions WHERE open_time_ms IN ({marks})"
    )
    assert outcomes == [("resolved",)]
