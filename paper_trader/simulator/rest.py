"""The simulated exchange's REST API: klines, time and exchangeInfo, with Binance's limits.

Every response carries ``X-MBX-USED-WEIGHT-1M``. Past the weight limit of a (wall-clock)
minute the client gets 429 with ``Retry-After`` until the minute ends; a client that keeps
asking during that period is banned with 418 for ``ban_s``. Injected failures (``fail``, and
the seeded 429/5xx rates) are one-offs that do not start a penalty period.
"""

import asyncio
import collections
import json
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from paper_trader.simulator.faults import Faults, StatsCounter, retry_after_header
from paper_trader.simulator.market import SimMarket

KLINES_DEFAULT_LIMIT = 500
KLINES_MAX_LIMIT = 1000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_WINDOW_S = 60.0
_SYMBOL_PARAM = re.compile(r"^[A-Z0-9\-_.]{1,20}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "EUR", "BTC", "ETH", "BNB")
_TOO_MANY = (
    "Too many requests; current limit of IP(127.0.0.1) is {limit} requests per minute. "
    "Please use the websocket for live updates to avoid polling the API."
)
_BANNED = (
    "Way too much request weight used; IP banned until {until}. "
    "Please use the websocket for live updates to avoid bans."
)

Query = Mapping[str, str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _BadRequest(Exception):
    """A request Binance answers with 400 and an error code."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class RestLimiter:
    """Request weight per minute window; 429 past the limit, then 418 for persisting."""

    def __init__(
        self, *, weight_limit: int, ban_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = weight_limit
        self._ban_s = ban_s
        self._clock = clock
        self._window_start = clock()
        self._used = 0
        self._penalty_until = -math.inf
        self._ban_until = -math.inf

    @property
    def used(self) -> int:
        """Return the weight used in the current window."""
        self._roll(self._clock())
        return self._used

    def admit(self, weight: int) -> tuple[int, float] | None:
        """Charge ``weight``; return ``(status, retry_after_s)`` if the request is refused."""
        now = self._clock()
        self._roll(now)
        if now < self._ban_until:
            return 418, self._ban_until - now
        if now < self._penalty_until:
            self._ban_until = now + self._ban_s
            return 418, self._ban_s
        self._used += weight
        if self._used > self._limit:
            self._penalty_until = self._window_start + _WINDOW_S
            return 429, self._penalty_until - now
        return None

    def _roll(self, now: float) -> None:
        if now >= self._window_start + _WINDOW_S:
            windows = (now - self._window_start) // _WINDOW_S
            self._window_start += windows * _WINDOW_S
            self._used = 0


class RestApi:
    """The REST endpoints of the simulated exchange over one `SimMarket`."""

    def __init__(
        self,
        market: SimMarket,
        *,
        limiter: RestLimiter,
        weight_limit: int,
        faults: Faults,
        stats: StatsCounter,
        now: Callable[[], int],
    ) -> None:
        self._market = market
        self._limiter = limiter
        self._weight_limit = weight_limit
        self._faults = faults
        self._stats = stats
        self._now = now
        self._rng = random.Random(f"{faults.seed}:rest")  # noqa: S311 -- seeded faults
        self._injected: collections.deque[tuple[int, float]] = collections.deque()

    def routes(self) -> list[web.RouteDef]:
        """Return the aiohttp routes of the API."""
        return [
            web.get("/api/v3/ping", self._endpoint(1, lambda _q: {})),
            web.get("/api/v3/time", self._endpoint(1, lambda _q: {"serverTime": self._now()})),
            web.get("/api/v3/klines", self._endpoint(2, self._klines)),
            web.get("/api/v3/exchangeInfo", self._endpoint(20, self._exchange_info)),
        ]

    def fail(self, times: int, status: int, retry_after_s: float = 1.0) -> None:
        """Answer the next ``times`` requests with ``status`` (429, 418 or 5xx)."""
        if status not in (418, 429) and not 500 <= status <= 599:
            raise ValueError(f"status must be 418, 429 or 5xx, got {status}")
        self._injected.extend([(status, retry_after_s)] * times)

    def _endpoint(self, weight: int, handler: Callable[[Query], object]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            self._stats.rest_requests += 1
            if self._faults.rest_latency_s:
                await asyncio.sleep(self._faults.rest_latency_s)
            self._now()  # let a running clock catch up before the market is read
            response = self._refusal(weight) or self._answer(handler, request.query)
            self._stats.count_status(response.status)
            return response

        return handle

    def _answer(self, handler: Callable[[Query], object], query: Query) -> web.Response:
        try:
            return self._json(200, handler(query))
        except _BadRequest as exc:
            return self._json(400, {"code": exc.code, "msg": exc.msg})

    def _refusal(self, weight: int) -> web.Response | None:
        """Return a refusal (injected fault, 429 or 418), or ``None`` to serve the request."""
        injected = self._injected_failure()
        if injected is not None:
            return self._failure(*injected)
        refused = self._limiter.admit(weight)
        return None if refused is None else self._failure(*refused)

    def _injected_failure(self) -> tuple[int, float] | None:
        if self._injected:
            return self._injected.popleft()
        faults = self._faults
        if not (faults.rest_429_rate or faults.rest_418_rate or faults.rest_5xx_rate):
            return None
        draw = self._rng.random()
        for status, rate in ((429, faults.rest_429_rate), (418, faults.rest_418_rate)):
            if draw < rate:
                return status, faults.retry_after_s
            draw -= rate
        if draw < faults.rest_5xx_rate:
            return 503, faults.retry_after_s
        return None

    def _failure(self, status: int, retry_after_s: float) -> web.Response:
        headers = {"Retry-After": retry_after_header(retry_after_s)}
        if status >= 500:
            response = web.Response(status=status, text="Service Unavailable", headers=headers)
            response.headers[WEIGHT_HEADER] = str(self._limiter.used)
            return response
        if status == 429:
            msg = _TOO_MANY.format(limit=self._weight_limit)
        else:
            msg = _BANNED.format(until=int(time.time() * 1000 + retry_after_s * 1000))
        return self._json(status, {"code": -1003, "msg": msg}, headers)

    def _json(
        self, status: int, body: object, headers: dict[str, str] | None = None
    ) -> web.Response:
        response = web.Response(
            status=status,
            text=json.dumps(body, separators=(",", ":")),
            content_type="application/json",
            headers=headers,
        )
        response.headers[WEIGHT_HEADER] = str(self._limiter.used)
        return response

    def _klines(self, query: Query) -> list[list[object]]:
        symbol = self._symbol(query)
        interval = _mandatory(query, "interval")
        if interval != self._market.interval.value:
            raise _BadRequest(-1120, "Invalid interval.")
        limit = _integer(query, "limit")
        if limit is None:
            limit = KLINES_DEFAULT_LIMIT
        if not 1 <= limit <= KLINES_MAX_LIMIT:
            raise _BadRequest(
                -1100,
                f"Illegal characters found in parameter 'limit'; "
                f"legal range is '1' to '{KLINES_MAX_LIMIT}'.",
            )
        start, end = _integer(query, "startTime"), _integer(query, "endTime")
        if start is not None and end is not None and start > end:
            raise _BadRequest(-1023, "Start time is greater than end time.")
        rows = self._market.klines(symbol, start=start, end=end, limit=limit)
        return [row.rest() for row in rows]

    def _exchange_info(self, query: Query) -> dict[str, Any]:
        if "symbols" in query:
            symbols = _symbol_list(query["symbols"])
        elif "symbol" in query:
            symbols = [self._symbol(query)]
        else:
            symbols = list(self._market.symbols)
        for symbol in symbols:
            if symbol not in self._market.symbols:
                raise _BadRequest(-1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": self._now(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self._weight_limit,
                }
            ],
            "symbols": [_symbol_info(s) for s in symbols],
        }

    def _symbol(self, query: Query) -> str:
        symbol = _mandatory(query, "symbol")
        if not _SYMBOL_PARAM.match(symbol):
            raise _BadRequest(
                -1100,
                "Illegal characters found in parameter 'symbol'; "
                "legal range is '^[A-Z0-9-_.]{1,20}$'.",
            )
        if symbol not in self._market.symbols:
            raise _BadRequest(-1121, "Invalid symbol.")
        return symbol


def _mandatory(query: Query, name: str) -> str:
    value = query.get(name, "")
    if not value:
        raise _BadRequest(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _integer(query: Query, name: str) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    if not _DIGITS.match(text):
        raise _BadRequest(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(text)


def _symbol_list(text: str) -> list[str]:
    try:
        symbols = json.loads(text)
    except ValueError:
        symbols = None
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise _BadRequest(
            -1100, "Illegal characters found in parameter 'symbols'; legal range is a JSON array."
        )
    return symbols


def _symbol_info(symbol: str) -> dict[str, str]:
    quote = next((q for q in _QUOTES if symbol.endswith(q) and symbol != q), symbol[-4:])
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": symbol[: -len(quote)],
        "quoteAsset": quote,
    }
