"""One factory for the candles component tests feed to the engine and the store."""

from decimal import Decimal

from paper_trader.domain import Candle, Interval, Venue


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
    return Candle(
        venue=venue,
        symbol=symbol,
        interval=interval,
        open_time_ms=start_ms + index * interval.ms,
        open=price,
        high=price + Decimal("1.5"),
        low=price - Decimal("0.5"),
        close=price + Decimal("0.25") if close is None else close,
        volume=Decimal("3.75"),
    )
