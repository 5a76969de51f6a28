"""Who may open the status feed, and what a connection asks for in its URL.

A request is refused at the handshake, with an HTTP status and one line of reason: 401 without
the token when one is set (``?token=`` or ``Authorization: Bearer``), 403 from a web page of a
foreign origin (a browser always sends ``Origin``; other clients need not), 400 for a malformed
query, 503 when the connection cap is reached.
"""

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from paper_trader.interfaces.status.hub import parse_topics

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 -- names of the wildcard address, not a bind


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a connection asks for: resume after ``since`` of ``run``, and its topics (None:
    every topic)."""

    since: int | None = None
    run: str | None = None
    topics: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a handshake is refused."""

    status: HTTPStatus
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """The feed's rules: the token (None: none needed), the page origins allowed (a callable:
    the dashboard's port is known once the HTTP service listens) and the connection cap."""

    token: str | None
    origins: Callable[[], frozenset[str]]
    max_clients: int

    def refusal(self, path: str, headers: dict[str, str], clients: int) -> Refusal | None:
        """Return why the request for ``path`` with ``headers`` is refused, None if it is not."""
        try:
            query = parse_qs(urlsplit(path).query)
        except ValueError as exc:  # urlsplit: "//[x/" is an invalid IPv6 URL
            return Refusal(HTTPStatus.BAD_REQUEST, f"malformed URL: {exc}")
        if self.token is not None and not self._has_token(query, headers):
            return Refusal(HTTPStatus.UNAUTHORIZED, "the status feed needs its token")
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins():
            return Refusal(
                HTTPStatus.FORBIDDEN,
                f"pages from {origin} may not read the status feed (STATUS_WS_ORIGINS)",
            )
        try:
            wanted(path)
        except ValueError as exc:
            return Refusal(HTTPStatus.BAD_REQUEST, str(exc))
        if clients >= self.max_clients:
            return Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"{clients} clients are connected, the most allowed (STATUS_WS_MAX_CLIENTS)",
            )
        return None

    def _has_token(self, query: dict[str, list[str]], headers: dict[str, str]) -> bool:
        assert self.token is not None
        given = query.get("token", [""])[-1]
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            given = given or bearer[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())


def wanted(path: str) -> Wanted:
    """Return what the URL asks for; raise ValueError naming a malformed parameter."""
    query = parse_qs(urlsplit(path).query)
    since_text = query.get("since", [None])[-1]
    since = None
    if since_text is not None:
        if not since_text.isdigit():
            raise ValueError(f"since must be an event number (seq), got {since_text!r}")
        since = int(since_text)
    topics = None
    if "topics" in query:
        names = [t for part in query["topics"] for t in part.split(",") if t]
        topics = parse_topics(names)
    return Wanted(since=since, run=query.get("run", [None])[-1], topics=topics)


def dashboard_origins(host: str, port: int | None) -> frozenset[str]:
    """Return the origins of the daemon's own dashboard page served on ``host:port``."""
    if port is None:
        return frozenset()
    names = set(_LOOPBACK_NAMES)
    if host not in _WILDCARDS:
        names.add(f"[{host}]" if ":" in host else host)
    return frozenset(f"http://{name}:{port}" for name in names)
