"""The dashboard: ``/`` (one page), ``/static/*`` (its scripts, styles and the vendored chart
library) and ``/api/feed`` (where the page finds the status feed).

The page is plain HTML, CSS and JavaScript in ``static/`` (no build step, nothing fetched from
another host: it works offline). It reads nothing over HTTP but ``/api/feed`` and, for its
Monte Carlo panel, ``/api/montecarlo`` (at start, after a closed trade, every minute);
everything else it shows comes from the status WebSocket feed (docs/status-protocol.md).
Files are served by aiohttp's file responses, which read off the event loop.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PAGE = STATIC / "index.html"

# The page runs only its own scripts, connects only to its own origin and WebSockets, and
# cannot be framed by another site. Styles may be inline: the chart library sets them.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedLink:
    """Where the status feed listens: its bound port, and whether it asks for a token."""

    port: int
    token_required: bool


FeedProvider = Callable[[], FeedLink | None]


def no_feed() -> FeedLink | None:
    """Return None: this daemon serves no status feed (or it is not listening yet)."""
    return None


def add_dashboard(app: web.Application, feed: FeedProvider) -> None:
    """Add the page, its static files and ``/api/feed`` to ``app``."""
    app.router.add_get("/", _page)
    app.router.add_get("/api/feed", _feed_answer(feed))
    app.router.add_static("/static", STATIC, show_index=False, follow_symlinks=False)
    app.on_response_prepare.append(_common_headers)


async def _page(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(PAGE, headers=PAGE_HEADERS)


def _feed_answer(feed: FeedProvider) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def answer(_request: web.Request) -> web.StreamResponse:
        link = feed()
        body = (
            {"port": None, "token_required": False}
            if link is None
            else {"port": link.port, "token_required": link.token_required}
        )
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    return answer


async def _common_headers(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in COMMON_HEADERS.items():
        response.headers.setdefault(name, value)
