"""A fake webhook receiver on ``127.0.0.1:0``: records every POSTed JSON body, answers as a
JSON endpoint or Discord's webhook would, and fails on demand.

Discord's behaviour kept: ``content`` over 2000 characters is a 400; with ``?wait=true`` the
answer is the message with its ``id``, without it 204; a 429 carries ``Retry-After`` (header,
seconds) and ``retry_after`` (body, seconds, a float).
"""

import asyncio
import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

DISCORD_MAX = 2000


@dataclass(frozen=True, slots=True)
class Post:
    """One request: its JSON body, when it came, and the status answered."""

    body: dict[str, Any]
    at: float
    status: int
    retry_after: float | None = None


@dataclass(slots=True)
class _Fault:
    status: int
    until: float | None
    times: int | None
    retry_after: float | None
    header: bool
    delay_s: float = 0.0
    hits: int = 0

    def active(self, now: float) -> bool:
        in_time = self.until is None or now < self.until
        return in_time and (self.times is None or self.hits < self.times)


class FakeWebhook:
    """``async with FakeWebhook(discord=True) as hook:`` then point the notifier at ``hook.url``."""

    def __init__(self, *, discord: bool = False) -> None:
        self.discord = discord
        self.posts: list[Post] = []
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        """Return the webhook's URL (Discord's ``?wait=true`` form when ``discord``)."""
        base = f"http://127.0.0.1:{self._port}/api/webhooks/1/secret-token"
        return base + "?wait=true" if self.discord else base

    def accepted(self) -> list[dict[str, Any]]:
        """Return the bodies answered 2xx, in arrival order."""
        return [p.body for p in self.posts if 200 <= p.status < 300]

    def early_posts(self) -> list[Post]:
        """Return accepted posts that came before an earlier 429's retry-after had passed."""
        floods = [p for p in self.posts if p.status == 429]
        return [
            p
            for p in self.posts
            if 200 <= p.status < 300
            and any(f.at < p.at < f.at + (f.retry_after or 0) for f in floods)
        ]

    def fail(
        self,
        status: int,
        *,
        seconds: float | None = None,
        times: int | None = None,
        retry_after: float | None = None,
        header: bool = True,
    ) -> None:
        """Answer ``status`` for ``seconds`` or ``times`` requests (one without either); a 429's
        ``retry_after`` goes in the header (``header``) or only in the body."""
        until = None if seconds is None else time.monotonic() + seconds
        count = 1 if times is None and seconds is None else times
        self._faults.append(_Fault(status, until, count, retry_after, header))

    def delay(self, delay_s: float, *, times: int = 1) -> None:
        """Accept the next ``times`` posts, but answer only after ``delay_s``."""
        self._faults.append(_Fault(200, None, times, None, True, delay_s))

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        now = time.monotonic()
        fault = self._fault(now)
        if fault is not None and fault.status != 200:
            return self._refuse(body, now, fault)
        if self.discord and len(str(body.get("content", ""))) > DISCORD_MAX:
            self.posts.append(Post(body, now, 400))
            return web.json_response({"content": ["Must be 2000 or fewer in length."]}, status=400)
        status = 200 if not self.discord or request.query.get("wait") == "true" else 204
        self.posts.append(Post(body, now, status))
        if fault is not None:
            await asyncio.sleep(fault.delay_s)
        if status == 204:
            return web.Response(status=204)
        return web.json_response({"id": str(len(self.posts)), "content": body.get("content")})

    def _fault(self, now: float) -> _Fault | None:
        self._faults = [f for f in self._faults if f.active(now)]
        for fault in self._faults:
            fault.hits += 1
            return fault
        return None

    def _refuse(self, body: dict[str, Any], now: float, fault: _Fault) -> web.Response:
        retry = fault.retry_after
        self.posts.append(Post(body, now, fault.status, retry))
        if fault.status != 429:
            return web.json_response({"message": "refused"}, status=fault.status)
        headers = {"Retry-After": f"{retry:g}"} if fault.header and retry is not None else {}
        payload = {"message": "You are being rate limited.", "retry_after": retry, "global": False}
        return web.Response(
            status=429, text=json.dumps(payload), headers=headers, content_type="application/json"
        )
