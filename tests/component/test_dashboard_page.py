"""The dashboard page in headless Chromium: served by the real HttpService over loopback, live
from a fake status feed speaking the documented protocol (snapshot, then events)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from fakes.browser import Page, chromium
from fakes.control_rig import Rig, open_and_close, running_rig
from fakes.status_feed import FakeStatusFeed
from fakes.status_messages import LONG_DIGITS_SNAPSHOT, MIN, SNAPSHOT, T, candle, trade
from fakes.trading import MINUTE, T0

from paper_trader.control.reports import Reports
from paper_trader.interfaces.http.api import ApiSources
from paper_trader.interfaces.http.dashboard import FeedLink
from paper_trader.interfaces.http.metrics import MarketCounts, Metrics, MetricsSources
from paper_trader.interfaces.http.service import HttpService
from paper_trader.runtime.service import Readiness

TOKEN = "a-token-of-16-chars-or-more"
EQUITY_CHART = "document.querySelector('#equity-chart')"


@dataclass
class Dashboard:
    """The page in a browser tab, the HTTP service that serves it and the feed it reads."""

    page: Page
    feed: FakeStatusFeed
    http_port: int
    rig: Rig

    async def open(self, query: str = "") -> None:
        """Load the dashboard (``query`` such as ``?stale=1``)."""
        await self.page.navigate(f"http://127.0.0.1:{self.http_port}/{query}")

    async def wait_state(self, state: str) -> None:
        """Wait until the page says ``state`` (connected, disconnected, stale)."""
        await self.page.wait_for(
            f"document.querySelector('#conn-state').textContent === {json.dumps(state)}"
        )

    async def rows(self, table: str) -> list[list[str]]:
        """Return the cells' text of each row of ``table``'s body."""
        found = await self.page.evaluate(
            f"[...document.querySelectorAll('#{table} tbody tr')]"
            ".map(tr => [...tr.cells].map(td => td.textContent.trim()))"
        )
        return [[str(cell) for cell in row] for row in found]

    async def wait_rows(self, table: str, count: int) -> list[list[str]]:
        """Wait until ``table`` has ``count`` rows; return their cells' text."""
        await self.page.wait_for(
            f"document.querySelectorAll('#{table} tbody tr').length == {count}"
        )
        return await self.rows(table)


@contextlib.asynccontextmanager
async def serving(rig: Rig, feed: Callable[[], FeedLink | None]) -> AsyncIterator[HttpService]:
    """Run the HTTP service of ``rig`` on a free loopback port."""
    reports = Reports(rig.stage, rig.reader)
    bare = MetricsSources(
        market=lambda: MarketCounts(processed=0, rejected=0, dropped=0, failed=0, late=0)
    )
    service = HttpService(
        ApiSources(control=rig.control, reports=reports, health=lambda: None),
        Metrics(bare, rig.control, reports, lambda: None),
        host="127.0.0.1",
        port=0,
        feed=feed,
    )
    ready = Readiness()
    task = asyncio.create_task(service.run(ready), name="http")
    await asyncio.wait_for(ready.wait(), timeout=10)
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def dashboard(tmp_path: Path, *, token: str | None = None) -> AsyncIterator[Dashboard]:
    """Serve the page with a fake feed (asking ``token`` if given) and open a browser tab."""
    feed = FakeStatusFeed(token=token, snapshot_data=SNAPSHOT, candle_ms=T)
    await feed.start()
    link = FeedLink(port=feed.port, token_required=token is not None)
    try:
        async with (
            running_rig(tmp_path) as rig,
            serving(rig, lambda: link) as http,
            chromium(tmp_path / "chromium") as browser,
        ):
            page = await browser.new_page()
            yield Dashboard(page=page, feed=feed, http_port=http.port, rig=rig)
    finally:
        await feed.stop()


async def test_page_shows_the_snapshot_then_applies_each_event(tmp_path: Path) -> None:
    """Positions, trades, equity points, state, breakers and health from the snapshot; then
    candles mark the position, a close moves it to the trades, equity adds a point."""
    async with dashboard(tmp_path) as dash:
        await dash.open()
        await dash.wait_state("connected")
        positions = await dash.wait_rows("positions", 1)
        trades = await dash.rows("trades")
        equity_points = await dash.page.evaluate(f"{EQUITY_CHART}.dataset.points")
        summary = {k: await dash.page.text(f"#{k}") for k in ("equity", "cash", "drawdown")}
        header = {k: await dash.page.text(f"#{k}") for k in ("trading-state", "health-badge")}
        breakers = await dash.rows("breakers")
        health = await dash.rows("health")

        dash.feed.publish("candle", candle("BTCUSDT", "50700.00", T + MIN), T + MIN)
        dash.feed.publish("candle", candle("ETHUSDT", "3050.00", T + MIN), T + MIN)
        mark = "document.querySelector('#positions tbody td:nth-child(5)').textContent"
        await dash.page.wait_for(f"{mark} === '50700.00'")
        marked = await dash.rows("positions")
        dash.feed.publish("candle", candle("BTCUSDT", "50800.00", T + 2 * MIN), T + 2 * MIN)
        closed = trade(
            symbol="BTCUSDT",
            side="long",
            quantity="0.02",
            entry_price="50000.00",
            exit_price="50800.00",
            net_pnl="15.10",
            exit_reason="take_profit",
            opened_candle_ms=T - 5 * MIN,
            closed_candle_ms=T + 2 * MIN,
            exit_fill_id=6,
        )
        dash.feed.publish("trade_closed", closed, T + 2 * MIN)
        dash.feed.publish("trade_closed", closed, T + 2 * MIN)  # told twice: shown once
        dash.feed.publish("equity", {
            "candle_time_ms": T + 2 * MIN, "equity": "10015.10", "cash": "10015.10",
            "positions_value": "0", "peak_equity": "10050.00", "drawdown": 0.0034,
            "open_positions": 0,
        }, T + 2 * MIN)  # fmt: skip
        dash.feed.publish("notification", {
            "kind": "model_drift", "severity": "warning", "message": "rsi_14 drifted",
            "source": "predictor", "at_ms": T, "data": {},
        }, T + 2 * MIN)  # fmt: skip
        after = await dash.wait_rows("trades", 3)
        await dash.page.wait_for(f"{EQUITY_CHART}.dataset.points === '4'")
        await dash.wait_rows("positions", 0)
        price = await dash.page.evaluate("({...document.querySelector('#price-chart').dataset})")
        equity_after = await dash.page.text("#equity")
        notices = await dash.page.texts("#notices li")
        await dash.page.screenshot(tmp_path / "dashboard.png")  # to look at when it fails
        errors, requests = dash.page.errors, dash.page.requests
    columns = ["symbol", "side", "quantity", "entry", "mark", "unrealised", "%", "stop", "to stop",
               "stop kind", "target"]  # fmt: skip
    assert dict(zip(columns, positions[0], strict=True)) == {
        "symbol": "BTCUSDT", "side": "long", "quantity": "0.02", "entry": "50000.00",
        "mark": "50625.00", "unrealised": "12.50", "%": "1.25%", "stop": "49000.00",
        "to stop": "3.21%", "stop kind": "stop_loss", "target": "53000.00",
    }  # fmt: skip
    # 0.02 x (50700 - 50000), gross like the daemon's; the stop 3.35 % below the mark
    assert (marked[0][4], marked[0][5], marked[0][8]) == ("50700.00", "14.00", "3.35%")
    # newest first: closed, symbol, side, quantity, entry, exit, net PnL, return, reason
    assert trades == [
        ["11-14 22:03", "ETHUSDT", "short", "0.5", "3040.00", "3055.00", "-9.05", "-0.60%",
         "stop_loss"],
        ["11-14 21:53", "ETHUSDT", "long", "0.5", "3000.00", "3030.00", "13.20", "0.88%",
         "take_profit"],
    ]  # fmt: skip
    assert equity_points == "3"
    assert summary == {"equity": "10012.50", "cash": "9000.00", "drawdown": "0.37%"}
    assert header == {"trading-state": "active", "health-badge": "health 83 Good"}
    assert breakers == [["losing_streak", "ETHUSDT", "3 losses in a row"]]
    assert health[1] == ["predictor", "degraded", "slow inference"]
    assert after[0][1:] == ["BTCUSDT", "long", "0.02", "50000.00", "50800.00", "15.10", "1.51%",
                            "take_profit"]  # fmt: skip
    assert price == {"points": "2", "markers": "1", "symbol": "BTCUSDT"}  # the exit
    assert equity_after == "10015.10"
    assert notices == ["11-14 22:15 [warning] rsi_14 drifted"]
    assert errors == []
    assert requests
    assert all(u.startswith(("http://127.0.0.1:", "data:")) for u in requests), requests


async def test_monte_carlo_panel_shows_the_percentiles_once_two_trades_closed(
    tmp_path: Path,
) -> None:
    """Under two closed trades the panel says why it is empty; after a ``trade_closed`` the
    page asks /api/montecarlo again and shows the 5th, 50th and 95th percentile of the final
    equity and of the drawdown over 1,000 runs of the ledger's trades."""
    async with dashboard(tmp_path) as dash:
        await open_and_close(dash.rig, "BTCUSDT", T0, "100", "104")
        await dash.open()
        await dash.wait_state("connected")
        asked = "performance.getEntriesByName(location.origin + '/api/montecarlo').length"
        await dash.page.wait_for(f"{asked} >= 1")
        empty = await dash.page.evaluate(
            "!document.querySelector('.empty[data-for=\"monte-carlo\"]').hidden"
        )
        before = await dash.rows("monte-carlo")
        await open_and_close(dash.rig, "ETHUSDT", T0 + 2 * MINUTE, "100", "99")
        await open_and_close(dash.rig, "SOLUSDT", T0 + 4 * MINUTE, "100", "102")
        expected = await Reports(dash.rig.stage, dash.rig.reader).monte_carlo()
        dash.feed.publish("trade_closed", trade(symbol="SOLUSDT", side="long", quantity="1",
                          entry_price="100", exit_price="102", net_pnl="1.9",
                          exit_reason="manual", opened_candle_ms=T, closed_candle_ms=T + MIN,
                          exit_fill_id=6), T + MIN)  # fmt: skip
        after = await dash.wait_rows("monte-carlo", 2)
        note = await dash.page.text("#monte-carlo-note")
        errors = dash.page.errors
    assert empty is True
    assert before == []
    assert expected is not None
    final, drawdown = expected.final_equity, expected.max_drawdown
    assert after == [
        ["final equity", f"{final.p5:.2f}", f"{final.p50:.2f}", f"{final.p95:.2f}"],
        ["max drawdown", f"{100 * drawdown.p5:.2f}%", f"{100 * drawdown.p50:.2f}%",
         f"{100 * drawdown.p95:.2f}%"],
    ]  # fmt: skip
    assert final.p5 < final.p50 < final.p95
    assert note == (
        "1000 runs, each resampling the 3 closed trades with replacement from 10000 (seed 18)"
    )
    assert errors == []


async def test_page_says_disconnected_when_the_feed_drops_then_resumes_with_since(
    tmp_path: Path,
) -> None:
    """The feed goes away: "disconnected"; it comes back: the page reconnects by itself with
    ``since`` and ``run``, and shows the events it missed."""
    async with dashboard(tmp_path) as dash:
        await dash.open()
        await dash.wait_state("connected")
        last = dash.feed.publish("candle", candle("BTCUSDT", "50700.00", T + MIN), T + MIN)
        await dash.page.wait_for("document.querySelector('#price-chart').dataset.points === '1'")
        await dash.feed.stop()
        await dash.wait_state("disconnected")
        missed = trade(
            symbol="BTCUSDT",
            side="long",
            quantity="0.02",
            entry_price="50000.00",
            exit_price="50100.00",
            net_pnl="1.10",
            exit_reason="max_holding",
            opened_candle_ms=T - 5 * MIN,
            closed_candle_ms=T + MIN,
            exit_fill_id=6,
        )
        dash.feed.publish("trade_closed", missed, T + MIN)
        await dash.feed.start()
        await dash.wait_state("connected")
        trades = await dash.wait_rows("trades", 3)
        resumed = dash.feed.handshakes[-1]
    assert resumed["since"] == [str(last)]
    assert resumed["run"] == ["run-1"]
    assert trades[0][-1] == "max_holding"


async def test_page_asks_for_the_token_once_keeps_it_and_asks_again_when_refused(
    tmp_path: Path,
) -> None:
    """A feed with a token: the page asks; a wrong one is refused and it asks again; the right
    one connects, and a reload connects with the kept token without asking."""
    async with dashboard(tmp_path, token=TOKEN) as dash:
        await dash.open()
        await dash.page.wait_for("!document.querySelector('#token-box').hidden")
        first_error_shown = await dash.page.evaluate(
            "!document.getElementById('token-error').hidden"
        )
        await submit_token(dash.page, "not-the-token")
        await dash.page.wait_for("!document.querySelector('#token-error').hidden")
        await submit_token(dash.page, TOKEN)
        await dash.wait_state("connected")
        asked = await dash.page.evaluate("!document.querySelector('#token-box').hidden")
        await dash.open()
        await dash.wait_state("connected")
        asked_again = await dash.page.evaluate("!document.querySelector('#token-box').hidden")
        tokens = [h.get("token") for h in dash.feed.handshakes]
    assert first_error_shown is False
    assert asked is False
    assert asked_again is False
    assert tokens[0] == ["not-the-token"]
    assert tokens[-2:] == [[TOKEN], [TOKEN]]
    assert dash.feed.refused >= 1


async def submit_token(page: Page, token: str) -> None:
    """Type ``token`` into the page's token form and submit it."""
    await page.evaluate(
        f"document.querySelector('#token-input').value = {json.dumps(token)};"
        "document.querySelector('#token-form').requestSubmit()"
    )


async def test_page_says_stale_when_the_feed_is_silent_and_connected_on_a_heartbeat(
    tmp_path: Path,
) -> None:
    """No message for the stale time (``?stale=1`` s here): "stale"; a heartbeat: "connected"."""
    async with dashboard(tmp_path) as dash:
        await dash.open("?stale=1")
        await dash.wait_state("connected")
        await dash.wait_state("stale")
        dash.feed.heartbeat()
        await dash.wait_state("connected")


async def test_feed_override_in_the_page_query_wins_over_api_feed(tmp_path: Path) -> None:
    """``?feed=ws://…`` connects there, whatever /api/feed says."""
    other = FakeStatusFeed(
        run="run-other",
        snapshot_data={**SNAPSHOT, "status": {**SNAPSHOT["status"], "equity": "777.00"}},
    )
    await other.start()
    try:
        async with dashboard(tmp_path) as dash:
            await dash.open(f"?feed={other.url}")
            await dash.wait_state("connected")
            await dash.page.wait_for("document.querySelector('#equity').textContent === '777.00'")
            here = dash.feed.handshakes
    finally:
        await other.stop()
    assert here == []
    assert len(other.handshakes) == 1


async def test_api_feed_names_the_feeds_port_and_the_page_and_library_are_served(
    tmp_path: Path,
) -> None:
    """/api/feed: the port and whether a token is needed (null before the feed listens); / and
    the vendored chart library are served from the package; nothing outside static/ is."""
    link: list[FeedLink | None] = [None]
    async with running_rig(tmp_path) as rig, serving(rig, lambda: link[0]) as http:
        base = f"http://127.0.0.1:{http.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/api/feed") as r:
                before = await r.json()
            link[0] = FeedLink(port=8765, token_required=True)
            async with session.get(f"{base}/api/feed") as r:
                after = await r.json()
            async with session.get(f"{base}/") as r:
                csp = r.headers["Content-Security-Policy"]
                page = (r.status, r.content_type, csp, await r.text())
            lib = f"{base}/static/vendor/lightweight-charts.standalone.production.js"
            async with session.get(lib) as r:
                library = (r.status, r.content_type, (await r.text())[:200])
            async with session.get(f"{base}/static/../service.py") as r:
                outside = r.status
            async with session.get(f"{base}/static/%2e%2e/service.py") as r:
                encoded = r.status
    assert before == {"port": None, "token_required": False}
    assert after == {"port": 8765, "token_required": True}
    assert page[:2] == (200, "text/html")
    assert "script-src 'self'" in page[2]
    assert 'id="conn-state"' in page[3]
    assert library[:2] == (200, "application/javascript")
    assert "Lightweight Charts™ v5.2.1" in library[2]
    assert outside == 404
    assert encoded in {403, 404}


async def test_page_shortens_long_digits_and_keeps_a_position_opened_as_another_closes(
    tmp_path: Path,
) -> None:
    """Money shows cents and prices 8 significant digits, each cell's title keeping the exact
    string; the binding stop is the trailing one; a stop and a new entry of one symbol at one
    instant leave the new position open."""
    async with dashboard(tmp_path) as dash:
        dash.feed.snapshot_data = LONG_DIGITS_SNAPSHOT
        await dash.open()
        await dash.wait_state("connected")
        positions = await dash.wait_rows("positions", 1)
        trades = await dash.rows("trades")
        decisions = await dash.rows("decisions")
        equity = (await dash.page.text("#equity"), await dash.page.evaluate(
            "document.getElementById('equity').title"
        ))  # fmt: skip
        dash.feed.publish("trade_opened", {
            "symbol": "BTC-USDT", "side": "short", "quantity": "0.01", "entry_price": "30199.48",
            "opened_candle_ms": T + MIN, "stop_price": "30400.00", "take_profit_price": None,
            "trailing_stop_price": None,
        }, T + MIN)  # fmt: skip
        dash.feed.publish("breaker", {
            "breaker": "losing_streak", "tripped": False, "state": "active", "reason": "reset",
            "symbol": None,
        }, T + MIN)  # fmt: skip
        opened = await dash.wait_rows("positions", 2)
        await dash.wait_rows("breakers", 0)
        # The stop of ETH and a new entry at one instant: the new one is told first.
        dash.feed.publish("trade_opened", {
            "symbol": "ETH-USDT", "side": "long", "quantity": "0.5", "entry_price": "2041.00",
            "opened_candle_ms": T + MIN, "stop_price": "2030.00",
        }, T + MIN)  # fmt: skip
        stopped = trade(
            symbol="ETH-USDT",
            side="long",
            quantity="0.48917",
            entry_price="2043.9478215203",
            exit_price="2040.1",
            net_pnl="-2.90",
            opened_candle_ms=T - MIN,
            closed_candle_ms=T + MIN,
            exit_reason="stop_loss",
            exit_fill_id=9,
        )
        dash.feed.publish("trade_closed", stopped, T + MIN)
        await dash.wait_rows("trades", 2)
        reopened = await dash.wait_rows("positions", 2)
        state = await dash.page.text("#trading-state")
    assert positions[0][:6] == ["ETH-USDT", "long", "0.48917", "2043.9478", "2045.10", "0.56"]
    assert positions[0][7:10] == ["2040.1", "0.24%", "trailing_stop"]
    assert trades[0][:2] == ["11-14 21:44", "ETH-USDT"]
    assert trades[0][5:] == ["2058.9602", "-14.71", "-0.83%", "stop_loss"]
    assert decisions[0] == ["11-14 22:12", "BTC-USDT", "rejected", "long", "cost_edge", "—"]
    assert equity == ("9914.87", "9914.865138502444171272")
    assert opened[0][:4] == ["BTC-USDT", "short", "0.01", "30199.48"]
    assert opened[0][7:10] == ["30400.00", "0.66%", "stop_loss"]
    assert state == "active"
    assert [row[:4] for row in reopened] == [
        ["BTC-USDT", "short", "0.01", "30199.48"],
        ["ETH-USDT", "long", "0.5", "2041.00"],
    ]
