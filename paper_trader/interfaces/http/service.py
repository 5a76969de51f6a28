"""The HTTP service: ``/health``, ``/metrics``, ``/api/*`` and the dashboard (``/``) on
``HEALTH_HOST:HEALTH_PORT``.

Read-only: every route is a GET (aiohttp answers 405 to anything else). Bound on loopback by
default (invariant 7). A port that cannot be bound leaves the daemon trading without it: an
error line, and the ``http`` component degraded in health, like the control socket.
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.interfaces.http import api
from paper_trader.interfaces.http.dashboard import FeedProvider, add_dashboard, no_feed
from paper_trader.interfaces.http.health import health_answer
from paper_trader.interfaces.http.metrics import CONTENT_TYPE, Metrics
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("http")

CLEANUP_TIMEOUT_S = 5.0
STARTING = 503

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpService:
    """Serve health, metrics, the read-only API and the dashboard until cancelled."""

    name = "http"

    def __init__(
        self,
        sources: api.ApiSources,
        metrics: Metrics,
        *,
        host: str,
        port: int,
        all_ready: Callable[[], bool] = lambda: True,
        feed: FeedProvider = no_feed,
    ) -> None:
        """``port`` 0 picks a free one (see ``port`` once ready); ``all_ready`` says whether
        every service of the daemon is ready (``/health`` is 503 until then); ``feed`` says
        where the status feed listens, for the dashboard (None: no feed, or not yet)."""
        self._sources = sources
        self._metrics = metrics
        self._host = host
        self.port = port
        self._all_ready = all_ready
        self._feed = feed
        self._problem = ""
        self.answered = 0
        self.failed = 0

    def health(self) -> ComponentHealth:
        """Return OK while serving, DEGRADED if the port could not be bound."""
        if self._problem:
            return ComponentHealth(
                component=self.name, status=HealthStatus.DEGRADED, detail=self._problem
            )
        detail = f"http://{self._host}:{self.port}, {self.answered} answered"
        if self.failed:
            detail += f", {self.failed} failed"
        return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)

    async def run(self, ready: Readiness) -> None:
        """Listen, serve until cancelled, close the connections."""
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self.port)
            try:
                await site.start()
            except OSError as exc:
                self._problem = f"not listening on {self._host}:{self.port}: {exc.strerror or exc}"
                log.error("http_unavailable", error=self._problem)  # noqa: TRY400
            else:
                self.port = _bound_port(runner, self.port)
                log.info("http_listening", url=f"http://{self._host}:{self.port}")
            ready.set()
            await asyncio.Event().wait()
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLEANUP_TIMEOUT_S):
                    await runner.cleanup()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._scrape)
        for path, query in api.ROUTES.items():
            app.router.add_get(path, self._api(query))
        add_dashboard(app, self._feed)
        return app

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count each answer; a handler's failure is a logged 500, never the service's end."""
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 -- one request's failure never stops the service
            self.failed += 1
            error = f"{type(exc).__name__}: {exc}"
            log.error("http_request_failed", path=request.path, error=error)  # noqa: TRY400
            return _json(500, {"error": "internal error; see the daemon's log"})
        self.answered += 1
        return response

    async def _health(self, _request: web.Request) -> web.StreamResponse:
        status, body = health_answer(self._sources.health(), all_ready=self._all_ready())
        return _json(status, body)

    async def _scrape(self, _request: web.Request) -> web.StreamResponse:
        body = await self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    def _api(self, query: Callable[[api.ApiSources, api.Query], Awaitable[api.Answer]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if not self._sources.control.is_started():
                return _json(STARTING, {"error": "starting: the ledger is not restored yet"})
            try:
                answer = await query(self._sources, request.query)
            except api.BadQuery as exc:
                return _json(400, {"error": str(exc)})
            return _json(200, answer)

        return handle


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
    )


def _bound_port(runner: web.AppRunner, asked: int) -> int:
    """Return the port the runner listens on (the one picked for port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked
