"""The portfolio ledger: cash and open positions, changed only by fills.

Every change goes through ``open`` or ``close``, which check the invariants first and raise
``FatalError`` rather than write an impossible state (a price of zero or NaN, a quantity of
zero or less, a negative fee or collateral, an entry that spends more than the free cash, a
second position on a symbol, closing a position that does not exist). Cash moves by exactly
the fill's notional and fee:

- opening a long pays ``quantity * price + fee``; closing it receives ``quantity * price - fee``;
- opening a short receives ``quantity * price - fee``; closing it pays ``quantity * price + fee``.

So, over any history, cash - initial cash = Σ net PnL of the closed trades - Σ cost of the open
positions (their signed entry value and entry fee): the property tests keep that exact.

A short also holds its ``collateral`` (its proceeds plus a margin, ``broker/margin.py``) out of
*free cash* = cash - Σ collateral of the open positions; the collateral moves no money, it is
released when the short closes. An entry may never leave free cash below zero (the limits fit
every entry to it, fee rounding included). Only buying back a short can take cash itself below
zero: a gap beyond the short's collateral and every other asset. That is a loss, not a broken
invariant, so the ledger records the deficit (negative cash, restored as such after a restart)
and the trader halts trading on it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from paper_trader.domain.candle import Interval, Venue
from paper_trader.domain.trading import (
    ClosedTrade,
    ExitReason,
    Fill,
    FillModel,
    OrderSide,
    Position,
    Side,
    closing_order,
    opening_order,
)
from paper_trader.errors import FatalError

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """A price the broker found for an order, with its fee and how it was found."""

    price: Decimal
    fee: Decimal
    slippage_bps: Decimal
    fill_model: FillModel
    candle_time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """What opens a position: the series, the side, the quantity and the protective levels."""

    venue: Venue
    symbol: str
    interval: Interval
    side: Side
    quantity: Decimal
    stop_price: Decimal
    take_profit_price: Decimal | None
    risk_per_unit: Decimal
    atr: Decimal
    collateral: Decimal = ZERO
    margin_call_price: Decimal | None = None


class Ledger:
    """Cash, open positions by symbol, and the next fill id."""

    def __init__(
        self,
        cash: Decimal,
        *,
        positions: Mapping[str, Position] | None = None,
        next_fill_id: int = 1,
    ) -> None:
        _require(cash.is_finite(), f"cash {cash} is not a finite amount")
        self.cash = cash
        self.positions: dict[str, Position] = dict(positions or {})
        self.next_fill_id = next_fill_id

    def open(self, entry: Entry, execution: Execution) -> tuple[Fill, Position]:
        """Fill an entry and hold the new position; return both."""
        _require(entry.symbol not in self.positions, f"{entry.symbol}: a position is already open")
        fill = self._fill(
            entry.venue,
            entry.symbol,
            entry.interval,
            opening_order(entry.side),
            entry.quantity,
            execution,
            "entry",
        )
        flow = (fill.notional if entry.side is Side.SHORT else -fill.notional) - fill.fee
        self._check_entry(entry, fill, flow)
        self.cash += flow
        self.next_fill_id += 1
        position = Position(
            venue=entry.venue,
            symbol=entry.symbol,
            interval=entry.interval,
            side=entry.side,
            quantity=entry.quantity,
            entry_price=fill.price,
            entry_fee=fill.fee,
            entry_fill_id=fill.fill_id,
            opened_candle_ms=execution.candle_time_ms,
            stop_price=entry.stop_price,
            take_profit_price=entry.take_profit_price,
            trailing_stop_price=None,
            extreme_price=fill.price,
            risk_per_unit=entry.risk_per_unit,
            atr=entry.atr,
            collateral=entry.collateral,
            margin_call_price=entry.margin_call_price,
        )
        self.positions[entry.symbol] = position
        return fill, position

    def close(
        self, symbol: str, execution: Execution, reason: ExitReason, *, recovered: bool = False
    ) -> tuple[Fill, ClosedTrade]:
        """Fill the exit of the position on ``symbol``; return the fill and the round trip."""
        position = self.positions.get(symbol)
        if position is None:
            raise FatalError(f"{symbol}: no open position to close")
        fill = self._fill(
            position.venue,
            symbol,
            position.interval,
            closing_order(position.side),
            position.quantity,
            execution,
            reason.value,
        )
        flow = -fill.notional if position.side is Side.SHORT else fill.notional
        self.cash += flow - fill.fee  # buying a short back may leave a deficit (see above)
        self.next_fill_id += 1
        del self.positions[symbol]
        gross = position.side.sign * position.quantity * (fill.price - position.entry_price)
        trade = ClosedTrade(
            venue=position.venue,
            symbol=symbol,
            interval=position.interval,
            side=position.side,
            quantity=position.quantity,
            entry_price=position.entry_price,
            exit_price=fill.price,
            entry_fee=position.entry_fee,
            exit_fee=fill.fee,
            gross_pnl=gross,
            net_pnl=gross - position.entry_fee - fill.fee,
            opened_candle_ms=position.opened_candle_ms,
            closed_candle_ms=execution.candle_time_ms,
            exit_reason=reason,
            entry_fill_id=position.entry_fill_id,
            exit_fill_id=fill.fill_id,
            entry_fill_model=FillModel.MARKET_CLOSE,  # every entry is a market order at a close
            exit_fill_model=fill.fill_model,
            recovered=recovered,
        )
        return fill, trade

    def update(self, position: Position) -> None:
        """Replace a held position's levels (trailing stop, best price); nothing else may change."""
        held = self.positions.get(position.symbol)
        if held is None:
            raise FatalError(f"ledger invariant: {position.symbol}: no open position to update")
        unchanged = replace(
            held,
            stop_price=position.stop_price,
            take_profit_price=position.take_profit_price,
            trailing_stop_price=position.trailing_stop_price,
            extreme_price=position.extreme_price,
        )
        _require(unchanged == position, f"{position.symbol}: an update may only move the levels")
        self.positions[position.symbol] = position

    @property
    def reserved(self) -> Decimal:
        """Return the collateral the open shorts hold out of free cash."""
        return sum((p.collateral for p in self.positions.values()), ZERO)

    @property
    def free_cash(self) -> Decimal:
        """Return the cash an entry may spend: cash less the shorts' collateral."""
        return self.cash - self.reserved

    def positions_value(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Return the signed value of the open positions at ``marks`` (entry price if unmarked)."""
        return sum((p.value(marks.get(s, p.entry_price)) for s, p in self.positions.items()), ZERO)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Return cash plus the marked value of the open positions."""
        return self.cash + self.positions_value(marks)

    def exposure(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Return the gross value of the open positions at ``marks``."""
        return sum(
            (abs(p.value(marks.get(s, p.entry_price))) for s, p in self.positions.items()), ZERO
        )

    def _check_entry(self, entry: Entry, fill: Fill, flow: Decimal) -> None:
        """Refuse an entry whose collateral is impossible or that free cash cannot pay."""
        _check_collateral(entry)
        free = self.free_cash + flow - entry.collateral
        _require(
            free >= 0,
            f"{fill.symbol}: entry fill {fill.fill_id} would leave free cash at {free} (below "
            "zero)",
        )

    def _fill(  # noqa: PLR0917 -- the fields of the fill being made
        self,
        venue: Venue,
        symbol: str,
        interval: Interval,
        side: OrderSide,
        quantity: Decimal,
        execution: Execution,
        reason: str,
    ) -> Fill:
        _check_execution(symbol, quantity, execution)
        fill = Fill(
            fill_id=self.next_fill_id,
            venue=venue,
            symbol=symbol,
            interval=interval,
            side=side,
            quantity=quantity,
            price=execution.price,
            fee=execution.fee,
            candle_time_ms=execution.candle_time_ms,
            reason=reason,
            fill_model=execution.fill_model,
            slippage_bps=execution.slippage_bps,
        )
        return fill


def _check_execution(symbol: str, quantity: Decimal, execution: Execution) -> None:
    """Refuse a fill that would corrupt the ledger: a broken invariant, not a bad decision."""
    price, fee = execution.price, execution.fee
    _require(price.is_finite() and price > 0, f"{symbol}: fill price {price} is not positive")
    _require(
        quantity.is_finite() and quantity > 0, f"{symbol}: fill quantity {quantity} not positive"
    )
    _require(fee.is_finite() and fee >= 0, f"{symbol}: fill fee {fee} is negative or not finite")


def _check_collateral(entry: Entry) -> None:
    """Refuse a negative collateral, or a margin call that is not a positive price."""
    collateral, margin_call = entry.collateral, entry.margin_call_price
    _require(
        collateral.is_finite() and collateral >= 0,
        f"{entry.symbol}: collateral {collateral} is negative or not finite",
    )
    _require(
        margin_call is None or (margin_call.is_finite() and margin_call > 0),
        f"{entry.symbol}: margin call price {margin_call} is not positive",
    )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise FatalError(f"ledger invariant: {message}")
