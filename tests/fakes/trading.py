"""Candles and signals for the trading step's tests: one minute grid from T0, BTC and ETH."""

from decimal import Decimal

from paper_trader.domain import Candle, Interval, Signal, Strength, Venue
from paper_trader.domain.trading import DAY_MS

T0 = 19_675 * DAY_MS  # 2023-11-14 00:00 UTC
MINUTE = 60_000
BTC = "BTCUSDT"
ETH = "ETHUSDT"


def candle(minute: int, ohlc: str, *, symbol: str = BTC, volume: str = "1000") -> Candle:
    """Return the 1m candle ``minute`` minutes after T0 with prices ``"open high low close"``."""
    open_, high, low, close = (Decimal(p) for p in ohlc.split())
    return Candle(
        venue=Venue.BINANCE,
        symbol=symbol,
        interval=Interval.M1,
        open_time_ms=T0 + minute * MINUTE,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=Decimal(volume),
    )


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
