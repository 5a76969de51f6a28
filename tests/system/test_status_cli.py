"""``status`` as the operator runs it: the summary of a daemon trading on the simulated
exchange, read from its HTTP service; ``--json`` for scripts; one line and exit 1 when no
daemon answers on the configured port."""

import json
import re
import signal
from pathlib import Path

import pytest
from conftest import subprocess_env
from daemon_harness import daemon, notify_socket, query, run_cli, simulator, wait_until
from fakes.models import publish_model
from test_control_cli import HISTORY, SYMBOLS, TRADING
from test_http_daemon import free_port

ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z"


def no_daemon_line(url: str) -> str:
    """Return what ``status`` says on stderr when nothing listens at ``url``."""
    return (
        f"paper-trader: no daemon answers at {url} (connection refused): is it running, and "
        "is that its HTTP service (HEALTH_HOST and HEALTH_PORT in its settings, or --url)?\n"
    )


@pytest.mark.timeout(300)
def test_status_summarises_the_running_daemon_and_json_gives_the_same(tmp_path: Path) -> None:
    """State, equity, each open position at its mark, health, the last candle in UTC; --json
    the API's values; --url reaches a daemon the settings do not name; gone, exit 1."""
    publish_model(tmp_path / "models", mirrored=True)
    port = free_port()
    env = subprocess_env(tmp_path, **TRADING, SYMBOLS=SYMBOLS, HEALTH_PORT=str(port))
    db = Path(env["DB_PATH"])
    elsewhere = {**env, "HEALTH_PORT": str(free_port())}  # the settings of another machine
    with simulator(env, "--speed", "600", "--history", str(HISTORY), "--symbols", SYMBOLS) as sim:
        live = {**env, **sim.env}
        with notify_socket() as notify, daemon({**live, "NOTIFY_SOCKET": notify.path}) as p:
            notify.wait_for("READY=1", timeout=60)
            wait_until(p, lambda: bool(query(db, "SELECT 1 FROM positions")), "an open position")
            text = run_cli(["status"], live)
            as_json = run_cli(["status", "--json", "--url", f"http://localhost:{port}"], elsewhere)
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=30) == 0
    gone = run_cli(["status"], env)

    assert (text.returncode, text.stderr) == (0, "")
    lines = text.stdout.splitlines()
    assert lines[0] == f"paper-trader at http://127.0.0.1:{port}"
    assert lines[1] == "trading      active"
    assert re.fullmatch(r"equity       [\d.]+ \(cash [\d.]+, peak [\d.]+, drawdown [\d.]+ %\)",
                        lines[2])  # fmt: skip
    held = [line for line in lines if re.match(r"  (BTC|ETH)-USDT ", line)]
    assert held, text.stdout
    assert all(re.search(r" long [\d.]+ @ [\d.]+, mark [\d.]+, unrealised [+-][\d.]+ ", line)
               for line in held)  # fmt: skip
    assert f"positions    {len(held)} open" in lines
    assert any(re.fullmatch(r"health       \d+/100 (Excellent|Good|Fair) \(\w+\).*", line)
               for line in lines)  # fmt: skip
    assert re.fullmatch(rf"last candle  {ISO_UTC} \(open time, UTC\)", lines[-1])

    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["url"] == f"http://localhost:{port}"
    assert answer["status"]["state"] == "active"
    assert answer["health"]["level"] in {"Excellent", "Good", "Fair"}
    assert answer["positions"]
    assert {"mark", "unrealised_pnl", "stop"} <= set(answer["positions"][0])

    assert (gone.returncode, gone.stdout) == (1, "")
    assert gone.stderr == no_daemon_line(f"http://127.0.0.1:{port}")


def test_status_without_a_daemon_exits_1_naming_the_url(tmp_path: Path) -> None:
    """Nothing listens on HEALTH_PORT: one line on stderr naming the URL, exit 1, no stdout;
    --json alike (scripts get no half answer)."""
    port = free_port()
    env = subprocess_env(tmp_path, HEALTH_HOST="0.0.0.0", HEALTH_PORT=str(port))
    text = run_cli(["status"], env)
    as_json = run_cli(["status", "--json"], env)
    for done in (text, as_json):
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == no_daemon_line(f"http://127.0.0.1:{port}")


def test_status_with_any_free_port_asks_for_the_url(tmp_path: Path) -> None:
    """HEALTH_PORT=0 cannot be reached from outside: a configuration error saying --url."""
    done = run_cli(["status"], subprocess_env(tmp_path, HEALTH_PORT="0"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("paper-trader: configuration error: HEALTH_PORT is 0")
    assert "--url http://HOST:PORT" in done.stderr
