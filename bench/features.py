"""Feature cost: µs per symbol-candle, the engines vs recomputing a 500-candle window.

Method: seeded synthetic 1m candles (a 2-decimal geometric random walk around 30,000,
lognormal volumes), ``--candles`` per symbol, one series per symbol, prices already floats.
(a) the engine the daemon uses: at 1 symbol the per-series ``SeriesEngine.update`` (an instant
of fewer than ``series_set.WIDE`` candles goes that way), at 100 symbols closing together the
column-wise ``SeriesBlock.update`` of the whole instant; (a0) the per-series engine alone at
100 symbols, fed candle by candle in turn (what the daemon did before the column-wise engine),
timed in the same run, its slices interleaved with (a)'s (ABAB); (a+) the whole feature step
of the decision task, ``FeatureEngine.update_many`` over the instant's ``Candle`` objects
(Decimal to float, the rows, the rings of recent rows), interleaved too. The first
``spec.warmup`` candles of every series are fed untimed, then the steady state is timed.
(b) the approach peers use live: on every new candle, the last 500 candles of the symbol
become a pandas DataFrame and the whole feature set is recomputed one column at a time (TA-Lib
for the indicators it has, pandas for the rest), each assigned to a DataFrame column, and the
last row is read; timed on a sample of candles (``--sample-1`` for one symbol, ``--sample-100``
per symbol for 100), after the same warm-up. Every measurement is cut into ``--runs``
consecutive slices, each timed with ``time.perf_counter``; the median slice is reported. The
crossover line times both engines on instants of 1 to 64 candles (why ``WIDE`` is what it
is). The batch reference (``batch.compute`` over one ``--batch-candles`` series, median of up
to 3 runs) is an extra line. ``--profile N`` prints cProfile's top functions over N instants
of the 100-symbol column-wise update. About a minute on an idle 2-core machine.

    .venv/bin/python bench/features.py [--candles 3000] [--runs 5] [--json FILE] [--profile 300]

Over 400 lines: the peers' recompute (b) and its pandas stand-in are spelled out in full, so
anyone can check what the engines are compared with.
"""

import argparse
import cProfile
import io
import itertools
import json
import pstats
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from results import row  # noqa: E402

from paper_trader.domain import Candle, Interval, Venue  # noqa: E402
from paper_trader.features import batch  # noqa: E402
from paper_trader.features.block import SeriesBlock  # noqa: E402
from paper_trader.features.engine import SeriesEngine  # noqa: E402
from paper_trader.features.series_set import WIDE, FeatureEngine  # noqa: E402
from paper_trader.features.spec import EMA_CROSS_DEAD_BAND, FeatureSpec, default_spec  # noqa: E402

try:
    import talib
except ImportError:  # a runtime-only venv: (b) falls back to pandas
    talib = None

MINUTE = 60_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MINUTE)
WINDOW = 500  # candles a peer recomputes over on every new candle
GOAL_US = {1: 10.0, 100: 2.0}  # issue 17: µs per symbol-candle at 1 and at 100 symbols
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


def scalar_feeder(spec: FeatureSpec, series: list[list[Row]]) -> "Feeder":
    """Feed instant i to one ``SeriesEngine`` per symbol, candle by candle."""
    updates = [SeriesEngine(spec, MINUTE).update for _ in series]
    symbols = list(zip(updates, series, strict=True))

    def feed(i: int) -> None:
        for update, rows in symbols:
            update(*rows[i])

    return feed


def block_feeder(spec: FeatureSpec, series: list[list[Row]]) -> "Feeder":
    """Feed instant i to one ``SeriesBlock`` holding every symbol."""
    block = SeriesBlock(spec, MINUTE, slots=len(series))
    slots = np.arange(len(series))
    table = np.array(series)  # (symbols, candles, 6)
    times = table[:, :, 0].astype(np.int64).T.copy()
    ohlcv = table[:, :, 1:].transpose(1, 0, 2).copy()

    def feed(i: int) -> None:
        block.update(slots, times[i], ohlcv[i])

    return feed


def stage_feeder(spec: FeatureSpec, series: list[list[Row]]) -> "Feeder":
    """Feed instant i's ``Candle`` objects to ``FeatureEngine.update_many``."""
    engine = FeatureEngine(spec, keep_rows=100)
    instants = [
        [
            Candle(
                venue=Venue.BINANCE,
                symbol=f"S{k}-USDT",
                interval=Interval.M1,
                open_time_ms=rows[i][0],
                open=Decimal(repr(rows[i][1])),
                high=Decimal(repr(rows[i][2])),
                low=Decimal(repr(rows[i][3])),
                close=Decimal(repr(rows[i][4])),
                volume=Decimal(repr(rows[i][5])),
            )
            for k, rows in enumerate(series)
        ]
        for i in range(len(series[0]))
    ]

    def feed(i: int) -> None:
        engine.update_many(instants[i])

    return feed


Feeder = Callable[[int], None]


def interleaved(
    spec: FeatureSpec, series: list[list[Row]], runs: int, feeders: list[Feeder]
) -> list[list[float]]:
    """µs per symbol-candle of each feeder's slices, the feeders' slices in turn (ABAB)."""
    for i in range(spec.warmup):  # untimed warm-up
        for feed in feeders:
            feed(i)
    out: list[list[float]] = [[] for _ in feeders]
    for part in slices(spec.warmup, len(series[0]), runs):
        for feed, times in zip(feeders, out, strict=True):
            started = time.perf_counter()
            for i in part:
                feed(i)
            times.append((time.perf_counter() - started) / (len(part) * len(series)) * 1e6)
    return out


def crossover(spec: FeatureSpec, sizes: Sequence[int], instants: int) -> list[dict[str, float]]:
    """µs per instant of both engines on instants of ``size`` candles (median of 3 slices)."""
    out = []
    for size in sizes:
        series = [make_series(100 + k, spec.warmup + instants) for k in range(size)]
        scalar, block = interleaved(
            spec, series, 3, [scalar_feeder(spec, series), block_feeder(spec, series)]
        )
        out.append(
            {
                "candles": size,
                "per_series_us": statistics.median(scalar) * size,
                "column_wise_us": statistics.median(block) * size,
            }
        )
    return out


def profile(spec: FeatureSpec, symbols: int, instants: int) -> str:
    """cProfile's top functions over ``instants`` column-wise updates of ``symbols`` series."""
    series = [make_series(seed, spec.warmup + instants) for seed in range(symbols)]
    feed = block_feeder(spec, series)
    for i in range(spec.warmup):
        feed(i)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(spec.warmup, spec.warmup + instants):
        feed(i)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


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


def result_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of ``bench/results.md``: ours per case, and the peers' recompute."""
    command = ".venv/bin/python bench/features.py"
    rows = []
    for case in results["cases"]:
        n = case["symbols"]
        label = "1 symbol" if n == 1 else f"{n} symbols closing together"
        rows.append(row(
            f"features, µs per symbol-candle, {label} ({results['columns']} columns)",
            f"{case['a_us']:.1f} µs ({case['a_path']}; the per-series engine in the same run "
            f"{case['a0_us']:.1f}, the whole stage step on Candles {case['a_plus_us']:.1f})",
            goal=f"≤ {case['goal_us']:g} µs", met=case["goal_a_met"],
            method=f"median of timed slices over {case['a_candles_per_symbol']:,} candles per "
            "symbol after the warm-up, the engines interleaved",
            command=command,
        ))  # fmt: skip
        rows.append(row(
            f"features, the peers' way (last 500 candles → DataFrame, every column), {label}",
            f"{case['b_us']:,.0f} µs per symbol-candle: ours is {case['ratio']:,.0f} times faster",
            goal=f"ours ≥ {GOAL_RATIO:g} times faster", met=case["goal_ratio_met"],
            method=results["b_uses"] + "; the last row read",
            command=command,
        ))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=3000, help="candles per symbol")
    parser.add_argument("--symbols", type=int, default=100, help="symbols of the wide case")
    parser.add_argument("--sample-1", type=int, default=200, help="(b) candles, 1 symbol")
    parser.add_argument("--sample-100", type=int, default=5, help="(b) candles per symbol")
    parser.add_argument("--batch-candles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="timed slices per measurement")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--crossover-instants", type=int, default=150)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N instants")
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

    results: dict[str, Any] = {
        "columns": len(spec.names),
        "b_uses": with_what,
        "wide": WIDE,
        "cases": [],
    }
    for count, sample in ((1, args.sample_1), (args.symbols, args.sample_100)):
        part = series[:count]
        if count < WIDE:
            feeders = [scalar_feeder(spec, part), stage_feeder(spec, part)]
            a, a_plus = interleaved(spec, part, args.runs, feeders)
            a0 = a
        else:
            feeders = [
                block_feeder(spec, part),
                scalar_feeder(spec, part),
                stage_feeder(spec, part),
            ]
            a, a0, a_plus = interleaved(spec, part, args.runs, feeders)
        b = recompute_us(spec, part, sample, args.runs, ta)
        a_us, b_us = statistics.median(a), statistics.median(b)
        goal = GOAL_US[1] if count == 1 else GOAL_US[100]
        results["cases"].append(
            {
                "symbols": count,
                "a_path": "per-series" if count < WIDE else "column-wise",
                "a_us": a_us,
                "a_runs": a,
                "a0_us": statistics.median(a0),
                "a0_runs": a0,
                "a_plus_us": statistics.median(a_plus),
                "a_candles_per_symbol": args.candles - spec.warmup,
                "b_us": b_us,
                "b_runs": b,
                "b_candles_per_symbol": sample,
                "ratio": b_us / a_us,
                "goal_us": goal,
                "goal_a_met": a_us <= goal,
                "goal_ratio_met": b_us / a_us >= GOAL_RATIO,
            }
        )
    results["crossover"] = crossover(spec, (1, 2, 4, 8, 16, 32, 64), args.crossover_instants)
    rates = batch_rate(spec, args.batch_candles, min(args.runs, 3))
    results["batch_candles_per_s"] = statistics.median(rates)
    results["batch_runs"] = rates
    results["rows"] = result_rows(results)
    report(spec, args, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.profile:
        print(f"\nprofile: {args.profile} column-wise updates of {args.symbols} symbols")
        print(profile(spec, args.symbols, args.profile))


def report(spec: FeatureSpec, args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(
        f"features: {len(spec.names)} columns (spec {spec.version_hash[:12]}), "
        f"{args.candles:,} 1m candles per symbol, first {spec.warmup} untimed (warm-up), "
        f"median of {args.runs} timed slices"
    )
    print(
        "(a) the daemon's engine (per-series below WIDE, column-wise above); (a0) per-series at "
        "every size; (a+) FeatureEngine.update_many on Candles;\n(b) per new candle: last "
        f"{WINDOW} candles -> DataFrame, every column recomputed, last row read;\n"
        f"    (b) uses {results['b_uses']}"
    )
    print("(b) computes:")
    for columns, source in B_COLUMNS:
        used = source if talib is not None else source.replace("talib.", "pandas stand-in for ")
        print(f"    {columns:<36} {used}")
    print(
        f"\n{'symbols':>7} | {'(a) path':>11} | {'(a) µs':>7} | {'goal':>6} | {'(a) goal':>8} | "
        f"{'(a0) µs':>7} | {'(a+) µs':>7} | {'(b) µs':>8} | {'(b)/(a)':>7} | "
        f"{'(b)/(a) ≥ 300':>13} | timed symbol-candles (a) / (b)"
    )
    for case in results["cases"]:
        n = case["symbols"]
        plus = f"{case['a_plus_us']:.1f}"
        print(
            f"{n:>7} | {case['a_path']:>11} | {case['a_us']:>7.1f} | ≤ {case['goal_us']:>4.0f} | "
            f"{verdict(case['goal_a_met']):>8} | {case['a0_us']:>7.1f} | {plus:>7} | "
            f"{case['b_us']:>8,.0f} | {case['ratio']:>7,.0f} | "
            f"{verdict(case['goal_ratio_met']):>13} | "
            f"{case['a_candles_per_symbol'] * n:,} / {case['b_candles_per_symbol'] * n:,}"
        )
    for case in results["cases"]:
        runs_a = ", ".join(f"{x:.1f}" for x in case["a_runs"])
        runs_a0 = ", ".join(f"{x:.1f}" for x in case["a0_runs"])
        runs_b = ", ".join(f"{x:,.0f}" for x in case["b_runs"])
        print(
            f"  {case['symbols']} symbol(s) slices, µs: (a) {runs_a}; (a0) {runs_a0}; (b) {runs_b}"
        )
    print(
        "crossover, µs per instant (per-series / column-wise): "
        + "; ".join(
            f"{c['candles']}: {c['per_series_us']:,.0f} / {c['column_wise_us']:,.0f}"
            for c in results["crossover"]
        )
        + f"  (WIDE = {results['wide']})"
    )
    rates = ", ".join(f"{r:,.0f}" for r in results["batch_runs"])
    print(
        f"batch reference: {results['batch_candles_per_s']:,.0f} candles/s "
        f"(batch.compute over {args.batch_candles:,} candles, all {len(spec.names)} columns; "
        f"runs: {rates})"
    )


if __name__ == "__main__":
    main()
