"""The floor under the decision latency: what the design must do per instant, and nothing else.

Method. Between a candle's close and its committed decision the daemon must, whatever the code
on the loop costs, (1) run the three models on the instant's rows off the event loop, within a
slot and a timeout (``Predictor.predict``: the executor hop, the compiled models, the ensemble)
and (2) commit the instant before anything reports it (``StorageWriter``: the candles submitted,
the instant's ``RecordInstant`` of as many decisions, one snapshot and the state row written
and waited for, FAST durability, the same ops as ``bench/writer.py``). This benchmark does only
those two, back to back per instant, with the real model (the production tree counts, trained
as ``bench/pipeline.py`` trains it), the real predictor and the real writer on a fresh SQLite
file on the work disk, instants 2 ms apart. Also timed on their own: an executor round trip
that does nothing (the price of any hop on this machine) and the two parts apart, and each
instant's longest loop stall as ``bench/pipeline.py``'s 1 ms sampler sees it (the loop only
awaits here: the other threads holding the GIL, and the machine, are all that can hold it).
``--instants`` instants at 1 symbol and ``--batch-instants`` at 100 symbols after
``--warmup`` untimed ones; p50 / p99 / max per part. The floor's p99 is set beside the
decision-latency goal: what is left of the goal is all the rest of the path (quality gate,
features, monitor, prediction log, trading) may cost, and a floor above the goal means the
goal is not reachable on this machine while inference stays off the loop and the commit stays
before the report. The stall is set beside the stall goal the same way.

    .venv/bin/python bench/floor.py [--instants 2000] [--batch-instants 300] [--json FILE]
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from pipeline import STALL_PERIOD_S, StallSampler, machine, train_model  # noqa: E402
from results import row  # noqa: E402
from writer import SYMBOLS, commit_instant, instants, running  # noqa: E402

from paper_trader.domain import Interval, Venue  # noqa: E402
from paper_trader.features.engine import FeatureRow  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.prediction.predictor import Predictor, PredictorConfig  # noqa: E402
from paper_trader.prediction.registry import ModelRegistry  # noqa: E402

GOALS_MS = {1: 2.0, 100: 15.0}
STALL_GOAL_MS = 5.0
GAP_S = 2 * STALL_PERIOD_S  # idle between instants, as bench/pipeline.py's --gap-ms
COMMAND = ".venv/bin/python bench/floor.py"


def feature_rows(index: int, symbols: Sequence[str]) -> list[FeatureRow]:
    """Return one instant's ready feature rows (values drawn once per instant, seeded)."""
    spec = default_spec()
    values = np.random.default_rng(index).normal(size=(len(symbols), len(spec.names)))
    return [
        FeatureRow(
            venue=Venue.BINANCE,
            symbol=symbol,
            interval=Interval.M1,
            open_time_ms=60_000 * (index + 1),
            values=tuple(values[k].tolist()),
            is_ready=True,
        )
        for k, symbol in enumerate(symbols)
    ]


Timed = Callable[[int], Awaitable[None]]


async def timed(parts: dict[str, Timed], warm: int, count: int) -> dict[str, list[int]]:
    """Run each part per instant, in order, then idle ``GAP_S``; return each part's time, the
    sum's and the instant's longest loop stall (ns), as the 1 ms sampler of the pipeline
    benchmark sees it: the loop itself only waits here, so what stalls it is the other threads
    holding the GIL (the models, the writer) and the machine."""
    out: dict[str, list[int]] = {name: [] for name in (*parts, "floor", "stall")}
    sampler = StallSampler()
    sampling = asyncio.create_task(sampler.run())
    for index in range(warm + count):
        total = 0
        begun = time.perf_counter_ns()
        for name, part in parts.items():
            started = time.perf_counter_ns()
            await part(index)
            spent = time.perf_counter_ns() - started
            total += spent if name != "hop" else 0
            if index >= warm:
                out[name].append(spent)
        await asyncio.sleep(GAP_S)  # the sampler's sleep under way ends, as between instants
        if index >= warm:
            out["floor"].append(total)
            out["stall"].append(sampler.worst(begun, time.perf_counter_ns()))
    sampling.cancel()
    return out


def stats(ns: Sequence[int]) -> dict[str, float]:
    """Return p50 / p99 / max in ms."""
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p99": round(float(np.percentile(ms, 99)), 3),
        "max": round(float(ms.max()), 3),
    }


async def case(work: Path, symbols: int, warm: int, count: int) -> dict[str, Any]:
    """Measure the hop, the inference, the commit and the floor at ``symbols`` symbols."""
    names = SYMBOLS[:symbols]
    spec = default_spec()
    predictor = Predictor(spec, PredictorConfig())
    predictor.install(ModelRegistry(work / "models").load(spec, Interval.M1))
    rows = [feature_rows(i, names) for i in range(warm + count)]
    ops = instants(0, warm + count, symbols, ledger=False)
    hop = ThreadPoolExecutor(max_workers=1, thread_name_prefix="floor-hop")
    loop = asyncio.get_running_loop()
    async with running(f"floor-{symbols}", work) as writer:

        async def nothing(_: int) -> None:
            await loop.run_in_executor(hop, int)

        async def infer(index: int) -> None:
            if await predictor.predict(rows[index]) is None:
                raise RuntimeError("the predictor made no prediction")

        async def commit(index: int) -> None:
            await commit_instant("new", writer, ops[index])

        times = await timed({"hop": nothing, "inference": infer, "commit": commit}, warm, count)
    predictor.close()
    hop.shutdown()
    goal = GOALS_MS[symbols]
    out = {name: stats(ns) for name, ns in times.items()}
    out["goal_p99_ms"] = goal
    out["left_for_the_rest_ms"] = round(goal - out["floor"]["p99"], 3)
    out["instants"] = count
    return out


def result_rows(cases: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the results-table rows: each case's floor, and what it leaves of the goal."""
    out = []
    for label, r in cases.items():
        floor, goal = r["floor"], r["goal_p99_ms"]
        left = r["left_for_the_rest_ms"]
        verdict = (
            f"leaves {left:g} ms of the {goal:g} ms goal for the rest of the path"
            if left > 0
            else f"is {-left:g} ms above the {goal:g} ms goal on its own"
        )
        out.append(
            row(
                f"floor under candle close -> committed decision, {label}, p99",
                f"{floor['p99']:g} ms (p50 {floor['p50']:g}): inference p99 "
                f"{r['inference']['p99']:g}, commit p99 {r['commit']['p99']:g} (an empty "
                f"executor hop p99 {r['hop']['p99']:g}); it {verdict}",
                goal=None,
                met=None,
                method=f"only the models through the Predictor and the instant's commit through "
                f"the StorageWriter (FAST), 2 ms apart, {r['instants']} instants",
                command=COMMAND,
            )
        )
    r = cases["100 symbols"]
    stall = r["stall"]
    over = stall["p99"] - STALL_GOAL_MS
    out.append(
        row(
            "event-loop stall under that floor, 100 symbols, p99 of each instant's longest",
            f"{stall['p99']:g} ms (p50 {stall['p50']:g}) with nothing on the loop but the awaits: "
            + (
                f"{over:g} ms above the {STALL_GOAL_MS:g} ms goal on its own"
                if over > 0
                else f"leaves {-over:g} ms of the {STALL_GOAL_MS:g} ms goal"
            ),
            goal=None,
            met=None,
            method="the 1 ms sampler of bench/pipeline.py during the floor's instants: only the "
            "inference and writer threads (and the machine) can hold the loop",
            command=COMMAND,
        )
    )
    return out


def report(cases: dict[str, dict[str, Any]]) -> None:
    """Print each case's parts and the floor beside the goal."""
    print(f"{'case':12} {'part':10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, r in cases.items():
        for part in ("hop", "inference", "commit", "floor", "stall"):
            s = r[part]
            print(f"{label:12} {part:10} {s['p50']:>8} {s['p99']:>8} {s['max']:>8}")
        left = r["left_for_the_rest_ms"]
        print(
            f"{label:12} goal p99 <= {r['goal_p99_ms']:g} ms: the floor alone "
            + (f"leaves {left:g} ms for the rest" if left > 0 else f"is {-left:g} ms above it")
        )


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--instants", type=int, default=2000, help="timed 1-symbol instants")
    add("--batch-instants", type=int, default=300, help="timed 100-symbol instants")
    add("--warmup", type=int, default=200, help="untimed instants first, per case")
    add("--train-candles", type=int, default=6000, help="candles the model is trained on")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    return parser.parse_args()


def main() -> None:
    """Train the model, measure both cases, print them and write the JSON."""
    args = arguments()
    results: dict[str, Any] = {"machine": machine()}
    (ROOT / "cache").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-floor-", dir=ROOT / "cache") as tmp:
        work = Path(tmp)
        train_model(work, args.train_candles)
        cases = {
            "1 symbol": asyncio.run(case(work, 1, args.warmup, args.instants)),
            "100 symbols": asyncio.run(case(work, 100, args.warmup, args.batch_instants)),
        }
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["cases"] = cases
    results["rows"] = result_rows(cases)
    report(cases)
    print(
        f"load average at start {results['machine']['loadavg_start']}, "
        f"at end {results['machine']['loadavg_end']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
