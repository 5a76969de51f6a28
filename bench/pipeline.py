"""Pipeline cost: candle close -> committed decision latency, and replay throughput.

Method. A model is trained once, untimed: ``run_training`` on ``--train-candles`` seeded
synthetic 1m candles, production tree counts (``ModelConfig()``), 2 folds, horizon 5, fee 0.001.
The settings make a busy market so that the broker path runs: ``EXCHANGE=kraken``,
``ALLOW_SHORT=true``, ``FEE_RATE=0.001``, ``PREDICTION_HORIZON=5``, ``AUTO_TRAIN=false``,
signal thresholds 0.05 / 0.15, no minimum time between trades nor stop-loss cooldown,
``MAX_HOLDING_TIME=900``, loose loss breakers, ``MAX_POSITIONS`` 1 or 10; the rest default.

Latency. The decision path is built in-process as ``app/stages.py`` builds it: the
``StorageWriter`` on a fresh SQLite file in ``--dir`` run as a task, the ``EventRecorder``
writing events to the outbox, the ``DecisionEngine`` with its channel, ``QualityMonitor``,
``FeatureStage``, the ``PredictionStage`` of ``build_model_parts`` (executor included), the
``TradingStage`` of ``build_trading_stage`` and the ``InstantAligner``; logging as the daemon's
(INFO, JSON lines to a file). Nothing is patched; the timestamps come from the seams ``app/``
fills itself: the candle store (end of quality + features), the prediction stage handed
to the engine (a wrapper that stamps when the real stage's ``on_batch`` returns: end of
prediction), and the writer given to ``build_trading_stage``, which delegates to the real one
(start and end of the ledger commit). Each case is warmed up through the same channel,
untimed: ``--warmup`` and ``--batch-warmup`` instants (default 1,500: features ready, the
1,440-candle ``VOLATILITY_WINDOW`` full, so the steady state; the windows are written with the
ledger state every 240 instants, and the state's size is printed). Then per instant:
t0 = ``perf_counter_ns()``, the candles of every symbol for that minute go into the channel;
t1 = when that instant's ``RecordInstant`` has committed (checked by its candle time). Between
instants the pipeline is quiesced (engine idle, outbox written, a barrier write) and idles
``--gap-ms`` (live, instants are a minute apart). Reported over ``--instants`` (1 symbol) and
``--batch-instants`` (100 symbols closing together): p50, p99, max of t1 - t0, its four
segments, FAST and LEDGER (``synchronous=FULL``: a fill or a breaker change) commits apart,
the CPU time used meanwhile by the event loop's thread and by the whole process (wall time
well above it is waiting: threads, fsync, or other processes holding the cores), the garbage
collector's pauses (``gc.callbacks``), entries and exits made. ``--profile N`` prints the top
N functions of the event loop's thread over the measured instants (cProfile; the latencies are
then inflated).

Throughput. Synthetic CSVs, 1 symbol x ``--replay-candles``, 10 symbols x
``--replay-10-candles`` and 100 symbols x ``--replay-100-candles`` (past the features'
660-candle warm-up, so the models predict for every symbol), go through ``run_replay`` of
``app/replay.py`` (``replay`` without the CLI, log output discarded): symbol-candles per second
= candles processed / the daemon's elapsed time (start-up included, CSV validation not), and
over the whole call. About 3 minutes on an idle
2-core machine; the load average is printed: other processes inflate the p99.

    .venv/bin/python bench/pipeline.py [--instants 2000] [--batch-instants 300]
        [--replay-candles 6000] [--replay-10-candles 2000]
        [--replay-100-candles 1500] [--profile 25] [--json FILE]
"""

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import gc
import io
import itertools
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from results import row  # noqa: E402

from paper_trader.app.configs import log_config, quality_config  # noqa: E402
from paper_trader.app.models import build_model_parts  # noqa: E402
from paper_trader.app.replay import ReplayRequest, run_replay  # noqa: E402
from paper_trader.app.stages import CANDLE_CHANNEL_CAPACITY, unresolved_predictions  # noqa: E402
from paper_trader.app.trading import build_trading_stage  # noqa: E402
from paper_trader.clock import SystemClock  # noqa: E402
from paper_trader.domain import Candle, Interval, JudgedCandles, MarketItem, Venue  # noqa: E402
from paper_trader.engine import DecisionEngine  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.features.stage import FeatureStage, rows_within  # noqa: E402
from paper_trader.runtime.heap import freeze_warm_heap, thaw_heap  # noqa: E402
from paper_trader.simulator.synthetic import generate_candles, write_csv  # noqa: E402

STALL_S = 600.0  # SERIES_STALL_TIMEOUT's default
from paper_trader.cli.train import TrainRequest, run_training  # noqa: E402
from paper_trader.market.aligner import InstantAligner  # noqa: E402
from paper_trader.market.quality import QualityMonitor  # noqa: E402
from paper_trader.prediction.dataset import LabelRule  # noqa: E402
from paper_trader.prediction.models import ModelConfig  # noqa: E402
from paper_trader.runtime.channel import BlockingChannel  # noqa: E402
from paper_trader.runtime.events import EventBus, EventRecorder  # noqa: E402
from paper_trader.runtime.logs import configure_logging  # noqa: E402
from paper_trader.runtime.sdnotify import Heartbeat  # noqa: E402
from paper_trader.runtime.service import Readiness  # noqa: E402
from paper_trader.settings import Settings  # noqa: E402
from paper_trader.storage import (  # noqa: E402
    AppendOutbox,
    Durability,
    SetMetadata,
    StorageWriter,
    UpsertCandles,
    WriteOp,
    migrate,
    open_database,
)
from paper_trader.storage.ledger_ops import RecordInstant  # noqa: E402

GOAL_ONE_MS = 2.0
GOAL_BATCH_MS = 15.0
GOAL_STALL_MS = 5.0  # the longest stretch the loop may be held during a 100-symbol instant
STALL_PERIOD_S = 0.001
REPLAY_GOALS = {1: 5_000, 10: 20_000, 100: 30_000}  # symbol-candles per second
PEER = "50-200 ms per symbol"  # what designs in this field quote
BATCH = 100
REPLAY_SYMBOLS = 10
VENUE = Venue.KRAKEN
BUSY_MARKET: dict[str, Any] = {
    "exchange": "kraken", "allow_short": True, "fee_rate": 0.001, "auto_train": False,
    "retrain_interval": 0, "prediction_horizon": 5, "cache_features": False,
    "signal_buy_threshold": 0.05, "signal_strong_threshold": 0.15, "min_time_between_trades": 0,
    "stop_loss_cooldown": 0, "max_consecutive_losses": 1000, "max_daily_loss": 0.5,
    "max_drawdown": 0.9, "max_holding_time": 900,
}  # fmt: skip
SEGMENTS = (
    ("wake + quality + features", "put", "stored"),
    ("prediction (executor) + monitor", "stored", "predicted"),
    ("trading (on_instant + op)", "predicted", "commit_start"),
    ("ledger commit (writer)", "commit_start", "committed"),
)


def machine() -> dict[str, Any]:
    """Return what the figures depend on: CPUs, Python, the load average now."""
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def symbols_for(count: int) -> list[str]:
    """Return ``count`` distinct symbols in the internal form."""
    return ["BTC-USD"] if count == 1 else [f"S{k:03d}-USD" for k in range(count)]


def settings_for(work: Path, symbols: Sequence[str]) -> Settings:
    """Return the benchmark's settings: a busy kraken market, the model in ``work/models``."""
    return Settings(
        _env_file=None,
        symbols=list(symbols),
        models_dir=work / "models",
        db_path=work / "unused.db",
        log_dir=work / "logs",
        max_positions=min(10, len(symbols)),
        **BUSY_MARKET,
    )


def train_model(work: Path, candles: int, venue: Venue = VENUE) -> str:
    """Train and publish a model with the production tree counts; return its version."""
    csv = work / "train.csv"
    write_csv(generate_candles(count=candles, seed=11, symbol="BTC-USD", venue=venue), csv)
    (work / "models").mkdir()
    request = TrainRequest(
        symbols=("BTC-USD",),
        interval=Interval.M1,
        venue=venue,
        models_dir=work / "models",
        rule=LabelRule(horizon=5, fee_rate=0.001, slippage_bps=5.0),
        csvs=(csv,),
        folds=2,
        config=ModelConfig(),
        force=True,  # the pipeline needs a current model, whatever its quality on a random walk
    )
    return run_training(request, progress=io.StringIO()).version


def market(symbols: Sequence[str], count: int) -> Iterator[list[Candle]]:
    """Yield ``count`` instants, each the candles of every symbol closing together.

    They are made as they are needed, so that the benchmark holds no candles of its own: the
    garbage collector then sees the daemon's heap only.
    """
    series = [
        generate_candles(count=count, seed=100 + k, symbol=s, venue=VENUE)
        for k, s in enumerate(symbols)
    ]
    for instant in zip(*series, strict=True):
        yield list(instant)


@dataclass
class Probe:
    """The seams' timestamps (``perf_counter_ns``) for the current instant, and its commit."""

    marks: dict[str, int] = field(default_factory=dict)
    committed: RecordInstant | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        """Begin a new instant: clear the marks, stamp t0 (and the CPU times)."""
        self.marks = {"cpu": time.thread_time_ns(), "process": time.process_time_ns()}
        self.marks["put"] = time.perf_counter_ns()
        self.done.clear()

    def stamp(self, name: str) -> None:
        """Record ``name`` now, unless it is already recorded for this instant."""
        self.marks.setdefault(name, time.perf_counter_ns())


class TimedWriter:
    """The writer handed to the trading stage: delegates, and stamps the ledger commit."""

    def __init__(self, writer: StorageWriter, probe: Probe) -> None:
        self._writer = writer
        self._probe = probe

    async def submit(self, op: WriteOp) -> None:
        """Queue ``op`` on the real writer."""
        await self._writer.submit(op)

    async def write(self, op: RecordInstant) -> None:
        """Write ``op`` through the real writer; stamp before and after the commit."""
        self._probe.stamp("commit_start")
        await self._writer.write(op)
        self._probe.marks["committed"] = time.perf_counter_ns()
        self._probe.marks["cpu_end"] = time.thread_time_ns()
        self._probe.marks["process_end"] = time.process_time_ns()
        self._probe.committed = op
        self._probe.done.set()


class GcPauses:
    """The garbage collector's pauses while entered (``gc.callbacks``), per generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[int]] = {0: [], 1: [], 2: []}
        self._started = 0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.pauses[info["generation"]].append(time.perf_counter_ns() - self._started)

    def __enter__(self) -> "GcPauses":
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def summary(self) -> dict[str, Any]:
        """Return count and longest pause (ms) per generation, and the objects tracked now."""
        out: dict[str, Any] = {
            f"gen{g}": [len(p), max(p, default=0) / 1e6] for g, p in self.pauses.items()
        }
        return out | {"objects": len(gc.get_objects())}


@dataclass
class Rig:
    """The decision path and what the benchmark drives it through."""

    engine: DecisionEngine
    channel: BlockingChannel[MarketItem]
    writer: StorageWriter
    recorder: EventRecorder
    events: Any
    probe: Probe
    models: Any
    trading: Any


def build_rig(settings: Settings, conn: Any) -> Rig:
    """Wire the decision path as ``app/stages.py`` does, with the probe at its seams."""
    clock, probe, spec = SystemClock(), Probe(), default_spec()
    series = [(VENUE, s, settings.interval) for s in settings.symbols]
    writer, bus = StorageWriter(conn), EventBus()
    quality = QualityMonitor(quality_config(settings))
    models = build_model_parts(
        settings,
        spec,
        writer,
        bus,
        clock,
        retrain=False,
        pending=lambda: unresolved_predictions(conn),
    )

    class StampedPrediction:
        """The real prediction stage; stamps the end of prediction for the probe."""

        async def on_batch(self, items: Any) -> Any:
            predicted = await models.stage.on_batch(items)
            probe.stamp("predicted")
            return predicted

        async def start(self) -> None:
            await models.stage.start()

        def close(self) -> None:
            models.stage.close()

    trading = build_trading_stage(
        settings, conn, TimedWriter(writer, probe), bus, clock, series=series, spec=spec,
        venue_now=None, files=None,
    )  # fmt: skip

    async def store(judged: JudgedCandles) -> None:
        probe.stamp("stored")
        await writer.submit(UpsertCandles.judged(judged))

    keep = rows_within(
        settings.max_cache_memory_mb, len(series), len(spec.names), settings.feature_cache_size
    )
    features = FeatureStage(  # as the replay daemon's: no cache, warmed by the candles
        spec, [], keep_rows=keep, cache=None, history=None, monotonic=clock.monotonic
    )
    channel: BlockingChannel[MarketItem] = BlockingChannel(CANDLE_CHANNEL_CAPACITY)
    engine = DecisionEngine(
        channel, store, Heartbeat(clock), quality=quality, events=bus, venue_now=None,
        features=features, prediction=StampedPrediction(), trading=trading,  # type: ignore[arg-type]
        aligner=InstantAligner(series, monotonic=clock.monotonic, stall_s=STALL_S),
    )  # fmt: skip
    events = bus.subscribe()
    recorder = EventRecorder(events, lambda event: writer.write(AppendOutbox(event=event)))
    return Rig(engine, channel, writer, recorder, events, probe, models, trading)


Settle = Callable[[int], Awaitable[None]]


async def quiesce(rig: Rig, index: int, gap_s: float, settle: Settle | None = None) -> None:
    """Wait until the engine is idle and every event is in the outbox, then for ``settle``
    (another benchmark's own wait, given the instant's index), then idle ``gap_s``."""
    await rig.engine.caught_up(settle_s=0)
    while len(rig.events):  # noqa: ASYNC110 -- the subscription has no "drained" event
        await asyncio.sleep(0)
    await rig.writer.write(SetMetadata(key="bench_barrier", value=str(index)))
    if settle is not None:
        await settle(index)
    await asyncio.sleep(gap_s)


class StallSampler:
    """The loop-lag sampler at a fine grain: a 1 ms sleep again and again, each oversleep
    stamped with its end, so that each instant's longest hold of the loop can be read."""

    def __init__(self) -> None:
        self.ends: list[int] = []
        self.lags: list[int] = []

    async def run(self) -> None:
        """Sample until cancelled."""
        period_ns = int(STALL_PERIOD_S * 1e9)
        while True:
            before = time.perf_counter_ns()
            await asyncio.sleep(STALL_PERIOD_S)
            now = time.perf_counter_ns()
            self.ends.append(now)
            self.lags.append(max(0, now - before - period_ns))

    def worst(self, start_ns: int, end_ns: int) -> int:
        """Return the longest oversleep that ended between ``start_ns`` and ``end_ns``."""
        first = bisect.bisect_left(self.ends, start_ns)
        last = bisect.bisect_right(self.ends, end_ns)
        return max(self.lags[first:last], default=0)


async def drive(
    rig: Rig, instants: Iterator[list[Candle]], warm: int, gap_s: float, profiler: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Push ``warm`` instants untimed, freeze the heap as the daemon does once warm, then time
    the others; return their records (with each one's longest loop stall) and GC pauses."""
    await warm_up(rig, itertools.islice(instants, warm), gap_s)
    freeze_warm_heap()
    sampler = StallSampler()
    sampling = asyncio.create_task(sampler.run())
    try:
        with profiler or contextlib.nullcontext(), GcPauses() as pauses:
            records = await measure(rig, instants, gap_s)
    finally:
        sampling.cancel()
        thaw_heap()
    for r in records:
        r["stall_ns"] = sampler.worst(r["t0_ns"], r["end_ns"])
    return records, pauses.summary()


async def warm_up(rig: Rig, instants: Iterable[list[Candle]], gap_s: float) -> None:
    """Push ``instants`` untimed; check that every series then has ready features."""
    symbols = 0
    for instant in instants:
        symbols = len(instant)
        for candle in instant:
            await rig.channel.put(candle)
    await rig.engine.caught_up()
    ready = rig.engine.features.stats()["series_ready"] if rig.engine.features else 0
    if ready != symbols:
        raise RuntimeError(f"only {ready} of {symbols} series have ready features after warm-up")
    await quiesce(rig, -1, gap_s)


async def measure(
    rig: Rig, instants: Iterable[list[Candle]], gap_s: float, settle: Settle | None = None
) -> list[dict[str, Any]]:
    """Time each of ``instants``, the pipeline quiesced between them (and ``settle`` awaited);
    return their records."""
    records = []
    for index, instant in enumerate(instants):
        rig.probe.start()
        for candle in instant:
            await rig.channel.put(candle)
        await rig.probe.done.wait()
        op = rig.probe.committed
        if op is None or op.state.last_candle_ms != instant[0].open_time_ms:
            raise RuntimeError(f"instant {index}: the commit was not this instant's")
        records.append(record_of(rig.probe.marks, op))
        await quiesce(rig, index, gap_s, settle)
        records[-1]["end_ns"] = time.perf_counter_ns()
    return records


def record_of(marks: dict[str, int], op: RecordInstant) -> dict[str, Any]:
    """Return one measured instant: its segments in ns, its commit, its trading."""
    return {
        "t0_ns": marks["put"],
        "total_ns": marks["committed"] - marks["put"],
        "segments_ns": [marks[b] - marks[a] for _, a, b in SEGMENTS],
        "cpu_ns": [marks["cpu_end"] - marks["cpu"], marks["process_end"] - marks["process"]],
        "ledger": op.durability is Durability.LEDGER,
        "state_bytes": len(op.state.state_json) + len(op.state.volatility_json or ""),
        "entries": sum(1 for f in op.fills if f.reason == "entry"),
        "exits": len(op.trades),
    }


async def latency_case(
    settings: Settings, db: Path, instants: Iterator[list[Candle]], warm: int, args: Any
) -> dict[str, Any]:
    """Run the decision path over ``instants``; return the records, counters and profile."""
    profiler = cProfile.Profile() if args.profile else None
    conn = await open_database(db)
    try:
        await migrate(conn)
        rig = build_rig(settings, conn)
        async with asyncio.TaskGroup() as group:
            writer_task = group.create_task(rig.writer.run(Readiness()), name="writer")
            recorder_task = group.create_task(rig.recorder.run(Readiness()), name="recorder")
            ready = Readiness()
            engine_task = group.create_task(rig.engine.run(ready), name="engine")
            await ready.wait()
            records, pauses = await drive(rig, instants, warm, args.gap_ms / 1e3, profiler)
            windows = rig.trading.trader.breakers.snapshot()["volatility_windows"]
            rig.channel.close()
            await engine_task
            recorder_task.cancel()
            writer_task.cancel()
        rig.models.stage.predictor.close()
        return {
            "records": records,
            "gc": pauses,
            "predictions": rig.models.stage.predictor.stats()["rows"],
            "trading": {
                "entered": rig.trading.entered,
                "rejected": rig.trading.rejected,
                "state": rig.trading.trader.breakers.state.value,
            },
            "window_fill": float(np.mean([len(w) for w in windows.values()])) if windows else 0,
            "profile": profile_text(profiler, args.profile),
        }
    finally:
        await conn.close()


def profile_text(profiler: cProfile.Profile | None, top: int) -> str:
    """Return the profiler's top functions by own time, as pstats prints them."""
    if profiler is None:
        return ""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def percentiles(ns: Sequence[int]) -> dict[str, float]:
    """Return count, p50, p99, max and mean of nanosecond timings, in ms."""
    if not ns:
        return {"count": 0}
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p99 = (float(v) for v in np.percentile(ms, [50, 99]))
    return {"count": len(ms), "p50_ms": p50, "p99_ms": p99, "max_ms": float(ms.max()),
            "mean_ms": float(ms.mean())}  # fmt: skip


def order(blocks: int) -> list[str]:
    """Return the blocks' cases in ABBA order: A B, B A, A B, ..."""
    return [c for r in range(blocks) for c in (("A", "B") if r % 2 == 0 else ("B", "A"))]


def self_change(blocks: Sequence[Sequence[int]]) -> float | None:
    """Return the change of p99 between a case's own blocks, in ABBA halves (1st, 4th, 5th,
    8th ... against 2nd, 3rd, 6th, 7th ...): what machine noise alone does to the figure."""
    halves: tuple[list[int], list[int]] = ([], [])
    for k, block in enumerate(blocks):
        halves[k % 4 in {1, 2}].extend(block)
    if not all(halves):
        return None
    a, b = (percentiles(h)["p99_ms"] for h in halves)
    return float((b - a) / a * 100)


def summarise(outcome: dict[str, Any], symbols: int, warm: int, goal: float) -> dict[str, Any]:
    """Return the figures of one case: overall, per segment, FAST vs LEDGER commits."""
    records = outcome.pop("records")
    state = [r["state_bytes"] for r in records]
    total = percentiles([r["total_ns"] for r in records])
    return {
        "symbols": symbols,
        "warmup_instants": warm,
        "total": total,
        "goal_p99_ms": goal,
        "goal_met": total["p99_ms"] <= goal,
        "segments": {
            name: percentiles([r["segments_ns"][i] for r in records])
            for i, (name, _, _) in enumerate(SEGMENTS)
        },
        "stall": percentiles([r["stall_ns"] for r in records if "stall_ns" in r]),
        "cpu_loop": percentiles([r["cpu_ns"][0] for r in records]),
        "cpu_process": percentiles([r["cpu_ns"][1] for r in records]),
        "fast_commits": percentiles([r["total_ns"] for r in records if not r["ledger"]]),
        "ledger_commits": percentiles([r["total_ns"] for r in records if r["ledger"]]),
        "entries": sum(r["entries"] for r in records),
        "exits": sum(r["exits"] for r in records),
        "state_kb": [float(f(state)) / 1024 for f in (np.median, np.max)],
        **outcome,
    }


def latency_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Measure the one-symbol and the 100-symbol case."""
    cases = (
        ("1 symbol", 1, args.warmup, args.instants, GOAL_ONE_MS),
        (f"{BATCH} symbols", BATCH, args.batch_warmup, args.batch_instants, GOAL_BATCH_MS),
    )
    out: dict[str, Any] = {}
    for index, (case, count, warm, measured, goal) in enumerate(cases):
        settings = settings_for(work, symbols_for(count))
        instants = market(settings.symbols, warm + measured)
        db = args.dir / f"bench-pipeline-{os.getpid()}-{index}.db"
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            logs = configure_logging(log_config(settings), stream=devnull)
            try:
                outcome = asyncio.run(latency_case(settings, db, instants, warm, args))
            finally:
                logs.close()
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
        out[case] = summarise(outcome, count, warm, goal)
    return out


def replay_case(work: Path, symbols: list[str], candles: int) -> dict[str, Any]:
    """Replay synthetic CSVs of ``symbols`` through ``run_replay``; return its throughput."""
    csvs = []
    for k, symbol in enumerate(symbols):
        csv = work / f"replay-{len(symbols)}-{k}.csv"
        write_csv(generate_candles(count=candles, seed=200 + k, symbol=symbol, venue=VENUE), csv)
        csvs.append(csv)
    request = ReplayRequest(
        csvs=tuple(csvs),
        symbols=tuple(symbols),
        interval=Interval.M1,
        venue=VENUE,
        db_path=work / f"replay-{len(symbols)}.db",
    )
    started = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as devnull, contextlib.redirect_stderr(devnull):
        result = run_replay(settings_for(work, symbols), request)
    wall = time.perf_counter() - started
    processed = result.run.engine.candles_processed
    return {
        "symbols": len(symbols),
        "candles": processed,
        "daemon_s": result.run.elapsed_s,
        "wall_s": wall,
        "daemon_rate": processed / result.run.elapsed_s,
        "wall_rate": processed / wall,
        "trades": result.report.to_json().get("trades"),
        "digest": result.report.to_json().get("ledger_digest"),
    }


def verdict(met: bool) -> str:
    """Return the goal's verdict as a word."""
    return "met" if met else "NOT met"


def print_latency(latency: dict[str, Any]) -> None:
    """Print the latency tables and what the broker did meanwhile."""
    print("\ndecision latency, candles put in the channel -> ledger instant committed (ms):")
    print(f"  {'case':<36}{'n':>6}{'p50':>8}{'p99':>8}{'max':>8}{'mean':>8}   goal (p99)")
    for case, s in latency.items():
        goal = f"   <= {s['goal_p99_ms']:g} ms: {verdict(s['goal_met'])}"
        rows = [(case, s["total"], True, goal), ("  FAST commits", s["fast_commits"], True, ""),
                ("  LEDGER commits (fsync)", s["ledger_commits"], True, "")]  # fmt: skip
        rows += [(f"  {name}", t, False, "") for name, t in s["segments"].items()]
        rows += [("  longest loop stall (1 ms sampler)", s["stall"], False,
                  f"   <= {GOAL_STALL_MS:g} ms: {verdict(s['stall']['p99_ms'] <= GOAL_STALL_MS)}"
                  if s["symbols"] == BATCH else "")]  # fmt: skip
        rows += [("  CPU time, event loop thread", s["cpu_loop"], False, ""),
                 ("  CPU time, whole process", s["cpu_process"], False, "")]  # fmt: skip
        for label, t, counted, note in rows:
            if t["count"]:
                print(
                    f"  {label:<36}{t['count'] if counted else '':>6}{t['p50_ms']:>8.2f}"
                    f"{t['p99_ms']:>8.2f}{t['max_ms']:>8.2f}{t['mean_ms']:>8.2f}{note}"
                )
    print("\nwhile measured (the broker path ran):")
    for case, s in latency.items():
        t = s["trading"]
        print(
            f"  {case:<11}: {s['entries']} entries, {s['exits']} exits, "
            f"{s['ledger_commits']['count']} LEDGER commits; ledger state per commit "
            f"{s['state_kb'][0]:,.1f} KB median, {s['state_kb'][1]:,.0f} KB max (with the "
            f"volatility windows: {s['window_fill']:,.0f} values per symbol at the end); "
            f"whole run: {t['entered']} entered, {t['rejected']} rejected, "
            f"state {t['state']}, {s['predictions']:,} predictions"
        )
        g = s["gc"]
        print(
            f"  {'':<11}  garbage collector while measured: "
            + ", ".join(
                f"gen{k} {g[f'gen{k}'][0]} x (longest {g[f'gen{k}'][1]:.1f} ms)" for k in range(3)
            )
            + f"; {g['objects']:,} objects tracked"
        )
    for case, s in latency.items():
        if s["profile"]:
            print(f"\nprofile of the decision task's thread, {case} (own time):")
            print("\n".join(line for line in s["profile"].splitlines()[:60] if line.strip()))


def print_replay(replay: dict[str, Any]) -> None:
    """Print the throughput table."""
    print("\nreplay throughput (run_replay: CSV -> daemon -> SQLite):")
    print(f"  {'case':<12}{'candles':>10}{'daemon s':>10}{'cand/s':>9}{'wall s':>9}{'cand/s':>9}"
          f"{'trades':>8}")  # fmt: skip
    for case, r in replay.items():
        print(
            f"  {case:<12}{r['candles']:>10,}{r['daemon_s']:>10.2f}{r['daemon_rate']:>9,.0f}"
            f"{r['wall_s']:>9.2f}{r['wall_rate']:>9,.0f}{r['trades'] or 0:>8}"
        )


def result_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of ``bench/results.md``: latency, loop stall and replay per case."""
    load = results["machine"]["loadavg_start"][0]
    command = ".venv/bin/python bench/pipeline.py"
    rows = []
    for case, s in results["latency"].items():
        t = s["total"]
        rows.append(row(
            f"candle close → committed decision, {case}, p99",
            f"{t['p99_ms']:.2f} ms (p50 {t['p50_ms']:.2f}, max {t['max_ms']:.1f})",
            goal=f"≤ {s['goal_p99_ms']:g} ms", met=s["goal_met"],
            method=f"in-process decision path as app/stages.py builds it, {t['count']} instants "
            f"after {s['warmup_instants']} warm-up, the real writer on SQLite; load {load:.1f}",
            command=command,
        ))  # fmt: skip
        if s["symbols"] == BATCH:
            stall = s["stall"]
            rows.append(row(
                f"event-loop stall during a {case} instant, p99 of each instant's longest",
                f"{stall['p99_ms']:.2f} ms (p50 {stall['p50_ms']:.2f}, max {stall['max_ms']:.1f})",
                goal=f"≤ {GOAL_STALL_MS:g} ms", met=stall["p99_ms"] <= GOAL_STALL_MS,
                method="the longest oversleep of a 1 ms asyncio.sleep loop between an instant's "
                "candles and its quiesced end (other processes' CPU use counts as stall)",
                command=command,
            ))  # fmt: skip
    for case, r in results["replay"].items():
        goal = REPLAY_GOALS.get(r["symbols"])
        rows.append(row(
            f"replay through the whole pipeline, {case}",
            f"{r['daemon_rate']:,.0f} symbol-candles/s",
            goal=None if goal is None else f"≥ {goal:,}/s",
            met=None if goal is None else r["daemon_rate"] >= goal,
            method=f"run_replay of {r['candles']:,} synthetic candles (CSV → daemon → SQLite, "
            "models, risk, broker, ledger), start-up included",
            command=command,
        ))  # fmt: skip
    return rows


def report(results: dict[str, Any]) -> None:
    """Print the figures and the verdicts."""
    m = results["machine"]
    print(
        f"machine: {m['cpus']} CPUs ({m['cpus_usable']} usable), Python {m['python']}; "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    if m["loadavg_start"][0] >= 0.5:
        print("note: other processes were using the CPUs at start; the figures are pessimistic")
    print(f"model: {results['model']}; databases in {results['dir']}")
    print_latency(results["latency"])
    print_replay(results["replay"])
    print("\nsummary:")
    for case, s in results["latency"].items():
        t = s["total"]
        print(
            f"  {case:<11}: p50 {t['p50_ms']:7.2f} ms, p99 {t['p99_ms']:7.2f} ms; goal p99 <= "
            f"{s['goal_p99_ms']:g} ms {verdict(s['goal_met'])} (designs in this field: {PEER})"
        )
    for case, r in results["replay"].items():
        goal = REPLAY_GOALS.get(r["symbols"], 0)
        print(
            f"  replay {case:<11}: {r['daemon_rate']:,.0f} symbol-candles/s; goal >= {goal:,}/s "
            f"{verdict(r['daemon_rate'] >= goal)}"
        )


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--instants", type=int, default=2000, help="timed 1-symbol instants")
    add("--batch-instants", type=int, default=300, help="timed 100-symbol instants")
    add("--warmup", type=int, default=1500, help="untimed 1-symbol instants first")
    add("--batch-warmup", type=int, default=1500, help="untimed 100-symbol instants first")
    add("--gap-ms", type=float, default=2.0, help="idle time between measured instants")
    add("--train-candles", type=int, default=6000, help="candles the model is trained on")
    add("--replay-candles", type=int, default=6000, help="candles of the 1-symbol replay")
    add("--replay-10-candles", type=int, default=2000, help="candles per symbol, 10 symbols")
    add("--replay-100-candles", type=int, default=1500, help="candles per symbol, 100 symbols")
    add("--dir", type=Path, help="directory of the latency databases (default: temporary)")
    add("--profile", type=int, default=0, metavar="N", help="print the top N functions")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    if min(args.warmup, args.batch_warmup) < default_spec().warmup:
        parser.error(f"the warm-ups must be at least the features' {default_spec().warmup}")
    return args


def main() -> None:
    args = arguments()
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        args.dir = args.dir or work
        results["dir"] = str(args.dir)
        version = train_model(work, args.train_candles)
        results["model"] = f"{version} (ModelConfig() trees, {args.train_candles} candles)"
        results["latency"] = latency_section(args, work)
        results["replay"] = {
            f"{count} symbol{'s' if count > 1 else ''}": replay_case(
                work, symbols_for(count), candles
            )
            for count, candles in (
                (1, args.replay_candles),
                (REPLAY_SYMBOLS, args.replay_10_candles),
                (BATCH, args.replay_100_candles),
            )
            if candles > 0
        }
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["rows"] = result_rows(results)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
