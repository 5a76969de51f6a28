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
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, subprocess_env
from daemon_harness import BUSY, daemon, notify_socket, simulator
from fakes.browser import chromium, require_chromium
from fakes.models import publish_model
from fakes.tcp_proxy import TcpProxy, tcp_proxy
from test_http_daemon import free_port

HISTORY = 800  # the features are ready from candle 660
TRADING = {**BUSY, "WARMUP_CANDLES": str(HISTORY), "STOP_LOSS_COOLDOWN": "0"}
CONN = "document.querySelector('#conn-state')"
SEQ = "Number(document.querySelector('#run-info').dataset.seq)"
EQUITY_POINTS = "Number(document.querySelector('#equity-chart').dataset.points)"
PRICE_POINTS = "Number(document.querySelector('#price-chart').dataset.points)"
PRICE_MARKERS = "Number(document.querySelector('#price-chart').dataset.markers)"
TRADE_ROWS = "document.querySelectorAll('#trades tbody tr').length"


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
    reconnects by itself, resuming with ``since`` and ``run``, and goes on following the daemon."""
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
        with tcp_proxy(await feed_port(http_port)) as proxy:
            seen = await watch(tmp_path, http_port, proxy, readme_picture)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    assert {row[1] for row in seen.trades} <= {"BTC-USDT", "ETH-USDT"}
    assert all(row[6] for row in seen.trades)  # each has its net PnL
    assert seen.equity_points >= 1
    assert seen.errors == []
    connected = [e for e in _log(tmp_path) if e["event"] == "status_client_connected"]
    assert [e["resumed"] for e in connected] == [False, True]  # since= and run= of this run


@dataclass
class Seen:
    """What the page showed."""

    trades: list[list[str]]
    equity_points: int
    errors: list[str]


async def watch(tmp_path: Path, http_port: int, proxy: TcpProxy, picture: str | None) -> Seen:
    """Load the dashboard through ``proxy``; wait for a trade; cut the feed and restore it."""
    async with chromium(tmp_path / "chromium") as browser:
        page = await browser.new_page()
        await page.navigate(f"http://127.0.0.1:{http_port}/?feed=ws://127.0.0.1:{proxy.port}/")
        await page.wait_for(f"{CONN}.textContent === 'connected'", timeout=30)
        await page.wait_for(f"{TRADE_ROWS} >= {5 if picture else 1}", timeout=240)
        if picture:  # a price chart worth looking at
            await page.wait_for(f"{PRICE_POINTS} >= 150 && {PRICE_MARKERS} >= 2", timeout=200)
        seen = Seen(
            trades=await page.evaluate(
                "[...document.querySelectorAll('#trades tbody tr')]"
                ".map(tr => [...tr.cells].map(td => td.textContent.trim()))"
            ),
            equity_points=await page.evaluate(EQUITY_POINTS),
            errors=page.errors,
        )
        await page.screenshot(tmp_path / "dashboard.png")
        if picture:  # the top of the page, at the size a README shows well
            await page.screenshot(ROOT / picture, height=1500)
        proxy.cut()
        await page.wait_for(f"{CONN}.textContent === 'disconnected'")
        cut_at = await page.evaluate(SEQ)
        proxy.restore()
        await page.wait_for(f"{CONN}.textContent === 'connected'", timeout=30)
        await page.wait_for(f"Number({CONN}.dataset.connects) >= 2")
        await page.wait_for(f"{SEQ} > {cut_at}", timeout=60)  # it follows the daemon again
    return seen


def _log(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "logs" / "paper_trader.log").read_text().splitlines()
    return [json.loads(line) for line in lines]
