"""The HTTP service over loopback: /health by level, /metrics parsed by prometheus_client's own
parser, /api/* through a real trading stage, Control and SQLite file."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.control_rig import BALANCE, Rig, buy, open_and_close, running_rig
from fakes.trading import MINUTE, T0, bar
from prometheus_client.parser import text_string_to_metric_families

from paper_trader.control.reports import Reports
from paper_trader.control.system import HealthLevel, HealthView, health_level, health_score
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.interfaces.http.api import ApiSources
from paper_trader.interfaces.http.metrics import (
    ChannelCounts,
    MarketCounts,
    Metrics,
    MetricsSources,
    PredictionCounts,
)
from paper_trader.interfaces.http.service import HttpService
from paper_trader.runtime.latency import LatencyHistogram
from paper_trader.runtime.service import Readiness

OK, DEGRADED, CRITICAL = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.CRITICAL


def view(*statuses: HealthStatus) -> HealthView:
    """Return a health check of one component per status."""
    components = tuple(
        ComponentHealth(component=f"part{i}", status=s, detail=f"{s.label} here")
        for i, s in enumerate(statuses)
    )
    return HealthView(
        status=max(statuses, default=OK),
        score=health_score(components),
        components=components,
        rss_mb=123.4,
        cpu_percent=5.0,
        loop_lag_ms=1.5,
        checked_ms=T0,
        tasks=42,
        threads=9,
        open_fds=31,
    )


@dataclass
class Served:
    """A running HTTP service and what it reads."""

    service: HttpService
    session: aiohttp.ClientSession
    latest: list[HealthView | None] = field(default_factory=lambda: [None])
    ready: list[bool] = field(default_factory=lambda: [True])

    async def get(self, path: str) -> tuple[int, Any]:
        """GET ``path``; return the status and the JSON body."""
        url = f"http://127.0.0.1:{self.service.port}{path}"
        async with self.session.get(url) as response:
            return response.status, await response.json()

    async def text(self, path: str) -> str:
        """GET ``path``; return the text body (200 expected)."""
        url = f"http://127.0.0.1:{self.service.port}{path}"
        async with self.session.get(url) as response:
            assert response.status == 200
            return await response.text()


LATENCY = LatencyHistogram(lambda: 0.0)
for _seconds in (0.002, 0.02, 0.02, 3.0):
    LATENCY.observe(_seconds)

SOURCES = MetricsSources(
    market=lambda: MarketCounts(
        processed=120,
        rejected=2,
        dropped=1,
        failed=0,
        late=0,
        reconnects=3,
        backfilled=40,
        duplicates=5,
        malformed=1,
        candle_age_s=(("BTCUSDT", 12.5), ("ETHUSDT", 70.0)),
    ),
    predictions=lambda: PredictionCounts(
        batches=10, rows=30, failures=1, timeouts=0, breaker_open=False
    ),
    notifications=lambda: (
        ChannelCounts(channel="telegram", pending=2, sent=7, retried=1, failed=0),
    ),
    decision_latency=LATENCY.snapshot,
    breakers=("max_drawdown", "manual_pause"),
)


@contextlib.asynccontextmanager
async def serving(
    rig: Rig, *, port: int = 0, sources: MetricsSources = SOURCES
) -> AsyncIterator[Served]:
    """Serve the rig over HTTP on a free loopback port; stop the service afterwards."""
    latest: list[HealthView | None] = [None]
    all_ready = [True]
    health: Callable[[], HealthView | None] = lambda: latest[0]  # noqa: E731
    reports = Reports(rig.stage, rig.reader)
    service = HttpService(
        ApiSources(control=rig.control, reports=reports, health=health),
        Metrics(sources, rig.control, reports, health),
        host="127.0.0.1",
        port=port,
        all_ready=lambda: all_ready[0],
    )
    ready = Readiness()
    task = asyncio.create_task(service.run(ready), name="http")
    await asyncio.wait_for(ready.wait(), timeout=10)
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(service, session, latest, all_ready)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    ("score", "level"),
    [(100, "Excellent"), (90, "Excellent"), (89, "Good"), (75, "Good"), (74, "Fair"),
     (60, "Fair"), (59, "Poor"), (40, "Poor"), (39, "Critical"), (0, "Critical")],
)  # fmt: skip
def test_health_level_follows_the_guides_bands(score: int, level: str) -> None:
    """Excellent 90-100, Good 75-89, Fair 60-74, Poor 40-59, Critical below 40."""
    assert health_level(score) is HealthLevel(level)


@pytest.mark.parametrize(
    ("statuses", "code", "score", "level"),
    [
        ((OK, OK, OK), 200, 100, "Excellent"),
        ((OK, OK, OK, DEGRADED), 200, 88, "Good"),
        ((OK, OK, DEGRADED, DEGRADED, CRITICAL), 200, 60, "Fair"),
        ((OK, DEGRADED, CRITICAL), 503, 50, "Poor"),
        ((DEGRADED, CRITICAL), 503, 25, "Critical"),
    ],
)
async def test_health_is_200_while_fair_or_better_and_503_below(
    tmp_path: Path, statuses: tuple[HealthStatus, ...], code: int, score: int, level: str
) -> None:
    """Side parts alike: the score is their mean; the level's band decides 200 or 503."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        served.latest[0] = view(*statuses)
        status, body = await served.get("/health")
    assert (status, body["score"], body["level"]) == (code, score, level)
    assert body["status"] == max(statuses).label
    first = statuses[0].label
    assert body["components"][0] == {
        "component": "part0",
        "status": first,
        "detail": f"{first} here",
    }
    assert len(body["components"]) == len(statuses)
    assert body["rss_mb"] == 123.4
    assert body["cpu_percent"] == 5.0
    assert body["loop_lag_ms"] == 1.5
    assert body["checked_at"] == "2023-11-14T00:00:00Z"


async def test_health_is_503_with_a_reason_before_the_first_check_and_until_all_are_ready(
    tmp_path: Path,
) -> None:
    """No check yet: 503, starting; a check but a service not ready: 503 too; then 200."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        status, body = await served.get("/health")
        assert status == 503
        assert body["status"] == "starting"
        assert "no health check" in body["reason"]
        served.latest[0] = view(OK)
        served.ready[0] = False
        status, body = await served.get("/health")
        assert status == 503
        assert "not every service is ready" in body["reason"]
        served.ready[0] = True
        status, body = await served.get("/health")
        assert (status, body["level"]) == (200, "Excellent")


def families(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Return each family's samples by (sample name, sorted labels)."""
    return {
        f.name: {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples}
        for f in text_string_to_metric_families(text)
    }


async def test_metrics_parse_with_the_trading_state_portfolio_and_counters(tmp_path: Path) -> None:
    """An open position and a pause: equity, exposure, state and breakers as the stage has them."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "102")])
        assert (await rig.control.pause("news")).ok
        served.latest[0] = view(OK, DEGRADED)
        status = await rig.control.status()
        found = families(await served.text("/metrics"))
    p = "paper_trader_"
    assert found[p + "trading_state"][(p + "trading_state", (("state", "reducing"),))] == 1
    assert found[p + "trading_state"][(p + "trading_state", (("state", "active"),))] == 0
    assert found[p + "equity"][(p + "equity", ())] == pytest.approx(float(status.equity))
    assert float(status.equity) != float(BALANCE)  # the position is marked at 102
    assert found[p + "open_positions"][(p + "open_positions", ())] == 1
    assert found[p + "exposure"][(p + "exposure", ())] > 0
    assert found[p + "entries"][(p + "entries_total", ())] == 1
    breakers = found[p + "breaker_tripped"]
    name = p + "breaker_tripped"
    assert breakers[(name, (("breaker", "manual_pause"), ("symbol", "")))] == 1
    assert breakers[(name, (("breaker", "max_drawdown"), ("symbol", "")))] == 0
    assert found[p + "feed_reconnects"][(p + "feed_reconnects_total", ())] == 3
    assert found[p + "candles_backfilled"][(p + "candles_backfilled_total", ())] == 40
    assert found[p + "candles_rejected"][(p + "candles_rejected_total", ())] == 2
    assert found[p + "candles_duplicate"][(p + "candles_duplicate_total", ())] == 5
    age = found[p + "candle_age_seconds"]
    assert age[(p + "candle_age_seconds", (("symbol", "ETHUSDT"),))] == 70.0
    assert found[p + "predictions"][(p + "predictions_total", ())] == 30
    sent = found[p + "notifications_sent"]
    assert sent[(p + "notifications_sent_total", (("channel", "telegram"),))] == 7
    queued = found[p + "notifications_queued"]
    assert queued[(p + "notifications_queued", (("channel", "telegram"),))] == 2
    assert found[p + "health_score"][(p + "health_score", ())] == 75
    assert found[p + "event_loop_lag_seconds"][(p + "event_loop_lag_seconds", ())] == 0.0015
    assert found[p + "resident_memory_bytes"][(p + "resident_memory_bytes", ())] > 100e6
    assert found[p + "asyncio_tasks"][(p + "asyncio_tasks", ())] == 42
    assert found[p + "threads"][(p + "threads", ())] == 9
    assert found[p + "open_fds"][(p + "open_fds", ())] == 31
    component = found[p + "component_status"]
    assert component[(p + "component_status", (("component", "part1"),))] == 1


async def test_metrics_decision_latency_is_a_histogram(tmp_path: Path) -> None:
    """Four observations: cumulative buckets, the +Inf bucket, the count and the sum."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        found = families(await served.text("/metrics"))
    name = "paper_trader_decision_latency_seconds"
    samples = found[name]
    assert samples[(name + "_bucket", (("le", "0.0025"),))] == 1
    assert samples[(name + "_bucket", (("le", "0.025"),))] == 3
    assert samples[(name + "_bucket", (("le", "2.5"),))] == 3
    assert samples[(name + "_bucket", (("le", "+Inf"),))] == 4
    assert samples[(name + "_count", ())] == 4
    assert samples[(name + "_sum", ())] == pytest.approx(3.042)


async def test_metrics_before_the_first_check_leave_out_the_health_families(
    tmp_path: Path,
) -> None:
    """No health check yet: the counters are there, the health gauges are not."""
    bare = MetricsSources(
        market=lambda: MarketCounts(processed=0, rejected=0, dropped=0, failed=0, late=0)
    )
    async with running_rig(tmp_path) as rig, serving(rig, sources=bare) as served:
        found = families(await served.text("/metrics"))
    assert "paper_trader_candles_processed" in found
    assert "paper_trader_equity" in found
    assert "paper_trader_health_score" not in found
    assert "paper_trader_decision_latency_seconds" not in found


async def test_api_answers_status_positions_trades_signals_and_equity(tmp_path: Path) -> None:
    """Every /api/* route answers JSON from Control and Reports, money as strings."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        trade = await open_and_close(rig, "BTCUSDT", T0, "100", "104")
        t2 = T0 + 2 * MINUTE
        await rig.feed([bar("ETHUSDT", t2, "50")], [buy("ETHUSDT", t2)])
        served.latest[0] = view(OK)
        answers = {
            path: await served.get(path)
            for path in ("/api/status", "/api/positions", "/api/trades?limit=5",
                         "/api/signals?limit=1", "/api/equity", f"/api/equity?since={t2}")
        }  # fmt: skip
    assert {code for code, _ in answers.values()} == {200}
    status = answers["/api/status"][1]
    assert status["status"]["state"] == "active"
    assert status["status"]["open_positions"] == 1
    assert isinstance(status["status"]["equity"], str)
    assert status["health"] == {
        "score": 100,
        "level": "Excellent",
        "status": "ok",
        "reason": None,
        "problems": [],
    }
    (position,) = answers["/api/positions"][1]["positions"]
    assert position["position"]["symbol"] == "ETHUSDT"
    assert position["mark"] == "50"
    (closed,) = answers["/api/trades?limit=5"][1]["trades"]
    assert closed["net_pnl"] == format(trade.net_pnl, "f")
    (signal,) = answers["/api/signals?limit=1"][1]["signals"]
    assert (signal["symbol"], signal["action"]) == ("ETHUSDT", "entered")
    everything = answers["/api/equity"][1]
    assert everything["since_ms"] == 0
    assert len(everything["points"]) >= 2
    assert all(isinstance(p["equity"], str) for p in everything["points"])
    recent = answers[f"/api/equity?since={t2}"][1]["points"]
    assert recent
    assert all(p["candle_time_ms"] >= t2 for p in recent)


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/api/trades?limit=0", "limit must be a whole number from 1 to 1000"),
        ("/api/trades?limit=abc", "limit must be"),
        ("/api/signals?limit=1001", "limit must be"),
        ("/api/signals?limit=-3", "limit must be"),
        ("/api/equity?since=yesterday", "since must be Unix milliseconds or an ISO 8601"),
    ],
)
async def test_api_answers_a_bad_query_with_400_and_a_one_line_error(
    tmp_path: Path, path: str, says: str
) -> None:
    """A bad parameter is a 400 whose JSON error names the parameter and its form."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        status, body = await served.get(path)
    assert status == 400
    assert says in body["error"]
    assert "\n" not in body["error"]


async def test_api_accepts_an_iso_time_for_since(tmp_path: Path) -> None:
    """``since=2023-11-14T00:01:00Z`` is the same as its Unix milliseconds."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        status, body = await served.get("/api/equity?since=2023-11-14T00:01:00Z")
    assert status == 200
    assert body["since_ms"] == T0 + MINUTE


async def test_a_port_in_use_degrades_the_service_and_the_daemon_goes_on(tmp_path: Path) -> None:
    """Another listener on the port: ready all the same, health degraded with the reason."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with running_rig(tmp_path) as rig, serving(rig, port=port) as served:
            health = served.service.health()
    assert health.status is HealthStatus.DEGRADED
    assert f"127.0.0.1:{port}" in health.detail


async def test_the_service_reports_ok_with_its_address_and_answers_counted(
    tmp_path: Path,
) -> None:
    """While serving, health is OK and names the URL; each answer is counted."""
    async with running_rig(tmp_path) as rig, serving(rig) as served:
        await served.get("/health")
        await served.get("/api/status")
        health = served.service.health()
    assert health.status is HealthStatus.OK
    assert f"http://127.0.0.1:{served.service.port}" in health.detail
    assert "2 answered" in health.detail
