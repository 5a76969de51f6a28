"""The daemon trades live against the simulator; replay of the same candles gives the same
ledger; a ``kill -9`` loses nothing and the restart recovers the exits of the downtime."""

import json
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import BUSY, count, daemon, notify_socket, query, simulator, wait_until
from fakes.models import publish_model
from parity import replay, report

HISTORY = 800  # the features are ready from candle 660
SYMBOLS = "BTCUSDT,ETHUSDT"
TRADING = {**BUSY, "WARMUP_CANDLES": str(HISTORY), "STOP_LOSS_COOLDOWN": "0"}


def _log(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["LOG_DIR"]) / "paper_trader.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


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
            wait_until(p, lambda: count(live_db, "SELECT count(*) FROM trades") >= 6, what="trades")
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    live = report(live_db, env)
    replayed = replay(live_db, tmp_path / "replay", env)
    assert live["trades"] >= 6
    assert replayed["candles_processed"] == live["candles_processed"]
    assert (replayed["trades"], replayed["final_equity"]) == (live["trades"], live["final_equity"])
    assert replayed["ledger_digest"] == live["ledger_digest"]
    assert replayed["decisions"] == live["decisions"]


PREDICTIONS = (
    "SELECT symbol, open_time_ms, score, strength, weights_json, outcome FROM predictions "
    "ORDER BY open_time_ms, symbol"
)


@pytest.mark.timeout(480)
def test_a_stop_and_a_start_keep_the_adapted_weights_and_the_ledger_of_a_replay(
    tmp_path: Path,
) -> None:
    """The ensemble's weights, adapted to 60 resolved predictions, go on across a stop as
    if there had been none: every prediction, decision and the digest equal a replay's."""
    publish_model(tmp_path / "models", mirrored=True)
    env = subprocess_env(tmp_path, **TRADING, CATCHUP_LIMIT="10000000")
    db = Path(env["DB_PATH"])
    resolved = "SELECT count(*) FROM predictions WHERE outcome = 'resolved'"
    with simulator(env, "--speed", "600", "--history", str(HISTORY), "--symbols", SYMBOLS) as sim:
        live_env = {**env, **sim.env, "SYMBOLS": SYMBOLS}
        for stop, enough in enumerate((60, 200)):
            with notify_socket() as notify, daemon({**live_env, "NOTIFY_SOCKET": notify.path}) as p:
                notify.wait_for("READY=1", timeout=60)
                wait_until(p, lambda n=enough: count(db, resolved) >= n, what="resolutions")
                if stop == 0:
                    stopped_at = count(db, "SELECT max(open_time_ms) FROM predictions")
                p.send_signal(signal.SIGTERM)
                assert p.wait(timeout=30) == 0
            time.sleep(1)  # the market moves on while the daemon is down
    restored = [e for e in _log(env) if e["event"] == "ensemble_state_restored"]
    assert len(restored) == 1
    weights = restored[0]["weights"]
    assert isinstance(weights, dict)
    assert len(set(weights.values())) > 1  # adapted, not the equal weights of a fresh start
    live = report(db, env)
    replayed = replay(db, tmp_path / "replay", env)
    replay_db = tmp_path / "replay" / "replay.db"
    after = [row for row in query(db, PREDICTIONS) if int(str(row[1])) > stopped_at]
    assert after
    assert query(db, PREDICTIONS) == query(replay_db, PREDICTIONS)
    assert replayed["decisions"] == live["decisions"]
    assert replayed["ledger_digest"] == live["ledger_digest"]


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
            wait_until(
                first,
                lambda: (
                    count(db, "SELECT count(*) FROM positions") > 0
                    and count(db, "SELECT count(*) FROM trades") > 0
                ),
                what="an open position",
            )
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        held = query(db, "SELECT symbol, entry_fill_id, opened_candle_ms FROM positions")
        fills_before = count(db, "SELECT count(*) FROM fills")
        assert held
        time.sleep(2)  # the market moves on while the daemon is down
        with notify_socket() as notify, daemon({**live_env, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            entries = [int(fill_id) for _, fill_id, _ in held]  # type: ignore[call-overload]
            wait_until(
                p,
                lambda: (
                    count(
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
    recovered = query(
        db,
        "SELECT entry_fill_id, exit_reason, recovered FROM trades WHERE entry_fill_id IN "
        f"({','.join(map(str, entries))})",
    )
    assert all(row[2] == 1 for row in recovered), recovered
    fills = [int(r[0]) for r in query(db, "SELECT fill_id FROM fills ORDER BY fill_id")]  # type: ignore[call-overload]
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
    ((cash_text, state_text),) = query(db, "SELECT cash, state_json FROM trading_state")
    initial = Decimal(json.loads(str(state_text))["initial_balance"])
    net = sum((Decimal(str(n)) for (n,) in query(db, "SELECT net_pnl FROM trades")), Decimal(0))
    cost = Decimal(0)
    for side, qty, price, fee in query(
        db, "SELECT side, quantity, entry_price, entry_fee FROM positions"
    ):
        notional = Decimal(str(qty)) * Decimal(str(price))
        cost += (notional if side == "long" else -notional) + Decimal(str(fee))
    assert Decimal(str(cash_text)) == initial + net - cost
    for entry, exit_ in query(db, "SELECT entry_fill_id, exit_fill_id FROM trades"):
        assert query(db, "SELECT 1 FROM fills WHERE fill_id = ?", (entry,))
        assert query(db, "SELECT 1 FROM fills WHERE fill_id = ?", (exit_,))
