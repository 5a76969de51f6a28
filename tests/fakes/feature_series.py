"""Synthetic candle series for the feature tests: random walks with halts, gaps and spikes."""

import numpy as np
import numpy.typing as npt

from paper_trader.errors import DataIntegrityError
from paper_trader.features.engine import SeriesEngine

MINUTE = 60_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MINUTE)


def random_series(
    seed: int,
    n: int,
    *,
    price: float = 30_000.0,
    halts: int = 0,
    bridged_gaps: int = 0,
    long_gaps: int = 0,
    interval_ms: int = MINUTE,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return open times and a (5, n) OHLCV array: a 2-decimal random walk with events in it.

    A halt is a run of flat, zero-volume candles; a bridged gap skips a few candles, a long gap
    more than the spec bridges.
    """
    rng = np.random.default_rng(seed)
    close = np.round(price * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.001, (2, n))) * close
    high = np.round(np.maximum(open_, close) + wick[0], 2)
    low = np.round(np.minimum(open_, close) - wick[1], 2)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 6)
    for _ in range(halts):
        at = int(rng.integers(1, max(2, n - 10)))
        length = int(rng.integers(5, 400))
        flat = close[at - 1]
        part = slice(at, min(n, at + length))
        open_[part] = high[part] = low[part] = close[part] = flat
        volume[part] = 0.0
    steps = np.ones(max(n, 2), dtype=np.int64)
    for _ in range(bridged_gaps):
        steps[int(rng.integers(1, max(2, n)))] += int(rng.integers(1, 60))
    for _ in range(long_gaps):
        steps[int(rng.integers(1, max(2, n)))] += int(rng.integers(62, 500))
    times = START_MS + (np.cumsum(steps)[:n] - 1) * interval_ms
    return times.astype(np.int64), np.vstack([open_, high, low, close, volume])


def incremental_rows(
    engine: SeriesEngine, times: npt.NDArray[np.int64], ohlcv: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Feed every candle to the engine; an impossible candle gives a row of NaN."""
    rows = []
    width = len(engine.spec.names)
    for t, values in zip(times.tolist(), ohlcv.T.tolist(), strict=True):
        try:
            row = engine.update(t, *values)
        except DataIntegrityError:
            row = None
        rows.append(row if row is not None else [np.nan] * width)
    return np.array(rows)
