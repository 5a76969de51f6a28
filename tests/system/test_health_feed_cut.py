"""/health as a probe sees it when the market feed is cut: 200 while the daemon trades on the
simulated exchange, 503 naming the feed once the exchange is unreachable, 200 again when it is
back (a loopback proxy owned by the test stands between the daemon and the simulator)."""

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import subprocess_env
from daemon_harness import daemon, simulator
from fakes.models import publish_model
from fakes.tcp_proxy import tcp_proxy
from test_http_daemon import free_port, get, wait_for_health

Health = dict[str, Any]


def component(health: Health, name: str) -> dict[str, str]:
    """Return one component of a /health answer."""
    [found] = [c for c in health["components"] if c["component"] == name]
    return found


def last_candle_ms(port: int) -> int:
    """Return the open time of the last candle the ledger handled."""
    status, body = get(port, "/api/status")
    assert status == 200, body
    return int(json.loads(body)["status"]["last_candle_ms"])


@pytest.mark.timeout(300)
def test_health_turns_503_naming_the_feed_when_it_is_cut_and_200_when_it_is_back(
    tmp_path: Path,
) -> None:
    """Cut: Critical, 503, the market feed's reason first; mended: 200, candles flow again."""
    publish_model(tmp_path / "models")
    port = free_port()
    base = subprocess_env(tmp_path)
    with (
        simulator(base, "--speed", "60", "--history", "100") as sim,
        tcp_proxy(sim.port) as proxy,
    ):
        env = subprocess_env(
            tmp_path,
            EXCHANGE="binance",
            BINANCE_WS_URL=f"ws://127.0.0.1:{proxy.port}",
            BINANCE_REST_URL=f"http://127.0.0.1:{proxy.port}",
            SYMBOLS="BTCUSDT",
            WARMUP_CANDLES="50",
            HEALTH_PORT=str(port),
            HEALTH_CHECK_INTERVAL="1",
            RECONNECT_BACKOFF_BASE="0.1",
            RECONNECT_BACKOFF_MAX="0.5",
        )
        with daemon(env) as process:
            feeding = wait_for_health(
                port, 200, lambda h: component(h, "market_feed")["status"] == "ok", "a feed"
            )
            before = last_candle_ms(port)

            proxy.cut()
            cut = wait_for_health(
                port, 503, lambda h: h["limits"][0]["component"] == "market_feed", "a dead feed"
            )

            proxy.restore()
            mended = wait_for_health(
                port,
                200,
                lambda h: component(h, "market_feed")["status"] != "critical",
                "the feed back",
            )
            deadline = time.monotonic() + 60
            while last_candle_ms(port) <= before and time.monotonic() < deadline:
                time.sleep(0.1)
            after = last_candle_ms(port)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0

    assert feeding["level"] in {"Excellent", "Good", "Fair"}
    assert cut["level"] == "Critical"
    assert cut["score"] < 40
    assert component(cut, "market_feed")["status"] == "critical"
    assert cut["reason"].startswith("market_feed critical (binance: not connected")
    assert "connection attempts in a row failed" in cut["reason"]
    assert mended["level"] in {"Excellent", "Good", "Fair"}
    assert all(limit["at_most"] >= 60 for limit in mended["limits"])
    assert after > before
    assert proxy.refused > 0
