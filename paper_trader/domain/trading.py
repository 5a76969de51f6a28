"""Trading values: positions, fills, closed trades, decisions, breaker transitions, equity.

Money, prices and quantities are ``Decimal``. Every time is a candle's ``open_time_ms`` (the
candle's identity); rules that measure durations (cooldowns, holding times, the UTC day) use
these candle times, never the wall clock, so that replay and live give the same ledger.
"""

import enum
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from paper_trader.domain.candle import Interval, Venue
from paper_trader.domain.signal import Strength

DAY_MS = 86_400_000
PRICE_STEP = Decimal("1e-10")  # fill prices are rounded to this tick (half-even)
MONEY_STEP = Decimal("1e-12")  # fees and short margins are rounded up to this


def fee_amount(notional: Decimal, rate: Decimal) -> Decimal:
    """Return the fee a fill of ``notional`` is charged: ``notional * rate`` rounded up to
    ``MONEY_STEP``. The limits fit the cash with this very amount, so a fill never outruns it."""
    return (notional * rate).quantize(MONEY_STEP, rounding=ROUND_UP)


def margin_amount(notional: Decimal, margin: Decimal) -> Decimal:
    """Return the margin a short of ``notional`` holds out of free cash beyond its proceeds:
    ``notional * margin`` rounded up to ``MONEY_STEP``."""
    return (notional * margin).quantize(MONEY_STEP, rounding=ROUND_UP)


def plain(value: Decimal) -> str:
    """Return ``value`` in plain notation without trailing zeros, never rounded (``2.50`` ->
    ``2.5``, ``1E+2`` -> ``100``, zero -> ``0``): the text people read and digests hash."""
    if value.is_zero():
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class SizingMethod(enum.StrEnum):
    """How the size of a new position is found."""

    FIXED_FRACTIONAL = "fixed_fractional"
    HALF_KELLY = "half_kelly"
    VOLATILITY = "volatility"


class Side(enum.StrEnum):
    """The direction of a position."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """Return +1 for long, -1 for short: PnL per unit is ``sign * (exit - entry)``."""
        return 1 if self is Side.LONG else -1

    @property
    def opposite(self) -> "Side":
        """Return the other side."""
        return Side.SHORT if self is Side.LONG else Side.LONG


def entry_side(strength: Strength) -> Side | None:
    """Return the side a signal of ``strength`` would enter (None for hold)."""
    return _ENTRY_SIDES.get(strength)


_ENTRY_SIDES = {
    Strength.BUY: Side.LONG,
    Strength.STRONG_BUY: Side.LONG,
    Strength.SELL: Side.SHORT,
    Strength.STRONG_SELL: Side.SHORT,
}


class OrderSide(enum.StrEnum):
    """What a fill did on the market."""

    BUY = "buy"
    SELL = "sell"


def opening_order(side: Side) -> OrderSide:
    """Return the order that opens a position of ``side`` (a long buys)."""
    return OrderSide.BUY if side is Side.LONG else OrderSide.SELL


def closing_order(side: Side) -> OrderSide:
    """Return the order that closes a position of ``side`` (a long sells)."""
    return OrderSide.SELL if side is Side.LONG else OrderSide.BUY


class ExitReason(enum.StrEnum):
    """Why a position was closed."""

    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    TAKE_PROFIT = "take_profit"
    MAX_HOLDING = "max_holding"
    OPPOSITE_SIGNAL = "opposite_signal"
    MANUAL = "manual"
    EMERGENCY_STOP = "emergency_stop"
    HALTED = "halted"
    MARGIN_CALL = "margin_call"


class FillModel(enum.StrEnum):
    """How a fill's price was found; recorded on every fill and trade.

    - ``market_close``: a market order at the decision candle's close, plus slippage.
    - ``stop_touch``: the candle's range reached the stop; filled at the stop, less slippage.
    - ``stop_gap_open``: the candle opened through the stop; filled at the open, less slippage.
    - ``target_limit``: the range reached the take-profit; filled at the target, no slippage
      (a resting limit order), even when the candle opened beyond it.
    - ``market_last``: a command (close, emergency stop) filled at the last close, plus slippage.
    """

    MARKET_CLOSE = "market_close"
    STOP_TOUCH = "stop_touch"
    STOP_GAP_OPEN = "stop_gap_open"
    TARGET_LIMIT = "target_limit"
    MARKET_LAST = "market_last"


class TradingState(enum.StrEnum):
    """The trading state machine: entries allowed, exits only, or nothing new at all."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def rank(self) -> int:
        """Return 0, 1, 2 in order of severity."""
        return _STATE_RANK[self]


_STATE_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One simulated execution. ``fill_id`` is the ledger's sequence number (1, 2, …).

    ``price`` includes slippage; ``fee`` is in quote currency; ``reason`` is ``entry`` or an
    ``ExitReason`` value; ``slippage_bps`` is the slippage that was applied.
    """

    fill_id: int
    venue: Venue
    symbol: str
    interval: Interval
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    candle_time_ms: int
    reason: str
    fill_model: FillModel
    slippage_bps: Decimal

    @property
    def notional(self) -> Decimal:
        """Return ``quantity * price``."""
        return self.quantity * self.price


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """An open position, one per symbol.

    ``risk_per_unit`` is the initial stop distance; ``atr`` the ATR (price units) at entry;
    ``extreme_price`` the best price reached since entry (highest high for a long, lowest low
    for a short), which drives the trailing stop; ``trailing_stop_price`` is None until the
    trail is active.

    ``collateral`` is the quote currency a short holds out of free cash (its proceeds plus its
    margin; 0 for a long) and ``margin_call_price`` the price at which a short is force-closed
    because buying it back would consume that collateral (None for a long, and for a short
    opened before the collateral model existed: it holds no collateral and has no margin call).
    """

    venue: Venue
    symbol: str
    interval: Interval
    side: Side
    quantity: Decimal
    entry_price: Decimal
    entry_fee: Decimal
    entry_fill_id: int
    opened_candle_ms: int
    stop_price: Decimal
    take_profit_price: Decimal | None
    trailing_stop_price: Decimal | None
    extreme_price: Decimal
    risk_per_unit: Decimal
    atr: Decimal
    collateral: Decimal = Decimal(0)
    margin_call_price: Decimal | None = None

    def value(self, price: Decimal) -> Decimal:
        """Return the position's signed market value at ``price`` (negative for a short)."""
        return self.side.sign * self.quantity * price

    def unrealised_pnl(self, price: Decimal) -> Decimal:
        """Return the gross PnL if closed at ``price`` (fees excluded)."""
        return self.side.sign * self.quantity * (price - self.entry_price)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedTrade:
    """A round trip. ``gross_pnl`` excludes fees; ``net_pnl`` = gross - entry fee - exit fee.

    ``recovered`` marks an exit found while replaying the candles of a downtime at start-up;
    it is a fact about the run, not about the market, and stays out of the ledger digest.
    """

    venue: Venue
    symbol: str
    interval: Interval
    side: Side
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    entry_fee: Decimal
    exit_fee: Decimal
    gross_pnl: Decimal
    net_pnl: Decimal
    opened_candle_ms: int
    closed_candle_ms: int
    exit_reason: ExitReason
    entry_fill_id: int
    exit_fill_id: int
    entry_fill_model: FillModel
    exit_fill_model: FillModel
    recovered: bool = False

    @property
    def fees(self) -> Decimal:
        """Return both fees."""
        return self.entry_fee + self.exit_fee

    @property
    def return_pct(self) -> Decimal:
        """Return the net PnL as a fraction of the entry notional."""
        return self.net_pnl / (self.quantity * self.entry_price)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why an entry was refused: the rule, a readable detail, and the numbers behind it."""

    rule: str
    detail: str
    observed: float | None = None
    limit: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerTransition:
    """A breaker tripped or reset, at a candle time; ``state`` is the trading state after it.

    ``symbol`` is set for per-symbol breakers (stop-loss cooldown, volatility). ``threshold``
    and ``observed`` are text so that money keeps its exact digits.
    """

    breaker: str
    tripped: bool
    state: TradingState
    reason: str
    threshold: str
    observed: str
    candle_time_ms: int
    symbol: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EquitySnapshot:
    """The portfolio marked at a candle time (the latest close of every held symbol).

    A snapshot kept when older ones were thinned (``storage/thinning.py``) stands for
    ``instants`` instants up to its own, ``open_instants`` of them with a position open.
    """

    candle_time_ms: int
    cash: Decimal
    positions_value: Decimal
    equity: Decimal
    peak_equity: Decimal
    open_positions: int
    instants: int = 1
    open_instants: int | None = None  # None: this instant alone, open if open_positions > 0

    @property
    def opened(self) -> int:
        """Return how many of the instants it stands for had a position open."""
        if self.open_instants is not None:
            return self.open_instants
        return 1 if self.open_positions > 0 else 0


class Action(enum.StrEnum):
    """What became of a signal that could open a position."""

    ENTERED = "entered"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The risk layer's answer to one entry signal, at the candle it was made at.

    ``skipped`` is for an entry the daemon did not consider (a stale candle while catching up);
    ``rejected`` names the ``rule`` and says by how much in ``detail``; ``error`` records a
    candle on which a stage of the decision task failed (``detail`` says which and how; the
    signal fields are empty and ``side`` is None when no signal was made on it).
    """

    venue: Venue
    symbol: str
    interval: Interval
    candle_time_ms: int
    strength: str
    score: float
    confidence: float
    model_version: str
    action: Action
    side: Side | None
    quantity: Decimal | None
    price: Decimal | None
    rule: str | None
    detail: str
