"""The trading step of the decision task: one decision instant at a time, on candle time.

Just over 400 lines: the five stages below are one state machine over one ledger, and read
best in one class.

For the candles that closed at one instant (sorted by symbol) and the signals made on them:

1. mark each symbol at its close, feed its rolling returns and its volatility breaker;
2. for every open position on those symbols, entered at an earlier candle: the protective exits
   against the candle's range (a short's margin call, stop, trailing stop, take-profit, in the
   broker's conservative order), else ratchet the trailing stop, then a queued manual close,
   the holding-time exit and the exit on an opposite strong signal, all at the close; a HALTED
   state closes the position at the close; after every exit the ``account_deficit`` breaker
   sees the cash;
3. mark the portfolio and let the breakers judge the equity (daily loss, drawdown);
4. for each entry signal: skip it on a stale candle (catching up), else pass it through the
   gates (prediction breaker, data quality, trading breakers, limits) and ``entries``
   (stop distance, sizing, caps, levels from the fill, short margin, cost edge) and fill it at
   the close plus slippage, or record the rule that refused it;
5. snapshot the equity.

A manual close (a command) of a position entered at the symbol's last candle is not filled at
the very close it was bought at: it is queued (``pending_closes``, persisted in the state) and
fills at the close of the symbol's next candle, after that candle's protective exits.

Pure and synchronous; the caller commits the ``InstantResult`` before anyone is told.
``instant_steps`` is the same step in pieces (it yields after each symbol of each stage), for
a caller that gives the event loop back inside a long instant; ``on_instant`` runs it at once.
"""

import json
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from decimal import Decimal

from paper_trader.broker.fills import exit_execution, fill_execution
from paper_trader.broker.ledger import Ledger
from paper_trader.domain import Candle, Signal
from paper_trader.domain.trading import (
    Action,
    ClosedTrade,
    Decision,
    EquitySnapshot,
    ExitReason,
    FillModel,
    Position,
    Rejection,
    Side,
    TradingState,
    entry_side,
)
from paper_trader.risk.breakers import TradingBreakers
from paper_trader.risk.correlation import ReturnHistory
from paper_trader.risk.exits import (
    ExitSignal,
    advance,
    protective_exit,
    signal_exit,
    time_exit,
)
from paper_trader.risk.limits import PortfolioView, screen_entry
from paper_trader.trading.entries import EntryPlan, plan_entry
from paper_trader.trading.faults import Fault, error_decision, finish, guarded
from paper_trader.trading.state import encode_windows, handled_of, pending_closes_of
from paper_trader.trading.values import (
    InstantResult,
    MarketInput,
    TraderConfig,
    decision,
)


class Trader:
    """The ledger, the breakers and the rolling market state, driven one instant at a time."""

    def __init__(
        self,
        config: TraderConfig,
        ledger: Ledger,
        *,
        state: Mapping[str, object] | None = None,
        history: Sequence[ClosedTrade] = (),
        last_candle_ms: int | None = None,
        marks: Mapping[str, Candle] | None = None,
        recent: Sequence[Candle] = (),
    ) -> None:
        """Restore a trader; ``recent`` are the last stored candles it handled, oldest first,
        which rebuild the rolling returns of the correlation limit (they are not persisted)."""
        self.config = config
        self.ledger = ledger
        breakers = (state or {}).get("breakers")
        self.breakers = TradingBreakers(
            config.breakers, breakers if isinstance(breakers, dict) else None
        )
        self.handled = handled_of(state or {})
        self.pending_closes = pending_closes_of(state or {})
        self.returns = ReturnHistory(config.limits.correlation_window)
        for candle in recent:
            self.returns.on_close(candle.symbol, candle.open_time_ms, candle.close)
        self.history: deque[ClosedTrade] = deque(history, maxlen=config.sizing.kelly_window)
        self.last_candle_ms = last_candle_ms
        self.last_candles: dict[str, Candle] = dict(marks or {})
        # The latest close per symbol, kept with last_candles (read on every instant).
        self.marks: dict[str, Decimal] = {s: c.close for s, c in self.last_candles.items()}
        initial = (state or {}).get("initial_balance")
        self.initial_balance = Decimal(str(initial)) if initial is not None else ledger.cash

    def on_instant(
        self,
        candle_time_ms: int,
        markets: Sequence[MarketInput],
        signals: Mapping[str, Signal],
        *,
        entries_blocked: str | None = None,
    ) -> InstantResult:
        """Run exits, breakers and entries for the candles that closed at one instant."""
        return finish(
            self.instant_steps(candle_time_ms, markets, signals, entries_blocked=entries_blocked)
        )

    def instant_steps(
        self,
        candle_time_ms: int,
        markets: Sequence[MarketInput],
        signals: Mapping[str, Signal],
        *,
        entries_blocked: str | None = None,
    ) -> Generator[None, None, InstantResult]:
        """``on_instant`` in steps: it yields after each symbol of each stage, where nothing
        outside the instant can tell it apart from the whole (the stage holds its lock), and
        returns the instant's result."""
        result = InstantResult(candle_time_ms=candle_time_ms)
        ordered = sorted(
            (m for m in markets if self._is_new(m.candle)), key=lambda m: m.candle.symbol
        )
        if not ordered:
            return result
        failed: dict[str, Fault] = {}
        for market in ordered:
            if market.fault is not None:
                failed[market.candle.symbol] = Fault(
                    candle=market.candle, stage="earlier", error=market.fault
                )
        yield from guarded(ordered, failed, result, "marking", self._observe)
        yield from guarded(ordered, failed, result, "exits", self._manage_with(signals))
        equity = self.ledger.equity(self.marks)
        result.transitions.extend(self.breakers.mark(candle_time_ms, equity))
        if self.breakers.state is TradingState.HALTED:
            yield from guarded(ordered, failed, result, "halt close", self._halt_close)
        entry = self._entry_with(signals, entries_blocked)
        yield from guarded(ordered, failed, result, "entry", entry)
        self._settle_faults(ordered, failed, signals, result)
        result.snapshot = self.snapshot(candle_time_ms)
        self.last_candle_ms = max(candle_time_ms, self.last_candle_ms or candle_time_ms)
        for market in ordered:
            self.handled[market.candle.symbol] = market.candle.open_time_ms
        return result

    def _manage_with(
        self, signals: Mapping[str, Signal]
    ) -> Callable[[MarketInput, InstantResult], None]:
        return lambda market, result: self._manage(
            market, signals.get(market.candle.symbol), result
        )

    def _entry_with(
        self, signals: Mapping[str, Signal], entries_blocked: str | None
    ) -> Callable[[MarketInput, InstantResult], None]:
        def entry(market: MarketInput, result: InstantResult) -> None:
            signal = signals.get(market.candle.symbol)
            if signal is not None and self._is_entry(signal):
                result.decisions.append(self._enter(market, signal, entries_blocked, result))

        return entry

    def _settle_faults(
        self,
        markets: Sequence[MarketInput],
        failed: Mapping[str, Fault],
        signals: Mapping[str, Signal],
        result: InstantResult,
    ) -> None:
        """Quarantine the symbols that failed and record an error decision on each candle;
        count a clean candle for every other symbol."""
        for market in markets:
            candle = market.candle
            fault = failed.get(candle.symbol)
            if fault is None:
                result.transitions.extend(
                    self.breakers.on_clean(candle.symbol, candle.open_time_ms)
                )
                continue
            result.faults.append(fault)
            result.decisions.append(error_decision(fault, signals.get(candle.symbol)))
            result.transitions.extend(
                self.breakers.on_fault(candle.symbol, candle.open_time_ms, fault.error)
            )

    def _is_new(self, candle: Candle) -> bool:
        """Return False for a candle this ledger already handled (before a restart)."""
        last = self.handled.get(candle.symbol)
        return last is None or candle.open_time_ms > last

    def snapshot(self, candle_time_ms: int) -> EquitySnapshot:
        """Return the portfolio marked at the latest closes."""
        marks = self.marks
        equity = self.ledger.equity(marks)
        peak = self.breakers.peak_equity
        return EquitySnapshot(
            candle_time_ms=candle_time_ms,
            cash=self.ledger.cash,
            positions_value=self.ledger.positions_value(marks),
            equity=equity,
            peak_equity=equity if peak is None else max(peak, equity),
            open_positions=len(self.ledger.positions),
        )

    def windows_json(self) -> str:
        """Return the volatility breaker's windows as JSON (persisted less often)."""
        return encode_windows(self.breakers.windows_snapshot())

    def state_json(self) -> str:
        """Return the breakers' state (without the volatility windows) and the last candle
        handled per symbol, as JSON."""
        state = {
            "breakers": self.breakers.snapshot(windows=False),
            "handled": self.handled,
            "initial_balance": format(self.initial_balance, "f"),
            "pending_closes": self.pending_closes,
        }
        return json.dumps(state, sort_keys=True, separators=(",", ":"))

    def close_position(
        self, symbol: str, reason: ExitReason, result: InstantResult
    ) -> ClosedTrade | None:
        """Close ``symbol`` at its last close plus slippage (a command); None if not held."""
        candle = self.last_candles.get(symbol)
        if symbol not in self.ledger.positions or candle is None:
            return None
        signal = ExitSignal(reason=reason, price=candle.close, fill_model=FillModel.MARKET_LAST)
        return self._exit(self.ledger.positions[symbol], signal, candle, result, recovered=False)

    def is_on_entry_candle(self, symbol: str) -> bool:
        """Return whether ``symbol``'s position was entered at the last candle of it handled."""
        position = self.ledger.positions.get(symbol)
        candle = self.last_candles.get(symbol)
        return (
            position is not None
            and candle is not None
            and candle.open_time_ms <= position.opened_candle_ms
        )

    def queue_close(self, symbol: str, candle_time_ms: int) -> bool:
        """Queue a manual close of ``symbol`` at its next candle's close; return False if
        it was already queued. The queue is part of ``state_json``."""
        if symbol in self.pending_closes:
            return False
        self.pending_closes[symbol] = candle_time_ms
        return True

    def _observe(self, market: MarketInput, result: InstantResult) -> None:
        """Mark the symbol at its close; feed its returns and its volatility breaker."""
        candle = market.candle
        self.last_candles[candle.symbol] = candle
        self.marks[candle.symbol] = candle.close
        self.returns.on_close(candle.symbol, candle.open_time_ms, candle.close)
        if market.atr_pct is not None:
            result.transitions.extend(
                self.breakers.on_volatility(candle.symbol, candle.open_time_ms, market.atr_pct)
            )
            result.volatility.append((candle.symbol, candle.open_time_ms, market.atr_pct))

    def _manage(self, market: MarketInput, signal: Signal | None, result: InstantResult) -> None:
        """Apply the exit rules to the position on this candle's symbol, if one is held."""
        candle = market.candle
        position = self.ledger.positions.get(candle.symbol)
        if position is None or position.opened_candle_ms >= candle.open_time_ms:
            return
        exit_signal = protective_exit(position, candle)
        if exit_signal is None:
            moved = advance(position, candle, self.config.exits)
            if moved is not position:
                self.ledger.update(moved)
                result.positions[moved.symbol] = moved
                position = moved
            exit_signal = self._discretionary_exit(position, candle, signal)
        if exit_signal is not None:
            self._exit(position, exit_signal, candle, result, recovered=market.recovered)

    def _discretionary_exit(
        self, position: Position, candle: Candle, signal: Signal | None
    ) -> ExitSignal | None:
        if self.breakers.state is TradingState.HALTED:
            return _halted_at_close(candle)
        if position.symbol in self.pending_closes:
            return ExitSignal(
                reason=ExitReason.MANUAL, price=candle.close, fill_model=FillModel.MARKET_CLOSE
            )
        timed = time_exit(position, candle, self.config.exits)
        if timed is not None or signal is None:
            return timed
        return signal_exit(position, signal.strength, candle, self.config.exits)

    def _halt_close(self, market: MarketInput, result: InstantResult) -> None:
        candle = market.candle
        position = self.ledger.positions.get(candle.symbol)
        if position is not None:
            self._exit(
                position, _halted_at_close(candle), candle, result, recovered=market.recovered
            )

    def _exit(
        self,
        position: Position,
        signal: ExitSignal,
        candle: Candle,
        result: InstantResult,
        *,
        recovered: bool,
    ) -> ClosedTrade:
        price, bps = exit_execution(position, signal, candle.volume, self.config.fills)
        execution = fill_execution(
            price, bps, position.quantity, signal.fill_model, candle.open_time_ms, self.config.fills
        )
        fill, trade = self.ledger.close(
            position.symbol, execution, signal.reason, recovered=recovered
        )
        self.pending_closes.pop(position.symbol, None)
        result.fills.append(fill)
        result.closed.append(position.symbol)
        result.positions.pop(position.symbol, None)
        result.trades.append(trade)
        self.history.append(trade)
        result.transitions.extend(self.breakers.on_trade_closed(trade))
        result.transitions.extend(self.breakers.on_cash(execution.candle_time_ms, self.ledger.cash))
        return trade

    def _is_entry(self, signal: Signal) -> bool:
        side = entry_side(signal.strength)
        return side is Side.LONG or (side is Side.SHORT and self.config.limits.allow_short)

    def _enter(
        self,
        market: MarketInput,
        signal: Signal,
        entries_blocked: str | None,
        result: InstantResult,
    ) -> Decision:
        side = entry_side(signal.strength)
        assert side is not None  # only entry signals get here (_is_entry)
        if market.stale:
            return decision(signal, side, Action.SKIPPED, "catching up: the candle is stale")
        if market.exit_only:
            detail = f"{signal.symbol} is not in SYMBOLS: exits only"
            return decision(signal, side, Action.REJECTED, detail, rule="exit_only")
        plan = self._judge(market, signal, side, entries_blocked)
        if isinstance(plan, Rejection):
            return decision(signal, side, Action.REJECTED, plan.detail, rule=plan.rule)
        fill, position = self.ledger.open(plan.entry, plan.execution)
        candle = market.candle
        self.breakers.on_entry(candle.symbol, candle.open_time_ms)
        result.fills.append(fill)
        result.positions[position.symbol] = position
        capped_by = plan.approval.capped_by
        detail = "entered" + (f" (capped by {', '.join(capped_by)})" if capped_by else "")
        return decision(
            signal, side, Action.ENTERED, detail, quantity=fill.quantity, price=fill.price
        )

    def _judge(
        self, market: MarketInput, signal: Signal, side: Side, entries_blocked: str | None
    ) -> EntryPlan | Rejection:
        """Pass an entry through every gate; return its plan, or the refusal."""
        candle = market.candle
        if entries_blocked is not None:
            return Rejection(rule="prediction", detail=entries_blocked)
        if not market.tradable:
            return Rejection(rule="data_quality", detail=f"{candle.symbol} is not tradable")
        view = self._view()
        blocked = self.breakers.entry_block(candle.symbol, candle.open_time_ms) or screen_entry(
            self.config.limits,
            symbol=candle.symbol,
            side=side,
            confidence=signal.confidence,
            view=view,
            correlations=self.returns.correlations,
        )
        if blocked is not None:
            return blocked
        if market.atr is None:
            return Rejection(rule="stop_distance", detail="no ATR yet for a stop")
        return plan_entry(
            self.config.entry_rules,
            candle=candle,
            side=side,
            atr=market.atr,
            confidence=signal.confidence,
            view=view,
            history=tuple(self.history),
        )

    def _view(self) -> PortfolioView:
        marks = self.marks
        return PortfolioView(
            equity=self.ledger.equity(marks),
            cash=self.ledger.free_cash,
            positions=self.ledger.positions,
            marks=marks,
        )


def _halted_at_close(candle: Candle) -> ExitSignal:
    """Return the exit of a position while trading is HALTED: at the candle's close."""
    return ExitSignal(
        reason=ExitReason.HALTED, price=candle.close, fill_model=FillModel.MARKET_CLOSE
    )
