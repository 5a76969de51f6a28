"""The commands of `paper_trader.control.api`, as functions the trading stage runs under its lock.

Each returns whether it did what was asked and a one-line answer; what it changed (breaker
transitions, closed trades) goes into the instant's result, which the stage commits before
anyone is told.
"""

from collections.abc import Callable
from decimal import Decimal

from paper_trader.domain.trading import ClosedTrade, ExitReason, TradingState, plain
from paper_trader.trading.trader import Trader
from paper_trader.trading.values import InstantResult

# A command's outcome, decided under the stage lock: whether it did what was asked, and why.
Command = Callable[[Trader, InstantResult], tuple[bool, str]]


def pause(reason: str) -> Command:
    def apply(trader: Trader, result: InstantResult) -> tuple[bool, str]:
        transitions = trader.breakers.pause(result.candle_time_ms, reason)
        result.transitions.extend(transitions)
        state = trader.breakers.state
        if not transitions:
            return True, f"already paused; trading is {state}"
        return True, f"paused: no new entries, exits keep running; trading is {state}"

    return apply


def resume(trader: Trader, result: InstantResult) -> tuple[bool, str]:
    breakers = trader.breakers
    equity = trader.ledger.equity(trader.marks)
    transitions = breakers.resume(result.candle_time_ms, equity)
    result.transitions.extend(transitions)
    cleared = ", ".join(t.breaker for t in transitions)
    head = f"resumed: cleared {cleared}" if cleared else "nothing to resume"
    remaining = "; ".join(t.reason for t in breakers.tripped())
    state = breakers.state
    if state is TradingState.ACTIVE:
        tail = "trading is active" + (f" (still tripped: {remaining})" if remaining else "")
        return True, f"{head}; {tail}"
    return False, f"{head}; trading is still {state}: {remaining}"


def close(symbol: str) -> Command:
    def apply(trader: Trader, result: InstantResult) -> tuple[bool, str]:
        held = trader.ledger.positions
        name = next((s for s in (symbol, symbol.upper()) if s in held), None)
        if name is None:
            listed = ", ".join(sorted(held)) or "none"
            return False, f"{symbol}: no open position (held: {listed})"
        if trader.is_on_entry_candle(name):
            queued = trader.queue_close(name, result.candle_time_ms)
            state = "queued" if queued else "already queued"
            return True, (
                f"{name}: entered at the close of its last candle; the close is {state} and "
                "fills at the close of its next candle"
            )
        trade = trader.close_position(name, ExitReason.MANUAL, result)
        if trade is None:
            return False, f"{name}: no last close is known to fill at"
        return True, f"{name}: closed at {plain(trade.exit_price)}, net PnL {trade.net_pnl:.2f}"

    return apply


def emergency_stop(reason: str) -> Command:
    def apply(trader: Trader, result: InstantResult) -> tuple[bool, str]:
        result.transitions.extend(trader.breakers.emergency_stop(result.candle_time_ms, reason))
        ok, closed = _flatten(trader, result, ExitReason.EMERGENCY_STOP)
        return ok, f"emergency stop: trading is {trader.breakers.state}; {closed}"

    return apply


def close_all(trader: Trader, result: InstantResult) -> tuple[bool, str]:
    ok, closed = _flatten(trader, result, ExitReason.MANUAL)
    return ok, f"close all: {closed}; trading is {trader.breakers.state}"


def _flatten(trader: Trader, result: InstantResult, reason: ExitReason) -> tuple[bool, str]:
    """Close every position at its last close; return whether all closed, and what happened."""
    trades: list[ClosedTrade] = []
    left: list[str] = []
    for symbol in sorted(trader.ledger.positions):
        trade = trader.close_position(symbol, reason, result)
        if trade is None:
            left.append(symbol)
        else:
            trades.append(trade)
    parts = []
    if trades:
        net = sum((t.net_pnl for t in trades), Decimal(0))
        names = ", ".join(t.symbol for t in trades)
        parts.append(f"closed {len(trades)} ({names}), net PnL {net:.2f}")
    elif not left:
        parts.append("no open positions")
    if left:
        parts.append(f"still open, no last close to fill at: {', '.join(left)}")
    return not left, "; ".join(parts)
