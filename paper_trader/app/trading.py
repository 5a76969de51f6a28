"""Wiring of the trading step: the ledger loader and the stage (its rules: ``app/configs.py``).

Part of the composition root (``app/stages.py`` calls it); nothing else in the package imports it.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiosqlite

from paper_trader.app.configs import trader_config
from paper_trader.clock import Clock
from paper_trader.domain import Candle, Interval, Venue
from paper_trader.domain.trading import Position
from paper_trader.features.spec import FeatureSpec
from paper_trader.interfaces.trade_files import TradeFiles
from paper_trader.runtime.events import EventSink
from paper_trader.settings import Settings
from paper_trader.storage import (
    StorageWriter,
    candle_at_or_before,
    load_candles,
    untradable_since,
)
from paper_trader.storage.ledger_repository import closed_trades, ledger_state, open_positions
from paper_trader.trading.stage import MarketView, RestoredLedger, TradingStage
from paper_trader.trading.state import handled_of

ATR_COLUMNS = ("atr_14", "atr_pct_14")
RECOVERY_CANDLES = 100_000  # per symbol: stored candles the ledger never handled, at most
_LAST = 2**62  # an open time after every candle


def ledger_loader(
    conn: aiosqlite.Connection,
    series: list[tuple[Venue, str, Interval]],
    *,
    kelly: int,
    window: int,
) -> Callable[[], Awaitable[RestoredLedger]]:
    """Return the start-up read of the ledger from the writer connection.

    ``kelly`` closed trades are read for the half-Kelly sizing, and ``window`` candles per
    symbol for the rolling returns of the correlation limit.
    """

    async def load() -> RestoredLedger:
        state = await ledger_state(conn)
        positions = await open_positions(conn)
        handled = handled_of(json.loads(state.state_json)) if state is not None else {}
        read = await _candles_since_handled(conn, series, handled, window=window)
        read.last_candles.extend(await _marks_outside(conn, positions, series))
        return RestoredLedger(
            state=state,
            positions=positions,
            history=await closed_trades(conn, limit=kelly),
            last_candles=read.last_candles,
            recent=sorted(read.recent, key=lambda c: (c.open_time_ms, c.symbol)),
            unhandled=sorted(read.unhandled, key=lambda c: (c.open_time_ms, c.symbol)),
            untradable=frozenset(read.untradable),
        )

    return load


@dataclass(slots=True)
class _Reread:
    """The stored candles around the last one the ledger handled, per series."""

    last_candles: list[Candle] = field(default_factory=list)  # the last handled: the marks
    recent: list[Candle] = field(default_factory=list)  # the window up to it
    unhandled: list[Candle] = field(default_factory=list)  # stored after it, never handled
    untradable: set[tuple[str, int]] = field(default_factory=set)  # of those, judged so


async def _candles_since_handled(
    conn: aiosqlite.Connection,
    series: list[tuple[Venue, str, Interval]],
    handled: dict[str, int],
    *,
    window: int,
) -> _Reread:
    """Read each series' last handled candle, the ``window`` before it and those after it."""
    read = _Reread()
    for venue, symbol, interval in series:
        last = handled.get(symbol)
        if last is None:
            continue
        mark = await candle_at_or_before(conn, venue, symbol, interval, last)
        read.last_candles.extend([mark] if mark is not None else [])
        since = last - window * interval.ms
        window_candles = await load_candles(
            conn, venue, symbol, interval, since_ms=since, limit=window + 1
        )
        read.recent.extend(c for c in window_candles if c.open_time_ms <= last)
        read.unhandled.extend(
            await load_candles(
                conn, venue, symbol, interval, since_ms=last + 1, limit=RECOVERY_CANDLES
            )
        )
        untradable = await untradable_since(conn, venue, symbol, interval, last + 1)
        read.untradable.update((symbol, t) for t in untradable)
    return read


async def _marks_outside(
    conn: aiosqlite.Connection,
    positions: list[Position],
    series: list[tuple[Venue, str, Interval]],
) -> list[Candle]:
    """Return the last stored candle of each position outside ``series`` (its symbol left
    SYMBOLS and the venue no longer lists it): its mark, never its entry price."""
    traded = {symbol for _, symbol, _ in series}
    marks = []
    for p in (p for p in positions if p.symbol not in traded):
        mark = await candle_at_or_before(conn, p.venue, p.symbol, p.interval, _LAST)
        marks.extend([mark] if mark is not None else [])
    return marks


def build_trading_stage(
    settings: Settings,
    conn: aiosqlite.Connection,
    writer: StorageWriter,
    events: EventSink,
    clock: Clock,
    *,
    series: list[tuple[Venue, str, Interval]],
    spec: FeatureSpec,
    venue_now: Callable[[], int] | None,
    files: TradeFiles | None,
    exit_only: frozenset[str] = frozenset(),
) -> TradingStage:
    """Build the trading step of the decision task; no entry is taken on ``exit_only``."""
    view = _market_view(settings, spec, venue_now, exit_only)
    config = trader_config(settings)
    return TradingStage(
        config,
        initial_balance=settings.initial_balance,
        view=view,
        load=ledger_loader(
            conn,
            series,
            kelly=config.sizing.kelly_window,
            window=config.limits.correlation_window,
        ),
        commit=writer.write,
        events=events,
        now_ms=clock.now_ms,
        on_closed=None if files is None else files.trade_closed,
        on_snapshot=None if files is None else files.snapshot,
    )


def _market_view(
    settings: Settings,
    spec: FeatureSpec,
    venue_now: Callable[[], int] | None,
    exit_only: frozenset[str],
) -> MarketView:
    """Return what the trader reads of the market: the ATR columns, staleness, exit-only."""
    names = spec.names
    limit_ms = settings.catchup_limit * settings.interval.ms

    def is_stale(candle: Candle) -> bool:
        if venue_now is None:
            return False  # replay: every candle is "now"
        return venue_now() - candle.close_time_ms > limit_ms

    return MarketView(
        atr_columns=(names.index(ATR_COLUMNS[0]), names.index(ATR_COLUMNS[1])),
        is_stale=is_stale,
        exit_only=exit_only,
    )
