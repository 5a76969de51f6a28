"""Candles and the closed sets that key them."""

import enum
from dataclasses import dataclass
from decimal import Decimal


class Venue(enum.StrEnum):
    """An exchange we read public market data from, or an offline source of candles."""

    BINANCE = "binance"
    BITVAVO = "bitvavo"
    KRAKEN = "kraken"


class Interval(enum.StrEnum):
    """A candle interval, spelled as the exchanges spell it."""

    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"

    @property
    def ms(self) -> int:
        """Return the interval's length in milliseconds."""
        return _INTERVAL_MS[self]


_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}
_INTERVAL_MS = {i: int(i.value[:-1]) * _UNIT_MS[i.value[-1]] for i in Interval}


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle:
    """One closed OHLCV candle, keyed by venue, symbol, interval and open time (UTC ms).

    Prices and volume are ``Decimal`` so that what the exchange sent is kept exactly; the
    feature engine converts to float at its own boundary.
    """

    venue: Venue
    symbol: str
    interval: Interval
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def close_time_ms(self) -> int:
        """Return the first millisecond after this candle (the next candle's open time)."""
        return self.open_time_ms + self.interval.ms


class GapReason(enum.StrEnum):
    """Why candles are missing for good."""

    MISSING_AT_VENUE = "missing_at_venue"  # the venue has no candle there (halt, no trades)
    BEYOND_HISTORY = "beyond_history"  # older than the venue still serves (Kraken: 720 rows)
    VENUE_REFUSED = "venue_refused"  # the venue refused the backfill request


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """Candles ``[start_ms, end_ms)`` of one series that could not be filled."""

    venue: Venue
    symbol: str
    interval: Interval
    start_ms: int
    end_ms: int
    reason: GapReason
    detail: str = ""

    @property
    def missing(self) -> int:
        """Return how many candles are missing."""
        return (self.end_ms - self.start_ms) // self.interval.ms


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesMark:
    """A source's word that no candle at or before ``through_ms`` (an open time) is still to
    come for a series: its warm-up starts after it, or the venue has no candle there.

    ``symbol`` None speaks for every series of the venue and interval (a replay that merges
    its files by time).
    """

    venue: Venue
    symbol: str | None
    interval: Interval
    through_ms: int


MarketItem = Candle | SeriesMark
"""What a market-data source hands the decision task: candles, and marks between them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgedCandles:
    """Candles to store as the data-quality gate judged them: ``tradable`` is each one's flag
    (in order), ``quality`` the gate's state of each series the batch touched, rejected
    candles included (MessagePack), stored with them so a start resumes the gate exactly."""

    candles: tuple[Candle, ...]
    tradable: tuple[bool, ...] = ()
    quality: tuple[tuple[Venue, str, Interval, bytes], ...] = ()
