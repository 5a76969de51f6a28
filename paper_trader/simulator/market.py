"""The simulated exchange's market: preloaded candle series, the market clock, kline frames.

The clock is the exchange's clock and moves in *steps*: each candle gets ``updates_per_candle``
intra-candle updates (partial values, ``"x": false``) and then its final frame (exactly the
source values, ``"x": true``) at its close time. ``history`` candles are already closed when the
market starts. Slots without a candle (a gap in the CSV, or deleted candles) pass in silence,
exactly as Binance maintenance windows do. Nothing here does I/O or knows the wall clock.
"""

import bisect
import math
import random
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.errors import ConfigError
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.simulator.synthetic import MarketParams, generate_candles

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
_QUOTE_Q = Decimal("0.00000001")
_KNOWN_START_PRICES = {"BTC": 30_000.0, "ETH": 2_000.0, "BNB": 250.0, "SOL": 20.0, "XRP": 0.5}


@dataclass(frozen=True, slots=True, kw_only=True)
class KlineRow:
    """One kline as Binance reports it, final or partial; prices and volumes as wire strings."""

    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    first_trade_id: int
    last_trade_id: int
    taker_base: str
    taker_quote: str
    is_final: bool

    def rest(self) -> list[object]:
        """Return the ``/api/v3/klines`` array for this kline."""
        return [
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.close_time,
            self.quote_volume,
            self.trades,
            self.taker_base,
            self.taker_quote,
            "0",
        ]

    def payload(self, *, symbol: str, interval: Interval, event_ms: int) -> str:
        """Return the raw kline stream payload (JSON text) sent at ``event_ms``."""
        # An f-string, not json.dumps: this runs for every frame at speed "max".
        return (
            f'{{"e":"kline","E":{event_ms},"s":"{symbol}","k":{{"t":{self.open_time},'
            f'"T":{self.close_time},"s":"{symbol}","i":"{interval.value}",'
            f'"f":{self.first_trade_id},"L":{self.last_trade_id},"o":"{self.open}",'
            f'"c":"{self.close}","h":"{self.high}","l":"{self.low}","v":"{self.volume}",'
            f'"n":{self.trades},"x":{"true" if self.is_final else "false"},'
            f'"q":"{self.quote_volume}","V":"{self.taker_base}","Q":"{self.taker_quote}",'
            f'"B":"0"}}}}'
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KlineFrame:
    """A kline frame ready to send: raw and combined JSON text, built once for all clients."""

    stream: str
    raw: str
    combined: str
    is_final: bool
    open_time: int


def _text(value: Decimal) -> str:
    return format(value, "f")


def _quantum(*values: Decimal) -> Decimal:
    """Return the finest quantum of the values (so all of them lie on its grid)."""
    exponent = min(int(v.as_tuple().exponent) for v in values)
    return Decimal(1).scaleb(exponent)


def trade_count(volume: Decimal) -> int:
    """Return a plausible number of trades for a candle's volume (0 for no volume)."""
    return 0 if volume <= 0 else 1 + int(math.sqrt(float(volume)) * 50)


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleShape:
    """What partial klines of one candle need, computed once per candle."""

    price_q: Decimal
    volume_q: Decimal
    partial_volume_q: Decimal
    taker_ratio: Decimal
    upper_wick: Decimal
    lower_wick: Decimal
    first_trade_id: int
    trades: int

    @classmethod
    def of(cls, candle: Candle, *, first_trade_id: int) -> "CandleShape":
        """Return the shape of ``candle``, whose first trade has id ``first_trade_id``."""
        o, c = candle.open, candle.close
        spread = candle.high - candle.low
        volume_q = _quantum(candle.volume)
        return cls(
            price_q=_quantum(o, candle.high, candle.low, c),
            volume_q=volume_q,
            partial_volume_q=min(volume_q, Decimal("0.01")),
            taker_ratio=Decimal("0.5") + (Decimal("0.2") * (c - o) / spread if spread else 0),
            upper_wick=candle.high - max(o, c),
            lower_wick=min(o, c) - candle.low,
            first_trade_id=first_trade_id,
            trades=trade_count(candle.volume),
        )


def kline_row(candle: Candle, shape: CandleShape, fraction: Decimal) -> KlineRow:
    """Return the kline ``fraction`` (0..1) of the way through ``candle``; 1 gives it exactly.

    Partial values are consistent: a running high and low, a close moving from the open toward
    the final close, and a volume that grows with the fraction.
    """
    o, high, low, c, v = candle.open, candle.high, candle.low, candle.close, candle.volume
    trades, volume_q = shape.trades, shape.volume_q
    is_final = fraction >= 1
    if not is_final:
        q = shape.price_q
        c = (o + (c - o) * fraction).quantize(q)
        high = max(o, c) + (shape.upper_wick * fraction).quantize(q, ROUND_DOWN)
        low = min(o, c) - (shape.lower_wick * fraction).quantize(q, ROUND_DOWN)
        volume_q = shape.partial_volume_q
        v = (v * fraction).quantize(volume_q, ROUND_DOWN)
        trades = int(trades * fraction)
    mid = (o + c) / 2
    taker_base = (v * shape.taker_ratio).quantize(volume_q, ROUND_DOWN)
    first_id = shape.first_trade_id
    return KlineRow(
        open_time=candle.open_time_ms,
        close_time=candle.close_time_ms - 1,
        open=_text(o),
        high=_text(high),
        low=_text(low),
        close=_text(c),
        volume=_text(v),
        quote_volume=_text((v * mid).quantize(_QUOTE_Q)),
        trades=trades,
        first_trade_id=first_id if trades else -1,
        last_trade_id=first_id + trades - 1 if trades else -1,
        taker_base=_text(taker_base),
        taker_quote=_text((taker_base * mid).quantize(_QUOTE_Q)),
        is_final=is_final,
    )


class _Series:
    """One symbol's candles, with trade ids and the candles deleted from the exchange."""

    def __init__(self, symbol: str, interval: Interval, candles: Sequence[Candle]) -> None:
        self.symbol = symbol
        self.stream = f"{symbol.lower()}@kline_{interval.value}"
        self.interval = interval
        self.all = list(candles)
        self.shapes: dict[int, CandleShape] = {}
        next_id = 1
        for candle in self.all:
            shape = CandleShape.of(candle, first_trade_id=next_id)
            self.shapes[candle.open_time_ms] = shape
            next_id += shape.trades
        self.live: dict[int, Candle] = {c.open_time_ms: c for c in self.all}
        self.open_times = sorted(self.live)

    def delete(self, open_times: Iterable[int]) -> int:
        """Remove candles from the exchange; return how many were there."""
        removed = sum(self.live.pop(t, None) is not None for t in open_times)
        self.open_times = sorted(self.live)
        return removed

    def row(self, candle: Candle, fraction: Decimal) -> KlineRow:
        return kline_row(candle, self.shapes[candle.open_time_ms], fraction)

    def frame(self, candle: Candle, fraction: Decimal, event_ms: int) -> KlineFrame:
        row = self.row(candle, fraction)
        raw = row.payload(symbol=self.symbol, interval=self.interval, event_ms=event_ms)
        return KlineFrame(
            stream=self.stream,
            raw=raw,
            combined=f'{{"stream":"{self.stream}","data":{raw}}}',
            is_final=row.is_final,
            open_time=candle.open_time_ms,
        )


class SimMarket:
    """The market time model: a stepping clock over preloaded candles of one interval."""

    def __init__(
        self,
        series: Mapping[str, Sequence[Candle]],
        *,
        interval: Interval,
        history: int,
        updates_per_candle: int,
    ) -> None:
        _check_series(series, interval)
        if history < 0 or updates_per_candle < 0:
            raise ConfigError("history and updates_per_candle must be 0 or more")
        self.interval = interval
        self._series = {symbol: _Series(symbol, interval, c) for symbol, c in series.items()}
        self._steps_per_candle = updates_per_candle + 1
        self._first_open = min(c[0].open_time_ms for c in series.values())
        last_open = max(c[-1].open_time_ms for c in series.values())
        self._slots = (last_open - self._first_open) // interval.ms + 1
        self._slot = min(history, self._slots)
        self._sub = 1
        self._now = self._first_open + self._slot * interval.ms

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols traded, as Binance spells them (``BTCUSDT``)."""
        return tuple(self._series)

    @property
    def now_ms(self) -> int:
        """Return the exchange time (ms)."""
        return self._now

    @property
    def finished(self) -> bool:
        """Return whether every candle has been closed and sent."""
        return self._slot >= self._slots

    @property
    def next_step_ms(self) -> int | None:
        """Return the exchange time of the next step, or ``None`` when finished."""
        if self.finished:
            return None
        return self._step_time(self._slot, self._sub)

    @property
    def steps_per_candle(self) -> int:
        """Return how many frames each candle gets: its updates plus the final one."""
        return self._steps_per_candle

    def candles(self, symbol: str) -> list[Candle]:
        """Return every candle of ``symbol`` as loaded, deleted ones included."""
        return list(self._series[symbol].all)

    def delete(self, symbol: str, open_times: Iterable[int]) -> int:
        """Make candles vanish from REST and WS; return how many were there."""
        return self._series[symbol].delete(open_times)

    def move_clock(self, target_ms: int) -> None:
        """Let the clock run toward ``target_ms`` between steps, never reaching the next one."""
        upper = self.next_step_ms
        if upper is not None:
            self._now = max(self._now, min(target_ms, upper - 1))

    def step(self) -> list[KlineFrame]:
        """Advance the clock to the next step and return the frames it publishes."""
        if self.finished:
            return []
        open_time = self._first_open + self._slot * self.interval.ms
        self._now = self._step_time(self._slot, self._sub)
        fraction = Decimal(self._sub) / Decimal(self._steps_per_candle)
        frames = [
            s.frame(candle, fraction, self._now)
            for s in self._series.values()
            if (candle := s.live.get(open_time)) is not None
        ]
        self._sub += 1
        if self._sub > self._steps_per_candle:
            self._sub = 1
            self._slot += 1
        return frames

    def klines(
        self, symbol: str, *, start: int | None, end: int | None, limit: int
    ) -> list[KlineRow]:
        """Return klines with Binance's selection rules; the last one may still be open."""
        series = self._series[symbol]
        times = series.open_times
        hi = bisect.bisect_right(times, self._now)
        if end is not None:
            hi = min(hi, bisect.bisect_right(times, end))
        if start is not None:
            lo = bisect.bisect_left(times, start)
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        rows = []
        for open_time in times[lo:hi]:
            candle = series.live[open_time]
            elapsed = Decimal(self._now - open_time) / Decimal(self.interval.ms)
            rows.append(series.row(candle, min(elapsed, Decimal(1))))
        return rows

    def _step_time(self, slot: int, sub: int) -> int:
        open_time = self._first_open + slot * self.interval.ms
        return open_time + sub * self.interval.ms // self._steps_per_candle


def _check_series(series: Mapping[str, Sequence[Candle]], interval: Interval) -> None:
    if not series:
        raise ConfigError("the market needs at least one symbol")
    for symbol, candles in series.items():
        if not candles:
            raise ConfigError(f"no candles for {symbol}")
        for candle in candles:
            if candle.symbol != symbol or candle.interval != interval:
                raise ConfigError(f"candle {candle} is not a {symbol} {interval} candle")


def load_csv(path: Path, *, symbol: str, interval: Interval, limit: int) -> list[Candle]:
    """Validate a candle CSV and return up to ``limit`` of its candles.

    Raise ``DataIntegrityError`` naming file and line for a bad row, ``ConfigError`` if the
    file cannot be read.
    """
    csv = CandleCsv(path, venue=Venue.BINANCE, symbol=symbol, interval=interval)
    csv.validate()
    candles: list[Candle] = []
    for chunk in csv.chunks(10_000):
        candles.extend(chunk[: limit - len(candles)])
        if len(candles) >= limit:
            break
    return candles


def synthetic_series(
    symbols: Sequence[str], *, seed: int, count: int, interval: Interval, start_ms: int
) -> dict[str, list[Candle]]:
    """Generate ``count`` candles per symbol; each symbol's seed is derived from ``seed``."""
    series: dict[str, list[Candle]] = {}
    for symbol in symbols:
        symbol_seed = seed * 1_000_003 + zlib.crc32(symbol.encode())
        price = _start_price(symbol, symbol_seed)
        params = MarketParams(
            start_price=price,
            base_volume=40.0 * 30_000.0 / price,
            price_decimals=max(2, 6 - math.floor(math.log10(price))),
        )
        candles = generate_candles(
            count=count,
            seed=symbol_seed,
            symbol=symbol,
            interval=interval,
            start_ms=start_ms,
            params=params,
        )
        series[symbol] = list(candles)
    return series


def _start_price(symbol: str, seed: int) -> float:
    for base, price in _KNOWN_START_PRICES.items():
        if symbol.startswith(base):
            return price
    rng = random.Random(seed)  # noqa: S311 -- reproducible simulation, not cryptography
    return round(10 ** rng.uniform(0.0, 3.0), 2)
