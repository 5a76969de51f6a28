"""The operator can always get out: the CLI commands a running daemon over its control socket."""

import json
import signal
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import BUSY, daemon, notify_socket, query, run_cli, simulator, wait_until
from fakes.models import publish_model
from test_http_daemon import free_port

HISTORY = 800  # the features are ready from candle 660
SYMBOLS = "BTCUSDT,ETHUSDT"
# Every buy signal is a candidate; a position stays open until a command closes it.
TRADING = {
    **BUSY,
    "WARMUP_CANDLES": str(HISTORY),
    "CATCHUP_LIMIT": "10000000",
    "MAX_HOLDING_TIME": "0",
    "STOP_LOSS_ATR_MULTIPLIER": "50",
    "TAKE_PROFIT_RISK_REWARD": "50",
    "TRAILING_STOP": "false",
    "EXIT_ON_OPPOSITE_SIGNAL": "false",
}


def _command(env: dict[str, str], *args: str) -> dict[str, object]:
    """Run a CLI command against the daemon; it must succeed; return its JSON answer."""
    done = run_cli(list(args), env)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def _breaker_time(db: Path, breaker: str, transition: str) -> int:
    rows = query(
        db,
        "SELECT candle_time_ms FROM breaker_events WHERE breaker = ? AND transition = ? "
        "ORDER BY id DESC LIMIT 1",
        (breaker, transition),
    )
    assert rows, f"no {breaker} {transition} in breaker_events"
    return int(rows[0][0])  # type: ignore[call-overload]


@pytest.mark.timeout(420)
def test_the_cli_pauses_closes_resumes_and_stops_a_running_daemon(tmp_path: Path) -> None:
    """pause blocks entries, close fills, resume lets entries back, emergency-stop flattens;
    each answered as JSON (exit 0), committed to SQLite, logged with its source; with the
    daemon gone, a command exits 1 with one line."""
    publish_model(tmp_path / "models", mirrored=True)
    env = subprocess_env(tmp_path, **TRADING, SYMBOLS=SYMBOLS, HEALTH_PORT=str(free_port()))
    db = Path(env["DB_PATH"])
    with simulator(env, "--speed", "600", "--history", str(HISTORY), "--symbols", SYMBOLS) as sim:
        live = {**env, **sim.env}
        with notify_socket() as notify, daemon({**live, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            status = _command(live, "status", "--json")  # over HTTP, not the socket
            wait_until(p, lambda: bool(query(db, "SELECT 1 FROM positions")), "an open position")

            paused = _command(live, "pause", "maintenance", "window")
            since = _breaker_time(db, "manual_pause", "tripped")
            blocked = "SELECT action, rule FROM decisions WHERE candle_time_ms > ?"
            wait_until(p, lambda: bool(query(db, blocked, (since,))), "a signal while paused")
            [(held, entry)] = query(db, "SELECT symbol, entry_fill_id FROM positions LIMIT 1")
            closed = _command(live, "close", str(held).replace("-", ""))
            resumed = _command(live, "resume")
            after = _breaker_time(db, "manual_pause", "reset")
            entered = "SELECT 1 FROM decisions WHERE action = 'entered' AND candle_time_ms > ?"
            wait_until(p, lambda: bool(query(db, entered, (after,))), "an entry after resume")
            while_paused = query(db, blocked + " AND candle_time_ms <= ?", (since, after))

            stopped = _command(live, "emergency-stop")
            flat = query(db, "SELECT count(*) FROM positions")
            again = _command(live, "resume")
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    gone = run_cli(["resume"], env)

    assert status["status"]["state"] == "active"  # type: ignore[index]
    assert paused["ok"] is True
    assert paused["message"] == ("paused: no new entries, exits keep running; trading is reducing")
    assert {rule for _, rule in while_paused} == {"trading_state"}
    assert closed["ok"] is True
    [(reason,)] = query(db, "SELECT exit_reason FROM trades WHERE entry_fill_id = ?", (entry,))
    assert reason == "manual"
    assert resumed["ok"] is True
    assert str(resumed["message"]).startswith("resumed: cleared manual_pause")
    assert stopped["ok"] is True
    assert flat == [(0,)]
    assert str(stopped["message"]).startswith("emergency stop: trading is halted")
    assert again["ok"] is True
    lines = (Path(env["LOG_DIR"]) / "paper_trader.log").read_text().splitlines()
    accepted = [e for e in map(json.loads, lines) if e["event"] == "command_accepted"]
    assert [(e["command"], e["source"]) for e in accepted] == [
        ("pause", "cli"),
        (f"close {held}", "cli"),
        ("resume", "cli"),
        ("emergency stop", "cli"),
        ("resume", "cli"),
    ]
    assert not Path(f"{db}.sock").exists()
    assert gone.returncode == 1
    assert gone.stdout == ""
    assert gone.stderr.strip() == (
        f"paper-trader: no daemon is running on this database (nothing listens at {db}.sock)"
    )
