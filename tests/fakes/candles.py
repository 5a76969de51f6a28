"""The candle factories of the tests: any prices at a key, and a series for the engine and
the store."""

from decimal import Decimal

from paper_trader.domain import Candle, Interval, Venue


def candle_of(
    open_time_ms: int,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    *,
    symbol: str = "BTCUSDT",
    interval: Interval = Interval.M1,
    venue: Venue = Venue.BINANCE,
) -> Candle:
    """Return the candle of these prices opened at ``open_time_ms`` (Binance BTCUSDT 1m unless
    given)."""
    return Candle(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time_ms=open_time_ms,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )


def candle(
    index: int,
    symbol: str = "BTCUSDT",
    *,
    interval: Interval = Interval.M1,
    venue: Venue = Venue.BINANCE,
    start_ms: int = 0,
    close: Decimal | None = None,
) -> Candle:
    """Return the ``index``-th candle of a series opening at ``start_ms``; prices vary with it."""
    price = Decimal(100 + index)
    return candle_of(
        start_ms + index * interval.ms,
        price,
        price + Decimal("1.5"),
        price - Decimal("0.5"),
        price + Decimal("0.25") if close is None else close,
        Decimal("3.75"),
        symbol=symbol,
        interval=interval,
        venue=venue,
    )
