"""Feature cost: µs per symbol-candle, the incremental engine vs recomputing a 500-candle window.

Method: seeded synthetic 1m candles (a 2-decimal geometric random walk around 30,000,
lognormal volumes), ``--candles`` per symbol, one series per symbol, prices already floats.
(a) this engine: ``SeriesEngine.update`` per closed candle; with 100 symbols, 100 engines fed
candle by candle in turn, as the candles close together. The first ``spec.warmup`` candles of
every series are fed untimed, then the steady state is timed. (b) the approach peers use live:
on every new candle, the last 500 candles of the symbol become a pandas DataFrame and the
whole feature set is recomputed one column at a time (TA-Lib for the indicators it has,
pandas for the rest), each assigned to a DataFrame column, and the last row is read; timed on
a sample of candles (``--sample-1`` for one symbol, ``--sample-100`` per symbol for 100),
after the same warm-up. Every measurement is cut into ``--runs`` consecutive slices, each
timed with ``time.perf_counter``; the median slice is reported. The batch reference
(``batch.compute`` over one ``--batch-candles`` series, median of up to 3 runs) is an extra
line. About 40 s on an idle 2-core machine.

    .venv/bin/python bench/features.py [--candles 3000] [--runs 5] [--json]
"""

import argparse
import itertools
import json
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from paper_trader.features import batch  # noqa: E402
from paper_trader.features.engine import SeriesEngine  # noqa: E402
from paper_trader.features.spec import EMA_CROSS_DEAD_BAND, FeatureSpec, default_spec  # noqa: E402

try:
    import talib
except ImportError:  # a runtime-only venv: (b) falls back to pandas
    talib = None

MINUTE = 60_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MINUTE)
WINDOW = 500  # candles a peer recomputes over on every new candle
GOAL_US = 10.0
GOAL_RATIO = 300.0
RAW = ["t", "open", "high", "low", "close", "volume"]
Row = tuple[int, float, float, float, float, float]

# What (b) computes, and with what; it covers every column of the spec (55).
B_COLUMNS = (
    ("sma_10..200, px_sma_*", "talib.SMA"),
    ("ema_9/12/26/50", "talib.EMA"),
    ("vwap_20, px_vwap_20", "pandas rolling sums"),
    ("ret_1/5/15", "pandas pct_change"),
    ("hl_range, close_pos", "pandas arithmetic"),
    ("bb_upper/mid/lower/width/pctb_20_2", "talib.BBANDS"),
    ("rsi_14", "talib.RSI"),
    ("macd/signal/hist(_pct)_12_26_9", "talib.MACD"),
    ("stoch_k/d_14_3", "talib.STOCHF"),
    ("willr_14", "talib.WILLR"),
    ("roc_10", "talib.ROC"),
    ("mom_10", "talib.MOM"),
    ("atr_14, atr_pct_14", "talib.ATR"),
    ("obv_flow_20", "talib.OBV, pandas diff / rolling sum"),
    ("vol_chg_1, vol_ratio_20", "pandas shift / rolling mean"),
    ("ema_cross/spread_12_26, _9_50", "from the EMAs above"),
    ("volatility_20/60", "pandas rolling std of ret_1"),
    ("htf_trend/ret_5x/15x/60x", "pandas resample + ewm / pct_change"),
)


def make_series(seed: int, n: int) -> list[Row]:
    """Return n seeded 1m candles as (open_time_ms, o, h, l, c, v) tuples of Python numbers."""
    rng = np.random.default_rng(seed)
    close = np.round(30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))), 2)
    open_ = np.r_[30_000.0, close[:-1]]
    wick = np.maximum(np.abs(rng.normal(0.0, 0.001, (2, n))) * close, 0.01)
    high = np.round(np.maximum(open_, close) + wick[0], 2)
    low = np.round(np.minimum(open_, close) - wick[1], 2)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 6)
    times = START_MS + np.arange(n, dtype=np.int64) * MINUTE
    columns = (times, open_, high, low, close, volume)
    return list(zip(*(c.tolist() for c in columns), strict=True))


class PandasTa:
    """The TA-Lib functions (b) uses, in pandas, for a venv without TA-Lib."""

    @staticmethod
    def SMA(c: pd.Series, n: int) -> pd.Series:
        return c.rolling(n).mean()

    @staticmethod
    def EMA(c: pd.Series, n: int) -> pd.Series:
        seeded = c.copy()
        seeded.iloc[: n - 1] = np.nan
        seeded.iloc[n - 1] = c.iloc[:n].mean()
        return seeded.ewm(span=n, adjust=False).mean()

    @staticmethod
    def RSI(c: pd.Series, n: int) -> pd.Series:
        d = c.diff()
        gain = d.clip(lower=0.0).ewm(alpha=1.0 / n, adjust=False).mean()
        loss = (-d).clip(lower=0.0).ewm(alpha=1.0 / n, adjust=False).mean()
        return 100.0 * gain / (gain + loss)

    @staticmethod
    def MACD(c: pd.Series, fast: int, slow: int, sig: int) -> tuple[pd.Series, ...]:
        line = PandasTa.EMA(c, fast) - PandasTa.EMA(c, slow)
        signal = line.ewm(span=sig, adjust=False).mean()
        return line, signal, line - signal

    @staticmethod
    def BBANDS(
        c: pd.Series, n: int, up: float, dn: float, matype: int = 0
    ) -> tuple[pd.Series, ...]:
        mid = c.rolling(n).mean()
        sd = c.rolling(n).std(ddof=0)
        return mid + up * sd, mid, mid - dn * sd

    @staticmethod
    def STOCHF(
        h: pd.Series,
        lo: pd.Series,
        c: pd.Series,
        *,
        fastk_period: int,
        fastd_period: int,
        fastd_matype: int = 0,
    ) -> tuple[pd.Series, pd.Series]:
        hh, ll = h.rolling(fastk_period).max(), lo.rolling(fastk_period).min()
        k = 100.0 * (c - ll) / (hh - ll)
        return k, k.rolling(fastd_period).mean()

    @staticmethod
    def WILLR(h: pd.Series, lo: pd.Series, c: pd.Series, n: int) -> pd.Series:
        hh, ll = h.rolling(n).max(), lo.rolling(n).min()
        return -100.0 * (hh - c) / (hh - ll)

    @staticmethod
    def ATR(h: pd.Series, lo: pd.Series, c: pd.Series, n: int) -> pd.Series:
        prev = c.shift()
        tr = pd.concat([h - lo, (h - prev).abs(), (lo - prev).abs()], axis=1).max(axis=1)
        return tr.iloc[1:].ewm(alpha=1.0 / n, adjust=False).mean().reindex(c.index)

    @staticmethod
    def ROC(c: pd.Series, n: int) -> pd.Series:
        return 100.0 * (c / c.shift(n) - 1.0)

    @staticmethod
    def MOM(c: pd.Series, n: int) -> pd.Series:
        return c - c.shift(n)

    @staticmethod
    def OBV(c: pd.Series, v: pd.Series) -> pd.Series:
        return (np.sign(c.diff()).fillna(0.0) * v).cumsum()


def recompute(window: Sequence[Row], ta: Any) -> pd.Series:
    """(b): the whole feature set over the window, one DataFrame column at a time; last row."""
    df = pd.DataFrame(list(window), columns=RAW)
    df.index = pd.to_datetime(df["t"], unit="ms")
    h, lo, c, v = df["high"], df["low"], df["close"], df["volume"]
    for n in (10, 20, 50, 100, 200):
        df[f"sma_{n}"] = ta.SMA(c, n)
        df[f"px_sma_{n}"] = c / df[f"sma_{n}"] - 1.0
    for n in (9, 12, 26, 50):
        df[f"ema_{n}"] = ta.EMA(c, n)
    tp = (h + lo + c) / 3.0
    df["vwap_20"] = (tp * v).rolling(20).sum() / v.rolling(20).sum()
    df["px_vwap_20"] = c / df["vwap_20"] - 1.0
    for k in (1, 5, 15):
        df[f"ret_{k}"] = c.pct_change(k)
    df["hl_range"] = (h - lo) / c
    df["close_pos"] = ((c - lo) / (h - lo)).fillna(0.5)
    upper, mid, lower = ta.BBANDS(c, 20, 2, 2, matype=0)
    df["bb_upper_20_2"], df["bb_mid_20_2"], df["bb_lower_20_2"] = upper, mid, lower
    df["bb_width_20_2"] = (upper - lower) / mid
    df["bb_pctb_20_2"] = (c - lower) / (upper - lower)
    df["rsi_14"] = ta.RSI(c, 14)
    line, signal, hist = ta.MACD(c, 12, 26, 9)
    df["macd_12_26_9"], df["macd_signal_12_26_9"], df["macd_hist_12_26_9"] = line, signal, hist
    df["macd_pct_12_26_9"] = line / c
    df["macd_signal_pct_12_26_9"] = signal / c
    df["macd_hist_pct_12_26_9"] = hist / c
    k, d = ta.STOCHF(h, lo, c, fastk_period=14, fastd_period=3, fastd_matype=0)
    df["stoch_k_14_3"], df["stoch_d_14_3"] = k, d
    df["willr_14"] = ta.WILLR(h, lo, c, 14)
    df["roc_10"] = ta.ROC(c, 10)
    df["mom_10"] = ta.MOM(c, 10)
    df["atr_14"] = ta.ATR(h, lo, c, 14)
    df["atr_pct_14"] = 100.0 * df["atr_14"] / c
    df["obv_flow_20"] = ta.OBV(c, v).diff(20) / v.rolling(20).sum()
    df["vol_chg_1"] = v.diff() / (v + v.shift())
    df["vol_ratio_20"] = v / v.rolling(20).mean()
    for fast, slow in ((12, 26), (9, 50)):
        spread = df[f"ema_{fast}"] / df[f"ema_{slow}"] - 1.0
        dead = spread.abs() <= EMA_CROSS_DEAD_BAND
        df[f"ema_cross_{fast}_{slow}"] = np.sign(spread.mask(dead, 0.0))
        df[f"ema_spread_{fast}_{slow}"] = spread
    for n in (20, 60):
        df[f"volatility_{n}"] = df["ret_1"].rolling(n).std(ddof=0)
    for m in (5, 15, 60):
        closes = c.resample(f"{m}min").last()  # the open bucket as it stands now
        trend = c / closes.ewm(span=10, adjust=False).mean().reindex(df.index, method="ffill")
        df[f"htf_trend_{m}x_10"] = trend - 1.0
        df[f"htf_ret_{m}x_3"] = closes.pct_change(3).reindex(df.index, method="ffill")
    return df.iloc[-1]


def slices(start: int, stop: int, runs: int) -> list[range]:
    """Cut [start, stop) into ``runs`` consecutive ranges of (nearly) equal length."""
    edges = np.linspace(start, stop, runs + 1).round().astype(int).tolist()
    return [range(a, b) for a, b in itertools.pairwise(edges) if b > a]


def engine_us(spec: FeatureSpec, series: list[list[Row]], runs: int) -> list[float]:
    """(a): µs per symbol-candle of each timed slice of the steady state."""
    updates = [SeriesEngine(spec, MINUTE).update for _ in series]
    symbols = list(zip(updates, series, strict=True))
    for i in range(spec.warmup):  # untimed warm-up, interleaved
        for update, rows in symbols:
            update(*rows[i])
    out = []
    for part in slices(spec.warmup, len(series[0]), runs):
        started = time.perf_counter()
        for i in part:
            for update, rows in symbols:
                update(*rows[i])
        out.append((time.perf_counter() - started) / (len(part) * len(series)) * 1e6)
    return out


def recompute_us(
    spec: FeatureSpec, series: list[list[Row]], sample: int, runs: int, ta: Any
) -> list[float]:
    """(b): µs per symbol-candle of each timed slice of ``sample`` candles per symbol."""
    first = spec.warmup
    windows = [deque(rows[first - WINDOW : first], maxlen=WINDOW) for rows in series]
    symbols = list(zip(windows, series, strict=True))
    out = []
    for part in slices(first, first + sample, runs):
        started = time.perf_counter()
        for i in part:
            for window, rows in symbols:
                window.append(rows[i])
                recompute(window, ta)
        out.append((time.perf_counter() - started) / (len(part) * len(series)) * 1e6)
    return out


def check_peer(spec: FeatureSpec, rows: list[Row], ta: Any) -> None:
    """Make sure (b) computes the spec's columns over the right candles (not a no-op)."""
    engine = SeriesEngine(spec, MINUTE)
    ours = [engine.update(*row) for row in rows[: spec.warmup + 1]][-1]
    assert ours is not None
    theirs = recompute(rows[spec.warmup + 1 - WINDOW : spec.warmup + 1], ta)
    for name in ("sma_200", "bb_upper_20_2", "rsi_14", "atr_14", "willr_14", "stoch_d_14_3"):
        a, b = ours[spec.names.index(name)], float(theirs[name])
        assert abs(a - b) <= 1e-6 * max(1.0, abs(a)), (name, a, b)
    missing = set(spec.names) - set(theirs.index)
    assert not missing, f"(b) does not compute {sorted(missing)}"


def batch_rate(spec: FeatureSpec, candles: int, runs: int) -> list[float]:
    """Candles per second of ``batch.compute`` over one long series."""
    rows = make_series(7, candles)
    times = np.array([r[0] for r in rows], dtype=np.int64)
    ohlcv = np.array([r[1:] for r in rows]).T
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        batch.compute(spec, times, ohlcv, MINUTE)
        out.append(candles / (time.perf_counter() - started))
    return out


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=3000, help="candles per symbol")
    parser.add_argument("--symbols", type=int, default=100, help="symbols of the wide case")
    parser.add_argument("--sample-1", type=int, default=200, help="(b) candles, 1 symbol")
    parser.add_argument("--sample-100", type=int, default=5, help="(b) candles per symbol")
    parser.add_argument("--batch-candles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="timed slices per measurement")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    spec = default_spec()
    if args.candles < spec.warmup + max(args.sample_1, args.sample_100, args.runs):
        parser.error(f"--candles must exceed the warm-up ({spec.warmup}) by the sample")
    ta: ModuleType | type[PandasTa] = talib if talib is not None else PandasTa
    with_what = (
        f"the indicators by TA-Lib {talib.__version__}, the rest by pandas {pd.__version__}"
        if talib is not None
        else f"TA-Lib is not installed: everything by pandas {pd.__version__}"
    )
    series = [make_series(seed, args.candles) for seed in range(args.symbols)]
    check_peer(spec, series[0], ta)

    results: dict[str, Any] = {"columns": len(spec.names), "b_uses": with_what, "cases": []}
    for count, sample in ((1, args.sample_1), (args.symbols, args.sample_100)):
        a = engine_us(spec, series[:count], args.runs)
        b = recompute_us(spec, series[:count], sample, args.runs, ta)
        a_us, b_us = statistics.median(a), statistics.median(b)
        results["cases"].append(
            {
                "symbols": count,
                "a_us": a_us,
                "a_runs": a,
                "a_candles_per_symbol": args.candles - spec.warmup,
                "b_us": b_us,
                "b_runs": b,
                "b_candles_per_symbol": sample,
                "ratio": b_us / a_us,
                "goal_a_met": a_us <= GOAL_US,
                "goal_ratio_met": b_us / a_us >= GOAL_RATIO,
            }
        )
    rates = batch_rate(spec, args.batch_candles, min(args.runs, 3))
    results["batch_candles_per_s"] = statistics.median(rates)
    results["batch_runs"] = rates
    if args.json:
        print(json.dumps(results, indent=2))
        return
    report(spec, args, results)


def report(spec: FeatureSpec, args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(
        f"features: {len(spec.names)} columns (spec {spec.version_hash[:12]}), "
        f"{args.candles:,} 1m candles per symbol, first {spec.warmup} untimed (warm-up), "
        f"median of {args.runs} timed slices"
    )
    print(
        "(a) SeriesEngine.update per candle; (b) per new candle: last "
        f"{WINDOW} candles -> DataFrame, every column recomputed, last row read;\n"
        f"    (b) uses {results['b_uses']}"
    )
    print("(b) computes:")
    for columns, source in B_COLUMNS:
        used = source if talib is not None else source.replace("talib.", "pandas stand-in for ")
        print(f"    {columns:<36} {used}")
    print(
        f"\n{'symbols':>7} | {'(a) µs':>8} | {'(b) µs':>9} | {'(b)/(a)':>8} | "
        f"{'(a) ≤ 10 µs':>11} | {'(b)/(a) ≥ 300':>14} | timed symbol-candles (a) / (b)"
    )
    for case in results["cases"]:
        n = case["symbols"]
        print(
            f"{n:>7} | {case['a_us']:>8.1f} | {case['b_us']:>9,.0f} | {case['ratio']:>8,.0f} | "
            f"{verdict(case['goal_a_met']):>11} | {verdict(case['goal_ratio_met']):>14} | "
            f"{case['a_candles_per_symbol'] * n:,} / {case['b_candles_per_symbol'] * n:,}"
        )
    for case in results["cases"]:
        runs_a = ", ".join(f"{x:.1f}" for x in case["a_runs"])
        runs_b = ", ".join(f"{x:,.0f}" for x in case["b_runs"])
        print(f"  {case['symbols']} symbol(s) slices, µs: (a) {runs_a}; (b) {runs_b}")
    rates = ", ".join(f"{r:,.0f}" for r in results["batch_runs"])
    print(
        f"batch reference: {results['batch_candles_per_s']:,.0f} candles/s "
        f"(batch.compute over {args.batch_candles:,} candles, all {len(spec.names)} columns; "
        f"runs: {rates})"
    )


if __name__ == "__main__":
    main()
