"""Start-up answers to settings that changed under an existing ledger.

Part of the composition root: ``app/daemon.py`` plans each run with it.

- **Identity.** A ledger keeps one ``INITIAL_BALANCE``, one ``EXCHANGE`` and one ``INTERVAL``.
  They are recorded in the ``metadata`` table at the first start; a later start with other
  values is refused (exit 2) naming both, with how to start a fresh ledger instead. A
  database from before they were recorded gets them from its trading state and candles.
- **Positions outside ``SYMBOLS``.** A position on a symbol no longer traded keeps its series
  as an *exit-only* series: subscribed, marked, its exits run, no entry on it, until it
  closes. If the venue no longer lists the symbol, the position is reported at start and
  stays closable with ``close SYMBOL`` (at its last stored close).
- **Files of its own.** A replay given no ``--db`` writes a new database under
  ``CACHE_DIR/replays/``, never ``DB_PATH``; ``MODELS_DIR`` is created at start.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import aiohttp
import aiosqlite

from paper_trader.clock import Clock
from paper_trader.domain import Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.domain.trading import plain
from paper_trader.errors import ConfigError, TransientError
from paper_trader.exchange.rest import HttpRestClient, WeightBudget
from paper_trader.exchange.wire import Subscription, VenueAdapter, VenueError
from paper_trader.features.engine import SeriesKey
from paper_trader.runtime.logs import get_logger
from paper_trader.settings import Settings
from paper_trader.storage import (
    SetMetadata,
    apply_transaction,
    last_open_time,
    metadata_values,
    open_reader,
    series_summaries,
)
from paper_trader.storage.ledger_repository import ledger_state, open_positions

log = get_logger("app")

# Setting name -> metadata key of the ledger's identity.
IDENTITY_KEYS = {
    "INITIAL_BALANCE": "ledger_initial_balance",
    "EXCHANGE": "ledger_exchange",
    "INTERVAL": "ledger_interval",
}
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerIdentity:
    """What a ledger is about: its starting cash, its venue and its candle interval."""

    initial_balance: Decimal
    exchange: Venue
    interval: Interval

    def as_text(self) -> dict[str, str]:
        """Return the identity as setting name -> value text."""
        return {
            "INITIAL_BALANCE": plain(self.initial_balance),
            "EXCHANGE": self.exchange.value,
            "INTERVAL": self.interval.value,
        }


async def check_identity(
    conn: aiosqlite.Connection, wanted: LedgerIdentity, *, fresh_ledger: str
) -> None:
    """Refuse a ledger started with other values; record what it does not hold yet.

    Raise ``ConfigError`` naming the ledger's values and the settings', and ``fresh_ledger``
    (how to start a fresh ledger instead).
    """
    recorded = await metadata_values(conn)
    stored = await _stored_identity(conn, recorded)
    now = wanted.as_text()
    differ = [name for name, value in stored.items() if not _same(name, value, now[name])]
    if differ:
        was = ", ".join(f"{name}={stored[name]}" for name in differ)
        say = ", ".join(f"{name}={now[name]}" for name in differ)
        raise ConfigError(
            f"this ledger was started with {was}, but the settings say {say}: a ledger keeps "
            f"one balance, venue and interval. Set them back, or start a fresh ledger: "
            f"{fresh_ledger}"
        )
    missing = [
        SetMetadata(key=IDENTITY_KEYS[n], value=v)
        for n, v in now.items()
        if IDENTITY_KEYS[n] not in recorded
    ]
    if missing:
        await apply_transaction(conn, missing)


async def _stored_identity(conn: aiosqlite.Connection, recorded: dict[str, str]) -> dict[str, str]:
    """Return the identity the ledger holds (recorded, else inferred), by setting name."""
    found = {name: recorded[key] for name, key in IDENTITY_KEYS.items() if key in recorded}
    if len(found) == len(IDENTITY_KEYS):
        return found
    return {**await _inferred_identity(conn), **found}


async def _inferred_identity(conn: aiosqlite.Connection) -> dict[str, str]:
    """Return what an older database shows of its identity: the trading state's initial
    balance, and the venue and the interval when all its candles share one."""
    inferred: dict[str, str] = {}
    state = await ledger_state(conn)
    if state is not None:
        initial = json.loads(state.state_json).get("initial_balance")
        if initial is not None:
            inferred["INITIAL_BALANCE"] = str(initial)
    series = await series_summaries(conn)
    venues = {s.venue for s in series}
    intervals = {s.interval for s in series}
    if len(venues) == 1:
        inferred["EXCHANGE"] = venues.pop()
    if len(intervals) == 1:
        inferred["INTERVAL"] = intervals.pop()
    return inferred


def _same(name: str, stored: str, now: str) -> bool:
    if name != "INITIAL_BALANCE":
        return stored == now
    try:
        return Decimal(stored) == Decimal(now)
    except InvalidOperation:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitOnly:
    """Series kept for positions outside ``SYMBOLS``.

    ``followed`` are subscribed (exits run, entries refused); ``unlisted`` are the symbols the
    venue refused, with its message: reported, closable by command, not subscribed.
    """

    followed: tuple[SeriesKey, ...] = ()
    unlisted: tuple[tuple[str, str], ...] = ()

    @property
    def symbols(self) -> frozenset[str]:
        """Return every symbol held outside ``SYMBOLS``: no entry may be taken on them."""
        return frozenset([s for _, s, _ in self.followed] + [s for s, _ in self.unlisted])


async def positions_outside(conn: aiosqlite.Connection, series: list[SeriesKey]) -> list[SeriesKey]:
    """Return the series of the open positions whose symbol is not among ``series``."""
    traded = {symbol for _, symbol, _ in series}
    return [
        (p.venue, p.symbol, p.interval)
        for p in await open_positions(conn)
        if p.symbol not in traded
    ]


async def plan_exit_only(
    conn: aiosqlite.Connection,
    outside: list[SeriesKey],
    adapter: VenueAdapter | None,
    clock: Clock,
) -> ExitOnly:
    """Ask the venue about each series outside ``SYMBOLS``; log and return the plan.

    Without an ``adapter`` (a replay) nothing is followed: the positions are only reported.
    """
    followed: list[SeriesKey] = []
    unlisted: list[tuple[str, str]] = []
    for key in outside:
        venue, symbol, interval = key
        refusal = "not among the replayed series"
        if adapter is not None:
            since = await last_open_time(conn, venue, symbol, interval)
            refusal = await venue_refusal(adapter, key, since, clock) or ""
        if refusal:
            unlisted.append((symbol, refusal))
            log.warning(
                "position_outside_symbols",
                symbol=symbol,
                followed=False,
                reason=refusal,
                note=f"marked at its last stored close; close it with `close {symbol}`",
            )
        else:
            followed.append(key)
            log.warning(
                "position_outside_symbols",
                symbol=symbol,
                followed=True,
                note="its series is followed for exits only until the position closes",
            )
    return ExitOnly(followed=tuple(followed), unlisted=tuple(unlisted))


async def venue_refusal(
    adapter: VenueAdapter, key: SeriesKey, since_ms: int | None, clock: Clock
) -> str | None:
    """Return the venue's refusal of the series' candles, or None if it serves them.

    One REST page, the request the feed's warm-up would make first. A transient failure
    (network, 5xx, rate limit) is not a refusal: the feed then retries as usual.
    """
    _, symbol, interval = key
    sub = Subscription(parse_pair(symbol), interval)
    end = clock.now_ms() // interval.ms * interval.ms
    start = since_ms if since_ms is not None and since_ms < end else end - interval.ms
    budget = WeightBudget(adapter.rest_weight_per_minute, clock)
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        rest = HttpRestClient.for_venue(session, adapter, budget)
        try:
            await adapter.fetch_klines(rest, sub, start, min(end, start + interval.ms))
        except VenueError as exc:
            return str(exc)
        except (TransientError, OSError, TimeoutError) as exc:
            log.warning("exit_only_probe_failed", symbol=symbol, error=str(exc))
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """What one run of the daemon serves: its database, its series, its control reader."""

    mode: str
    db_path: Path
    series: list[SeriesKey]  # the traded series, then the exit-only ones
    exit_only: ExitOnly
    reader: aiosqlite.Connection | None  # the Control's read-only connection (live runs)


async def plan_run(  # noqa: PLR0917 -- the run's facts, gathered by app/daemon.py
    settings: Settings,
    conn: aiosqlite.Connection,
    clock: Clock,
    mode: str,
    db_path: Path,
    series: list[SeriesKey],
    *,
    adapter: Callable[[], VenueAdapter] | None,
) -> RunPlan:
    """Check the ledger against the settings; add the exit-only series; create MODELS_DIR.

    ``adapter`` (live runs only) asks the venue about the series outside ``series``; with it,
    a read-only connection for ``Control`` is opened too (the caller closes it). Raise
    ``ConfigError`` if the ledger was started with another balance, venue or interval.
    """
    venue, _, interval = series[0]
    identity = LedgerIdentity(
        initial_balance=settings.initial_balance, exchange=venue, interval=interval
    )
    await check_identity(conn, identity, fresh_ledger=_fresh_ledger(mode, db_path))
    outside = await positions_outside(conn, series)
    venue_adapter = adapter() if adapter is not None and outside else None
    exit_only = await plan_exit_only(conn, outside, venue_adapter, clock)
    try:
        settings.models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"MODELS_DIR {settings.models_dir}: cannot create it ({exc.strerror or exc})"
        ) from exc
    return RunPlan(
        mode=mode,
        db_path=db_path,
        series=[*series, *exit_only.followed],
        exit_only=exit_only,
        reader=await open_reader(db_path) if adapter is not None else None,
    )


def _fresh_ledger(mode: str, db_path: Path) -> str:
    """Return how to start a fresh ledger instead of reusing ``db_path``."""
    if mode == "replay":
        return "replay into another --db, or leave --db out for a database of its own"
    if mode == "demo":
        return f"use another --db (or move {db_path} away)"
    return f"set DB_PATH to another file (or move {db_path} away)"


def fresh_replay_database(settings: Settings, now_ms: int) -> Path:
    """Return a new database path for a replay given no ``--db``: never ``DB_PATH``.

    ``CACHE_DIR/replays/replay-<UTC time>.db``, with ``-2``, ``-3``… if that name is taken.
    """
    stamp = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = settings.cache_dir / "replays"
    path = directory / f"replay-{stamp}.db"
    number = 1
    while path.exists() or path.with_name(path.name + ".lock").exists():
        number += 1
        path = directory / f"replay-{stamp}-{number}.db"
    return path
