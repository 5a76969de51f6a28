"""REST over aiohttp, paced by a sliding-window weight budget and the venue's own signals.

One client per venue. Requests are serialised (one at a time: backfill concurrency 1 per
venue, as the venues ask), each waits until its weight fits the budget of the last 60 s, and a
429/418/403 pauses *every* request to that venue until ``Retry-After`` has passed. Library
errors never leave this module: callers see ``RateLimited``, ``TransientError`` or
``VenueError``.
"""

import asyncio
import collections
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import msgspec

from paper_trader.clock import Clock
from paper_trader.errors import RateLimited, TransientError
from paper_trader.exchange.wire import VenueError
from paper_trader.log_config import get_logger
from paper_trader.runtime.backoff import Backoff

log = get_logger("rest")

T = TypeVar("T")
WINDOW_S = 60.0
DEFAULT_RETRY_AFTER_S = 60.0
BLOCKED_RETRY_AFTER_S = 600.0  # 403: a firewall or an IP ban; retry far later
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


class WeightBudget:
    """At most ``per_minute`` weight in any 60 s window, measured on the monotonic clock."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._limit = per_minute
        self._clock = clock
        self._spent: collections.deque[tuple[float, int]] = collections.deque()
        self._total = 0
        self._paused_until = 0.0

    def delay_s(self, weight: int) -> float:
        """Return how long to wait before ``weight`` may be spent (0 if now)."""
        now = self._clock.monotonic()
        self._expire(now)
        wait = max(0.0, self._paused_until - now)
        excess = self._total + min(weight, self._limit) - self._limit
        if excess > 0:
            freed = 0
            for at, spent in self._spent:
                freed += spent
                if freed >= excess:
                    wait = max(wait, at + WINDOW_S - now)
                    break
        return wait

    def spend(self, weight: int) -> None:
        """Record ``weight`` spent now."""
        self._spent.append((self._clock.monotonic(), weight))
        self._total += weight

    def pause(self, seconds: float) -> None:
        """Spend nothing for ``seconds`` (the venue said so)."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def observe_used(self, used: int) -> None:
        """Account for weight the venue reports used by this IP (other clients included)."""
        self._expire(self._clock.monotonic())
        if used > self._total:
            self._spent.append((self._clock.monotonic(), used - self._total))
            self._total = used

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - WINDOW_S:
            self._total -= self._spent.popleft()[1]


class HttpRestClient:
    """A JSON GET client for one venue's REST base URL."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        budget: WeightBudget,
        *,
        venue: str,
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._budget = budget
        self._venue = venue
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._lock = asyncio.Lock()
        self.requests = 0
        self.rate_limited = 0

    async def get_json(self, path: str, params: dict[str, str], *, weight: int) -> object:
        """GET ``path`` and return the decoded JSON body."""
        async with self._lock:
            while (delay := self._budget.delay_s(weight)) > 0:  # noqa: ASYNC110 -- a timed wait
                await asyncio.sleep(delay)
            self._budget.spend(weight)
            self.requests += 1
            status, headers, body = await self._get(path, params)
            self._observe(headers)
            if status == 200:
                return _decode(body, path)
            raise self._failure(path, status, headers, body)

    async def _get(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        url = self._base + path
        try:
            async with self._session.get(url, params=params, timeout=self._timeout) as response:
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{self._venue} GET {path}: {exc!r}") from exc

    def _observe(self, headers: Mapping[str, str]) -> None:
        used = headers.get(USED_WEIGHT_HEADER)
        if used and used.isdigit():
            self._budget.observe_used(int(used))

    def _failure(
        self, path: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> Exception:
        code, message = _error_text(body)
        where = f"{self._venue} GET {path}: HTTP {status}"
        if status in (418, 429, 403):
            default = BLOCKED_RETRY_AFTER_S if status == 403 else DEFAULT_RETRY_AFTER_S
            retry_after = _retry_after_s(headers, default)
            self._budget.pause(retry_after)
            self.rate_limited += 1
            log.warning(
                "rest_rate_limited",
                venue=self._venue,
                path=path,
                status=status,
                retry_after_s=retry_after,
                venue_message=message,
            )
            return RateLimited(f"{where} {message}".strip(), retry_after_s=retry_after)
        if status >= 500:
            return TransientError(f"{where} {message}".strip())
        return VenueError(f"{where}: {message}", status=status, code=code)


def _decode(body: bytes, path: str) -> object:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise TransientError(f"GET {path}: response is not JSON ({exc})") from exc


def _error_text(body: bytes) -> tuple[str, str]:
    """Return the venue's error code and message from an error body, whatever its shape."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "", body[:200].decode("utf-8", "replace").strip()
    if isinstance(decoded, dict):
        code = decoded.get("code", decoded.get("errorCode", ""))
        message = decoded.get("msg", decoded.get("error", ""))
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        return str(code), str(message)
    return "", str(decoded)[:200]


def _retry_after_s(headers: Mapping[str, str], default: float) -> float:
    value = headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return default
    return seconds if math.isfinite(seconds) and seconds >= 0 else default


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    rng: random.Random,
    what: str,
    attempts: int | None = None,
) -> T:
    """Await ``call()`` until it succeeds; return its result.

    ``RateLimited`` waits as long as the venue asked, any other ``TransientError`` a jittered
    backoff; after ``attempts`` tries (default: no limit) the last error is raised.
    Anything else (``VenueError``) is raised at once.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except TransientError as exc:
            attempt += 1
            if attempts is not None and attempt >= attempts:
                raise
            delay = max(backoff.delay(attempt - 1, rng), getattr(exc, "retry_after_s", 0.0))
            log.warning("rest_retrying", what=what, error=str(exc), delay_s=round(delay, 3))
            await asyncio.sleep(delay)
