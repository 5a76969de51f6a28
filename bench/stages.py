"""Where a replay's time goes: each stage's cost per symbol-candle against the goal's budget.

The profile behind the replay goals of ``bench/pipeline.py``. The same synthetic CSVs and
settings as that benchmark's replay (1, 10 and 100 symbols, a model trained as it trains one)
go through ``run_replay``, once with the model and once with an empty models directory (no
prediction at all: what the rest of the path costs on its own). ``run_replay`` builds its
stages itself, so the only seams are the stages' classes: each method named in ``STAGES`` is
replaced, for the run, by a wrapper that adds the wall time of its calls (an async method's
awaits included: the inference thread, the writer's commits) and calls the real method; the
results and the digest are those of an untimed run. "rest" is the decision task's batch
handling (``DecisionEngine._handle``) minus the named stages: ordering, alignment, the candle
store, pacing, the channel. Reported per symbol-candle, beside the budget the goal leaves
(1 / goal), so the sum of the stages that must run on every candle says whether the goal is
within reach of this code at all. The wrappers add about 1 µs per call.

    .venv/bin/python bench/stages.py [--candles 6000] [--candles-10 2000]
        [--candles-100 1500] [--json FILE]
"""

import argparse
import collections
import functools
import inspect
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline import REPLAY_GOALS, machine, replay_case, symbols_for, train_model
from results import row

from paper_trader.engine import DecisionEngine
from paper_trader.features.stage import FeatureStage
from paper_trader.market.quality import QualityMonitor
from paper_trader.prediction.predictor import Predictor
from paper_trader.prediction.stage import PredictionStage
from paper_trader.storage import StorageWriter
from paper_trader.trading.stage import TradingStage

# (label, class, method); the indented ones are parts of the stage above them.
STAGES: tuple[tuple[str, type, str], ...] = (
    ("quality gate", QualityMonitor, "assess"),
    ("features", FeatureStage, "on_instant"),
    ("prediction", PredictionStage, "on_batch"),
    ("  inference (awaited thread)", Predictor, "infer"),
    ("  resolution", PredictionStage, "_resolve_instant"),
    ("  ensemble + signals", Predictor, "predict_instant"),
    ("  prediction log", PredictionStage, "_log"),
    ("trading", TradingStage, "on_batch"),
    ("  awaited commits", StorageWriter, "write"),
)
WHOLE = (DecisionEngine, "_handle")
TOP = ("quality gate", "features", "prediction", "trading")


def _timed(method: Callable[..., Any], label: str, spent: dict[str, float]) -> Any:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return timed_async

    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    return timed


@contextmanager
def stage_clocks() -> Iterator[dict[str, float]]:
    """Time every stage of ``STAGES`` (and the whole batch) while inside; restore them after."""
    spent: dict[str, float] = collections.defaultdict(float)
    seams = [*STAGES, ("whole", *WHOLE)]
    originals = [(cls, name, cls.__dict__[name]) for _, cls, name in seams]
    try:
        for label, cls, name in seams:
            setattr(cls, name, _timed(cls.__dict__[name], label, spent))
        yield spent
    finally:
        for cls, name, original in originals:
            setattr(cls, name, original)


def profile_case(work: Path, count: int, candles: int, *, model: bool) -> dict[str, Any]:
    """Replay ``count`` symbols with (or without) ``work``'s model; return each stage's
    µs per symbol-candle."""
    case = work / f"{count}-{'model' if model else 'bare'}"
    case.mkdir()
    if model:
        (case / "models").symlink_to(work / "models")
    else:
        (case / "models").mkdir()
    with stage_clocks() as spent:
        outcome = replay_case(case, symbols_for(count), candles)
    per = {label: seconds * 1e6 / outcome["candles"] for label, seconds in spent.items()}
    per["rest"] = per.pop("whole") - sum(per.get(label, 0.0) for label in TOP)
    return {"symbols": count, "model": model, "per_candle_us": per, **outcome}


def print_case(case: dict[str, Any]) -> None:
    goal = REPLAY_GOALS[case["symbols"]]
    budget = 1e6 / goal
    print(
        f"\n{case['symbols']} symbol(s), {'with the model' if case['model'] else 'no model'}: "
        f"{case['daemon_rate']:,.0f} symbol-candles/s, {1e6 / case['daemon_rate']:.1f} µs each "
        f"(the goal {goal:,}/s leaves {budget:.1f} µs)"
    )
    for label, _, _ in (*STAGES, ("rest", None, None)):
        us = case["per_candle_us"].get(label)
        if us is not None:
            print(f"  {label:<30}{us:>9.1f} µs")


def summary(case: dict[str, Any]) -> str:
    per = case["per_candle_us"]
    parts = ", ".join(f"{label} {per.get(label, 0.0):.1f}" for label in (*TOP, "rest"))
    return f"{1e6 / case['daemon_rate']:.1f} µs per symbol-candle: {parts}"


def result_rows(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for case in cases:
        budget = 1e6 / REPLAY_GOALS[case["symbols"]]
        plural = "s" if case["symbols"] > 1 else ""
        rows.append(row(
            f"replay, where the time goes, {case['symbols']} symbol{plural}, "
            f"{'with the model' if case['model'] else 'no model'}",
            f"{summary(case)}; the goal leaves {budget:.1f} µs",
            goal=None, met=None,
            method=f"run_replay of {case['candles']:,} synthetic candles, each stage's calls "
            "timed by a wrapper on its class (awaits included); rest = the batch's other work",
            command=".venv/bin/python bench/stages.py",
        ))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=6000, help="candles, 1 symbol")
    parser.add_argument("--candles-10", type=int, default=2000, help="per symbol, 10 symbols")
    parser.add_argument("--candles-100", type=int, default=1500, help="per symbol, 100 symbols")
    parser.add_argument("--train-candles", type=int, default=6000)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    sizes = {1: args.candles, 10: args.candles_10, 100: args.candles_100}
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        work = Path(tmp)
        results["model"] = train_model(work, args.train_candles)
        for count, candles in sizes.items():
            for model in (True, False) if candles > 0 else ():
                cases.append(profile_case(work, count, candles, model=model))
                print_case(cases[-1])
    results["cases"] = cases
    results["rows"] = result_rows(cases)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
