"""Does retraining pause candle handling? Loop lag and prediction latency during a retraining.

Method. A SQLite database gets ``--candles`` seeded synthetic 1m candles of one symbol (30 days,
the default ``TRAINING_CANDLES``). A first ``ModelLifecycle.retrain`` trains and installs a
model exactly as the daemon does: ``python -m paper_trader train --from-db --promote-if-better
--nice 10`` as a separate process. Then, on the event loop, a stand-in for the decision task
predicts one symbol every 20 ms through the real ``Predictor`` (executor threads, breaker,
ensemble) and records each call's latency: first for ``--idle`` seconds with nothing else
running, then while a second retraining runs (the candidate then competes with the current
model on the most recent 15 % of the data). The lifecycle samples the loop's lag every 50 ms
(how late a 50 ms sleep wakes) during the retraining and reports its maximum and p99; the same
is computed for the idle period. No figure here is asserted anywhere.

    .venv/bin/python bench/retrain.py [--candles 43200] [--idle 10]
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paper_trader.app.configs import lifecycle_config  # noqa: E402
from paper_trader.domain import Interval, PredictionOutcome, PredictionRow, Venue  # noqa: E402
from paper_trader.features.engine import FeatureRow  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.prediction.lifecycle import ModelLifecycle  # noqa: E402
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor  # noqa: E402
from paper_trader.prediction.predictor import Predictor, PredictorConfig  # noqa: E402
from paper_trader.prediction.registry import ModelRegistry  # noqa: E402
from paper_trader.prediction.stage import PredictionStage  # noqa: E402
from paper_trader.settings import Settings  # noqa: E402
from paper_trader.simulator.synthetic import generate_candles  # noqa: E402
from paper_trader.storage import (  # noqa: E402
    UpsertCandles,
    apply_transaction,
    migrate,
    open_database,
)

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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candles", type=int, default=43_200)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        work = Path(tmp)
        (work / "models").mkdir()
        await store(work / "paper_trader.db", args.candles)
        os.environ.update(
            DB_PATH=str(work / "paper_trader.db"),
            MODELS_DIR=str(work / "models"),
            SYMBOLS="BTCUSDT",
            TRAINING_CANDLES=str(args.candles),
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
        life = ModelLifecycle(stage, ModelRegistry(work / "models"), SPEC, config)
        print(f"load average at start: {os.getloadavg()}; {args.candles:,} candles stored")
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
        summary = second.summary or {}
        print(
            f"retraining: exit {second.exit_code}, {second.seconds:.1f} s, promoted "
            f"{summary.get('promoted')}, contest: {summary.get('contest')}"
        )
        print(f"{'':28}{'idle':>12}{'retraining':>14}")
        print(f"{'loop lag max, ms':28}{max(idle_lag):>12.2f}{second.lag_max_ms:>14.2f}")
        print(f"{'loop lag p99, ms':28}{pct(idle_lag, 99):>12.2f}{second.lag_p99_ms:>14.2f}")
        for q in (50, 99):
            label = f"predict 1 symbol p{q}, µs"
            print(f"{label:28}{pct(idle_lat, q):>12.0f}{pct(busy_lat, q):>14.0f}")
        print(f"{'predictions timed':28}{len(idle_lat):>12}{len(busy_lat):>14}")
        print(f"load average at end: {os.getloadavg()}")
        predictor.close()


if __name__ == "__main__":
    asyncio.run(main())
