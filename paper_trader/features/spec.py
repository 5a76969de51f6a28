"""The feature spec: one declarative list shared by the live engine and the batch reference.

Each entry names an indicator kind, its parameters and the columns it produces. Both engines
(``features/engine.py`` incremental, ``features/batch.py`` vectorised) implement every kind
from the definitions below; the tests hold them equal. The version hash covers the names, the
parameters, the gap rule and ``IMPLEMENTATION_VERSION``: change a formula, bump that number,
and every model and cache built on the old definition is refused.

Definitions (``c`` close, ``h`` high, ``l`` low, ``v`` volume, ``t`` the candle's index since
the last reset). A value is NaN until it can be computed. Each column declares its warm-up in
candles since a reset: exactly when it fills, except the higher-timeframe columns, which may
fill up to one bucket earlier depending on where the series starts in a bucket, so for them it
is an upper bound. A row is *ready* from the spec's warm-up (the largest) on, wherever the
series starts, and a ready row never holds a NaN:

- ``sma_n`` mean of the last n closes; ``px_sma_n`` = c / sma_n - 1.
- ``ema_n`` exponential average, alpha = 2/(n+1), seeded with the SMA of the first n closes (as
  TA-Lib seeds it).
- ``vwap_n`` Σ tp·v / Σ v over n candles with tp = (h+l+c)/3, and the close when the window
  has no volume; ``px_vwap_n`` = c / vwap_n - 1.
- ``ret_k`` = c / c[t-k] - 1.  ``roc_n`` = 100·(c / c[t-n] - 1).  ``mom_n`` = c - c[t-n].
- ``hl_range`` = (h - l) / c;  ``close_pos`` = (c - l) / (h - l), 0.5 when h = l.
- Bollinger n/k: mid = SMA, sd the population standard deviation of the closes; upper/lower =
  mid ± k·sd; width = (upper - lower) / mid; %b = (c - lower) / (upper - lower), 0.5 when sd = 0.
  A window of identical closes has sd = 0 and mid = c exactly.
- ``rsi_n`` Wilder: average gain and loss seeded with the mean of the first n changes, then
  a ← a + (x - a)/n; RSI = 100·g / (g + l), 50 when both are 0.
- MACD f/s/sig: line = EMA_f - EMA_s (each seeded on its own), signal = EMA_sig of the line
  seeded with the SMA of its first sig values, hist = line - signal; the ``_pct`` columns divide
  each by the close. TA-Lib seeds the fast EMA later; the difference decays below 1e-8 within
  about 150 candles.
- Stochastic n/d: %K = 100·(c - LL_n) / (HH_n - LL_n), 50 when HH = LL; %D = SMA_d of %K.
  Williams %R_n = -100·(HH_n - c) / (HH_n - LL_n), -50 when HH = LL. (TA-Lib gives 0 for a flat
  window.)
- ``atr_n`` Wilder average of the true range, first true range on the second candle, seeded
  with the mean of the first n; ``atr_pct_n`` = 100·atr / c.
- ``obv_flow_n`` = Σ sign(Δc)·v / Σ v over n candles (the OBV's change over the window, scaled
  by the volume that made it), 0 with no volume.
- ``vol_chg_1`` = (v - v[t-1]) / (v + v[t-1]), 0 when both are 0;  ``vol_ratio_n`` = v / mean_n(v),
  1 when the window has no volume.
- ``ema_spread_f_s`` = EMA_f / EMA_s - 1; ``ema_cross_f_s`` = +1 above +1e-9, -1 below -1e-9,
  else 0 (the dead band keeps a flat market's rounding out of the sign).
- ``volatility_n`` population standard deviation of the last n ``ret_1`` values.
- Higher timeframe mx (buckets of m base intervals aligned to the Unix epoch; a bucket's close
  is the close of its last candle): ``htf_trend_mx_n`` = c / e - 1 where e is the EMA_n of the
  completed buckets' closes advanced by the current close (the open bucket as it stands now);
  ``htf_ret_mx_k`` = c / close of the k-th last completed bucket - 1.

Gaps: consecutive candles more than ``max_bridged_gap`` intervals apart start a new segment
(every indicator warms up again); a shorter hole is bridged, the candles either side treated as
adjacent. An invalid candle (non-finite or non-positive price, negative volume, high below low)
also starts a new segment and has no row.

Model inputs are the scale-free columns; price levels (SMA, EMA, VWAP, bands, MACD in price
units, ATR, momentum) are kept for stops and display and never fed to a model.
"""

import hashlib
import json
from dataclasses import dataclass

IMPLEMENTATION_VERSION = 1
MAX_BRIDGED_GAP = 60
EMA_CROSS_DEAD_BAND = 1e-9
HTF_MULTIPLES = (5, 15, 60)


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One output column: its name, warm-up in candles, and whether models may read it."""

    name: str
    warmup: int
    model_input: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Indicator:
    """One indicator of the spec: a kind, its parameters and the columns it produces."""

    kind: str
    params: tuple[int, ...]
    columns: tuple[Column, ...]


def _suffix(params: tuple[int, ...]) -> str:
    return "_".join(str(p) for p in params)


def _col(name: str, warmup: int, *, model: bool) -> Column:
    return Column(name=name, warmup=warmup, model_input=model)


def sma(n: int) -> Indicator:
    """Simple moving average of the close, and the close's distance from it."""
    return Indicator(
        kind="sma",
        params=(n,),
        columns=(_col(f"sma_{n}", n, model=False), _col(f"px_sma_{n}", n, model=True)),
    )


def ema(n: int) -> Indicator:
    """Exponential moving average of the close (SMA-seeded)."""
    return Indicator(kind="ema", params=(n,), columns=(_col(f"ema_{n}", n, model=False),))


def vwap(n: int) -> Indicator:
    """Rolling volume-weighted average of the typical price, and the close's distance from it."""
    return Indicator(
        kind="vwap",
        params=(n,),
        columns=(_col(f"vwap_{n}", n, model=False), _col(f"px_vwap_{n}", n, model=True)),
    )


def ret(k: int) -> Indicator:
    """Simple return over k candles."""
    return Indicator(kind="ret", params=(k,), columns=(_col(f"ret_{k}", k + 1, model=True),))


def bbands(n: int, k: int) -> Indicator:
    """Bollinger bands: levels for display, width and %b for models."""
    s = _suffix((n, k))
    return Indicator(
        kind="bbands",
        params=(n, k),
        columns=(
            _col(f"bb_upper_{s}", n, model=False),
            _col(f"bb_mid_{s}", n, model=False),
            _col(f"bb_lower_{s}", n, model=False),
            _col(f"bb_width_{s}", n, model=True),
            _col(f"bb_pctb_{s}", n, model=True),
        ),
    )


def macd(fast: int, slow: int, signal: int) -> Indicator:
    """MACD line, signal and histogram, in price units and as a fraction of the close."""
    s = _suffix((fast, slow, signal))
    line, sig = slow, slow + signal - 1
    return Indicator(
        kind="macd",
        params=(fast, slow, signal),
        columns=(
            _col(f"macd_{s}", line, model=False),
            _col(f"macd_signal_{s}", sig, model=False),
            _col(f"macd_hist_{s}", sig, model=False),
            _col(f"macd_pct_{s}", line, model=True),
            _col(f"macd_signal_pct_{s}", sig, model=True),
            _col(f"macd_hist_pct_{s}", sig, model=True),
        ),
    )


def stoch(n: int, d: int) -> Indicator:
    """Fast stochastic %K and its d-candle mean %D."""
    s = _suffix((n, d))
    return Indicator(
        kind="stoch",
        params=(n, d),
        columns=(_col(f"stoch_k_{s}", n, model=True), _col(f"stoch_d_{s}", n + d - 1, model=True)),
    )


def atr(n: int) -> Indicator:
    """Wilder's average true range, and as a percentage of the close."""
    return Indicator(
        kind="atr",
        params=(n,),
        columns=(_col(f"atr_{n}", n + 1, model=False), _col(f"atr_pct_{n}", n + 1, model=True)),
    )


def ema_cross(fast: int, slow: int) -> Indicator:
    """EMA crossover state (-1, 0, +1) and the spread between the two averages."""
    s = _suffix((fast, slow))
    return Indicator(
        kind="ema_cross",
        params=(fast, slow),
        columns=(
            _col(f"ema_cross_{s}", slow, model=True),
            _col(f"ema_spread_{s}", slow, model=True),
        ),
    )


def htf(multiple: int, n_ema: int, k_ret: int) -> Indicator:
    """Higher-timeframe trend and momentum from buckets of ``multiple`` base candles."""
    return Indicator(
        kind="htf",
        params=(multiple, n_ema, k_ret),
        columns=(
            _col(f"htf_trend_{multiple}x_{n_ema}", multiple * (n_ema + 1), model=True),
            _col(f"htf_ret_{multiple}x_{k_ret}", multiple * (k_ret + 1), model=True),
        ),
    )


def _single(kind: str, n: int, warmup: int, *, model: bool, name: str | None = None) -> Indicator:
    column = _col(name or f"{kind}_{n}", warmup, model=model)
    return Indicator(kind=kind, params=(n,), columns=(column,))


def default_indicators() -> tuple[Indicator, ...]:
    """Return the indicators of the current spec, in column order."""
    return (
        *(sma(n) for n in (10, 20, 50, 100, 200)),
        *(ema(n) for n in (9, 12, 26, 50)),
        vwap(20),
        *(ret(k) for k in (1, 5, 15)),
        Indicator(
            kind="range",
            params=(),
            columns=(_col("hl_range", 1, model=True), _col("close_pos", 1, model=True)),
        ),
        bbands(20, 2),
        _single("rsi", 14, 15, model=True),
        macd(12, 26, 9),
        stoch(14, 3),
        _single("willr", 14, 14, model=True),
        _single("roc", 10, 11, model=True),
        _single("mom", 10, 11, model=False),
        atr(14),
        _single("obv_flow", 20, 21, model=True),
        _single("vol_chg", 1, 2, model=True),
        _single("vol_ratio", 20, 20, model=True),
        ema_cross(12, 26),
        ema_cross(9, 50),
        _single("volatility", 20, 21, model=True),
        _single("volatility", 60, 61, model=True),
        *(htf(m, 10, 3) for m in HTF_MULTIPLES),
    )


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The indicators, the gap rule and the version hash derived from them."""

    indicators: tuple[Indicator, ...]
    max_bridged_gap: int = MAX_BRIDGED_GAP
    implementation_version: int = IMPLEMENTATION_VERSION

    @property
    def columns(self) -> tuple[Column, ...]:
        """Return every column in output order."""
        return tuple(col for ind in self.indicators for col in ind.columns)

    @property
    def names(self) -> tuple[str, ...]:
        """Return every column name in output order."""
        return tuple(col.name for col in self.columns)

    @property
    def model_inputs(self) -> tuple[str, ...]:
        """Return the scale-free columns a model may read, in output order."""
        return tuple(col.name for col in self.columns if col.model_input)

    @property
    def warmup(self) -> int:
        """Return the candles after a reset until every column has a value."""
        return max(col.warmup for col in self.columns)

    @property
    def version_hash(self) -> str:
        """Return the SHA-256 over names, parameters, gap rule and implementation version."""
        canonical = {
            "implementation_version": self.implementation_version,
            "max_bridged_gap": self.max_bridged_gap,
            "indicators": [
                {"kind": i.kind, "params": list(i.params), "columns": [c.name for c in i.columns]}
                for i in self.indicators
            ],
        }
        blob = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def default_spec() -> FeatureSpec:
    """Return the spec the daemon, training and the CLI use."""
    return FeatureSpec(default_indicators())
