"""The daemon's HTTP service as a client sees it: /health, /metrics and /api while the daemon
trades on the simulated exchange, on the port HEALTH_PORT names."""

import json
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import subprocess_env
from daemon_harness import daemon, market_fixture, notify_socket
from fakes.models import publish_model
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["market_fixture"]  # the simulated exchange the daemons read


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` like curl would; return the status and the body (errors included)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for_health(
    port: int,
    code: int,
    condition: Callable[[dict[str, Any]], bool] = lambda _: True,
    what: str = "any body",
    timeout: float = 90,
) -> dict[str, Any]:
    """Poll /health until it answers ``code`` with a body meeting ``condition``; return it."""
    deadline = time.monotonic() + timeout
    last: tuple[int, str] | None = None
    while time.monotonic() < deadline:
        try:
            last = get(port, "/health")
        except OSError:  # not listening yet
            last = None
        if last is not None and last[0] == code:
            body: dict[str, Any] = json.loads(last[1])
            if condition(body):
                return body
        time.sleep(0.1)
    raise AssertionError(f"/health never answered {code} with {what}: {last}")


def test_health_metrics_and_api_answer_while_the_daemon_runs(
    tmp_path: Path, market: dict[str, str]
) -> None:
    """/health 200 with the components, /metrics parseable with the daemon's families, /api."""
    publish_model(tmp_path / "models")  # without a model the predictor is degraded
    port = free_port()
    with notify_socket() as notify:
        env = subprocess_env(
            tmp_path,
            NOTIFY_SOCKET=notify.path,
            HEALTH_CHECK_INTERVAL="1",
            HEALTH_PORT=str(port),
            **market,
        )
        with daemon(env) as process:
            notify.wait_for("READY=1")
            health = wait_for_health(port, 200)
            status, text = get(port, "/metrics")
            api_status, api_body = get(port, "/api/status")
            bad, bad_body = get(port, "/api/trades?limit=zero")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
    assert health["level"] in {"Excellent", "Good", "Fair"}
    components = {c["component"] for c in health["components"]}
    assert {"market_feed", "http", "decision_engine"} <= components
    assert status == 200
    names = {family.name for family in text_string_to_metric_families(text)}
    expected = {
        "paper_trader_trading_state",
        "paper_trader_equity",
        "paper_trader_open_positions",
        "paper_trader_breaker_tripped",
        "paper_trader_candle_age_seconds",
        "paper_trader_candles_processed",
        "paper_trader_feed_reconnects",
        "paper_trader_candles_backfilled",
        "paper_trader_predictions",
        "paper_trader_health_score",
        "paper_trader_event_loop_lag_seconds",
        "paper_trader_decision_latency_seconds",
        "paper_trader_inference_latency_seconds",
        "paper_trader_gc_pause_seconds",
    }
    assert expected <= names, expected - names
    assert 'paper_trader_candle_age_seconds{symbol="BTC-USDT"}' in text
    assert api_status == 200
    assert json.loads(api_body)["status"]["state"] == "active"
    assert bad == 400
    assert "limit must be" in json.loads(bad_body)["error"]
    lines = (tmp_path / "logs" / "paper_trader.log").read_text().splitlines()
    listening = [e for e in map(json.loads, lines) if e["event"] == "http_listening"]
    assert [e["url"] for e in listening] == [f"http://127.0.0.1:{port}"]
