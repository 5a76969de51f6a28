"""Prediction monitor and correlation screen: the one-step code against the per-item code.

Method. Both sides run in one process, on the same seeded data, interleaved in ABAB blocks of
``--block`` instants so that the load of the shared machine falls on both alike.

Monitor: ``--symbols`` series (default 100) close at every minute; three members, horizon 5,
the production ``MonitorConfig()`` (scores over 200, PSI over 1,000 rows every 100) with a
drift reference. Every instant each side resolves what is due, then records a prediction for
every symbol (random probabilities, random model inputs; its signals made with that side's
own ensemble, untimed). Timed per instant with ``perf_counter_ns`` (wall) and
``thread_time_ns`` (CPU, less sensitive to the other processes): resolution + record.
*old* is the code before issue 17 (``tests/fakes/reference_monitor.py``: ``on_candle`` per
candle, the per-prediction scorecard, ``record`` row by row) with ``Ensemble.resolve`` per
prediction; *new* is ``PredictionMonitor.on_instant`` + ``record``. ``--warmup`` instants,
untimed, fill every window first.

Correlation: ``ReturnHistory`` (new) and the old one, ``--symbols`` symbols, the production
``correlation_window`` 100, fed random closes (a few gaps). Per instant: every symbol's close
(``on_close``), then the entry screen (``screen_entry``, nothing refused, so every held pair is
computed) of each of ``--candidates`` candidates against ``--held`` (10) held positions; new
with ``correlations=``, old pairwise with ``correlation=``, and *pairwise*: the new
``ReturnHistory`` through ``correlation=`` (what the trader passes until it is changed to
``correlations=``). Timed: the closes and the screens.

    .venv/bin/python bench/monitor.py [--symbols 100] [--instants 200] [--json FILE]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # paper_trader, tests/fakes

import numpy as np  # noqa: E402
from fakes.reference_monitor import (  # noqa: E402
    ReferenceMonitor,
    ReferenceReturnHistory,
    ReferenceScorecard,
)
from fakes.trading import held_position  # noqa: E402
from results import row  # noqa: E402

from paper_trader.domain import Candle, Interval, Venue  # noqa: E402
from paper_trader.domain.trading import Side  # noqa: E402
from paper_trader.features.engine import FeatureRow  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.prediction.bundle import ModelBundle  # noqa: E402
from paper_trader.prediction.drift import reference_from  # noqa: E402
from paper_trader.prediction.ensemble import Ensemble, SignalThresholds  # noqa: E402
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor  # noqa: E402
from paper_trader.prediction.predictor import Prediction  # noqa: E402
from paper_trader.prediction.scorecard import WeightPolicy  # noqa: E402
from paper_trader.prediction.stage import VECTORISE_FROM  # noqa: E402
from paper_trader.risk.config import LimitsConfig  # noqa: E402
from paper_trader.risk.correlation import ReturnHistory  # noqa: E402
from paper_trader.risk.limits import PortfolioView, screen_entry  # noqa: E402

SPEC = default_spec()
MODELS = ("forest", "logistic", "xgboost")
HORIZON = 5
MINUTE = Interval.M1.ms


def bundle(rng: np.random.Generator) -> ModelBundle:
    training = rng.normal(size=(5_000, len(SPEC.model_inputs)))
    metadata = {
        "spec_hash": SPEC.version_hash,
        "feature_names": list(SPEC.model_inputs),
        "label": {"horizon": HORIZON, "threshold": 0.002},
        "metrics": {"summary": {"ensemble": {"accuracy": 0.3}}},  # no alert: quiet output
        "drift_reference": reference_from(training, SPEC.model_inputs).to_json(),
    }
    members: dict[str, Any] = dict.fromkeys(MODELS)
    return ModelBundle(version="v1", metadata=MappingProxyType(metadata), members=members)


class MonitorSide:
    """One side of the monitor comparison: its monitor, its ensemble, its timings."""

    def __init__(self, old: bool, b: ModelBundle) -> None:
        kind = ReferenceMonitor if old else PredictionMonitor
        self.old = old
        self.bundle = b
        self.monitor = kind(MonitorConfig(), now_ms=lambda: 0)
        self.monitor.use_model(b)
        self.ensemble = Ensemble(
            MODELS,
            model_version="v1",
            spec_hash=SPEC.version_hash,
            thresholds=SignalThresholds(),
            policy=WeightPolicy(),
        )
        if old:
            self.ensemble.scorecard = ReferenceScorecard(MODELS, WeightPolicy().window)  # type: ignore[assignment]
        self.times_us: list[float] = []
        self.cpu_us: list[float] = []

    def instant(self, data: "Instant", timed: bool) -> None:
        start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        if isinstance(self.monitor, ReferenceMonitor) or len(data.candles) < VECTORISE_FROM:
            for candle in data.candles:  # as the stage does below VECTORISE_FROM candles
                self.monitor.on_candle(candle)
        else:
            self.monitor.on_instant(data.candles)
        resolved, cpu_resolved = time.perf_counter_ns(), time.thread_time_ns()
        keys = [(r.venue, r.symbol, r.interval) for r in data.rows]
        signals = self.ensemble.signals(keys, data.at_ms, data.per_model)
        prediction = Prediction(
            rows=data.rows,
            inputs=data.inputs,
            per_model=data.per_model,
            signals=signals,
            bundle=self.bundle,
            ensemble=self.ensemble,
        )
        made, cpu_made = time.perf_counter_ns(), time.thread_time_ns()
        self.monitor.record(prediction, data.closes)
        done, cpu_done = time.perf_counter_ns(), time.thread_time_ns()
        if timed:
            self.times_us.append((resolved - start + done - made) / 1_000)
            self.cpu_us.append((cpu_resolved - cpu_start + cpu_done - cpu_made) / 1_000)


class Instant:
    """One minute's candles, rows and model outputs for every symbol."""

    def __init__(self, rng: np.random.Generator, t: int, prices: dict[str, Decimal]) -> None:
        self.at_ms = t * MINUTE
        self.candles: list[Candle] = []
        for symbol, before in list(prices.items()):
            p = (before * Decimal(str(1 + rng.normal(0, 0.003)))).quantize(Decimal("0.0001"))
            prices[symbol] = p
            self.candles.append(
                Candle(
                    venue=Venue.BINANCE,
                    symbol=symbol,
                    interval=Interval.M1,
                    open_time_ms=self.at_ms,
                    open=p,
                    high=p,
                    low=p,
                    close=p,
                    volume=Decimal(1),
                )
            )
        self.closes = [c.close for c in self.candles]
        self.rows = tuple(
            FeatureRow(
                venue=Venue.BINANCE,
                symbol=s,
                interval=Interval.M1,
                open_time_ms=self.at_ms,
                values=(0.0,) * len(SPEC.names),
                is_ready=True,
            )
            for s in prices
        )
        self.inputs = rng.normal(size=(len(prices), len(SPEC.model_inputs)))
        self.per_model = {m: rng.dirichlet([2.0, 2.0, 2.0], size=len(prices)) for m in MODELS}


def interleaved(
    sides: tuple[Any, ...],
    work: Callable[[Any, int, bool], None],
    warmup: int,
    total: int,
    block: int,
) -> None:
    """Run instants 0..warmup untimed on every side, then ABAB blocks of ``block`` instants."""
    for t in range(warmup):
        for side in sides:
            work(side, t, False)
    for start in range(warmup, warmup + total, block):
        for side in sides:
            for t in range(start, min(start + block, warmup + total)):
                work(side, t, True)


def summary(times_us: list[float]) -> dict[str, float]:
    ordered = sorted(times_us)
    return {
        "p50_us": round(statistics.median(ordered), 1),
        "p90_us": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def monitor_section(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    b = bundle(rng)
    prices = {f"S{i:03d}USDT": Decimal(100 + i) for i in range(args.symbols)}
    instants = [Instant(rng, t, prices) for t in range(args.warmup + args.instants)]
    old, new = MonitorSide(True, b), MonitorSide(False, b)
    interleaved(
        (old, new),
        lambda side, t, timed: side.instant(instants[t], timed),
        args.warmup,
        args.instants,
        args.block,
    )
    assert old.ensemble.weights() == new.ensemble.weights()  # the same weights, exactly
    return {
        name: {**summary(side.times_us), "cpu_p50_us": round(statistics.median(side.cpu_us), 1)}
        for name, side in (("old", old), ("new", new))
    }


class ScreenSide:
    """One side of the correlation comparison."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # old: before issue 17; pairwise: new, correlation=; new: correlations=
        self.history: Any = ReferenceReturnHistory(100) if mode == "old" else ReturnHistory(100)
        self.close_us: list[float] = []
        self.screen_us: list[float] = []
        self.screen_cpu_us: list[float] = []


def screen_section(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(8)
    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    minutes = args.warmup + args.instants
    moves = rng.normal(0, 0.003, size=(minutes, len(symbols)))
    present = rng.random(size=(minutes, len(symbols))) > 0.02  # a few gaps
    held_symbols = symbols[: args.held]
    candidates = symbols[args.held : args.held + args.candidates]
    view = PortfolioView(
        equity=Decimal(100_000),
        cash=Decimal(90_000),
        positions={
            s: held_position(s, Side.LONG if i % 2 else Side.SHORT)
            for i, s in enumerate(held_symbols)
        },
        marks=dict.fromkeys(held_symbols, Decimal(100)),
    )
    config = LimitsConfig(
        allow_short=True, max_positions=len(held_symbols) + 1, correlation_limit=1.0
    )
    prices = [[Decimal(100 + i) for i in range(len(symbols))]]
    for t in range(minutes):
        prices.append(
            [
                (p * Decimal(str(1 + m))).quantize(Decimal("0.0001"))
                for p, m in zip(prices[-1], moves[t].tolist(), strict=True)
            ]
        )
    sides = (ScreenSide("old"), ScreenSide("pairwise"), ScreenSide("new"))
    decisions: dict[str, list[object]] = {side.mode: [] for side in sides}

    def work(side: ScreenSide, t: int, timed: bool) -> None:
        start = time.perf_counter_ns()
        for i, symbol in enumerate(symbols):
            if present[t, i]:
                side.history.on_close(symbol, t * MINUTE, prices[t + 1][i])
        closed, cpu_closed = time.perf_counter_ns(), time.thread_time_ns()
        pair = (
            {"correlations": side.history.correlations}
            if side.mode == "new"
            else {"correlation": side.history.correlation}
        )
        for symbol in candidates:
            result = screen_entry(
                config, symbol=symbol, side=Side.LONG, confidence=1.0, view=view, **pair
            )
            if timed:
                decisions[side.mode].append(result)
        done, cpu_done = time.perf_counter_ns(), time.thread_time_ns()
        if timed:
            side.close_us.append((closed - start) / 1_000)
            side.screen_us.append((done - closed) / 1_000)
            side.screen_cpu_us.append((cpu_done - cpu_closed) / 1_000)

    interleaved(sides, work, args.warmup, args.instants, args.block)
    assert decisions["old"] == decisions["pairwise"] == decisions["new"]
    return {
        side_name: {
            "on_close_all_symbols": summary(side.close_us),
            "screens": summary(side.screen_us),
            "per_screen_p50_us": round(statistics.median(side.screen_us) / len(candidates), 1),
            "screens_cpu_p50_us": round(statistics.median(side.screen_cpu_us), 1),
        }
        for side_name, side in ((side.mode, side) for side in sides)
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--symbols", type=int, default=100)
    add("--instants", type=int, default=200, help="timed instants per side")
    add("--warmup", type=int, default=30, help="untimed instants first (windows full)")
    add("--block", type=int, default=20, help="instants per ABAB block")
    add("--held", type=int, default=10, help="held positions the screen compares with")
    add("--candidates", type=int, default=10, help="entries screened per instant")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        },
        "symbols": args.symbols,
        "instants": args.instants,
    }
    results["monitor_resolve_and_record_per_instant"] = monitor_section(args)
    results["correlation_per_instant"] = screen_section(args)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    m = results["monitor_resolve_and_record_per_instant"]
    c = results["correlation_per_instant"]
    print(
        f"{args.symbols} symbols, {args.instants} timed instants per side, ABAB blocks of "
        f"{args.block}; load average {results['machine']['loadavg_start']} -> "
        f"{results['machine']['loadavg_end']}"
    )
    print(
        f"monitor resolve + record, us per instant: old p50 {m['old']['p50_us']} "
        f"p90 {m['old']['p90_us']} (CPU p50 {m['old']['cpu_p50_us']}) | new p50 "
        f"{m['new']['p50_us']} p90 {m['new']['p90_us']} (CPU p50 {m['new']['cpu_p50_us']})"
    )
    for name in ("old", "pairwise", "new"):
        print(
            f"correlation {name}: on_close x{args.symbols} p50 "
            f"{c[name]['on_close_all_symbols']['p50_us']} us; {args.candidates} screens vs "
            f"{args.held} held p50 {c[name]['screens']['p50_us']} us "
            f"({c[name]['per_screen_p50_us']} us each; CPU p50 {c[name]['screens_cpu_p50_us']})"
        )
    results["rows"] = [
        row(
            f"prediction monitor, resolve + record one instant, {args.symbols} symbols, p50",
            f"{m['new']['p50_us']:,} µs (the per-prediction code in the same run: "
            f"{m['old']['p50_us']:,} µs)",
            goal=None,
            met=None,
            method="the monitor as the prediction stage drives it, old and new in ABAB blocks",
            command=".venv/bin/python bench/monitor.py",
        ),
        row(
            f"correlation screen, {args.candidates} entries against {args.held} held, p50",
            f"{c['new']['screens']['p50_us']:,} µs (pairwise, as before: "
            f"{c['old']['screens']['p50_us']:,} µs)",
            goal=None,
            met=None,
            method="ReturnHistory's one-step correlations against the pairwise reference, ABAB",
            command=".venv/bin/python bench/monitor.py",
        ),
    ]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
