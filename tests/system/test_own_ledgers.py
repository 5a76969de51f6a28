"""Nothing but the live daemon writes the live ledger: replay and demo keep their own files."""

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import CLI, run_cli
from fakes.models import publish_model

from paper_trader.simulator.synthetic import generate_candles, write_csv


def _csv(path: Path, count: int, seed: int = 3) -> Path:
    write_csv(generate_candles(count=count, seed=seed), path)
    return path


def _count(db: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _replay(env: dict[str, str], csv: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["replay", "--csv", str(csv), "--symbol", "BTCUSDT", "--interval", "1m", *extra]
    return run_cli(args, env, timeout=120)


def test_replay_without_db_writes_a_database_of_its_own_never_db_path(tmp_path: Path) -> None:
    """The live DB_PATH is left as it was; each replay names its own database, and its trade
    files lie beside it, not in LOG_DIR."""
    env = subprocess_env(tmp_path)
    live = Path(env["DB_PATH"])
    assert _replay(env, _csv(tmp_path / "live.csv", 300, seed=5), "--db", str(live)).returncode == 0
    before = (_count(live, "runs"), _count(live, "candles"), _count(live, "equity_snapshots"))
    first = _replay(env, _csv(tmp_path / "a.csv", 400))
    second = _replay(env, _csv(tmp_path / "a.csv", 400))
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    one, two = (Path(json.loads(done.stdout)["db"]) for done in (first, second))
    assert (_count(live, "runs"), _count(live, "candles"), _count(live, "equity_snapshots")) == (
        before
    )
    assert one != two
    for db in (one, two):
        assert db.parent == Path(env["CACHE_DIR"]) / "replays"
        assert (_count(db, "runs"), _count(db, "candles")) == (1, 400)
        assert db.with_suffix(".portfolio.csv").read_text().startswith("time,cash,")
    assert not (Path(env["LOG_DIR"]) / "portfolio.csv").exists()
    assert not (Path(env["LOG_DIR"]) / "trades.csv").exists()


def test_a_replay_interrupted_by_ctrl_c_exits_130_and_its_summary_says_partial(
    tmp_path: Path,
) -> None:
    """SIGINT mid-replay: exit code 130, `partial: true` and the signal in the summary."""
    csv = _csv(tmp_path / "long.csv", 60_000)
    db = tmp_path / "replay.db"
    env = subprocess_env(tmp_path)
    args = ["replay", "--csv", str(csv), "--symbol", "BTCUSDT", "--interval", "1m", "--db", str(db)]
    process = subprocess.Popen(
        [sys.executable, CLI, *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                if db.exists() and _count(db, "candles") > 0:
                    break
            time.sleep(0.05)
        assert process.poll() is None, "the replay ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err[-2000:]
    summary = json.loads(out)["replay"]
    assert summary["partial"] is True
    assert summary["interrupted_by"] == "SIGINT"
    assert summary["exit_code"] == 130
    assert 0 < summary["candles_processed"] < 60_000
    assert "paper-trader: replay interrupted by SIGINT: the summary is partial" in err


@pytest.mark.timeout(180)
def test_demo_keeps_its_trade_files_beside_its_database(tmp_path: Path) -> None:
    """The demo's portfolio rows go to demo.portfolio.csv next to demo.db, not to LOG_DIR."""
    db = tmp_path / "demo" / "demo.db"
    publish_model(db.with_suffix(".models"))  # so that the demo does not train one first
    env = subprocess_env(tmp_path)
    done = run_cli(["demo", "--seconds", "6", "--db", str(db), "--json"], env, timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["candles_processed"] > 0
    assert db.with_suffix(".portfolio.csv").read_text().startswith("time,cash,")
    assert not (Path(env["LOG_DIR"]) / "portfolio.csv").exists()
    assert not (Path(env["LOG_DIR"]) / "trades.csv").exists()


def test_models_dir_is_created_at_start_like_the_log_and_cache_directories(
    tmp_path: Path,
) -> None:
    """A daemon run (here a replay) creates a missing MODELS_DIR, as it creates LOG_DIR."""
    env = subprocess_env(tmp_path, MODELS_DIR=str(tmp_path / "new" / "models"))
    done = _replay(env, _csv(tmp_path / "a.csv", 100), "--db", str(tmp_path / "r.db"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "models").is_dir()
    assert Path(env["LOG_DIR"]).is_dir()
