"""The batch reference: the whole spec computed vectorised over a series (numpy and pandas).

Training sets are built with it, and the tests hold the incremental engine equal to it. It
follows the definitions in ``features/spec.py`` literally — every rolling statistic is taken
over its whole window, every recursion seeded the same way — so it is the slow, obvious
version the fast one is checked against. A series is cut into segments at gaps longer than
the spec allows and at impossible candles, and each segment is computed on its own, exactly as
the incremental engine resets.
"""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from paper_trader.errors import DataIntegrityError
from paper_trader.features.spec import EMA_CROSS_DEAD_BAND, FeatureSpec, Indicator

Array = npt.NDArray[np.float64]


class Series:
    """One segment's columns as float arrays, with the helpers every kind needs."""

    def __init__(self, t: npt.NDArray[np.int64], ohlcv: Array, interval_ms: int) -> None:
        self.t = t
        self.o, self.h, self.l, self.c, self.v = ohlcv
        self.size = len(t)
        self.interval_ms = interval_ms

    def nan(self) -> Array:
        return np.full(self.size, np.nan)


def rolling(x: Array, n: int, reduce: Callable[..., Array]) -> Array:
    """Apply reduce(axis=1) over every full window of n values; NaN before the first."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[n - 1 :] = reduce(sliding_window_view(x, n), axis=1)
    return out


def run_length(x: Array) -> npt.NDArray[np.int64]:
    """Return, at each index, how many values up to it in a row equal it."""
    idx = np.arange(len(x))
    if len(x) == 0:
        return idx
    starts = np.r_[True, x[1:] != x[:-1]]
    start_idx = np.maximum.accumulate(np.where(starts, idx, 0))
    return idx - start_idx + 1


def window_sum(x: Array, n: int) -> Array:
    """Rolling sum, exactly 0.0 where the whole window is 0."""
    total = rolling(x, n, np.sum)
    total[(run_length(x) >= n) & (x == 0.0)] = 0.0
    return total


def ema(x: Array, n: int, alpha: float | None = None) -> Array:
    """EMA seeded with the mean of the first n non-NaN values; NaN before that."""
    a = 2.0 / (n + 1) if alpha is None else alpha
    out = np.full(len(x), np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid) < n:
        return out
    first = valid[0]
    seed_at = first + n - 1
    tail = np.r_[np.mean(x[first : seed_at + 1]), x[seed_at + 1 :]]
    out[seed_at:] = pd.Series(tail).ewm(alpha=a, adjust=False).mean().to_numpy()
    return out


def lag(x: Array, k: int) -> Array:
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def prev_close_delta(s: Series) -> Array:
    delta: Array = s.c - lag(s.c, 1)
    return delta


def _sma(s: Series, n: int) -> list[Array]:
    mean = rolling(s.c, n, np.mean)
    flat = run_length(s.c) >= n
    mean[flat] = s.c[flat]
    return [mean, s.c / mean - 1.0]


def _vwap(s: Series, n: int) -> list[Array]:
    vol = window_sum(s.v, n)
    pv = rolling((s.h + s.l + s.c) / 3.0 * s.v, n, np.sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(vol == 0.0, s.c, pv / vol)
    return [level, s.c / level - 1.0]


def _bbands(s: Series, n: int, k: int) -> list[Array]:
    mid = rolling(s.c, n, np.mean)
    var = rolling(s.c, n, np.var)
    flat = run_length(s.c) >= n
    mid[flat] = s.c[flat]
    var[flat] = 0.0
    band = k * np.sqrt(var)
    lower = mid - band
    with np.errstate(invalid="ignore", divide="ignore"):
        pctb = np.where(band == 0.0, 0.5, (s.c - lower) / (2.0 * band))
    pctb[np.isnan(mid)] = np.nan
    return [mid + band, mid, lower, 2.0 * band / mid, pctb]


def _rsi(s: Series, n: int) -> list[Array]:
    d = prev_close_delta(s)
    gain = ema(np.where(d > 0.0, d, np.where(np.isnan(d), np.nan, 0.0)), n, 1.0 / n)
    loss = ema(np.where(d < 0.0, -d, np.where(np.isnan(d), np.nan, 0.0)), n, 1.0 / n)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total == 0.0, 50.0, 100.0 * gain / total)
    return [rsi]


def _macd(s: Series, fast: int, slow: int, signal: int) -> list[Array]:
    line = ema(s.c, fast) - ema(s.c, slow)
    sig = ema(line, signal)
    hist = line - sig
    return [line, sig, hist, line / s.c, sig / s.c, hist / s.c]


def _extremes(s: Series, n: int) -> tuple[Array, Array]:
    return rolling(s.h, n, np.max), rolling(s.l, n, np.min)


def _stoch(s: Series, n: int, d: int) -> list[Array]:
    hh, ll = _extremes(s, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(hh == ll, 50.0, 100.0 * (s.c - ll) / (hh - ll))
    k[np.isnan(hh)] = np.nan
    return [k, rolling(k, d, np.sum) / d]


def _willr(s: Series, n: int) -> list[Array]:
    hh, ll = _extremes(s, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(hh == ll, -50.0, -100.0 * (hh - s.c) / (hh - ll))
    r[np.isnan(hh)] = np.nan
    return [r]


def _atr(s: Series, n: int) -> list[Array]:
    prev = lag(s.c, 1)
    tr = np.maximum(s.h - s.l, np.maximum(np.abs(s.h - prev), np.abs(s.l - prev)))
    tr[0] = np.nan
    value = ema(tr, n, 1.0 / n)
    return [value, 100.0 * value / s.c]


def _obv_flow(s: Series, n: int) -> list[Array]:
    d = prev_close_delta(s)
    signed = np.where(d > 0.0, s.v, np.where(d < 0.0, -s.v, 0.0))[1:]
    vol = window_sum(s.v[1:], n)
    flow = window_sum(signed, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(vol == 0.0, 0.0, flow / vol)
    out[np.isnan(vol)] = np.nan
    return [np.r_[np.nan, out]]


def _vol_chg(s: Series, _n: int) -> list[Array]:
    prev = lag(s.v, 1)
    both = s.v + prev
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(both == 0.0, 0.0, (s.v - prev) / both)
    out[0] = np.nan
    return [out]


def _vol_ratio(s: Series, n: int) -> list[Array]:
    total = window_sum(s.v, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total == 0.0, 1.0, s.v * n / total)
    out[np.isnan(total)] = np.nan
    return [out]


def _ema_cross(s: Series, fast: int, slow: int) -> list[Array]:
    spread = ema(s.c, fast) / ema(s.c, slow) - 1.0
    band = EMA_CROSS_DEAD_BAND
    cross = np.where(spread > band, 1.0, np.where(spread < -band, -1.0, 0.0))
    cross[np.isnan(spread)] = np.nan
    return [cross, spread]


def _volatility(s: Series, n: int) -> list[Array]:
    r = (s.c / lag(s.c, 1) - 1.0)[1:]
    var = rolling(r, n, np.var)
    var[(run_length(r) >= n)] = 0.0
    return [np.r_[np.nan, np.sqrt(var)]]


def _htf(s: Series, multiple: int, n_ema: int, k_ret: int) -> list[Array]:
    bucket = s.t // (multiple * s.interval_ms)
    _, first_idx, inverse = np.unique(bucket, return_index=True, return_inverse=True)
    last_idx = np.r_[first_idx[1:] - 1, s.size - 1]
    closes = s.c[last_idx]  # bucket j's close; bucket j is complete once j + 1 starts
    done = inverse  # completed buckets before the current one
    e = ema(closes, n_ema)
    a = 2.0 / (n_ema + 1)
    trend = s.nan()
    ret = s.nan()
    has_ema = done >= n_ema
    prev_e = e[np.maximum(done - 1, 0)]
    trend[has_ema] = s.c[has_ema] / ((1.0 - a) * prev_e[has_ema] + a * s.c[has_ema]) - 1.0
    has_ret = done >= k_ret
    ret[has_ret] = s.c[has_ret] / closes[done[has_ret] - k_ret] - 1.0
    return [trend, ret]


KINDS: dict[str, Callable[..., list[Array]]] = {
    "sma": _sma,
    "ema": lambda s, n: [ema(s.c, n)],
    "vwap": _vwap,
    "ret": lambda s, k: [s.c / lag(s.c, k) - 1.0],
    "roc": lambda s, k: [100.0 * (s.c / lag(s.c, k) - 1.0)],
    "mom": lambda s, k: [s.c - lag(s.c, k)],
    "range": lambda s: [
        (s.h - s.l) / s.c,
        np.where(s.h == s.l, 0.5, (s.c - s.l) / np.where(s.h == s.l, 1.0, s.h - s.l)),
    ],
    "bbands": _bbands,
    "rsi": _rsi,
    "macd": _macd,
    "stoch": _stoch,
    "willr": _willr,
    "atr": _atr,
    "obv_flow": _obv_flow,
    "vol_chg": _vol_chg,
    "vol_ratio": _vol_ratio,
    "ema_cross": _ema_cross,
    "volatility": _volatility,
    "htf": _htf,
}


def invalid_rows(ohlcv: Array) -> npt.NDArray[np.bool_]:
    """Return the rows the engine refuses: the rule of ``engine.SeriesEngine.update``."""
    o, h, l, c, v = ohlcv
    with np.errstate(invalid="ignore"):
        ok = (l > 0.0) & (l <= h) & (h < np.inf)
        ok &= (o > 0.0) & (o < np.inf) & (c > 0.0) & (c < np.inf) & (v >= 0.0) & (v < np.inf)
    bad: npt.NDArray[np.bool_] = ~ok
    return bad


def segments(t: npt.NDArray[np.int64], bad: npt.NDArray[np.bool_], gap_ms: int) -> list[slice]:
    """Cut the rows into runs of valid candles no more than gap_ms apart."""
    cut = np.r_[True, np.diff(t) > gap_ms] | bad | np.r_[True, bad[:-1]]
    starts = np.flatnonzero(cut)
    ends = np.r_[starts[1:], len(t)]
    return [slice(a, b) for a, b in zip(starts, ends, strict=True) if not bad[a]]


def compute(
    spec: FeatureSpec,
    open_time_ms: npt.ArrayLike,
    ohlcv: npt.ArrayLike,
    interval_ms: int,
) -> pd.DataFrame:
    """Return every column of the spec for every candle (NaN until its warm-up).

    ``ohlcv`` is a (5, n) array of open, high, low, close and volume. Raises
    ``DataIntegrityError`` if the times are not strictly increasing.
    """
    t = np.asarray(open_time_ms, dtype=np.int64)
    values = np.asarray(ohlcv, dtype=np.float64).reshape(5, -1)
    if values.shape[1] != len(t):
        raise DataIntegrityError(f"{len(t)} times for {values.shape[1]} candles")
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        at = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise DataIntegrityError(f"candle times must increase; row {at} does not")
    out = np.full((len(t), len(spec.names)), np.nan)
    gap_ms = (spec.max_bridged_gap + 1) * interval_ms
    for part in segments(t, invalid_rows(values), gap_ms):
        series = Series(t[part], values[:, part], interval_ms)
        out[part] = _columns(spec, series)
    frame = pd.DataFrame(out, columns=list(spec.names))
    frame.insert(0, "open_time_ms", t)
    return frame


def _columns(spec: FeatureSpec, series: Series) -> Array:
    cols: list[Array] = []
    for indicator in spec.indicators:
        produced = _indicator(indicator, series)
        if len(produced) != len(indicator.columns):
            raise AssertionError(f"{indicator.kind} produced {len(produced)} columns")
        cols.extend(produced)
    return np.column_stack(cols)


def _indicator(indicator: Indicator, series: Series) -> list[Array]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return KINDS[indicator.kind](series, *indicator.params)
