"""``/api/*``: the daemon's state and history as JSON, read-only, through ``control/`` only.

Money, prices and quantities are strings (their exact digits), times Unix milliseconds of
candle time. A bad query parameter is a 400 with ``{"error": "..."}`` in one line; a query
before the ledger is restored is a 503.

``/api/status``      the trading state, tripped breakers, portfolio, counters and health (score,
                     level, the lowest ceiling's reason, the components not ok)
``/api/positions``   open positions at their marks, with stops
``/api/trades``      ``?limit=`` newest closed trades (default 20, at most 1000), oldest first
``/api/signals``     ``?limit=`` newest entry decisions (default 20, at most 1000), oldest first
``/api/equity``      ``?since=`` Unix ms or ISO 8601 (default: the whole history); at most 500
                     snapshots spread over the span up to the last candle
``/api/montecarlo``  the Monte Carlo of the closed trades (``broker/montecarlo.py``): runs,
                     trades, seed, initial equity, and the 5th, 50th and 95th percentile of
                     the final equity and of the maximum drawdown; null when
                     ``MONTE_CARLO_RUNS`` is 0 or fewer than two trades closed
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paper_trader.control.api import Control
from paper_trader.control.reports import Reports
from paper_trader.control.system import HealthProvider, health_level
from paper_trader.errors import PaperTraderError
from paper_trader.interfaces.control_socket import to_json

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_SINCE_MS = 2**63 - 1  # the most an SQLite INTEGER holds

Query = Mapping[str, str]
Answer = dict[str, Any]


class BadQuery(PaperTraderError):
    """A query parameter that is not of the expected form (answered with 400)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSources:
    """What the API reads."""

    control: Control
    reports: Reports
    health: HealthProvider


async def status(api: ApiSources, _query: Query) -> Answer:
    """Return the status, with the health score, level, the reason of its lowest ceiling and
    the components that are not ok (None before the first check)."""
    view = api.health()
    health = None
    if view is not None:
        health = {
            "score": view.score,
            "level": health_level(view.score).value,
            "status": view.status.label,
            "reason": view.limits[0].reason if view.limits else None,
            "problems": [
                {"component": c.component, "status": c.status.label, "detail": c.detail}
                for c in view.components
                if c.status
            ],
        }
    return {"status": to_json(await api.control.status()), "health": health}


async def positions(api: ApiSources, _query: Query) -> Answer:
    """Return every open position at its mark."""
    return {"positions": to_json(await api.control.positions())}


async def trades(api: ApiSources, query: Query) -> Answer:
    """Return the newest ``limit`` closed trades, oldest first."""
    return {"trades": to_json(await api.control.recent_trades(_limit(query)))}


async def signals(api: ApiSources, query: Query) -> Answer:
    """Return the newest ``limit`` entry decisions, oldest first."""
    return {"signals": to_json(await api.control.recent_signals(_limit(query)))}


async def equity(api: ApiSources, query: Query) -> Answer:
    """Return the equity curve since ``since`` up to the last candle."""
    since = _since(query)
    last = (await api.control.status()).last_candle_ms
    curve = () if last is None else await api.reports.curve_between(since, last + 1)
    return {"since_ms": since, "points": to_json(curve)}


async def monte_carlo(api: ApiSources, _query: Query) -> Answer:
    """Return the Monte Carlo of the trades closed so far (null without one)."""
    found = await api.reports.monte_carlo()
    return {"monte_carlo": None if found is None else found.to_json()}


ROUTES: dict[str, Callable[[ApiSources, Query], Awaitable[Answer]]] = {
    "/api/status": status,
    "/api/positions": positions,
    "/api/trades": trades,
    "/api/signals": signals,
    "/api/equity": equity,
    "/api/montecarlo": monte_carlo,
}


def _limit(query: Query) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    # ASCII digits: "²" is a digit to str.isdigit() but not to int(), and int() refuses
    # more than 4,300 digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or not 1 <= int(text) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text[:40]!r}")
    return int(text)


def _since(query: Query) -> int:
    """Return ``since`` as Unix ms: digits are ms, else ISO 8601 (UTC unless it says)."""
    text = query.get("since")
    if text is None:
        return 0
    if text.isascii() and text.isdigit():
        if len(text) > 20 or int(text) > MAX_SINCE_MS:
            raise BadQuery(f"since must be at most {MAX_SINCE_MS} ms, got {text[:40]!r}")
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(
            f"since must be Unix milliseconds or an ISO 8601 time such as "
            f"2026-01-31T12:00:00Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp() * 1000))
