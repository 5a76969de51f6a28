"""REST over aiohttp, paced by a sliding-window weight budget and the venue's own signals.

One client per venue. Requests are serialised (one at a time: backfill concurrency 1 per
venue, as the venues ask) and each waits until its weight fits the budget of the last 60 s
*and* what the venue itself says is left (Bitvavo's ``bitvavo-ratelimit-remaining`` until its
``-resetat``; Binance's used weight). What an answer says is read by the venue's adapter
(``rate_signal``), so this module knows HTTP, not venues. A refusal for rate pauses *every*
request to that venue: until the time the venue named (converted from the venue's clock),
else for ``Retry-After``, else — no hint at all — a short jittered backoff that grows with
each refusal in a row and is capped. Library errors never leave this module: callers see
``RateLimited``, ``TransientError`` or ``VenueError``.
"""

import asyncio
import collections
import email.utils
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import msgspec

from paper_trader.clock import Clock
from paper_trader.errors import RateLimited, TransientError
from paper_trader.exchange.venue_clock import VenueClock
from paper_trader.exchange.wire import (
    NO_SIGNAL,
    RateSignal,
    RestAnswer,
    VenueAdapter,
    VenueError,
)
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.logs import get_logger

log = get_logger("rest")

T = TypeVar("T")
WINDOW_S = 60.0
RATE_LIMIT_STATUSES = frozenset({418, 429, 403})
BLOCKED_RETRY_AFTER_S = 600.0  # 403 without a hint: a firewall or an IP ban; retry far later
NO_HINT_BACKOFF = Backoff(base_s=1.0, cap_s=60.0)  # a refusal that names no time
# A venue time turned into a local delay is padded by this much: our reading of the venue's
# clock is a little off either way, and coming back early earns a fresh 429 (Bitvavo blocks
# an IP for 15 minutes).
CLOCK_MARGIN_S = 0.25
MAX_WAIT_S = 3 * 86_400.0  # Binance's longest ban; a larger "wait" is a garbled header
SignalReader = Callable[[RestAnswer], RateSignal]


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
        self._venue_remaining = 0
        self._venue_reset = -math.inf  # monotonic time the venue's own window resets

    def delay_s(self, weight: int) -> float:
        """Return how long to wait before ``weight`` may be spent (0 if now)."""
        now = self._clock.monotonic()
        self._expire(now)
        wait = max(0.0, self._paused_until - now)
        if now < self._venue_reset and weight > self._venue_remaining:
            wait = max(wait, self._venue_reset - now)
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
        now = self._clock.monotonic()
        self._spent.append((now, weight))
        self._total += weight
        if now < self._venue_reset:
            self._venue_remaining = max(0, self._venue_remaining - weight)

    def pause(self, seconds: float) -> None:
        """Spend nothing for ``seconds`` (the venue said so)."""
        self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def observe_used(self, used: int) -> None:
        """Account for weight the venue reports used by this IP (other clients included)."""
        self._expire(self._clock.monotonic())
        if used > self._total:
            self._spent.append((self._clock.monotonic(), used - self._total))
            self._total = used

    def observe_window(self, remaining: int, reset_in_s: float) -> None:
        """Take the venue's own count: ``remaining`` weight left until it resets in ``reset_in_s``.

        Until then a request heavier than what is left waits for the reset, so the venue's
        limit is never crossed (and no 429 earned); after it the venue's count is forgotten
        until the next answer reports it again.
        """
        self._venue_remaining = max(0, remaining)
        self._venue_reset = self._clock.monotonic() + reset_in_s

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - WINDOW_S:
            self._total -= self._spent.popleft()[1]


class HttpRestClient:
    """A JSON GET client for one venue's REST base URL.

    ``signals`` reads the venue's rate-limit signals out of every answer (the adapter's
    ``rate_signal``); ``venue_clock``, once synced, turns the venue times they name into local
    delays, and until then the answer's own ``Date`` header does (whole seconds, so the wait
    errs long). ``backoff`` and ``rng`` shape the wait of a refusal that names no time.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        budget: WeightBudget,
        *,
        venue: str,
        signals: SignalReader | None = None,
        venue_clock: VenueClock | None = None,
        backoff: Backoff = NO_HINT_BACKOFF,
        rng: random.Random | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._budget = budget
        self._venue = venue
        self._signals = signals or _no_signal
        self._venue_clock = venue_clock
        self._backoff = backoff
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._lock = asyncio.Lock()
        self._refusals = 0  # rate-limit refusals in a row
        self.requests = 0
        self.rate_limited = 0

    @classmethod
    def for_venue(
        cls,
        session: aiohttp.ClientSession,
        adapter: VenueAdapter,
        budget: WeightBudget,
        *,
        venue_clock: VenueClock | None = None,
    ) -> "HttpRestClient":
        """Return a client for ``adapter``'s REST base that reads its venue's signals."""
        return cls(
            session,
            adapter.rest_base,
            budget,
            venue=adapter.venue.value,
            signals=adapter.rate_signal,
            venue_clock=venue_clock,
        )

    async def get_json(self, path: str, params: dict[str, str], *, weight: int) -> object:
        """GET ``path`` and return the decoded JSON body."""
        async with self._lock:
            while (delay := self._budget.delay_s(weight)) > 0:  # noqa: ASYNC110 -- a timed wait
                await asyncio.sleep(delay)
            self._budget.spend(weight)
            self.requests += 1
            status, headers, raw = await self._get(path, params)
            is_json, body = _decode(raw)
            answer = RestAnswer(status, headers, body if is_json else None)
            signal = self._signals(answer)
            names_a_time = signal.retry_at_ms is not None or signal.reset_at_ms is not None
            now_ms = self._venue_now_ms(headers) if names_a_time else None
            self._observe(signal, now_ms)
            if status == 200 and not signal.limited:
                self._refusals = 0
                if not is_json:
                    raise TransientError(f"{self._venue} GET {path}: response is not JSON")
                return body
            raise self._failure(path, answer, raw, signal, now_ms)

    async def _get(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        url = self._base + path
        try:
            async with self._session.get(url, params=params, timeout=self._timeout) as response:
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{self._venue} GET {path}: {exc!r}") from exc

    def _venue_now_ms(self, headers: Mapping[str, str]) -> int | None:
        """Return the venue's time as of this answer: its synced clock, else its ``Date``."""
        if self._venue_clock is not None and self._venue_clock.synced:
            return self._venue_clock.now_ms()
        return _http_date_ms(headers.get("Date", ""))

    def _observe(self, signal: RateSignal, now_ms: int | None) -> None:
        if signal.used is not None:
            self._budget.observe_used(signal.used)
        if signal.remaining is not None and signal.reset_at_ms is not None:
            reset_in = _venue_delay_s(signal.reset_at_ms, now_ms)
            if reset_in is not None:
                self._budget.observe_window(signal.remaining, reset_in)

    def _failure(
        self, path: str, answer: RestAnswer, raw: bytes, signal: RateSignal, now_ms: int | None
    ) -> Exception:
        code, message = _error_text(answer.body, raw)
        where = f"{self._venue} GET {path}: HTTP {answer.status}"
        if signal.limited or answer.status in RATE_LIMIT_STATUSES:
            self._refusals += 1
            wait, hint = self._wait_s(answer, signal, now_ms)
            self._budget.pause(wait)
            self.rate_limited += 1
            log.warning(
                "rest_rate_limited",
                venue=self._venue,
                path=path,
                status=answer.status,
                retry_after_s=round(wait, 3),
                hint=hint,
                refusals_in_a_row=self._refusals,
                venue_message=message,
            )
            return RateLimited(f"{where} {message}".strip(), retry_after_s=wait)
        if answer.status >= 500:
            return TransientError(f"{where} {message}".strip())
        return VenueError(f"{where}: {message}", status=answer.status, code=code)

    def _wait_s(
        self, answer: RestAnswer, signal: RateSignal, now_ms: int | None
    ) -> tuple[float, str]:
        """Return how long every request waits after this refusal, and what said so."""
        if signal.retry_at_ms is not None:
            until = _venue_delay_s(signal.retry_at_ms, now_ms)
            if until is not None:
                return min(until, MAX_WAIT_S), "venue time"
        for named, hint in (
            (_seconds(signal.retry_after_s), "venue"),
            (_retry_after_s(answer.headers), "Retry-After"),
        ):
            if named is not None:
                return min(named, MAX_WAIT_S), hint
        if answer.status == 403:
            return BLOCKED_RETRY_AFTER_S, "blocked"
        ceiling = self._backoff.ceiling(self._refusals - 1)
        return self._rng.uniform(ceiling / 2, ceiling), "backoff"


def _no_signal(answer: RestAnswer) -> RateSignal:
    return NO_SIGNAL


def _decode(raw: bytes) -> tuple[bool, object]:
    """Return whether ``raw`` is JSON, and its value."""
    try:
        return True, msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # bad UTF-8, nested too deep
        return False, None


def _error_text(body: object, raw: bytes) -> tuple[str, str]:
    """Return the venue's error code and message from an error body, whatever its shape."""
    if body is None:
        return "", raw[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        code = body.get("code", body.get("errorCode", ""))
        message = body.get("msg", body.get("error", ""))
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        return str(code), str(message)
    return "", str(body)[:200]


def _venue_delay_s(at_ms: int, now_ms: int | None) -> float | None:
    """Return the local delay until venue time ``at_ms`` (padded), None if unknown or past."""
    if now_ms is None or at_ms <= now_ms:
        return None
    return min((at_ms - now_ms) / 1000 + CLOCK_MARGIN_S, MAX_WAIT_S)


def _seconds(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Return ``Retry-After`` in seconds (the delay form), None if absent or not a number."""
    try:
        return _seconds(float(headers.get("Retry-After", "")))
    except ValueError:
        return None


def _http_date_ms(value: str) -> int | None:
    """Return an HTTP ``Date`` header as Unix ms, None if absent or not a date."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # Overflow: a year past C's int
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


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
