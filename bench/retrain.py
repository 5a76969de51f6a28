"""Training beside other work: its time idle and beside a busy process; the loop during a retrain.

Threads (``--parts threads``). ``--hourly`` seeded synthetic 1h candles of one symbol (17,520:
two years; at 8,760 fixed costs blur the settings' differences) are written as a CSV
(``--real``: the last ones of /work/shared/data/binance_BTCUSDT_1h.csv, when it is there);
each setting trains on it as ``train --csv`` does (``run_training``: dataset, walk-forward with
``--folds`` folds, final fit, publish), in a fresh process started with the setting's
environment, since OpenMP reads its wait policy once, when it loads. Each setting trains idle,
then beside one CPU-bound process (``python -c "while True: pass"``, pinned to nothing) that
the bench starts before and kills after the training; rounds (``--rounds``) go through the
settings in ABBA order and the median is reported. A training still running at ``--cap``
seconds is killed and reported at the cap, marked "≥". The goal, per setting: busy ≤ 2x its
own idle time, and idle speed ≥ 80 % of the fastest setting's. The machine may be shared: the
load average is printed, and only the neighbour the bench starts is controlled. Production
settings: ``--folds 4 --cap 400`` (WALK_FORWARD_FOLDS 4, ModelConfig's trees).

Lifecycle (``--parts lifecycle``). A SQLite database gets ``--candles`` seeded synthetic 1m
candles of one symbol (30 days, the default ``TRAINING_CANDLES``). A first
``ModelLifecycle.retrain`` trains and installs a model exactly as the daemon does: ``python -m
paper_trader train --from-db --promote-if-better --nice 10`` as a separate process. Then, on the
event loop, a stand-in for the decision task predicts one symbol every 20 ms through the real
``Predictor`` (executor threads, breaker, ensemble) and records each call's latency: first for
``--idle`` seconds with nothing else running, then while a second retraining runs (the candidate
then competes with the current model on the most recent 15 % of the data). The lifecycle samples
the loop's lag every 50 ms during the retraining and reports its maximum and p99; the same is
computed for the idle period. No figure here is asserted anywhere.

    .venv/bin/python bench/retrain.py [--parts threads,lifecycle] [--hourly 17520] [--folds 1]
        [--rounds 2] [--cap 60] [--only WORD ...] [--real] [--candles 43200] [--idle 10]
        [--json FILE]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from results import row as result_row  # noqa: E402

from paper_trader.app.configs import lifecycle_config  # noqa: E402
from paper_trader.domain import Interval, PredictionOutcome, PredictionRow, Venue  # noqa: E402
from paper_trader.features.engine import FeatureRow  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.prediction.lifecycle import ModelLifecycle  # noqa: E402
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor  # noqa: E402
from paper_trader.prediction.predictor import Predictor, PredictorConfig  # noqa: E402
from paper_trader.prediction.registry import ModelRegistry  # noqa: E402
from paper_trader.prediction.stage import PredictionStage  # noqa: E402
from paper_trader.prediction.threads import WAIT_VARIABLES  # noqa: E402
from paper_trader.settings import Settings  # noqa: E402
from paper_trader.simulator.synthetic import generate_candles, write_csv  # noqa: E402
from paper_trader.storage import (  # noqa: E402
    UpsertCandles,
    apply_transaction,
    migrate,
    open_database,
)

REAL_1H = Path("/work/shared/data/binance_BTCUSDT_1h.csv")
IDLE_SHARE = 0.8  # idle speed kept, of the fastest setting's
BUSY_RATIO = 2.0  # busy time, at most this many times the setting's idle time


@dataclass(frozen=True, slots=True)
class Setting:
    """One way to run training's threads: ModelConfig's n_jobs and xgb_threads, OpenMP's env."""

    label: str
    n_jobs: int
    env: dict[str, str]
    xgb_threads: int


# GOMP_SPINCOUNT=300000 is what libgomp does when nothing is set (the project's default before).
# A shorter spin (GOMP_SPINCOUNT=10000) measured 3.8x busy/idle: XGBoost waits too often.
SETTINGS = (
    Setting("before: 2 threads, spin 300k", 2, {"GOMP_SPINCOUNT": "300000"}, xgb_threads=2),
    Setting("now: XGBoost 1, forest 2", 2, {"OMP_WAIT_POLICY": "PASSIVE"}, xgb_threads=1),
    Setting("2 threads, PASSIVE", 2, {"OMP_WAIT_POLICY": "PASSIVE"}, xgb_threads=2),
    Setting("1 thread", 1, {"GOMP_SPINCOUNT": "300000"}, xgb_threads=1),
)


def child_train(jobs: int, xgb_threads: int, csv: Path, folds: int) -> None:
    """In the child: train as ``train --csv`` does; print the seconds it took as JSON."""
    from paper_trader.app.configs import label_rule  # noqa: PLC0415
    from paper_trader.cli.train import TrainRequest, run_training  # noqa: PLC0415
    from paper_trader.prediction.models import ModelConfig  # noqa: PLC0415
    from paper_trader.settings import Settings  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-retrain-child-") as tmp:
        request = TrainRequest(
            symbols=("BTCUSDT",),
            interval=Interval.H1,
            venue=Venue.BINANCE,
            models_dir=Path(tmp) / "models",
            rule=label_rule(Settings(_env_file=None)),
            csvs=(csv,),
            folds=folds,
            config=ModelConfig(n_jobs=jobs, xgb_threads=xgb_threads),
            force=True,
        )
        with open(os.devnull, "w", encoding="utf-8") as quiet:
            started = time.perf_counter()
            run_training(request, progress=quiet)
            print(json.dumps({"seconds": time.perf_counter() - started}))


def hourly_csv(work: Path, count: int, *, real: bool) -> tuple[Path, str]:
    """Write the training candles; return the file and where they come from."""
    out = work / "hourly.csv"
    if real and REAL_1H.is_file():
        lines = REAL_1H.read_text(encoding="utf-8").splitlines()
        out.write_text("\n".join([lines[0], *lines[1:][-count:]]) + "\n", encoding="utf-8")
        return out, f"the last {min(count, len(lines) - 1):,} candles of {REAL_1H.name}"
    write_csv(generate_candles(count=count, seed=7, interval=Interval.H1), out)
    return out, f"{count:,} synthetic 1h candles"


@contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    """Run one CPU-bound process meanwhile when ``busy``."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.3)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def train_once(setting: Setting, csv: Path, args: argparse.Namespace, *, busy: bool) -> float:
    """Return one training's seconds (the cap when it ran past it and was killed)."""
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES} | setting.env
    command = [sys.executable, __file__, "--child-jobs", str(setting.n_jobs)]
    command += ["--child-xgb", str(setting.xgb_threads), "--child-csv", str(csv)]
    command += ["--folds", str(args.folds)]
    with neighbour(busy):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=args.cap, check=True
            )
        except subprocess.TimeoutExpired:
            return float(args.cap)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def compare_threads(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Train under every setting idle and busy, ABBA over rounds; return the figures."""
    csv, source = hourly_csv(work, args.hourly, real=args.real)
    print(f"threads: {source}, --folds {args.folds}, load average {os.getloadavg()}")
    chosen = tuple(s for s in SETTINGS if not args.only or any(w in s.label for w in args.only))
    times: dict[str, dict[str, list[float]]] = {s.label: {"idle": [], "busy": []} for s in chosen}
    for number in range(args.rounds):
        order = chosen if number % 2 == 0 else chosen[::-1]
        for setting in order:
            for busy in (False, True) if number % 2 == 0 else (True, False):
                seconds = train_once(setting, csv, args, busy=busy)
                times[setting.label]["busy" if busy else "idle"].append(seconds)
                print(f"  round {number + 1}: {setting.label}, {'busy' if busy else 'idle'}: "
                      f"{seconds:.1f} s")  # fmt: skip
    figures = judge(times, args.cap)
    return figures | {"source": source, "folds": args.folds, "rounds": args.rounds}


def judge(times: dict[str, dict[str, list[float]]], cap: float) -> dict[str, Any]:
    """Return each setting's median idle and busy seconds, their ratio and the goals' verdicts.

    A median at the cap is a lower bound (``capped``), and so is its ratio.
    """
    rows: dict[str, dict[str, Any]] = {
        label: {"idle_s": statistics.median(t["idle"]), "busy_s": statistics.median(t["busy"])}
        for label, t in times.items()
    }
    fastest = min(row["idle_s"] for row in rows.values())
    for row in rows.values():
        row["ratio"] = row["busy_s"] / row["idle_s"]
        row["idle_speed"] = fastest / row["idle_s"]
        row["capped"] = row["busy_s"] >= cap  # the busy time and the ratio are lower bounds
        row["idle_capped"] = row["idle_s"] >= cap  # then the ratio says nothing
        fast_enough = row["idle_speed"] >= IDLE_SHARE and not row["idle_capped"]
        row["met"] = row["ratio"] <= BUSY_RATIO and fast_enough
    return {"settings": rows, "samples": times}


def threads_rows(figures: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Return the rows of ``bench/results.md``: busy/idle per setting, the one in use first."""
    out = []
    for label, r in sorted(figures["settings"].items(), key=lambda i: i[0] != SETTINGS[1].label):
        over = "≥ " if r["capped"] else ""
        out.append(result_row(
            f"training beside a CPU-bound process, {label}",
            f"{r['idle_s']:.1f} s idle, {over}{r['busy_s']:.1f} s busy: {over}{r['ratio']:.2f}x "
            f"({r['idle_speed']:.0%} of the fastest idle speed)",
            goal=f"busy ≤ {BUSY_RATIO:g}x idle, idle speed ≥ {IDLE_SHARE:.0%}", met=r["met"],
            method=f"train in a child process on {args.hourly:,} synthetic hourly candles, "
            f"{args.folds} folds + final fit, idle and beside `while True: pass`, medians",
            command=".venv/bin/python bench/retrain.py",
        ))  # fmt: skip
    return out


def print_threads(figures: dict[str, Any]) -> None:
    """Print the settings table: figure, goal, met or not."""
    print(f"\n{'training setting':32}{'idle s':>8}{'busy s':>9}{'busy/idle':>11}"
          f"{'idle speed':>12}  goal: ≤ {BUSY_RATIO:g}x and ≥ {IDLE_SHARE:.0%}")  # fmt: skip
    for label, row in figures["settings"].items():
        over = "≥ " if row["capped"] else ""
        busy, ratio = f"{over}{row['busy_s']:.1f}", f"{over}{row['ratio']:.2f}x"
        if row["idle_capped"]:
            ratio = "capped"
        print(f"{label:32}{row['idle_s']:>8.1f}{busy:>9}{ratio:>11}{row['idle_speed']:>12.0%}  "
              f"{'met' if row['met'] else 'not met'}")  # fmt: skip
    in_use = figures["settings"].get(SETTINGS[1].label)
    if in_use is not None:
        verdict = "met" if in_use["met"] else "not met"
        print(f"the setting in use ({SETTINGS[1].label}): goal {verdict}")


SPEC = default_spec()
TICK_S = 0.02


async def store(db: Path, count: int) -> None:
    conn = await open_database(db)
    try:
        await migrate(conn)
        candles = tuple(generate_candles(count=count, seed=11, symbol="BTC-USDT"))
        batches = range(0, len(candles), 10_000)
        ops = [UpsertCandles(candles=candles[start : start + 10_000]) for start in batches]
        await apply_transaction(conn, ops)
    finally:
        await conn.close()


async def _nothing(_rows: tuple[PredictionRow, ...] | tuple[PredictionOutcome, ...]) -> None:
    return None


async def predicting(predictor: Predictor, until: asyncio.Event, samples: list[float]) -> None:
    """Predict one symbol every TICK_S until ``until`` is set; record each latency in µs."""
    rng = np.random.default_rng(1)
    while not until.is_set():
        row = FeatureRow(
            venue=Venue.BINANCE,
            symbol="BTC-USDT",
            interval=Interval.M1,
            open_time_ms=0,
            values=tuple(rng.normal(size=len(SPEC.names)).tolist()),
            is_ready=True,
        )
        started = time.perf_counter_ns()
        await predictor.predict([row])
        samples.append((time.perf_counter_ns() - started) / 1000)
        await asyncio.sleep(TICK_S)


async def lag_while(until: asyncio.Event, lags: list[float]) -> None:
    while not until.is_set():
        before = time.monotonic()
        await asyncio.sleep(0.05)
        lags.append(max(0.0, (time.monotonic() - before - 0.05) * 1000))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def lifecycle_in(work: Path, candles: int) -> tuple[ModelLifecycle, Predictor]:
    """Return the daemon's lifecycle and predictor, set up on the database in ``work``."""
    (work / "models").mkdir()
    os.environ.update(
        DB_PATH=str(work / "paper_trader.db"),
        MODELS_DIR=str(work / "models"),
        SYMBOLS="BTCUSDT",
        TRAINING_CANDLES=str(candles),
        LOG_DIR=str(work / "logs"),
    )
    settings = Settings(_env_file=None)
    predictor = Predictor(SPEC, PredictorConfig(), now_ms=lambda: 0)
    stage = PredictionStage(
        predictor,
        PredictionMonitor(MonitorConfig(), now_ms=lambda: 0),
        record=_nothing,
        resolve=_nothing,
    )
    config = lifecycle_config(settings, retrain=True)
    return ModelLifecycle(stage, ModelRegistry(work / "models"), SPEC, config), predictor


async def during_retraining(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Retrain as the daemon does; return the loop's lag and prediction latency idle and then."""
    work = work / "lifecycle"
    work.mkdir()
    await store(work / "paper_trader.db", args.candles)
    life, predictor = lifecycle_in(work, args.candles)
    print(f"\nlifecycle: load average {os.getloadavg()}; {args.candles:,} 1m candles stored")
    first = await life.retrain("first model")
    print(f"first training: exit {first.exit_code}, {first.seconds:.1f} s")
    idle_lat: list[float] = []
    idle_lag: list[float] = []
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(predicting(predictor, stop, idle_lat))
        group.create_task(lag_while(stop, idle_lag))
        await asyncio.sleep(args.idle)
        stop.set()
    busy_lat: list[float] = []
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(predicting(predictor, stop, busy_lat))
        second = await life.retrain("second model, with a contest")
        stop.set()
    predictor.close()
    summary = second.summary or {}
    print(
        f"retraining: exit {second.exit_code}, {second.seconds:.1f} s, promoted "
        f"{summary.get('promoted')}, contest: {summary.get('contest')}"
    )
    figures = {
        "first_training_s": first.seconds,
        "retraining_s": second.seconds,
        "loop_lag_max_ms": {"idle": max(idle_lag), "retraining": second.lag_max_ms},
        "loop_lag_p99_ms": {"idle": pct(idle_lag, 99), "retraining": second.lag_p99_ms},
        "predict_p50_us": {"idle": pct(idle_lat, 50), "retraining": pct(busy_lat, 50)},
        "predict_p99_us": {"idle": pct(idle_lat, 99), "retraining": pct(busy_lat, 99)},
        "predictions_timed": {"idle": len(idle_lat), "retraining": len(busy_lat)},
    }
    print_lifecycle(figures)
    return figures


def print_lifecycle(figures: dict[str, Any]) -> None:
    """Print the loop's lag and the prediction latency, idle and during the retraining."""
    print(f"{'':28}{'idle':>12}{'retraining':>14}")
    for key, label, digits in (
        ("loop_lag_max_ms", "loop lag max, ms", 2),
        ("loop_lag_p99_ms", "loop lag p99, ms", 2),
        ("predict_p50_us", "predict 1 symbol p50, µs", 0),
        ("predict_p99_us", "predict 1 symbol p99, µs", 0),
        ("predictions_timed", "predictions timed", 0),
    ):
        idle, during = figures[key]["idle"], figures[key]["retraining"]
        print(f"{label:28}{idle:>12.{digits}f}{during:>14.{digits}f}")


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--parts", default="threads,lifecycle", help="threads, lifecycle or both")
    add("--hourly", type=int, default=17_520, help="1h candles the thread settings train on")
    add("--folds", type=int, default=1, help="walk-forward folds of those trainings")
    add("--rounds", type=int, default=2, help="rounds over the settings (ABBA order)")
    add("--cap", type=float, default=60.0, help="seconds after which a training is killed")
    add("--only", nargs="*", metavar="WORD", help="only the settings whose label has a WORD")
    add("--real", action="store_true", help=f"train on {REAL_1H} when it is there")
    add("--candles", type=int, default=43_200, help="1m candles of the lifecycle part")
    add("--idle", type=float, default=10.0, help="idle seconds of the lifecycle part")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    add("--child-jobs", type=int, help=argparse.SUPPRESS)
    add("--child-csv", type=Path, help=argparse.SUPPRESS)
    add("--child-xgb", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.child_jobs is not None:
        child_train(args.child_jobs, args.child_xgb, args.child_csv, args.folds)
        return
    parts = set(args.parts.split(","))
    results: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        if "threads" in parts:
            results["threads"] = compare_threads(args, Path(tmp))
            print_threads(results["threads"])
        if "lifecycle" in parts:
            results["lifecycle"] = asyncio.run(during_retraining(args, Path(tmp)))
    results["loadavg_end"] = os.getloadavg()
    if "threads" in results:
        results["rows"] = threads_rows(results["threads"], args)
    print(f"load average at end: {results['loadavg_end']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
