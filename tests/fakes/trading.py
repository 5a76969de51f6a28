"""Candles, signals, positions and closed trades for the trading tests: one minute grid from
T0, BTC and ETH, Binance 1m unless given."""

from decimal import Decimal
from typing import Any

from fakes.candles import candle_of

from paper_trader.domain import Candle, Interval, Signal, Strength, Venue
from paper_trader.domain.trading import DAY_MS, ClosedTrade, ExitReason, FillModel, Position, Side

D = Decimal
T0 = 19_675 * DAY_MS  # 2023-11-14 00:00 UTC
MINUTE = 60_000
BTC = "BTCUSDT"
ETH = "ETHUSDT"


def candle(minute: int, ohlc: str, *, symbol: str = BTC, volume: str = "1000") -> Candle:
    """Return the 1m candle ``minute`` minutes after T0 with prices ``"open high low close"``."""
    open_, high, low, close = (D(p) for p in ohlc.split())
    return candle_of(T0 + minute * MINUTE, open_, high, low, close, D(volume), symbol=symbol)


def bar(
    symbol: str,
    t: int,
    close: str = "100",
    *,
    open_: str | None = None,
    high: str | None = None,
    low: str | None = None,
    volume: str = "1000",
) -> Candle:
    """Return the candle opened at ``t`` closing at ``close``, its range 1 either side unless
    given; a zero volume makes it flat at ``close`` (a halt)."""
    c = D(close)
    if D(volume) == 0:
        return candle_of(t, c, c, c, c, D(0), symbol=symbol)
    high_, low_ = c + 1 if high is None else D(high), c - 1 if low is None else D(low)
    return candle_of(t, c if open_ is None else D(open_), high_, low_, c, D(volume), symbol=symbol)


def signal(bar: Candle, strength: Strength = Strength.BUY, confidence: float = 0.5) -> Signal:
    """Return the ensemble's signal made at the close of ``bar``."""
    return Signal(
        venue=bar.venue,
        symbol=bar.symbol,
        interval=bar.interval,
        open_time_ms=bar.open_time_ms,
        probabilities=(0.2, 0.3, 0.5),
        score=0.3,
        strength=strength,
        confidence=confidence,
        model_version="v1",
        spec_hash="spec",
        weights=(("xgb", 1.0),),
        model_probabilities=(("xgb", (0.2, 0.3, 0.5)),),
    )


def strong_buy(
    symbol: str,
    open_time_ms: int,
    *,
    venue: Venue = Venue.BINANCE,
    interval: Interval = Interval.M1,
    model_version: str = "test",
    models: tuple[str, ...] = ("m",),
) -> Signal:
    """Return a full-size STRONG_BUY (p_up 0.9, confidence 0.9) of ``models``, each weighted 1
    and all saying the same."""
    probabilities = (0.05, 0.05, 0.9)
    return Signal(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time_ms=open_time_ms,
        probabilities=probabilities,
        score=0.85,
        strength=Strength.STRONG_BUY,
        confidence=0.9,
        model_version=model_version,
        spec_hash="spec",
        weights=tuple((m, 1.0) for m in models),
        model_probabilities=tuple((m, probabilities) for m in models),
    )


_POSITION: dict[str, Any] = {
    "venue": Venue.BINANCE,
    "symbol": BTC,
    "interval": Interval.M1,
    "side": Side.LONG,
    "quantity": D(2),
    "entry_price": D(100),
    "entry_fee": D("0.2"),
    "entry_fill_id": 1,
    "opened_candle_ms": 0,
    "stop_price": D(96),
    "take_profit_price": D(108),
    "trailing_stop_price": None,
    "extreme_price": D(100),
    "risk_per_unit": D(4),
    "atr": D(2),
}


def open_position(**fields: Any) -> Position:
    """Return a long of 2 BTCUSDT entered at 100 (fee 0.2, fill 1) with an ATR of 2: stop 96,
    target 108, no trail yet; ``fields`` replace any of it."""
    return Position(**(_POSITION | fields))


def held_position(
    symbol: str, side: Side, quantity: str = "1", entry_price: str = "100"
) -> Position:
    """Return an open position entered without a fee, its stop 10 % away and no target."""
    entry = D(entry_price)
    return open_position(
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        entry_price=entry,
        entry_fee=D(0),
        stop_price=entry * D("0.9") if side is Side.LONG else entry * D("1.1"),
        take_profit_price=None,
        extreme_price=entry,
        risk_per_unit=entry * D("0.1"),
        atr=entry * D("0.05"),
    )


def closed_trade(
    net: str | int,
    *,
    symbol: str = "BTC-USDT",
    side: Side = Side.LONG,
    quantity: str = "1",
    entry: str = "100",
    fee: str = "0",
    opened_ms: int = 0,
    held_ms: int = MINUTE,
    reason: ExitReason = ExitReason.TAKE_PROFIT,
    exit_fill_model: FillModel = FillModel.TARGET_LIMIT,
    venue: Venue = Venue.BINANCE,
    interval: Interval = Interval.M1,
) -> ClosedTrade:
    """Return a round trip (fills 1 and 2, entered at the close) netting ``net`` after
    ``fee`` on each fill: it exits where the gross PnL, ``net`` plus both fees, is made."""
    qty, fill_fee = D(quantity), D(fee)
    gross = D(net) + 2 * fill_fee
    return ClosedTrade(
        venue=venue,
        symbol=symbol,
        interval=interval,
        side=side,
        quantity=qty,
        entry_price=D(entry),
        exit_price=D(entry) + side.sign * gross / qty,
        entry_fee=fill_fee,
        exit_fee=fill_fee,
        gross_pnl=gross,
        net_pnl=D(net),
        opened_candle_ms=opened_ms,
        closed_candle_ms=opened_ms + held_ms,
        exit_reason=reason,
        entry_fill_id=1,
        exit_fill_id=2,
        entry_fill_model=FillModel.MARKET_CLOSE,
        exit_fill_model=exit_fill_model,
    )
