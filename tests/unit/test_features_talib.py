"""Dev only: the feature engines (per series, column-wise, batch) against TA-Lib.

A seeded geometric random walk of 1m candles around 30,000 (2-decimal prices, every candle's
high above its low, lognormal volumes) goes through the incremental engines and the batch
reference; each column is compared with its TA-Lib counterpart to 1e-8 relative
(``|a - b| <= 1e-8 * max(1, |a|, |b|)``) on every candle from the later of our warm-up and
TA-Lib's first value.

The deliberate difference: for a flat window (highest high = lowest low, or no close change
at all) the spec gives 50 for %K and %D, -50 for %R and 50 for RSI where TA-Lib gives 0, so
the series here has no flat window (asserted). TA-Lib is a dev dependency; without it the
module is skipped.
"""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from paper_trader.features import batch
from paper_trader.features.block import SeriesBlock
from paper_trader.features.engine import SeriesEngine
from paper_trader.features.spec import default_spec

talib = pytest.importorskip("talib")

Array = npt.NDArray[np.float64]
SPEC = default_spec()
WARMUP = {col.name: col.warmup for col in SPEC.columns}
SEED = 20_240_611
CANDLES = 4_000
MIN_POINTS = 3_500  # compared candles per column, at least (MACD starts at 300)
MINUTE = 60_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MINUTE)
RELATIVE = 1e-8
# TA-Lib seeds MACD's fast EMA later than the spec (at the slow EMA's first value, with the
# mean of the closes before it), so the line, and the signal and histogram built on it, differ
# at first; the difference decays by (11/13) per candle, below 1e-8 after ~150 candles. Only
# candles from 300 on are compared.
MACD_FROM = 300


class Candles:
    """The synthetic series: open times and the five OHLCV columns."""

    def __init__(self, seed: int, n: int) -> None:
        rng = np.random.default_rng(seed)
        self.c = np.round(30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))), 2)
        self.o = np.r_[30_000.0, self.c[:-1]]
        wick = np.maximum(np.abs(rng.normal(0.0, 0.001, (2, n))) * self.c, 0.01)
        self.h = np.round(np.maximum(self.o, self.c) + wick[0], 2)
        self.l = np.round(np.minimum(self.o, self.c) - wick[1], 2)
        self.v = rng.lognormal(1.0, 1.0, n)
        self.t = START_MS + np.arange(n, dtype=np.int64) * MINUTE

    @property
    def ohlcv(self) -> Array:
        return np.vstack([self.o, self.h, self.l, self.c, self.v])


@pytest.fixture(scope="module")
def candles() -> Candles:
    series = Candles(SEED, CANDLES)
    assert (series.h >= np.maximum(series.o, series.c)).all()
    assert (series.l <= np.minimum(series.o, series.c)).all()
    assert (series.h > series.l).all()  # so no window of highs and lows is flat
    unchanged = np.diff(series.c) == 0.0
    assert not sliding_window_view(unchanged, 14).all(axis=1).any()  # no flat RSI window
    return series


@pytest.fixture(scope="module", params=["incremental", "columnwise", "batch"])
def ours(request: pytest.FixtureRequest, candles: Candles) -> dict[str, Array]:
    """Every spec column from one of the two engines, by name."""
    if request.param == "incremental":
        engine = SeriesEngine(SPEC, MINUTE)
        rows = [
            engine.update(t, *values)
            for t, values in zip(candles.t.tolist(), candles.ohlcv.T.tolist(), strict=True)
        ]
        assert all(row is not None for row in rows)
        table = np.array(rows)
        return {name: table[:, j] for j, name in enumerate(SPEC.names)}
    if request.param == "columnwise":
        block = SeriesBlock(SPEC, MINUTE, slots=1)
        slot = np.array([0])
        table = np.array(
            [
                block.update(slot, candles.t[i : i + 1], candles.ohlcv[:, i : i + 1].T).rows[0]
                for i in range(len(candles.t))
            ]
        )
        return {name: table[:, j] for j, name in enumerate(SPEC.names)}
    frame = batch.compute(SPEC, candles.t, candles.ohlcv, MINUTE)
    return {name: frame[name].to_numpy() for name in SPEC.names}


def assert_matches(ours: dict[str, Array], name: str, theirs: Array, *, start: int = 0) -> None:
    """Our column equals TA-Lib's to 1e-8 relative wherever both should have a value."""
    mine = ours[name]
    first = max(start, WARMUP[name] - 1, int(np.flatnonzero(~np.isnan(theirs))[0]))
    a, b = mine[first:], theirs[first:]
    assert a.size >= MIN_POINTS, f"{name}: only {a.size} candles to compare"
    missing = np.flatnonzero(~np.isfinite(a))
    assert missing.size == 0, f"{name}: no value at index {first + missing[0]}"
    assert np.isfinite(b).all(), f"{name}: TA-Lib has gaps after index {first}"
    tolerance = RELATIVE * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    off = np.flatnonzero(np.abs(a - b) > tolerance)
    if off.size:
        i = int(off[0])
        pytest.fail(
            f"{name} at index {first + i}: ours {float(a[i])!r}, TA-Lib {float(b[i])!r} "
            f"({off.size} of {a.size} candles beyond 1e-8 relative)"
        )


def close_only(fn: Callable[..., Array], candles: Candles, *args: int) -> Array:
    return np.asarray(fn(candles.c, *args))


def test_sma_10_to_200_equal_talib_sma(ours: dict[str, Array], candles: Candles) -> None:
    """SMA 10/20/50/100/200 equal talib.SMA."""
    for n in (10, 20, 50, 100, 200):
        assert_matches(ours, f"sma_{n}", close_only(talib.SMA, candles, n))


def test_ema_9_to_50_equal_talib_ema_seeded_with_the_sma(
    ours: dict[str, Array], candles: Candles
) -> None:
    """EMA 9/12/26/50, SMA-seeded, equal talib.EMA from their first value."""
    for n in (9, 12, 26, 50):
        assert_matches(ours, f"ema_{n}", close_only(talib.EMA, candles, n))


def test_rsi_14_equals_talib_wilder_rsi(ours: dict[str, Array], candles: Candles) -> None:
    """Wilder's RSI 14 equals talib.RSI from its first value."""
    assert_matches(ours, "rsi_14", close_only(talib.RSI, candles, 14))


def test_macd_line_signal_and_histogram_equal_talib_once_the_fast_seed_has_decayed(
    ours: dict[str, Array], candles: Candles
) -> None:
    """MACD 12/26/9 line, signal and histogram equal talib.MACD from candle 300 on."""
    line, signal, hist = talib.MACD(candles.c, 12, 26, 9)
    assert_matches(ours, "macd_12_26_9", line, start=MACD_FROM)
    assert_matches(ours, "macd_signal_12_26_9", signal, start=MACD_FROM)
    assert_matches(ours, "macd_hist_12_26_9", hist, start=MACD_FROM)


def test_bollinger_20_2_bands_equal_talib_bbands_with_population_sd(
    ours: dict[str, Array], candles: Candles
) -> None:
    """Bollinger 20/2 upper, middle and lower bands equal talib.BBANDS (SMA, population sd)."""
    upper, mid, lower = talib.BBANDS(candles.c, 20, 2, 2, matype=0)
    assert_matches(ours, "bb_upper_20_2", upper)
    assert_matches(ours, "bb_mid_20_2", mid)
    assert_matches(ours, "bb_lower_20_2", lower)


def test_atr_14_equals_talib_wilder_atr(ours: dict[str, Array], candles: Candles) -> None:
    """Wilder's ATR 14 equals talib.ATR from its first value."""
    assert_matches(ours, "atr_14", talib.ATR(candles.h, candles.l, candles.c, 14))


def test_stochastic_k_and_d_equal_talib_fast_stochastic(
    ours: dict[str, Array], candles: Candles
) -> None:
    """Stochastic 14/3 %K and %D equal talib.STOCHF fastk and fastd (SMA of 3)."""
    k, d = talib.STOCHF(
        candles.h, candles.l, candles.c, fastk_period=14, fastd_period=3, fastd_matype=0
    )
    assert_matches(ours, "stoch_k_14_3", k)
    assert_matches(ours, "stoch_d_14_3", d)


def test_williams_r_14_equals_talib_willr(ours: dict[str, Array], candles: Candles) -> None:
    """Williams %R 14 equals talib.WILLR."""
    assert_matches(ours, "willr_14", talib.WILLR(candles.h, candles.l, candles.c, 14))


def test_roc_10_equals_talib_roc(ours: dict[str, Array], candles: Candles) -> None:
    """Rate of change over 10 candles, in percent, equals talib.ROC."""
    assert_matches(ours, "roc_10", close_only(talib.ROC, candles, 10))


def test_mom_10_equals_talib_mom(ours: dict[str, Array], candles: Candles) -> None:
    """Momentum over 10 candles, in price units, equals talib.MOM."""
    assert_matches(ours, "mom_10", close_only(talib.MOM, candles, 10))
