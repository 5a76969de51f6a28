"""The whole daemon as a subprocess: start-up, systemd notification, signals, refusals."""

import json
import signal
import sqlite3
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import daemon, market_fixture, notify_socket, run_cli
from fakes.models import publish_model

__all__ = ["market_fixture"]  # the simulated exchange the daemons read


def _log_events(log_dir: Path) -> list[dict[str, object]]:
    lines = (log_dir / "paper_trader.log").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_daemon_notifies_systemd_and_stops_gracefully_on_sigterm(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """READY=1, watchdog pings and STATUS while running; STOPPING=1 and exit 0 on SIGTERM."""
    publish_model(tmp_path / "models")  # without a model the health is "degraded: no entries"
    with notify_socket() as notify:
        env = subprocess_env(
            tmp_path,
            NOTIFY_SOCKET=notify.path,
            WATCHDOG_USEC="400000",
            HEALTH_CHECK_INTERVAL="1",
            **market,
        )
        with daemon(env) as process:
            notify.wait_for("READY=1")
            notify.wait_for("WATCHDOG=1")
            notify.wait_for("STATUS=health ok")
            process.send_signal(signal.SIGTERM)
            notify.wait_for("STOPPING=1")
            assert process.wait(timeout=20) == 0
        assert notify.count("WATCHDOG=1") >= 1
    records = _log_events(tmp_path / "logs")
    events = [e["event"] for e in records]
    assert "daemon_ready" in events
    assert events[-1] == "daemon_stopped"
    # The warm heap (modules, the model, the warm-up's state) is frozen before systemd hears.
    (frozen,) = [e for e in records if e["event"] == "heap_frozen"]
    assert events.index("heap_frozen") == events.index("daemon_ready") + 1
    assert isinstance(frozen["objects"], int)
    assert frozen["objects"] > 50_000
    with sqlite3.connect(tmp_path / "paper_trader.db") as conn:
        assert conn.execute("SELECT mode, exit_code FROM runs").fetchall() == [("run", 0)]


def test_sigint_stops_the_daemon_like_sigterm(tmp_path: Path, market: dict[str, str]) -> None:
    """Ctrl-C is a graceful stop with exit code 0 too."""
    with notify_socket() as notify:
        env = subprocess_env(tmp_path, NOTIFY_SOCKET=notify.path, **market)
        with daemon(env) as process:
            notify.wait_for("READY=1")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == 0


def test_log_files_are_json_lines_and_errors_log_holds_only_warnings(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """Every line of paper_trader.log parses as JSON with a component; errors.log has no info."""
    with notify_socket() as notify:
        env = subprocess_env(
            tmp_path, NOTIFY_SOCKET=notify.path, TELEGRAM_BOT_TOKEN="42:s3cr3t-t0ken", **market
        )
        with daemon(env) as process:
            notify.wait_for("READY=1")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
    events = _log_events(tmp_path / "logs")
    assert events
    assert all("component" in e and "timestamp" in e and "level" in e for e in events)
    errors = (tmp_path / "logs" / "errors.log").read_text().splitlines()
    assert all(json.loads(line)["level"] in ("warning", "error", "critical") for line in errors)
    for path in (tmp_path / "logs").iterdir():
        assert "s3cr3t" not in path.read_text()


def test_second_daemon_on_the_same_database_is_refused(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """A second instance exits 2 naming the lock holder; the first keeps running."""
    with notify_socket() as notify:
        env = subprocess_env(tmp_path, NOTIFY_SOCKET=notify.path, **market)
        with daemon(env) as first:
            notify.wait_for("READY=1")
            second = run_cli(["run"], subprocess_env(tmp_path, **market))
            assert second.returncode == 2
            assert "paper-trader: cannot proceed: database " in second.stderr  # not the settings
            assert "in use by another paper-trader process" in second.stderr
            assert f"pid {first.pid}" in second.stderr
            assert "Traceback" not in second.stderr
            refusals = [
                e for e in _log_events(tmp_path / "logs") if e["event"] == "startup_refused"
            ]
            assert refusals
            assert "in use by another paper-trader process" in str(refusals[0]["error"])
            assert first.poll() is None
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=20) == 0


def test_backup_works_while_the_daemon_runs(tmp_path: Path, market: dict[str, str]) -> None:
    """`backup --out` copies the live database into a file that passes quick_check."""
    out = tmp_path / "backup.db"
    with notify_socket() as notify:
        env = subprocess_env(tmp_path, NOTIFY_SOCKET=notify.path, **market)
        with daemon(env) as process:
            notify.wait_for("READY=1")
            result = run_cli(["backup", "--out", str(out)], subprocess_env(tmp_path))
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)["out"] == str(out)
            again = run_cli(["backup", "--out", str(out)], subprocess_env(tmp_path))
            assert again.returncode == 2
            assert again.stderr.startswith(f"paper-trader: cannot proceed: backup target {out}")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
    with sqlite3.connect(out) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_damaged_database_is_refused_with_a_recovery_hint(tmp_path: Path) -> None:
    """A file that is not a database stops start-up with exit 2, its name and what to do."""
    db = tmp_path / "paper_trader.db"
    db.write_bytes(b"this is not a database, it is a text file that took its place\n" * 200)
    result = run_cli(["run"], subprocess_env(tmp_path))
    assert result.returncode == 2
    assert f"paper-trader: cannot proceed: database {db} is damaged" in result.stderr
    assert "backup" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_symbol_the_exchange_does_not_list_stops_start_up_with_exit_2(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """The venue refusing a symbol is a configuration error: exit 2, its message, no traceback."""
    env = subprocess_env(tmp_path, **{**market, "SYMBOLS": "BTCUSDT,FOOUSDT"})
    result = run_cli(["run"], env)
    assert result.returncode == 2
    [line] = [x for x in result.stderr.splitlines() if x.startswith("paper-trader:")]
    assert line.startswith("paper-trader: configuration error: SYMBOLS='FOO-USDT'")
    assert "Invalid symbol" in line
    assert "Traceback" not in result.stderr
