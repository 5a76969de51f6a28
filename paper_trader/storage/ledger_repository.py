"""Read the trading ledger back: to resume it at start-up, and for status and reports."""

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiosqlite

from paper_trader.domain import Interval, Venue
from paper_trader.domain.trading import (
    Action,
    BreakerTransition,
    ClosedTrade,
    Decision,
    EquitySnapshot,
    ExitReason,
    FillModel,
    Position,
    Side,
    TradingState,
)
from paper_trader.storage.equity import SNAPSHOT_COLUMNS, snapshot_of
from paper_trader.storage.ledger_ops import LedgerState


async def ledger_state(conn: aiosqlite.Connection) -> LedgerState | None:
    """Return the trading state row, or None before the first decision instant."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT cash, next_fill_id, last_candle_ms, state_json, volatility_json "
            "FROM trading_state"
        )
    )
    if not rows:
        return None
    cash, next_fill_id, last_candle_ms, state_json, volatility_json = rows[0]
    samples = await conn.execute_fetchall(
        "SELECT symbol, candle_time_ms, atr_pct FROM volatility_samples "
        "ORDER BY candle_time_ms, symbol"
    )
    return LedgerState(
        cash=cash,
        next_fill_id=int(next_fill_id),
        last_candle_ms=int(last_candle_ms),
        state_json=state_json,
        volatility_json=volatility_json,
        samples=tuple((str(s), int(t), float(a)) for s, t, a in samples),
    )


async def open_positions(conn: aiosqlite.Connection) -> list[Position]:
    """Return the open positions, by symbol."""
    rows = await conn.execute_fetchall(
        "SELECT symbol, venue, interval, side, quantity, entry_price, entry_fee, entry_fill_id, "
        "opened_candle_ms, stop_price, take_profit_price, trailing_stop_price, extreme_price, "
        "risk_per_unit, atr, collateral, margin_call_price FROM positions ORDER BY symbol"
    )
    return [_position(row) for row in rows]


def _position(row: Any) -> Position:
    return Position(
        symbol=row[0],
        venue=Venue(row[1]),
        interval=Interval(row[2]),
        side=Side(row[3]),
        quantity=Decimal(row[4]),
        entry_price=Decimal(row[5]),
        entry_fee=Decimal(row[6]),
        entry_fill_id=int(row[7]),
        opened_candle_ms=int(row[8]),
        stop_price=Decimal(row[9]),
        take_profit_price=_decimal(row[10]),
        trailing_stop_price=_decimal(row[11]),
        extreme_price=Decimal(row[12]),
        risk_per_unit=Decimal(row[13]),
        atr=Decimal(row[14]),
        collateral=Decimal(row[15]),
        margin_call_price=_decimal(row[16]),
    )


_TRADE_COLUMNS = (
    "venue, symbol, interval, side, quantity, entry_price, exit_price, entry_fee, exit_fee, "
    "gross_pnl, net_pnl, opened_candle_ms, closed_candle_ms, exit_reason, entry_fill_id, "
    "exit_fill_id, entry_fill_model, exit_fill_model, recovered"
)


async def closed_trades(
    conn: aiosqlite.Connection, *, limit: int | None = None, since_ms: int | None = None
) -> list[ClosedTrade]:
    """Return closed trades in the order they closed: those closed after ``since_ms`` if
    given, the newest ``limit`` if given."""
    after = -(2**62) if since_ms is None else since_ms
    rows = await conn.execute_fetchall(
        f"SELECT {_TRADE_COLUMNS} FROM trades WHERE closed_candle_ms > ? "
        "ORDER BY closed_candle_ms DESC, exit_fill_id DESC LIMIT ?",
        (after, -1 if limit is None else limit),
    )
    return [_trade(row) for row in reversed(list(rows))]


async def each_closed_trade(
    conn: aiosqlite.Connection, *, as_closed: bool = False
) -> AsyncIterator[ClosedTrade]:
    """Yield every closed trade, row by row (a history of any length in constant memory): in
    the ledger digest's order (opened candle, symbol, closed candle), or ``as_closed``."""
    order = (
        "closed_candle_ms, exit_fill_id"
        if as_closed
        else "opened_candle_ms, symbol, closed_candle_ms, entry_fill_id"
    )
    async with conn.execute(f"SELECT {_TRADE_COLUMNS} FROM trades ORDER BY {order}") as cursor:
        async for row in cursor:
            yield _trade(row)


def _trade(row: Any) -> ClosedTrade:
    return ClosedTrade(
        venue=Venue(row[0]),
        symbol=row[1],
        interval=Interval(row[2]),
        side=Side(row[3]),
        quantity=Decimal(row[4]),
        entry_price=Decimal(row[5]),
        exit_price=Decimal(row[6]),
        entry_fee=Decimal(row[7]),
        exit_fee=Decimal(row[8]),
        gross_pnl=Decimal(row[9]),
        net_pnl=Decimal(row[10]),
        opened_candle_ms=int(row[11]),
        closed_candle_ms=int(row[12]),
        exit_reason=ExitReason(row[13]),
        entry_fill_id=int(row[14]),
        exit_fill_id=int(row[15]),
        entry_fill_model=FillModel(row[16]),
        exit_fill_model=FillModel(row[17]),
        recovered=bool(row[18]),
    )


async def equity_snapshots(
    conn: aiosqlite.Connection, *, since_ms: int | None = None
) -> list[EquitySnapshot]:
    """Return the equity snapshots in candle-time order (from ``since_ms`` if given)."""
    rows = await conn.execute_fetchall(
        f"SELECT {SNAPSHOT_COLUMNS} FROM equity_snapshots WHERE candle_time_ms >= ? "
        "ORDER BY candle_time_ms",
        (since_ms if since_ms is not None else -(2**62),),
    )
    return [snapshot_of(r) for r in rows]


async def each_equity_snapshot(conn: aiosqlite.Connection) -> AsyncIterator[EquitySnapshot]:
    """Yield every equity snapshot in candle-time order, row by row (constant memory)."""
    async with conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM equity_snapshots ORDER BY candle_time_ms"
    ) as cursor:
        async for row in cursor:
            yield snapshot_of(row)


async def recent_decisions(conn: aiosqlite.Connection, *, limit: int) -> list[Decision]:
    """Return the newest ``limit`` decisions, oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT venue, symbol, interval, candle_time_ms, strength, score, confidence, "
        "model_version, action, side, quantity, price, rule, detail FROM decisions "
        "ORDER BY candle_time_ms DESC, symbol DESC LIMIT ?",
        (limit,),
    )
    return [
        Decision(
            venue=Venue(r[0]),
            symbol=r[1],
            interval=Interval(r[2]),
            candle_time_ms=int(r[3]),
            strength=r[4],
            score=float(r[5]),
            confidence=float(r[6]),
            model_version=r[7],
            action=Action(r[8]),
            side=Side(r[9]) if r[9] else None,
            quantity=_decimal(r[10]),
            price=_decimal(r[11]),
            rule=r[12],
            detail=r[13],
        )
        for r in reversed(list(rows))
    ]


async def decision_counts(conn: aiosqlite.Connection) -> dict[str, int]:
    """Return how many decisions there are per action, and per rejection rule."""
    rows = await conn.execute_fetchall(
        "SELECT action, coalesce(rule, ''), count(*) FROM decisions GROUP BY 1, 2 ORDER BY 1, 2"
    )
    counts: dict[str, int] = {}
    for action, rule, count in rows:
        key = f"{action}:{rule}" if rule else str(action)
        counts[key] = int(count)
    return counts


async def breaker_history(conn: aiosqlite.Connection, *, limit: int) -> list[BreakerTransition]:
    """Return the newest ``limit`` breaker transitions, oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT breaker, transition, state, reason, threshold, observed, candle_time_ms, symbol "
        "FROM breaker_events ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [
        BreakerTransition(
            breaker=r[0],
            tripped=r[1] == "tripped",
            state=TradingState(r[2]),
            reason=r[3],
            threshold=r[4],
            observed=r[5],
            candle_time_ms=int(r[6]),
            symbol=r[7],
        )
        for r in reversed(list(rows))
    ]


async def breaker_trips(conn: aiosqlite.Connection) -> dict[str, int]:
    """Return how many times each breaker tripped (any symbol), by breaker name."""
    rows = await conn.execute_fetchall(
        "SELECT breaker, COUNT(*) FROM breaker_events WHERE transition = 'tripped' "
        "GROUP BY breaker ORDER BY breaker"
    )
    return {str(breaker): int(count) for breaker, count in rows}


async def candles_handled(conn: aiosqlite.Connection, handled: dict[str, int]) -> int:
    """Return how many stored candles the ledger handled: per symbol, up to its last one."""
    total = 0
    for symbol, last in handled.items():
        rows = list(
            await conn.execute_fetchall(
                "SELECT count(*) FROM candles WHERE symbol = ? AND open_time_ms <= ?",
                (symbol, last),
            )
        )
        total += int(rows[0][0])
    return total


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
