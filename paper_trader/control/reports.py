"""Ledger reports for the operator: balance, profit, per-symbol performance, period tables,
today's PnL, the equity curve and the Monte Carlo of the closed trades.

Like ``Control``, every window is candle time ending at the last candle the ledger handled;
live figures are read under the trading stage's lock, history through the read-only
connection (SQLite picks one equity snapshot per bucket, so a month of 1m candles is ~30 rows).
"""

import bisect
import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiosqlite

from paper_trader.control.montecarlo import RUNS, MonteCarlo, record_monte_carlo
from paper_trader.control.risk_report import RiskReport, risk_report
from paper_trader.domain.trading import DAY_MS, ClosedTrade, EquitySnapshot
from paper_trader.storage.equity import equity_closes, first_snapshot_ms
from paper_trader.storage.ledger_repository import closed_trades, each_closed_trade
from paper_trader.trading.stage import TradingStage

CURVE_POINTS = 500  # an equity curve is at most this many points, whatever its span
MAX_PERIODS = 366


class PeriodUnit(enum.StrEnum):
    """The step of a period table: UTC days, weeks from Monday, calendar months."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True, kw_only=True)
class Balance:
    """Cash and positions at the latest closes; ``exposure_share`` is exposure / equity."""

    equity: Decimal
    cash: Decimal
    free_cash: Decimal
    reserved: Decimal
    positions_value: Decimal
    exposure: Decimal
    exposure_share: float
    initial_balance: Decimal
    total_return: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Profit:
    """Everything since the start: ``realised`` is the closed trades' net PnL, ``unrealised``
    the open positions' gross PnL at their marks; ``win_rate`` is None before any trade."""

    initial_balance: Decimal
    equity: Decimal
    total_pnl: Decimal
    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    best_trade: ClosedTrade | None
    worst_trade: ClosedTrade | None


@dataclass(slots=True)
class _ProfitTally:
    """The closed trades' part of ``Profit`` (and of one symbol's performance), one trade at a
    time."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    realised: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    best: ClosedTrade | None = None
    worst: ClosedTrade | None = None

    def add(self, trade: ClosedTrade) -> None:
        self.trades += 1
        self.wins += trade.net_pnl > 0
        self.losses += trade.net_pnl < 0
        self.realised += trade.net_pnl
        self.fees += trade.fees
        if self.best is None or trade.net_pnl > self.best.net_pnl:  # the first of equals
            self.best = trade
        if self.worst is None or trade.net_pnl < self.worst.net_pnl:
            self.worst = trade


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolPerformance:
    """One symbol's closed trades."""

    symbol: str
    trades: int
    wins: int
    net_pnl: Decimal
    fees: Decimal
    best: Decimal
    worst: Decimal

    @property
    def win_rate(self) -> float:
        """Return the share of winning trades."""
        return self.wins / self.trades if self.trades else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodRow:
    """One period ``[start_ms, end_ms)``: equity at its start and end, trades closed in it."""

    start_ms: int
    end_ms: int
    start_equity: Decimal
    end_equity: Decimal
    trades: int
    wins: int

    @property
    def pnl(self) -> Decimal:
        """Return the change of equity over the period."""
        return self.end_equity - self.start_equity

    @property
    def return_pct(self) -> Decimal:
        """Return the change in percent of the start equity (0 when that is not positive)."""
        return 100 * self.pnl / self.start_equity if self.start_equity > 0 else Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Today:
    """The current UTC day of candle time: equity at its first mark and now."""

    day_start_ms: int | None
    start_equity: Decimal
    equity: Decimal

    @property
    def pnl(self) -> Decimal:
        """Return the change of equity since the day's first mark."""
        return self.equity - self.start_equity

    @property
    def pnl_pct(self) -> Decimal:
        """Return the change in percent of the day's start equity."""
        return 100 * self.pnl / self.start_equity if self.start_equity > 0 else Decimal(0)


class Reports:
    """Reports on the trading stage and the stored ledger."""

    def __init__(
        self, stage: TradingStage, reader: aiosqlite.Connection, *, monte_carlo_runs: int = RUNS
    ) -> None:
        """``monte_carlo_runs`` is ``MONTE_CARLO_RUNS`` (0: no Monte Carlo)."""
        self._stage = stage
        self._reader = reader
        self._runs = monte_carlo_runs
        # (until_ms, next fill id) -> the last Monte Carlo: no fill since, the same trades
        self._monte_carlo: tuple[tuple[int | None, int], MonteCarlo | None] | None = None

    async def balance(self) -> Balance:
        """Return cash, reserved collateral, positions and exposure at the latest closes."""
        async with self._stage.lock:
            trader = self._stage.trader
            ledger, marks = trader.ledger, trader.marks
            equity = ledger.equity(marks)
            exposure = ledger.exposure(marks)
            initial = trader.initial_balance
            return Balance(
                equity=equity,
                cash=ledger.cash,
                free_cash=ledger.free_cash,
                reserved=ledger.reserved,
                positions_value=ledger.positions_value(marks),
                exposure=exposure,
                exposure_share=float(exposure / equity) if equity > 0 else 0.0,
                initial_balance=initial,
                total_return=equity / initial - 1 if initial > 0 else Decimal(0),
            )

    async def today(self) -> Today:
        """Return the current candle-time day's PnL (the daily loss breaker's day)."""
        async with self._stage.lock:
            trader = self._stage.trader
            equity = trader.ledger.equity(trader.marks)
            snapshot = trader.breakers.snapshot(windows=False)
        day, start = snapshot.get("day"), snapshot.get("day_start_equity")
        return Today(
            day_start_ms=int(str(day)) * DAY_MS if day is not None else None,
            start_equity=Decimal(str(start)) if start is not None else equity,
            equity=equity,
        )

    async def profit(self) -> Profit:
        """Return the PnL since the start: realised, unrealised, fees, wins and losses."""
        async with self._stage.lock:
            trader = self._stage.trader
            marks = trader.marks
            equity = trader.ledger.equity(marks)
            unrealised = sum(
                (
                    p.unrealised_pnl(marks.get(s, p.entry_price))
                    for s, p in trader.ledger.positions.items()
                ),
                Decimal(0),
            )
            initial = trader.initial_balance
        tally = _ProfitTally()
        async for trade in each_closed_trade(self._reader, as_closed=True):  # row by row
            tally.add(trade)
        return Profit(
            initial_balance=initial,
            equity=equity,
            total_pnl=equity - initial,
            realised=tally.realised,
            unrealised=unrealised,
            fees=tally.fees,
            trades=tally.trades,
            wins=tally.wins,
            losses=tally.losses,
            win_rate=tally.wins / tally.trades if tally.trades else None,
            best_trade=tally.best,
            worst_trade=tally.worst,
        )

    async def performance(self) -> tuple[SymbolPerformance, ...]:
        """Return each traded symbol's closed trades, best net PnL first."""
        by_symbol: dict[str, _ProfitTally] = {}
        async for trade in each_closed_trade(self._reader, as_closed=True):  # row by row
            by_symbol.setdefault(trade.symbol, _ProfitTally()).add(trade)
        rows = [
            SymbolPerformance(
                symbol=symbol,
                trades=tally.trades,
                wins=tally.wins,
                net_pnl=tally.realised,
                fees=tally.fees,
                best=tally.best.net_pnl,
                worst=tally.worst.net_pnl,
            )
            for symbol, tally in by_symbol.items()
            if tally.best is not None and tally.worst is not None  # every tally has a trade
        ]
        return tuple(sorted(rows, key=lambda r: (-r.net_pnl, r.symbol)))

    async def periods(self, unit: PeriodUnit, count: int) -> tuple[PeriodRow, ...]:
        """Return the last ``count`` periods (at most 366) up to the last candle, oldest first."""
        count = max(1, min(count, MAX_PERIODS))
        async with self._stage.lock:
            end = self._stage.trader.last_candle_ms
            initial = self._stage.trader.initial_balance
        if end is None:
            return ()
        starts = period_starts(unit, end, count)
        closes = await equity_closes(self._reader, since_ms=starts[0] - DAY_MS, bucket_ms=DAY_MS)
        trades = await closed_trades(self._reader, since_ms=starts[0] - 1)
        return period_rows(starts, closes, trades, initial)

    async def monte_carlo(self, *, until_ms: int | None = None) -> MonteCarlo | None:
        """Return the Monte Carlo of the trades closed so far (before candle time ``until_ms``
        if given): ``broker/montecarlo.py``; None when off or under two trades. Kept until the
        next fill, so asking again (the dashboard, each chat) costs one lock."""
        async with self._stage.lock:  # waits for an in-flight commit: its trade is stored
            trader = self._stage.trader
            initial, key = trader.initial_balance, (until_ms, trader.ledger.next_fill_id)
        if self._monte_carlo is not None and self._monte_carlo[0] == key:
            return self._monte_carlo[1]
        found = await record_monte_carlo(self._reader, initial, self._runs, until_ms=until_ms)
        self._monte_carlo = (key, found)
        return found

    async def risk(self) -> RiskReport:
        """Return the breakers, limits, exposure and value at risk."""
        return await risk_report(self._stage, self._reader)

    async def equity_curve(self, days: int) -> tuple[EquitySnapshot, ...]:
        """Return at most 500 snapshots spanning the last ``days`` days up to the last candle."""
        async with self._stage.lock:
            end = self._stage.trader.last_candle_ms
        if end is None or days < 1:
            return ()
        return await self.curve_between(end - days * DAY_MS, end + 1)

    async def curve_between(self, start_ms: int, end_ms: int) -> tuple[EquitySnapshot, ...]:
        """Return at most 500 snapshots of the candle times ``[start_ms, end_ms)``, evenly
        spread over the history there is."""
        first = await first_snapshot_ms(self._reader, since_ms=start_ms)
        if first is None or first >= end_ms:
            return ()
        bucket = max(1, (end_ms - 1 - first) // CURVE_POINTS + 1)
        closes = await equity_closes(self._reader, since_ms=start_ms, bucket_ms=bucket)
        return tuple(c for c in closes if c.candle_time_ms < end_ms)


def period_starts(unit: PeriodUnit, end_ms: int, count: int) -> list[int]:
    """Return the start times of the ``count`` periods ending with the one holding ``end_ms``,
    and the start of the period after it (``count + 1`` values, increasing)."""
    day = end_ms // DAY_MS
    if unit is PeriodUnit.DAY:
        return [(day - count + 1 + i) * DAY_MS for i in range(count + 1)]
    if unit is PeriodUnit.WEEK:
        monday = day - (day + 3) % 7  # 1970-01-01 was a Thursday
        return [(monday + 7 * (i - count + 1)) * DAY_MS for i in range(count + 1)]
    when = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    index = when.year * 12 + when.month - 1
    return [_month_start(index - count + 1 + i) for i in range(count + 1)]


def _month_start(index: int) -> int:
    year, month = divmod(index, 12)
    return int(datetime(year, month + 1, 1, tzinfo=UTC).timestamp() * 1000)


def period_rows(
    starts: Sequence[int],
    closes: Sequence[EquitySnapshot],
    trades: Sequence[ClosedTrade],
    initial: Decimal,
) -> tuple[PeriodRow, ...]:
    """Return one row per period ``[starts[i], starts[i + 1])`` from the equity closes (in
    time order) and the trades closed in it."""
    times = [c.candle_time_ms for c in closes]
    rows = []
    for start, end in itertools.pairwise(starts):
        before = bisect.bisect_left(times, start)
        inside = bisect.bisect_left(times, end)
        start_equity = closes[before - 1].equity if before else initial
        end_equity = closes[inside - 1].equity if inside > before else start_equity
        closed = [t for t in trades if start <= t.closed_candle_ms < end]
        rows.append(
            PeriodRow(
                start_ms=start,
                end_ms=end,
                start_equity=start_equity,
                end_equity=end_equity,
                trades=len(closed),
                wins=sum(1 for t in closed if t.net_pnl > 0),
            )
        )
    return tuple(rows)
