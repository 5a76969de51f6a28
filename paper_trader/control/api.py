"""The one transport-agnostic API of the daemon: queries and commands for every interface.

Telegram, the status feed and the CLI call only this module; every method is typed and returns
frozen values. Queries of the live state (status, positions) take the trading stage's lock, so
they never show a change whose commit is still in flight (durable before visible). History
(signals, trades, reports) is read from SQLite through a read-only connection. Commands run
through ``TradingStage.run_command``: under the same lock, at the last candle time; the stage
commits and reports before the ``CommandResult`` is returned.

Reports measure candle time, never the wall clock: a report's window is a UTC day, a week from
Monday or a calendar month of candle open times (by default the one holding the last candle
the ledger handled). Every command is logged
(``command_accepted``, with the interface it came from) once its changes have committed.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import aiosqlite

from paper_trader.broker.analytics import analyse
from paper_trader.control import commands
from paper_trader.control.commands import Command
from paper_trader.control.reports import PeriodUnit, period_starts
from paper_trader.domain.trading import (
    BreakerTransition,
    ClosedTrade,
    Decision,
    EquitySnapshot,
    ExitReason,
    Position,
    TradingState,
)
from paper_trader.risk.exits import active_stop
from paper_trader.runtime.logs import get_logger
from paper_trader.storage.equity import last_snapshot_before
from paper_trader.storage.ledger_repository import (
    closed_trades,
    equity_snapshots,
    recent_decisions,
)
from paper_trader.trading.stage import TradingStage

log = get_logger("control")


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The trading state and the portfolio marked at the latest closes.

    ``drawdown`` is the fraction of the peak equity lost (0.05 is 5 %); ``last_candle_ms`` is
    the open time of the last candle the ledger handled (None before the first one).
    """

    state: TradingState
    tripped: tuple[BreakerTransition, ...]
    equity: Decimal
    cash: Decimal
    positions_value: Decimal
    peak_equity: Decimal
    drawdown: float
    open_positions: int
    last_candle_ms: int | None
    entered: int
    rejected: int
    skipped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionView:
    """An open position at its mark (the symbol's last close; the entry price if none yet).

    ``unrealised_pnl`` is gross (fees excluded); ``unrealised_pct`` is that PnL in percent of
    the entry notional; ``stop`` is the binding stop and ``stop_reason`` says which one it is.
    """

    position: Position
    mark: Decimal
    unrealised_pnl: Decimal
    unrealised_pct: Decimal
    stop: Decimal
    stop_reason: ExitReason
    target: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Portfolio:
    """The status and the open positions at one moment; ``last_fill_id`` is the newest fill
    then (0 before the first)."""

    status: Status
    positions: tuple[PositionView, ...]
    last_fill_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodReport:
    """The ledger over the window ``[start_ms, end_ms)`` of candle open times.

    ``start_equity`` is the last snapshot before ``start_ms`` (else the initial balance: the
    ledger began inside the window); ``end_equity`` the last snapshot in the window.
    ``total_return`` is ``end_equity / start_equity - 1``. ``trades`` are those closed in the
    window, oldest first; ``by_symbol`` is the net PnL per symbol, sorted by symbol;
    ``analytics`` is ``broker.analytics.analyse`` of the window as JSON values (empty if the
    start equity is not positive).
    """

    period: PeriodUnit
    start_ms: int
    end_ms: int
    start_equity: Decimal
    end_equity: Decimal
    total_return: Decimal
    trades: tuple[ClosedTrade, ...]
    wins: int
    losses: int
    net_pnl: Decimal
    fees: Decimal
    best_trade: ClosedTrade | None
    worst_trade: ClosedTrade | None
    by_symbol: tuple[tuple[str, Decimal], ...]
    analytics: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What a command did: ``ok`` is False when it could not do what was asked.

    ``transitions`` are the breaker trips and resets it caused and ``trades`` the positions it
    closed; both were committed to SQLite before the result was returned.
    """

    ok: bool
    message: str
    transitions: tuple[BreakerTransition, ...]
    trades: tuple[ClosedTrade, ...]


class Control:
    """Queries and commands on the trading stage and the stored ledger."""

    def __init__(
        self, stage: TradingStage, reader: aiosqlite.Connection, *, interval_ms: int = 60_000
    ) -> None:
        """Use ``reader`` (read-only) for history; ``interval_ms`` is the candle interval."""
        self._stage = stage
        self._reader = reader
        self._interval_ms = interval_ms

    def is_started(self) -> bool:
        """Return whether the ledger is restored (queries before that see an empty one)."""
        return self._stage.started.is_set()

    async def wait_started(self) -> None:
        """Wait until the ledger is restored: commands before that would act on nothing."""
        await self._stage.started.wait()

    async def status(self) -> Status:
        """Return the trading state, the tripped breakers, the portfolio and the counters."""
        async with self._stage.lock:
            return self._status()

    async def positions(self) -> tuple[PositionView, ...]:
        """Return every open position at its mark, sorted by symbol."""
        async with self._stage.lock:
            return self._positions()

    async def portfolio(self) -> Portfolio:
        """Return the status and the positions as of one moment (between two commits).

        What the stage reported of its commits up to that moment has been reported when this
        returns, and nothing after it: a caller that notes its own position in those reports
        on return has a consistent cut (the status feed's snapshot).
        """
        async with self._stage.lock:
            last_fill = self._stage.trader.ledger.next_fill_id - 1
            return Portfolio(
                status=self._status(), positions=self._positions(), last_fill_id=last_fill
            )

    def _status(self) -> Status:
        stage = self._stage
        trader = stage.trader
        snapshot = trader.snapshot(trader.last_candle_ms or 0)
        peak = snapshot.peak_equity
        return Status(
            state=trader.breakers.state,
            tripped=trader.breakers.tripped(),
            equity=snapshot.equity,
            cash=snapshot.cash,
            positions_value=snapshot.positions_value,
            peak_equity=peak,
            drawdown=float((peak - snapshot.equity) / peak) if peak > 0 else 0.0,
            open_positions=snapshot.open_positions,
            last_candle_ms=trader.last_candle_ms,
            entered=stage.entered,
            rejected=stage.rejected,
            skipped=stage.skipped,
        )

    def _positions(self) -> tuple[PositionView, ...]:
        trader = self._stage.trader
        marks = trader.marks
        held = sorted(trader.ledger.positions.items())
        return tuple(_view(p, marks.get(s, p.entry_price)) for s, p in held)

    async def recent_signals(self, limit: int = 20) -> tuple[Decision, ...]:
        """Return the newest ``limit`` entry decisions, oldest first (none for a limit below 1)."""
        if limit < 1:
            return ()
        return tuple(await recent_decisions(self._reader, limit=limit))

    async def recent_trades(self, limit: int = 20) -> tuple[ClosedTrade, ...]:
        """Return the newest ``limit`` closed trades, oldest first (none for a limit below 1)."""
        if limit < 1:
            return ()
        return tuple(await closed_trades(self._reader, limit=limit))

    async def report(self, period: PeriodUnit, *, start_ms: int | None = None) -> PeriodReport:
        """Return the ledger over the ``period`` that starts at ``start_ms`` (a period's start;
        default: the period holding the last candle, so far)."""
        async with self._stage.lock:  # waits for an in-flight commit: the window is all stored
            last = self._stage.trader.last_candle_ms or 0
            initial = self._stage.trader.initial_balance
        start, end = period_starts(period, last if start_ms is None else start_ms, 1)
        prior = await last_snapshot_before(self._reader, start - 1)
        snapshots = await equity_snapshots(self._reader, since_ms=start)
        inside = [s for s in snapshots if s.candle_time_ms < end]
        stored = await closed_trades(self._reader, since_ms=start - 1)
        trades = [t for t in stored if t.closed_candle_ms < end]
        start_equity = prior.equity if prior else initial  # no snapshot yet: nothing traded
        return _period_report(period, start, end, start_equity, trades, inside, self._interval_ms)

    async def pause(
        self, reason: str = "paused by command", *, source: str = "api"
    ) -> CommandResult:
        """Stop new entries; exits (stops, targets, time) keep running.

        ``source`` names the interface the command came from (every command's is logged).
        """
        return await self._run("pause", commands.pause(reason), source)

    async def resume(self, *, source: str = "api") -> CommandResult:
        """Clear the manual breakers and a drawdown halt; say what stays tripped.

        ``ok`` is True when entries are allowed again (the state is ACTIVE).
        """
        return await self._run("resume", commands.resume, source)

    async def close(self, symbol: str, *, source: str = "api") -> CommandResult:
        """Close the position on ``symbol`` (as given, else upper-case) at its last close.

        A position entered at the symbol's last candle is not sold back at the close it was
        bought at: the close is queued (persisted with the trader's state) and fills at the
        close of the symbol's next candle; the answer says so and carries no trade.
        """
        return await self._run(f"close {symbol}", commands.close(symbol), source)

    async def close_all(self, *, source: str = "api") -> CommandResult:
        """Close every open position at its last close; the trading state stays as it is.

        ``ok`` is False if a position could not be closed (no last close known for it).
        """
        return await self._run("close all", commands.close_all, source)

    async def emergency_stop(
        self, reason: str = "emergency stop by command", *, source: str = "api"
    ) -> CommandResult:
        """Halt trading and close every position at its last close.

        ``ok`` is False if a position could not be closed (no last close known for it).
        """
        return await self._run("emergency stop", commands.emergency_stop(reason), source)

    async def _run(self, name: str, command: Command, source: str) -> CommandResult:
        """Run ``command`` through the stage; log it; return its outcome and what it changed."""
        (ok, message), result = await self._stage.run_command(command)
        log.info("command_accepted", command=name, source=source, ok=ok, message=message)
        return CommandResult(
            ok=ok,
            message=message,
            transitions=tuple(result.transitions),
            trades=tuple(result.trades),
        )


def _view(position: Position, mark: Decimal) -> PositionView:
    pnl = position.unrealised_pnl(mark)
    notional = position.quantity * position.entry_price
    stop, reason = active_stop(position)
    return PositionView(
        position=position,
        mark=mark,
        unrealised_pnl=pnl,
        unrealised_pct=100 * pnl / notional,
        stop=stop,
        stop_reason=reason,
        target=position.take_profit_price,
    )


def _period_report(  # noqa: PLR0917 - the window's facts, gathered by Control.report
    period: PeriodUnit,
    start: int,
    end: int,
    start_equity: Decimal,
    trades: list[ClosedTrade],
    snapshots: list[EquitySnapshot],
    interval_ms: int,
) -> PeriodReport:
    """Summarise the window's trades and snapshots."""
    end_equity = snapshots[-1].equity if snapshots else start_equity
    by_symbol: dict[str, Decimal] = {}
    for trade in trades:
        by_symbol[trade.symbol] = by_symbol.get(trade.symbol, Decimal(0)) + trade.net_pnl
    analytics: Mapping[str, object] = {}
    if start_equity > 0:
        analytics = analyse(
            trades, snapshots, initial_equity=start_equity, interval_ms=interval_ms
        ).to_json()
    return PeriodReport(
        period=period,
        start_ms=start,
        end_ms=end,
        start_equity=start_equity,
        end_equity=end_equity,
        total_return=end_equity / start_equity - 1 if start_equity > 0 else Decimal(0),
        trades=tuple(trades),
        wins=sum(1 for t in trades if t.net_pnl > 0),
        losses=sum(1 for t in trades if t.net_pnl < 0),
        net_pnl=sum((t.net_pnl for t in trades), Decimal(0)),
        fees=sum((t.fees for t in trades), Decimal(0)),
        best_trade=max(trades, key=lambda t: t.net_pnl, default=None),
        worst_trade=min(trades, key=lambda t: t.net_pnl, default=None),
        by_symbol=tuple(sorted(by_symbol.items())),
        analytics=analytics,
    )
