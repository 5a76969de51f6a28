"""One WebSocket connection of the feed, and the pair of them during a rotation."""

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from paper_trader.exchange.feed_state import LinkEnd

CLOSED = object()  # the last item a link's reader queues: the connection has ended


class Link:
    """One WebSocket connection and what it has delivered."""

    def __init__(self, number: int, ws: ClientConnection, opened: float) -> None:
        self.number = number
        self.ws = ws
        self.opened = opened
        self.last_data = opened
        self.last_ping = opened
        self.data_frames = 0
        self.acks = 0
        self.closed: LinkEnd | None = None


class Links:
    """The connection in use and, during a make-before-break rotation, its successor."""

    def __init__(self, current: Link) -> None:
        self.current = current
        self.successor: Link | None = None

    def is_live(self, link: Link) -> bool:
        """Return whether frames of ``link`` still count (it has not been replaced)."""
        return link is self.current or link is self.successor

    def on_closed(self, link: Link) -> bool:
        """Account for a closed connection; return True if no connection is left."""
        if link is self.current:
            if self.successor is None:
                return True
            self.promote()
        elif link is self.successor:
            self.successor = None
        return False

    def promote(self) -> None:
        """Make the successor the connection in use."""
        if self.successor is not None:
            self.current, self.successor = self.successor, None


async def read_into(
    link: Link, frames: "asyncio.Queue[tuple[Link, object]]", policy_backoff_s: float
) -> None:
    """Queue every frame of ``link``, then ``CLOSED`` once it ends (never raises)."""
    with contextlib.suppress(ConnectionClosed, OSError):
        async for raw in link.ws:
            await frames.put((link, raw))
    link.closed = link_end(link.ws, policy_backoff_s)
    await frames.put((link, CLOSED))


async def close_link(link: Link) -> None:
    """Close ``link``, waiting at most 3 s for the closing handshake."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(3.0):
            await link.ws.close()


def link_end(ws: ClientConnection, policy_backoff_s: float) -> LinkEnd:
    code = ws.close_code
    if code is None:
        return LinkEnd(reason="connection lost")
    detail = f": {ws.close_reason}" if ws.close_reason else ""
    reason = f"closed by the venue (code {code}{detail})"
    # 1008 "policy violation" is how Binance says "too many requests": sit out its penalty.
    return LinkEnd(reason=reason, retry_after_s=policy_backoff_s if code == 1008 else 0.0)


def describe_failure(exc: BaseException, policy_backoff_s: float) -> LinkEnd:
    """Turn a connection failure into a reason and the venue's minimum wait."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        retry = header_seconds(exc.response.headers.get("Retry-After"))
        if status in (418, 429):
            return LinkEnd(reason=f"handshake refused: HTTP {status}", retry_after_s=retry or 60.0)
        return LinkEnd(reason=f"handshake refused: HTTP {status}", retry_after_s=retry)
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None and exc.rcvd.code == 1008:
        reason = f"policy violation: {exc.rcvd.reason}"
        return LinkEnd(reason=reason, retry_after_s=policy_backoff_s)
    return LinkEnd(reason=f"{type(exc).__name__}: {exc}", retry_after_s=retry_after(exc))


def retry_after(exc: BaseException) -> float:
    return float(getattr(exc, "retry_after_s", 0.0))


def header_seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
