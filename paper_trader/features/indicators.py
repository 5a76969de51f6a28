"""Incremental price indicators: one class per kind of the spec, O(1) work per candle.

Each ``step(t, h, l, c, v, out)`` folds one valid candle into the state and writes the
indicator's columns into ``out`` from index ``at`` on, leaving NaN until its warm-up. The
formulas are the ones documented in ``features/spec.py``; ``features/batch.py`` computes the
same columns vectorised, and the tests hold the two equal. The volume indicators are in
``volume.py``; ``engine.py`` maps each kind of the spec to its class.
"""

import abc
import math

from paper_trader.features.rolling import History, Moments, Window
from paper_trader.features.spec import EMA_CROSS_DEAD_BAND

NAN = math.nan
isnan = math.isnan


class Ema:
    """An exponential average seeded with the mean of its first n inputs."""

    __slots__ = ("alpha", "count", "n", "seed", "value")

    def __init__(self, n: int, alpha: float | None = None) -> None:
        self.n = n
        self.alpha = 2.0 / (n + 1) if alpha is None else alpha
        self.count = 0
        self.seed = 0.0
        self.value = NAN

    def push(self, x: float) -> float:
        """Fold x in; return the average, NaN until n inputs were seen."""
        self.count += 1
        if self.count > self.n:
            a = self.alpha
            self.value = (1.0 - a) * self.value + a * x
        elif self.count == self.n:
            self.value = (self.seed + x) / self.n
        else:
            self.seed += x
        return self.value


class Step(abc.ABC):
    """Base of the incremental indicators: the output index and a uniform ``step``."""

    __slots__ = ("at",)

    def __init__(self, at: int) -> None:
        self.at = at

    @abc.abstractmethod
    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        """Fold one candle in and write the columns."""


class Sma(Step):
    __slots__ = ("hist", "n", "since", "total")

    def __init__(self, at: int, n: int, hist: History) -> None:
        super().__init__(at)
        self.n = n
        self.hist = hist
        self.total = 0.0
        self.since = 0

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        hist = self.hist
        n = self.n
        count = hist.count
        total = self.total + c
        if count > n:
            total -= hist.buf[(hist.pos - 1 - n) & History.MASK]  # the close leaving the window
        self.since += 1
        if self.since >= n:  # re-sum exactly so rounding never accumulates
            total = sum(hist.last_n(min(n, count)))
            self.since = 0
        self.total = total
        if count >= n:
            mean = c if hist.run >= n else total / n
            out[self.at] = mean
            out[self.at + 1] = c / mean - 1.0


class EmaLevel(Step):
    __slots__ = ("ema",)

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.ema = Ema(n)

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        out[self.at] = self.ema.push(c)


class Lagged(Step):
    """Return, rate of change or momentum against the close k candles ago."""

    __slots__ = ("hist", "k")

    def __init__(self, at: int, k: int, hist: History) -> None:
        super().__init__(at)
        self.k = k
        self.hist = hist


class Return(Lagged):
    __slots__ = ()

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        hist = self.hist
        if hist.count > self.k:
            out[self.at] = c / hist.buf[(hist.pos - 1 - self.k) & History.MASK] - 1.0


class RateOfChange(Lagged):
    __slots__ = ()

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        hist = self.hist
        if hist.count > self.k:
            out[self.at] = 100.0 * (c / hist.buf[(hist.pos - 1 - self.k) & History.MASK] - 1.0)


class Momentum(Lagged):
    __slots__ = ()

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        hist = self.hist
        if hist.count > self.k:
            out[self.at] = c - hist.buf[(hist.pos - 1 - self.k) & History.MASK]


class Range(Step):
    __slots__ = ()

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        span = h - l
        out[self.at] = span / c
        out[self.at + 1] = 0.5 if span == 0.0 else (c - l) / span


class Bollinger(Step):
    __slots__ = ("k", "mom")

    def __init__(self, at: int, n: int, k: int) -> None:
        super().__init__(at)
        self.k = float(k)
        self.mom = Moments(n)

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        mom = self.mom
        mom.push(c)
        if mom.count >= mom.n:
            mid, var = mom.mean_var()
            band = self.k * math.sqrt(var)
            at = self.at
            out[at] = mid + band
            out[at + 1] = mid
            out[at + 2] = mid - band
            out[at + 3] = 2.0 * band / mid
            out[at + 4] = 0.5 if band == 0.0 else (c - (mid - band)) / (2.0 * band)


class Rsi(Step):
    __slots__ = ("gain", "loss", "prev")

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.gain = Ema(n, alpha=1.0 / n)
        self.loss = Ema(n, alpha=1.0 / n)
        self.prev = NAN

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        prev = self.prev
        self.prev = c
        if isnan(prev):  # the first candle has no change
            return
        d = c - prev
        g = self.gain.push(d if d > 0.0 else 0.0)
        lo = self.loss.push(-d if d < 0.0 else 0.0)
        if not isnan(g):
            total = g + lo
            out[self.at] = 50.0 if total == 0.0 else 100.0 * g / total


class Macd(Step):
    __slots__ = ("fast", "signal", "slow")

    def __init__(self, at: int, fast: int, slow: int, signal: int) -> None:
        super().__init__(at)
        self.fast = Ema(fast)
        self.slow = Ema(slow)
        self.signal = Ema(signal)

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        f = self.fast.push(c)
        s = self.slow.push(c)
        if isnan(s):
            return
        line = f - s
        sig = self.signal.push(line)
        at = self.at
        out[at] = line
        out[at + 3] = line / c
        if not isnan(sig):
            hist = line - sig
            out[at + 1] = sig
            out[at + 2] = hist
            out[at + 4] = sig / c
            out[at + 5] = hist / c


class Extremes(Step):
    """Base of the indicators that need the highest high and lowest low of n candles."""

    __slots__ = ("count", "highs", "lows", "n", "pos")

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.n = n
        self.highs = [0.0] * n
        self.lows = [0.0] * n
        self.pos = 0
        self.count = 0

    def push_extremes(self, h: float, l: float) -> bool:
        """Record the candle's high and low; return whether n candles were seen."""
        pos = self.pos
        self.highs[pos] = h
        self.lows[pos] = l
        pos += 1
        self.pos = 0 if pos == self.n else pos
        self.count += 1
        return self.count >= self.n


class Stochastic(Extremes):
    __slots__ = ("d", "ks")

    def __init__(self, at: int, n: int, d: int) -> None:
        super().__init__(at, n)
        self.ks = Window(d)
        self.d = d

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        if not self.push_extremes(h, l):
            return
        hh = max(self.highs)
        ll = min(self.lows)
        k = 50.0 if hh == ll else 100.0 * (c - ll) / (hh - ll)
        out[self.at] = k
        ks = self.ks
        ks.push(k)
        if ks.count >= self.d:
            out[self.at + 1] = sum(ks.values()) / self.d


class WilliamsR(Extremes):
    __slots__ = ()

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        if self.push_extremes(h, l):
            hh = max(self.highs)
            ll = min(self.lows)
            out[self.at] = -50.0 if hh == ll else -100.0 * (hh - c) / (hh - ll)


class Atr(Step):
    __slots__ = ("prev", "wilder")

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.wilder = Ema(n, alpha=1.0 / n)
        self.prev = NAN

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        prev = self.prev
        self.prev = c
        if isnan(prev):
            return
        tr = max(h - l, abs(h - prev), abs(l - prev))
        value = self.wilder.push(tr)
        if not isnan(value):
            out[self.at] = value
            out[self.at + 1] = 100.0 * value / c


class EmaCross(Step):
    __slots__ = ("fast", "slow")

    def __init__(self, at: int, fast: int, slow: int) -> None:
        super().__init__(at)
        self.fast = Ema(fast)
        self.slow = Ema(slow)

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        f = self.fast.push(c)
        s = self.slow.push(c)
        if not isnan(s):
            spread = f / s - 1.0
            cross = (
                1.0
                if spread > EMA_CROSS_DEAD_BAND
                else -1.0
                if spread < -EMA_CROSS_DEAD_BAND
                else 0.0
            )
            out[self.at] = cross
            out[self.at + 1] = spread


class Volatility(Step):
    __slots__ = ("mom", "prev")

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.mom = Moments(n)
        self.prev = NAN

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        prev = self.prev
        self.prev = c
        if isnan(prev):
            return
        mom = self.mom
        mom.push(c / prev - 1.0)
        if mom.count >= mom.n:
            out[self.at] = math.sqrt(mom.mean_var()[1])


class HigherTimeframe(Step):
    """Trend and momentum of buckets of ``multiple`` base candles, updated as candles arrive."""

    __slots__ = ("bucket", "bucket_ms", "closes", "ema", "k", "last_close")

    def __init__(self, at: int, multiple: int, n_ema: int, k_ret: int, *, interval_ms: int) -> None:
        super().__init__(at)
        self.bucket_ms = multiple * interval_ms
        self.ema = Ema(n_ema)
        self.closes = Window(k_ret)
        self.k = k_ret
        self.bucket = -1
        self.last_close = NAN

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        bucket = t // self.bucket_ms
        if bucket != self.bucket:
            if self.bucket >= 0:  # the previous bucket is complete
                self.ema.push(self.last_close)
                self.closes.push(self.last_close)
            self.bucket = bucket
        self.last_close = c
        ema = self.ema
        e = ema.value
        if ema.count >= ema.n:
            a = ema.alpha
            out[self.at] = c / ((1.0 - a) * e + a * c) - 1.0
        closes = self.closes
        if closes.count >= self.k:
            out[self.at + 1] = c / closes.buf[closes.pos] - 1.0  # the k-th last completed bucket
