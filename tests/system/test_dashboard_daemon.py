"""The dashboard in headless Chromium, loaded from a daemon trading on the simulated exchange:
it shows the daemon's trades and equity live, says "disconnected" when its feed connection is
cut (a loopback TCP proxy between the page and the feed), and recovers by itself.

The test saves a screenshot of the whole page in its tmp dir; with
``DASHBOARD_SCREENSHOT=docs/dashboard.png`` (a path from the repository's root) it lets the
daemon trade on through losing streaks, waits for a few trades and a chart with markers, and
writes the top of the page there too: the README's picture.
"""

import asyncio
import json
import os
import signal
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, subprocess_env
from daemon_harness import BUSY, daemon, notify_socket, simulator
from fakes.browser import chromium, require_chromium
from fakes.models import publish_model
from fakes.tcp_proxy import TcpProxy

HISTORY = 800  # the features are ready from candle 660
TRADING = {**BUSY, "WARMUP_CANDLES": str(HISTORY), "STOP_LOSS_COOLDOWN": "0"}
CONN = "document.querySelector('#conn-state')"
SEQ = "Number(document.querySelector('#run-info').dataset.seq)"
EQUITY_POINTS = "Number(document.querySelector('#equity-chart').dataset.points)"
PRICE_POINTS = "Number(document.querySelector('#price-chart').dataset.points)"
PRICE_MARKERS = "Number(document.querySelector('#price-chart').dataset.markers)"
TRADE_ROWS = "document.querySelectorAll('#trades tbody tr').length"


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api_feed(port: int) -> dict[str, Any]:
    """GET the dashboard's /api/feed (an empty answer while the daemon is not listening)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/feed", timeout=5) as answer:
            found: dict[str, Any] = json.loads(answer.read())
            return found
    except OSError:
        return {}


async def feed_port(http_port: int) -> int:
    """Wait until /api/feed names the status feed's port; return it."""
    for _ in range(600):
        port = (await asyncio.to_thread(api_feed, http_port)).get("port")
        if port is not None:
            return int(port)
        await asyncio.sleep(0.1)
    raise AssertionError("/api/feed named no port within 60 s")


@pytest.mark.timeout(420)
async def test_dashboard_shows_the_daemons_trades_live_and_recovers_from_a_dropped_feed(
    tmp_path: Path,
) -> None:
    """Trades and equity points on the page; a cut feed: "disconnected"; restored: it
    reconnects by itself with ``since`` and ``run`` and goes on following the daemon."""
    require_chromium()
    readme_picture = os.environ.get("DASHBOARD_SCREENSHOT")
    publish_model(tmp_path / "models", mirrored=True)
    http_port = free_port()
    # For the README's picture, trading goes on after a losing streak: markers on the chart.
    lively = {"MAX_CONSECUTIVE_LOSSES": "1000"} if readme_picture else {}
    env = subprocess_env(
        tmp_path, **TRADING, **lively, HEALTH_PORT=str(http_port), HEALTH_CHECK_INTERVAL="2"
    )
    args = ("--speed", "600", "--history", str(HISTORY), "--candles", "6000")
    args += ("--symbols", "BTCUSDT,ETHUSDT")  # a market for some 8 minutes
    with (
        simulator(env, *args) as sim,
        notify_socket() as notify,
        daemon(
            {**env, **sim.env, "SYMBOLS": "BTCUSDT,ETHUSDT", "NOTIFY_SOCKET": notify.path},
            output=tmp_path / "daemon.out",
        ) as process,
    ):
        await asyncio.to_thread(notify.wait_for, "READY=1", 60)
        proxy = TcpProxy(target=await feed_port(http_port))
        await proxy.start()
        async with proxy, chromium(tmp_path / "chromium") as browser:
            page = await browser.new_page()
            await page.navigate(f"http://127.0.0.1:{http_port}/?feed=ws://127.0.0.1:{proxy.port}/")
            await page.wait_for(f"{CONN}.textContent === 'connected'", timeout=30)
            await page.wait_for(f"{TRADE_ROWS} >= {5 if readme_picture else 1}", timeout=240)
            if readme_picture:  # a price chart worth looking at
                await page.wait_for(f"{PRICE_POINTS} >= 150 && {PRICE_MARKERS} >= 2", timeout=200)
            trades = await page.evaluate(
                "[...document.querySelectorAll('#trades tbody tr')]"
                ".map(tr => [...tr.cells].map(td => td.textContent.trim()))"
            )
            points = await page.evaluate(EQUITY_POINTS)
            await page.screenshot(tmp_path / "dashboard.png")
            if readme_picture:  # the top of the page, at the size a README shows well
                await page.screenshot(ROOT / readme_picture, height=1500)

            await proxy.cut()
            await page.wait_for(f"{CONN}.textContent === 'disconnected'")
            cut_at = await page.evaluate(SEQ)
            await proxy.restore()
            await page.wait_for(f"{CONN}.textContent === 'connected'", timeout=30)
            resumed = proxy.request_lines[-1]
            await page.wait_for(f"Number({CONN}.dataset.connects) >= 2")
            await page.wait_for(f"{SEQ} > {cut_at}", timeout=60)  # it follows the daemon again
            errors = page.errors
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    assert {row[1] for row in trades} <= {"BTC-USDT", "ETH-USDT"}
    assert all(row[6] for row in trades)  # each has its net PnL
    assert points >= 1
    assert "since=" in resumed
    assert "run=" in resumed
    assert errors == []
