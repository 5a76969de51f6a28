"""The daemon trades live against the simulator; replay of the same candles gives the same
ledger; a ``kill -9`` loses nothing and the restart recovers the exits of the downtime."""

import csv
import json
import signal
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import daemon, notify_socket, run_cli, simulator
from fakes.models import publish_model

HISTORY = 800  # the features are ready from candle 660
SYMBOLS = "BTCUSDT,ETHUSDT"
# Trade often: every buy signal is a candidate, nothing throttles entries.
TRADING = {
    "AUTO_TRAIN": "false",
    "RETRAIN_INTERVAL": "0",
    "WARMUP_CANDLES": str(HISTORY),
    "SIGNAL_BUY_THRESHOLD": "0.01",
    "SIGNAL_STRONG_THRESHOLD": "0.2",
    "MIN_CONFIDENCE": "0",
    "MIN_TIME_BETWEEN_TRADES": "0",
    "STOP_LOSS_COOLDOWN": "0",
    "MAX_POSITION_SIZE": "0.3",
    "CORRELATION_LIMIT": "1",
}


def _query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def _count(db: Path, sql: str) -> int:
    rows = _query(db, sql)
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def _wait(
    process: "object", condition: Callable[[], bool], timeout: float = 150, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the daemon exited"  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _log(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["LOG_DIR"]) / "paper_trader.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _export(db: Path, directory: Path) -> tuple[list[Path], list[str]]:
    """Write each symbol's candles that the ledger handled to a CSV, as replay reads them."""
    state = json.loads(str(_query(db, "SELECT state_json FROM trading_state")[0][0]))
    paths, symbols = [], []
    for symbol, last in sorted(state["handled"].items()):
        path = directory / f"{symbol}.csv"
        rows = _query(
            db,
            "SELECT open_time_ms, open, high, low, close, volume FROM candles "
            "WHERE symbol = ? AND open_time_ms <= ? ORDER BY open_time_ms",
            (symbol, last),
        )
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp_ms", "open", "high", "low", "close", "volume"])
            writer.writerows(rows)
        paths.append(path)
        symbols.append(symbol)
    return paths, symbols


@pytest.mark.timeout(420)
def test_live_trading_and_a_replay_of_its_candles_give_the_same_ledger_digest(
    tmp_path: Path,
) -> None:
    """The ledger is a function of the candles: live against the simulator = replay."""
    publish_model(tmp_path / "models", mirrored=True)
    env = subprocess_env(tmp_path, **TRADING, CATCHUP_LIMIT="10000000")
    live_db = Path(env["DB_PATH"])
    with simulator(env, "--speed", "600", "--history", str(HISTORY), "--symbols", SYMBOLS) as sim:
        live_env = {**env, **sim.env, "SYMBOLS": SYMBOLS}
        with notify_socket() as notify, daemon({**live_env, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            _wait(p, lambda: _count(live_db, "SELECT count(*) FROM trades") >= 6, what="trades")
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    live = json.loads(run_cli(["report", "--db", str(live_db)], env).stdout)
    csvs, symbols = _export(live_db, tmp_path)
    replay_db = tmp_path / "replay.db"
    out = tmp_path / "replay.json"
    result = run_cli(
        [
            "replay",
            "--csv",
            *map(str, csvs),
            "--symbol",
            *symbols,
            "--interval",
            "1m",
            "--db",
            str(replay_db),
            "--report",
            str(out),
        ],
        env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    replay = json.loads(out.read_text())
    assert live["trades"] >= 6
    assert replay["candles_processed"] == live["candles_processed"]
    assert (replay["trades"], replay["final_equity"]) == (live["trades"], live["final_equity"])
    assert replay["ledger_digest"] == live["ledger_digest"]
    assert replay["decisions"] == live["decisions"]


@pytest.mark.timeout(420)
def test_kill_9_with_a_position_open_loses_nothing_and_recovers_the_exit_of_the_downtime(
    tmp_path: Path,
) -> None:
    """After kill -9 the restart restores the position and closes it on a backfilled candle."""
    publish_model(tmp_path / "models", mirrored=True)
    env = subprocess_env(tmp_path, **TRADING, CATCHUP_LIMIT="5", MAX_HOLDING_TIME="240")
    db = Path(env["DB_PATH"])
    with simulator(env, "--speed", "600", "--history", str(HISTORY), "--symbols", SYMBOLS) as sim:
        live_env = {**env, **sim.env, "SYMBOLS": SYMBOLS}
        with daemon(live_env) as first:
            _wait(
                first,
                lambda: (
                    _count(db, "SELECT count(*) FROM positions") > 0
                    and _count(db, "SELECT count(*) FROM trades") > 0
                ),
                what="an open position",
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        held = _query(db, "SELECT symbol, entry_fill_id, opened_candle_ms FROM positions")
        fills_before = _count(db, "SELECT count(*) FROM fills")
        assert held
        time.sleep(2)  # the market moves on while the daemon is down
        with notify_socket() as notify, daemon({**live_env, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            entries = [int(fill_id) for _, fill_id, _ in held]  # type: ignore[call-overload]
            _wait(
                p,
                lambda: (
                    _count(
                        db,
                        "SELECT count(*) FROM trades WHERE entry_fill_id IN "
                        f"({','.join(map(str, entries))})",
                    )
                    == len(entries)
                ),
                what="the held positions to close",
            )
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    recovered = _query(
        db,
        "SELECT entry_fill_id, exit_reason, recovered FROM trades WHERE entry_fill_id IN "
        f"({','.join(map(str, entries))})",
    )
    assert all(row[2] == 1 for row in recovered), recovered
    fills = [int(r[0]) for r in _query(db, "SELECT fill_id FROM fills ORDER BY fill_id")]  # type: ignore[call-overload]
    assert fills == list(range(1, len(fills) + 1))  # nothing lost, nothing doubled
    assert len(fills) > fills_before
    _assert_ledger_balances(db)
    events = _log(env)
    restored = [e for e in events if e["event"] == "ledger_restored"]
    assert restored[-1]["positions"] == len(held)
    names = {e["event"] for e in events}
    assert "trade_closed_recovered" in names


def _assert_ledger_balances(db: Path) -> None:
    """Cash = initial balance + net PnL of closed trades - cost of the open positions."""
    ((cash_text, state_text),) = _query(db, "SELECT cash, state_json FROM trading_state")
    initial = Decimal(json.loads(str(state_text))["initial_balance"])
    net = sum((Decimal(str(n)) for (n,) in _query(db, "SELECT net_pnl FROM trades")), Decimal(0))
    cost = Decimal(0)
    for side, qty, price, fee in _query(
        db, "SELECT side, quantity, entry_price, entry_fee FROM positions"
    ):
        notional = Decimal(str(qty)) * Decimal(str(price))
        cost += (notional if side == "long" else -notional) + Decimal(str(fee))
    assert Decimal(str(cash_text)) == initial + net - cost
    for entry, exit_ in _query(db, "SELECT entry_fill_id, exit_fill_id FROM trades"):
        assert _query(db, "SELECT 1 FROM fills WHERE fill_id = ?", (entry,))
        assert _query(db, "SELECT 1 FROM fills WHERE fill_id = ?", (exit_,))
