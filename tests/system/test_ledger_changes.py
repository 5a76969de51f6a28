"""Settings changed under an existing ledger: answered at start, never a zombie position.

The ledger is built by a replay of two symbols that ends with a position open on each
(stops and targets far away, no time limit); then the daemon starts on it with other
settings, against the simulated exchange.
"""

import contextlib
import json
import signal
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import (
    BUSY,
    daemon,
    notify_socket,
    query,
    run_cli,
    simulator,
    wait_until,
)
from fakes.models import candle_csv, publish_model
from test_http_daemon import free_port

HOLD = {  # entries on every buy signal, and nothing closes them during the replay
    **BUSY,
    "MAX_HOLDING_TIME": "0",
    "STOP_LOSS_ATR_MULTIPLIER": "50",
    "TAKE_PROFIT_RISK_REWARD": "50",
    "TRAILING_STOP": "false",
    "EXIT_ON_OPPOSITE_SIGNAL": "false",
}
# The restart: a holding-time limit the replayed positions are far past, no candle stale.
RESTART = {**HOLD, "MAX_HOLDING_TIME": "3600", "CATCHUP_LIMIT": "10000000"}
HISTORY = 800  # simulator candles: the features are ready from candle 660


@dataclass(frozen=True)
class Ledger:
    """A replayed ledger with a long position open on BTC-USDT and on ETH-USDT."""

    db: Path
    models: Path


@pytest.fixture(name="ledger", scope="module")
def ledger_fixture(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """Replay two mirrored synthetic series (a model that buys them) into a database."""
    work = tmp_path_factory.mktemp("ledger")
    publish_model(work / "models", mirrored=True)
    btc = candle_csv(work / "btc.csv", seed=21, mirrored=True)
    eth = candle_csv(work / "eth.csv", seed=22, mirrored=True)
    env = subprocess_env(work, **HOLD)
    db = work / "ledger.db"
    args = ["replay", "--csv", str(btc), str(eth), "--symbol", "BTCUSDT", "ETHUSDT"]
    done = run_cli([*args, "--interval", "1m", "--db", str(db)], env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [s for (s,) in query(db, "SELECT symbol FROM positions")] == ["BTC-USDT", "ETH-USDT"]
    return Ledger(db=db, models=work / "models")


def _copy(ledger: Ledger, tmp_path: Path) -> dict[str, str]:
    """Copy the ledger to this test's DB_PATH; return the environment of a daemon on it."""
    env = subprocess_env(tmp_path, **RESTART, MODELS_DIR=str(ledger.models))
    with (
        contextlib.closing(sqlite3.connect(ledger.db)) as source,
        contextlib.closing(sqlite3.connect(env["DB_PATH"])) as copy,
    ):
        source.backup(copy)
    return env


def _events(env: dict[str, str], name: str) -> list[dict[str, object]]:
    lines = (Path(env["LOG_DIR"]) / "paper_trader.log").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


@pytest.mark.parametrize(
    ("setting", "value", "was"),
    [
        ("INTERVAL", "5m", "INTERVAL=1m"),
        ("EXCHANGE", "kraken", "EXCHANGE=binance"),
        ("INITIAL_BALANCE", "5000", "INITIAL_BALANCE=10000"),
    ],
)
def test_another_interval_exchange_or_balance_than_the_ledgers_exits_2_naming_both(
    tmp_path: Path, ledger: Ledger, setting: str, value: str, was: str
) -> None:
    """One line with both values and how to start a fresh ledger; nothing is written."""
    env = {
        **_copy(ledger, tmp_path),
        setting: value,
        "BINANCE_WS_URL": "ws://127.0.0.1:9",
        "BINANCE_REST_URL": "http://127.0.0.1:9",
    }
    db = Path(env["DB_PATH"])
    runs = query(db, "SELECT count(*) FROM runs")
    done = run_cli(["run"], env, timeout=30)  # a daemon that starts runs into the timeout
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = [x for x in done.stderr.splitlines() if x.startswith("paper-trader:")]
    assert f"this ledger was started with {was}, but the settings say {setting}={value}" in line
    assert f"set DB_PATH to another file (or move {db} away)" in line
    assert query(db, "SELECT count(*) FROM runs") == runs


@pytest.mark.timeout(300)
def test_a_position_on_a_symbol_left_out_of_symbols_is_followed_and_exits_by_its_rules(
    tmp_path: Path, ledger: Ledger
) -> None:
    """ETH-USDT left SYMBOLS: its series is still followed, the position exits by its holding
    time on a new candle, and no entry is taken on ETH-USDT."""
    env = _copy(ledger, tmp_path)
    db = Path(env["DB_PATH"])
    [(eth_entry,)] = query(db, "SELECT entry_fill_id FROM positions WHERE symbol = 'ETH-USDT'")
    [(last_handled,)] = query(db, "SELECT max(candle_time_ms) FROM decisions")
    [(last_stored,)] = query(db, "SELECT max(open_time_ms) FROM candles")
    market = ("--symbols", "BTCUSDT,ETHUSDT", "--start-ms", str(int(last_stored) + 60_000))  # type: ignore[call-overload]
    with simulator(env, "--speed", "60", "--history", str(HISTORY), *market) as sim:
        live = {**env, **sim.env, "SYMBOLS": "BTCUSDT", "WARMUP_CANDLES": str(HISTORY)}
        with notify_socket() as notify, daemon({**live, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            sql = f"SELECT exit_reason FROM trades WHERE entry_fill_id = {eth_entry}"
            wait_until(p, lambda: bool(query(db, sql)), "the ETH-USDT position to exit", 120)
            refused = (
                "SELECT count(*) FROM decisions WHERE symbol = 'ETH-USDT' AND candle_time_ms > ?"
            )
            wait_until(
                p,
                lambda: query(db, refused, (last_handled,))[0][0] > 0,  # type: ignore[operator]
                "a signal on ETH-USDT",
                120,
            )
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    [(reason,)] = query(db, sql)
    assert reason in ("time", "stop_loss", "take_profit")
    after = query(
        db,
        "SELECT DISTINCT action, rule FROM decisions WHERE symbol = 'ETH-USDT' "
        "AND candle_time_ms > ?",
        (last_handled,),
    )
    assert after == [("rejected", "exit_only")]
    assert query(db, "SELECT count(*) FROM positions WHERE symbol = 'ETH-USDT'") == [(0,)]
    [outside] = _events(env, "position_outside_symbols")
    assert (outside["symbol"], outside["followed"]) == ("ETH-USDT", True)


@pytest.mark.timeout(300)
def test_a_position_the_venue_no_longer_lists_is_reported_marked_and_closable(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The venue refuses ETH-USDT: reported at start, marked at its last stored close (not its
    entry price), and `close ETHUSDT` closes it there."""
    env = _copy(ledger, tmp_path)
    db = Path(env["DB_PATH"])
    [(entry_price,)] = query(db, "SELECT entry_price FROM positions WHERE symbol = 'ETH-USDT'")
    [(last_close,)] = query(
        db,
        "SELECT close FROM candles WHERE symbol = 'ETH-USDT' ORDER BY open_time_ms DESC LIMIT 1",
    )
    with simulator(env, "--speed", "60", "--history", "100", "--symbols", "BTCUSDT") as sim:
        live = {**env, **sim.env, "SYMBOLS": "BTCUSDT", "WARMUP_CANDLES": "50"}
        live["HEALTH_PORT"] = str(free_port())  # `status` reads the daemon's HTTP service
        with notify_socket() as notify, daemon({**live, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            status = run_cli(["status", "--json"], live)
            closed = run_cli(["close", "ETHUSDT"], live)
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    assert status.returncode == 0, status.stderr
    views = {v["position"]["symbol"]: v for v in json.loads(status.stdout)["positions"]}
    assert Decimal(views["ETH-USDT"]["mark"]) == Decimal(str(last_close))
    assert Decimal(views["ETH-USDT"]["mark"]) != Decimal(str(entry_price))
    assert closed.returncode == 0, closed.stderr
    answer = json.loads(closed.stdout)
    assert [(t["symbol"], t["exit_reason"]) for t in answer["trades"]] == [("ETH-USDT", "manual")]
    assert query(db, "SELECT count(*) FROM positions WHERE symbol = 'ETH-USDT'") == [(0,)]
    [outside] = _events(env, "position_outside_symbols")
    assert (outside["symbol"], outside["followed"]) == ("ETH-USDT", False)
    assert "Invalid symbol" in str(outside["reason"])
