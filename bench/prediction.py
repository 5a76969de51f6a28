"""Prediction cost: training time for 90 days of 1m candles, and live inference latency.

Method. Training: seeded synthetic 1m candles of one symbol (``--days`` x 1,440 candles,
``generate_candles(seed=11)``), or a real candle CSV with ``--csv``, are written to a temporary
directory (untimed); then ``run_training`` is timed end to end with the production defaults:
``ModelConfig()``, 4 walk-forward folds, horizon 15, fee 0.001, slippage 5 bps. It loads and
validates the CSV, builds the dataset, evaluates walk-forward, fits the final models and
publishes them. The goal is at most 60 s on this 2-core machine. With ``--breakdown`` the same
steps are run again one by one (``load_csv_series``, ``build_dataset``, ``training.evaluate``,
``models.fit``, ``describe`` + ``registry.publish``) and each is timed; that doubles the time.
Inference: the published version is loaded with ``ModelRegistry.load`` and an ``Ensemble`` is
built for it (default thresholds and weight policy). Inputs are real model-input rows of the
dataset, drawn with a fixed seed. One symbol: ``bundle.predict(x[i:i+1])`` then
``ensemble.signals(...)``, timed per call with ``perf_counter_ns``, ``--calls`` calls after
``--warmup`` untimed ones; each member's ``predict_proba`` and ``signals`` alone are timed the
same way. 100 symbols: the same with 100 rows per call, ``--batch-calls`` calls. Both are
repeated with the three members' ``predict_proba`` gathered in an asyncio loop through
``loop.run_in_executor`` on a 3-thread ``ThreadPoolExecutor`` within a 2 s timeout, as the
daemon's ``Predictor`` ran them before, to show the cost of the hop; and through the
daemon's ``Predictor.predict`` itself (defaults: up to 8 rows as one executor call, more with
a thread per member; every call within a slot and the timeout; the signals included). The
load average is printed:
other processes on the 2 cores slow training far more than their share (see the report).
About 2 minutes on an idle 2-core machine (4 with ``--breakdown``).

    .venv/bin/python bench/prediction.py [--days 90] [--csv FILE] [--breakdown] [--json FILE]
"""

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import sklearn  # noqa: E402
import xgboost  # noqa: E402

from paper_trader.cli.train import TrainRequest, describe, load_csv_series, run_training  # noqa: E402
from paper_trader.domain import Interval, Venue  # noqa: E402
from paper_trader.features.engine import FeatureRow  # noqa: E402
from paper_trader.features.spec import FeatureSpec, default_spec  # noqa: E402
from paper_trader.prediction import models, training  # noqa: E402
from paper_trader.prediction.bundle import ModelBundle  # noqa: E402
from paper_trader.prediction.dataset import Dataset, LabelRule, build_dataset  # noqa: E402
from paper_trader.prediction.ensemble import Ensemble, SignalThresholds  # noqa: E402
from paper_trader.prediction.folds import FoldPlan  # noqa: E402
from paper_trader.prediction.predictor import Predictor, PredictorConfig  # noqa: E402
from paper_trader.prediction.registry import Artifacts, ModelRegistry  # noqa: E402
from paper_trader.prediction.scorecard import WeightPolicy  # noqa: E402
from paper_trader.simulator.synthetic import generate_candles, write_csv  # noqa: E402

GOAL_S = 60.0
PEER_S = 115.0  # a popular peer's users report about this per pair
SYMBOL = "BTCUSDT"
BATCH = 100
FloatArray = npt.NDArray[np.float64]


def machine() -> dict[str, Any]:
    """Return what the figures depend on: CPUs, versions and the load average now."""
    versions = {m.__name__: m.__version__ for m in (np, xgboost, sklearn)}
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        **versions,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def request_for(csv: Path, models_dir: Path) -> TrainRequest:
    """Return the production training request for one CSV of one symbol."""
    return TrainRequest(
        symbols=(SYMBOL,),
        interval=Interval.M1,
        venue=Venue.BINANCE,
        models_dir=models_dir,
        rule=LabelRule(horizon=15, fee_rate=0.001, slippage_bps=5.0),
        csvs=(csv,),
        folds=4,
        config=models.ModelConfig(),
    )


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Return (seconds, result) of one call."""
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def breakdown(request: TrainRequest, spec: FeatureSpec) -> tuple[dict[str, float], Dataset]:
    """Run the training steps one by one; return seconds per step and the dataset."""
    steps: dict[str, float] = {}
    steps["load + validate CSV"], series = timed(lambda: load_csv_series(request))
    steps["dataset (features + labels)"], data = timed(
        lambda: build_dataset(spec, series, request.interval.ms, request.rule)
    )
    plan = FoldPlan(
        folds=request.folds,
        horizon=request.rule.horizon,
        embargo=request.rule.horizon,
        interval_ms=request.interval.ms,
    )
    steps["walk-forward evaluation"], evaluation = timed(
        lambda: training.evaluate(data, plan, request.config)
    )
    gap_ms = (plan.horizon + plan.embargo) * plan.interval_ms
    steps["final fit"], fitted = timed(
        lambda: models.fit(
            data.features,
            data.labels,
            data.open_times_ms,
            config=request.config,
            gap_ms=gap_ms,
        )
    )
    result = training.TrainingResult(models=fitted, evaluation=evaluation, samples=len(data))

    def publish() -> str:
        document = describe(request, spec, data, plan, result, series=series)
        artifacts = Artifacts(
            estimators={n: m.estimator for n, m in fitted.items()},
            calibrators={n: m.calibrator for n, m in fitted.items()},
            predictions=evaluation.predictions,
            metadata=document,
        )
        return ModelRegistry(request.models_dir).publish(artifacts, make_current=False)

    steps["describe + publish"], _ = timed(publish)
    return steps, data


def stats(ns: list[int], symbols: int) -> dict[str, float]:
    """Return p50, p99 and max of nanosecond timings in µs, per call and per symbol."""
    us = np.asarray(ns, dtype=np.float64) / 1e3
    p50, p99 = (float(v) for v in np.percentile(us, [50, 99]))
    return {
        "p50_us": p50,
        "p99_us": p99,
        "max_us": float(us.max()),
        "symbols": symbols,
        "per_symbol_p50_us": p50 / symbols,
        "per_symbol_p99_us": p99 / symbols,
        "calls": len(ns),
    }


def latencies(call: Callable[[Any], object], inputs: Iterable[Any], warmup: int) -> list[int]:
    """Return the nanoseconds of each call after the first ``warmup``."""
    out = []
    for item in inputs:
        started = time.perf_counter_ns()
        call(item)
        out.append(time.perf_counter_ns() - started)
    return out[warmup:]


async def hop_latencies(
    bundle: ModelBundle,
    signal: Callable[[int, dict[str, FloatArray]], object],
    inputs: list[tuple[FloatArray, int]],
    warmup: int,
) -> list[int]:
    """As ``latencies``, each member's ``predict_proba`` run in its own executor thread."""
    loop = asyncio.get_running_loop()
    names = list(bundle.members)
    out = []
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="predict") as pool:
        for x, open_time in inputs:
            started = time.perf_counter_ns()
            async with asyncio.timeout(2.0):  # as the daemon's Predictor does
                probs = await asyncio.gather(
                    *(loop.run_in_executor(pool, bundle.members[n].predict_proba, x) for n in names)
                )
            signal(open_time, dict(zip(names, probs, strict=True)))
            out.append(time.perf_counter_ns() - started)
    return out[warmup:]


async def predictor_latencies(
    bundle: ModelBundle, inputs: list[tuple[FloatArray, int]], warmup: int
) -> list[int]:
    """As ``latencies``, through the daemon's own ``Predictor.predict`` with its defaults: the
    rows become feature rows of the spec, up to 8 rows run as one executor call (one hop),
    more with one thread per member, each within a slot and the 2 s timeout."""
    spec = default_spec()
    columns = [spec.names.index(n) for n in spec.model_inputs]
    predictor = Predictor(spec, PredictorConfig(), now_ms=lambda: 0)
    predictor.install(bundle)
    out = []
    for k, (x, _) in enumerate(inputs):
        rows = []
        for j, inputs_row in enumerate(x):
            values = [0.0] * len(spec.names)
            for column, value in zip(columns, inputs_row, strict=True):
                values[column] = float(value)
            rows.append(
                FeatureRow(
                    venue=Venue.BINANCE,
                    symbol=f"S{j:03d}USDT",
                    interval=Interval.M1,
                    open_time_ms=(k + 1) * 60_000,
                    values=tuple(values),
                    is_ready=True,
                )
            )
        started = time.perf_counter_ns()
        if await predictor.predict(rows) is None:
            raise RuntimeError("the predictor made no prediction")
        out.append(time.perf_counter_ns() - started)
    predictor.close()
    return out[warmup:]


def inference(
    bundle: ModelBundle, data: Dataset, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Time one-symbol and 100-symbol inference, directly and through the executor."""
    ensemble = Ensemble(
        list(bundle.members),
        model_version=bundle.version,
        spec_hash=bundle.spec_hash,
        thresholds=SignalThresholds(),
        policy=WeightPolicy(),
    )
    rng = np.random.default_rng(0)
    x, times = data.features, data.open_times_ms.tolist()
    picks = rng.integers(0, len(x), args.warmup + args.calls).tolist()
    single = [(x[i : i + 1], times[i]) for i in picks]
    batches = [
        (x[rng.choice(len(x), BATCH, replace=False)], times[-1])
        for _ in range(args.batch_warmup + args.batch_calls)
    ]
    cases = (
        ("one symbol", single, args.warmup),
        (f"{BATCH} symbols", batches, args.batch_warmup),
    )
    out: dict[str, dict[str, float]] = {}
    for case, inputs, warmup in cases:
        n = len(inputs[0][0])
        keys = [(Venue.BINANCE, f"S{k:03d}USDT", Interval.M1) for k in range(n)]

        def signal(open_time: int, probs: dict[str, FloatArray], keys: Any = keys) -> object:
            return ensemble.signals(keys, open_time, probs)

        ns = latencies(lambda item, f=signal: f(item[1], bundle.predict(item[0])), inputs, warmup)
        out[case] = stats(ns, n)
        for name, member in bundle.members.items():
            ns = latencies(lambda item, m=member: m.predict_proba(item[0]), inputs, warmup)
            out[f"  {case}: {name}"] = stats(ns, n)
        fixed = bundle.predict(inputs[0][0])
        ns = latencies(lambda item, f=fixed: signal(item[1], f), inputs, warmup)
        out[f"  {case}: ensemble.signals"] = stats(ns, n)
        out[f"{case}, executor"] = stats(
            asyncio.run(hop_latencies(bundle, signal, inputs, warmup)), n
        )
        out[f"{case}, Predictor"] = stats(
            asyncio.run(predictor_latencies(bundle, inputs, warmup)), n
        )
    return out


def train_section(args: argparse.Namespace, work: Path, spec: FeatureSpec) -> dict[str, Any]:
    """Time training end to end (and step by step); return figures, bundle and dataset."""
    csv = args.csv
    if csv is None:
        csv = work / "candles.csv"
        write_csv(generate_candles(count=args.days * 1440, seed=11, symbol=SYMBOL), csv)
    models_dir = work / "models"
    models_dir.mkdir()
    request = request_for(csv, models_dir)
    seconds, outcome = timed(lambda: run_training(request, spec, progress=io.StringIO()))
    figures: dict[str, Any] = {
        "csv": str(args.csv) if args.csv else f"synthetic, seed 11, {args.days} days",
        "candles": sum(outcome.metadata["training"]["candles"].values()),
        "samples": outcome.metadata["training"]["samples"],
        "seconds": seconds,
        "goal_s": GOAL_S,
        "goal_met": seconds <= GOAL_S,
        "walk_forward": outcome.metadata["metrics"]["summary"],
        "version": outcome.version,
    }
    if args.breakdown:
        figures["breakdown_s"], data = breakdown(request, spec)
    else:
        series = load_csv_series(request)
        data = build_dataset(spec, series, request.interval.ms, request.rule)
    bundle = ModelRegistry(models_dir).load(spec, Interval.M1, outcome.version)
    return {"training": figures, "bundle": bundle, "data": data}


def report(results: dict[str, Any]) -> None:
    """Print the figures as tables."""
    m, t = results["machine"], results["training"]
    print(
        f"machine: {m['cpus']} CPUs ({m['cpus_usable']} usable), Python {m['python']}, "
        f"numpy {m['numpy']}, xgboost {m['xgboost']}, scikit-learn {m['sklearn']}; "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    if m["loadavg_start"][0] >= 0.5:  # at the end the load includes this benchmark's own
        print("note: other processes were using the CPUs at start; the figures are pessimistic")
    print(
        f"\ntraining: {t['csv']}: {t['candles']:,} 1m candles -> {t['samples']:,} samples, "
        "ModelConfig() defaults, 4 folds, horizon 15, fee 0.001, slippage 5 bps"
    )
    print(f"  run_training end to end : {t['seconds']:6.1f} s")
    for step, seconds in t.get("breakdown_s", {}).items():
        print(f"    {step:<28}: {seconds:6.1f} s")
    if "breakdown_s" in t:
        print(f"    {'sum (second run)':<28}: {sum(t['breakdown_s'].values()):6.1f} s")
    print(f"  walk-forward means, version {t['version']}:")
    print(f"    {'model':<12}{'logloss':>9}{'acc':>7}{'bal_acc':>9}{'auc':>7}")
    for name, s in t["walk_forward"].items():
        auc = "—" if s["roc_auc"] is None else f"{s['roc_auc']:.3f}"
        print(
            f"    {name:<12}{s['log_loss']:>9.4f}{s['accuracy']:>7.3f}"
            f"{s['balanced_accuracy']:>9.3f}{auc:>7}"
        )
    wf = t["walk_forward"]
    gain = wf["prior"]["log_loss"] - wf["ensemble"]["log_loss"]
    print(f"    ensemble log loss {gain:+.4f} better than the prior (positive: it learned)")
    print(f"\ninference, µs per call ({results['rows']:,} input rows of the dataset):")
    print(f"  {'case':<34}{'p50':>9}{'p99':>9}{'max':>9}{'p50/symbol':>12}{'calls':>7}")
    for case, s in results["inference"].items():
        print(
            f"  {case:<34}{s['p50_us']:>9.1f}{s['p99_us']:>9.1f}{s['max_us']:>9.1f}"
            f"{s['per_symbol_p50_us']:>12.1f}{s['calls']:>7}"
        )
    inf = results["inference"]
    print("\nsummary:")
    print(
        f"  training, {t['candles']:,} candles : {t['seconds']:.1f} s — goal ≤ {GOAL_S:.0f} s "
        f"{'met' if t['goal_met'] else 'NOT met'} (peer's users report ~{PEER_S:.0f} s per pair)"
    )
    for case in ("one symbol", f"{BATCH} symbols"):
        for suffix in ("", ", executor", ", Predictor"):
            s = inf[case + suffix]
            print(
                f"  {case + suffix:<28}: p50 {s['p50_us']:8.1f} µs, p99 {s['p99_us']:8.1f} µs; "
                f"per symbol p50 {s['per_symbol_p50_us']:7.1f} µs, "
                f"p99 {s['per_symbol_p99_us']:7.1f} µs"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days of synthetic 1m candles")
    parser.add_argument("--csv", type=Path, help="train on this candle CSV instead (whole file)")
    parser.add_argument("--breakdown", action="store_true", help="also time each step (2x)")
    parser.add_argument("--calls", type=int, default=2000, help="timed one-symbol calls")
    parser.add_argument("--warmup", type=int, default=200, help="untimed one-symbol calls")
    parser.add_argument("--batch-calls", type=int, default=300, help="timed 100-symbol calls")
    parser.add_argument("--batch-warmup", type=int, default=30, help="untimed 100-symbol calls")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    if args.csv is not None and not args.csv.is_file():
        parser.error(f"--csv {args.csv}: no such file")
    results: dict[str, Any] = {"machine": machine()}
    spec = default_spec()
    with tempfile.TemporaryDirectory() as tmp:
        trained = train_section(args, Path(tmp), spec)
    results["training"] = trained["training"]
    results["rows"] = len(trained["data"])
    results["inference"] = inference(trained["bundle"], trained["data"], args)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
