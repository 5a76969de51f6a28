"""Pipeline cost: candle close -> committed decision latency, and replay throughput.

Method. A model is trained once (untimed) with ``run_training`` on seeded synthetic 1m candles
(``--train-candles``, ``generate_candles(seed=11)``) with the production tree counts
(``ModelConfig()``: 200 XGBoost trees, 100 ExtraTrees), 2 walk-forward folds, horizon 5, fee
0.001, and published in a temporary ``MODELS_DIR``. The settings are a busy market on purpose,
so that the broker path runs: ``EXCHANGE=kraken``, ``ALLOW_SHORT=true``, ``FEE_RATE=0.001``,
``PREDICTION_HORIZON=5``, ``AUTO_TRAIN=false``, no minimum time between trades or stop-loss
cooldown, ``MAX_HOLDING_TIME=900`` s, loose loss breakers, ``MAX_POSITIONS`` 1 or 10.

Latency. The real decision path is built in-process as ``app.py::_build`` builds it: a
``StorageWriter`` on a fresh SQLite file (``open_database`` + ``migrate``, in ``--dir``), run
as a task, with the ``EventRecorder`` writing every event to the outbox; the
``DecisionEngine`` with its ``BlockingChannel``, ``QualityMonitor``, ``FeatureStage``, the
``PredictionStage`` of ``build_model_parts`` (executor hop included), the ``TradingStage`` of
``build_trading_stage``, and the ``InstantAligner``; logging configured as the daemon does
(INFO, JSON lines to a file; the console stream goes to /dev/null). No production function
is patched: timestamps come from the seams ``app.py`` fills in itself. The candle store
(``writer.submit(UpsertCandles)``) marks the end of quality + features; the trading stage's
``entries_blocked`` callable, called once per instant just before ``Trader.on_instant``, marks
the end of prediction; the writer handed to ``build_trading_stage`` is a thin object whose
``write`` delegates to the real writer and marks the start and the end of the ledger commit.
Every series is warmed up first (``spec.warmup`` + ``--settle`` instants, untimed, through the
same channel). Then, for each measured instant: t0 = ``perf_counter_ns()``, the candles of
every symbol for that minute are put into the engine's channel, and t1 is taken when the
``RecordInstant`` of that instant has committed (checked by its candle time). Between
instants the pipeline is quiesced (engine idle, event outbox written, a barrier write through
the writer) and left idle for ``--gap-ms``: live, instants are a minute apart. Reported: p50,
p99 and max of t1 - t0 over ``--instants`` one-symbol instants and ``--batch-instants``
instants of 100 symbols closing together, with the time split into its four segments, the
instants whose commit was a LEDGER one (``synchronous=FULL``, a fill or a breaker change)
apart, and the entries and exits made while measuring.

Throughput. Synthetic CSVs (1 symbol x ``--replay-candles``, and 10 symbols x
``--replay-10-candles``) are written to a temporary directory, then replayed with
``app.run_replay`` (the ``replay`` command without the CLI; LOG_LEVEL=WARNING): CSV
validation, then the supervised daemon with prediction, trading and the SQLite writer.
Reported: symbol-candles per second = candles processed / the daemon's elapsed time (start-up
included, validation not), and the same over the whole call. About 2 to 3 minutes on an idle
2-core machine; the load average is printed, since other processes on the cores inflate p99.

    .venv/bin/python bench/pipeline.py [--instants 2000] [--batch-instants 300]
        [--replay-candles 20000] [--replay-10-candles 3000] [--dir DIR] [--json FILE]
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from paper_trader.app import (  # noqa: E402
    ALIGN_STALL_S,
    CANDLE_CHANNEL_CAPACITY,
    ReplayRequest,
    log_config,
    quality_config,
    run_replay,
    unresolved_predictions,
)
from paper_trader.app_models import build_model_parts  # noqa: E402
from paper_trader.app_trading import build_trading_stage  # noqa: E402
from paper_trader.clock import SystemClock  # noqa: E402
from paper_trader.domain import Candle, Interval, Venue  # noqa: E402
from paper_trader.engine import DecisionEngine  # noqa: E402
from paper_trader.exchange.synthetic import generate_candles, write_csv  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.features.stage import FeatureStage, rows_within  # noqa: E402
from paper_trader.log_config import configure_logging  # noqa: E402
from paper_trader.market.aligner import InstantAligner  # noqa: E402
from paper_trader.market.quality import QualityMonitor  # noqa: E402
from paper_trader.prediction.dataset import LabelRule  # noqa: E402
from paper_trader.prediction.models import ModelConfig  # noqa: E402
from paper_trader.runtime.channel import BlockingChannel  # noqa: E402
from paper_trader.runtime.events import EventBus, EventRecorder  # noqa: E402
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
from paper_trader.train import TrainRequest, run_training  # noqa: E402

GOAL_ONE_MS = 2.0
GOAL_BATCH_MS = 15.0
PEER_MS = "50-200 ms per symbol"  # what designs in this field quote
BATCH = 100
REPLAY_SYMBOLS = 10
VENUE = Venue.KRAKEN
START_MS = 1_672_531_200_000
SEGMENTS = (
    ("wake + quality + features", "put", "stored"),
    ("prediction (executor) + log", "stored", "predicted"),
    ("trading (Trader.on_instant)", "predicted", "commit_start"),
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


def settings_for(work: Path, models_dir: Path, symbols: Sequence[str], **extra: Any) -> Settings:
    """Return the benchmark's settings: a busy kraken market, the model in ``models_dir``."""
    return Settings(
        _env_file=None,
        exchange="kraken",
        allow_short=True,
        fee_rate=0.001,
        symbols=list(symbols),
        models_dir=models_dir,
        auto_train=False,
        retrain_interval=0,
        prediction_horizon=5,
        cache_features=False,
        db_path=work / "unused.db",
        log_dir=work / "logs",
        max_positions=min(10, len(symbols)),
        min_time_between_trades=0,
        stop_loss_cooldown=0,
        max_consecutive_losses=1000,
        max_daily_loss=0.5,
        max_drawdown=0.9,
        max_holding_time=900,
        **extra,
    )


def train_model(work: Path, candles: int) -> str:
    """Train and publish a model with the production tree counts; return its version."""
    csv = work / "train.csv"
    write_csv(generate_candles(count=candles, seed=11, symbol="BTC-USD", venue=VENUE), csv)
    request = TrainRequest(
        symbols=("BTC-USD",),
        interval=Interval.M1,
        venue=VENUE,
        models_dir=work / "models",
        rule=LabelRule(horizon=5, fee_rate=0.001, slippage_bps=5.0),
        csvs=(csv,),
        folds=2,
        config=ModelConfig(),
    )
    (work / "models").mkdir()
    return run_training(request, progress=io.StringIO()).version


def market(symbols: Sequence[str], count: int) -> list[list[Candle]]:
    """Return ``count`` instants, each the candles of every symbol closing together."""
    series = [
        list(generate_candles(count=count, seed=100 + k, symbol=s, venue=VENUE, start_ms=START_MS))
        for k, s in enumerate(symbols)
    ]
    return [list(instant) for instant in zip(*series, strict=True)]


@dataclass
class Marks:
    """Timestamps (``perf_counter_ns``) of one instant on its way through the pipeline."""

    put: int = 0
    stored: int = 0
    predicted: int = 0
    commit_start: int = 0
    committed: int = 0

    def stamp(self, name: str) -> None:
        """Record ``name`` now, unless it is already recorded for this instant."""
        if getattr(self, name) == 0:
            setattr(self, name, time.perf_counter_ns())


@dataclass
class Probe:
    """The seams' view of the current instant, and the ledger ops committed."""

    marks: Marks = field(default_factory=Marks)
    committed: list[RecordInstant] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        """Begin a new instant: clear the marks, stamp t0."""
        self.marks = Marks()
        self.done.clear()
        self.marks.stamp("put")


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
        self._probe.marks.stamp("commit_start")
        await self._writer.write(op)
        self._probe.marks.committed = time.perf_counter_ns()
        self._probe.committed.append(op)
        self._probe.done.set()


@dataclass
class Rig:
    """The decision path and what the benchmark drives it through."""

    engine: DecisionEngine
    channel: BlockingChannel[Candle]
    writer: StorageWriter
    events: Any
    probe: Probe
    predictor: Any
    trading: Any


def feature_stage(settings: Settings, series: int, clock: SystemClock) -> FeatureStage:
    """Build the replay daemon's feature stage (no cache, no history: warmed by candles)."""
    spec = default_spec()
    keep = rows_within(
        settings.max_cache_memory_mb, series, len(spec.names), settings.feature_cache_size
    )
    return FeatureStage(
        spec, [], keep_rows=keep, cache=None, history=None, monotonic=clock.monotonic
    )


def build_rig(settings: Settings, conn: Any) -> Rig:
    """Wire the decision path as ``app.py::_build`` does, with the probe at its seams."""
    clock, probe, spec = SystemClock(), Probe(), default_spec()
    series = [(VENUE, s, settings.interval) for s in settings.symbols]
    writer, bus = StorageWriter(conn), EventBus()
    quality = QualityMonitor(quality_config(settings))
    models = build_model_parts(
        settings, spec, writer, bus, clock, retrain=False, pending=lambda: unresolved_predictions(conn)
    )
    predictor = models.stage.predictor

    def entries_blocked() -> str | None:
        probe.marks.stamp("predicted")
        return predictor.entries_blocked()

    trading = build_trading_stage(
        settings, conn, TimedWriter(writer, probe), bus, clock, series=series, spec=spec,
        quality=quality, entries_blocked=entries_blocked, venue_now=None, files=None,
    )  # fmt: skip

    async def store(batch: tuple[Candle, ...]) -> None:
        probe.marks.stamp("stored")
        await writer.submit(UpsertCandles(candles=batch))

    channel: BlockingChannel[Candle] = BlockingChannel(CANDLE_CHANNEL_CAPACITY)
    engine = DecisionEngine(
        channel, store, Heartbeat(clock), quality=quality, events=bus, venue_now=None,
        features=feature_stage(settings, len(series), clock), prediction=models.stage,
        trading=trading,
        aligner=InstantAligner(series, monotonic=clock.monotonic, stall_s=ALIGN_STALL_S),
    )  # fmt: skip
    events = bus.subscribe()
    recorder = EventRecorder(events, lambda event: writer.write(AppendOutbox(event=event)))
    return Rig(engine, channel, writer, (events, recorder), probe, predictor, trading)


async def quiesce(rig: Rig, index: int, gap_s: float) -> None:
    """Wait until the engine is idle and every event is in the outbox, then idle ``gap_s``."""
    await rig.engine.caught_up(settle_s=0)
    while len(rig.events[0]):
        await asyncio.sleep(0)
    await rig.writer.write(SetMetadata(key="bench_barrier", value=str(index)))
    await asyncio.sleep(gap_s)


async def drive(rig: Rig, instants: list[list[Candle]], warm: int, gap_s: float) -> list[dict]:
    """Push ``warm`` instants untimed, then time each of the others; return their records."""
    for instant in instants[:warm]:
        for candle in instant:
            await rig.channel.put(candle)
    await rig.engine.caught_up()
    ready = rig.engine.features.stats()["series_ready"] if rig.engine.features else 0
    if ready != len(instants[0]):
        raise RuntimeError(f"only {ready} series have ready features after the warm-up")
    await quiesce(rig, -1, gap_s)
    records = []
    for index, instant in enumerate(instants[warm:]):
        rig.probe.start()
        for candle in instant:
            await rig.channel.put(candle)
        await rig.probe.done.wait()
        op = rig.probe.committed[-1]
        if op.state.last_candle_ms != instant[0].open_time_ms:
            raise RuntimeError(f"instant {index}: the commit was not this instant's")
        records.append(record_of(rig.probe.marks, op))
        await quiesce(rig, index, gap_s)
    return records


def record_of(marks: Marks, op: RecordInstant) -> dict[str, Any]:
    """Return one measured instant: its segments in ns, its commit kind, its trading."""
    stamps = {name: getattr(marks, name) for name in ("put", "stored", "predicted")}
    stamps |= {"commit_start": marks.commit_start, "committed": marks.committed}
    return {
        "total_ns": marks.committed - marks.put,
        "segments_ns": [stamps[b] - stamps[a] for _, a, b in SEGMENTS],
        "ledger": op.durability is Durability.LEDGER,
        "entries": sum(1 for f in op.fills if f.reason == "entry"),
        "exits": len(op.trades),
        "decisions": len(op.decisions),
    }


async def latency_case(
    settings: Settings, db_path: Path, instants: list[list[Candle]], warm: int, gap_s: float
) -> dict[str, Any]:
    """Run the decision path over ``instants`` and return the measured records and counters."""
    conn = await open_database(db_path)
    try:
        await migrate(conn)
        rig = build_rig(settings, conn)
        events, recorder = rig.events
        async with asyncio.TaskGroup() as group:
            writer_task = group.create_task(rig.writer.run(Readiness()), name="writer")
            recorder_task = group.create_task(recorder.run(Readiness()), name="recorder")
            ready = Readiness()
            engine_task = group.create_task(rig.engine.run(ready), name="engine")
            await ready.wait()
            records = await drive(rig, instants, warm, gap_s)
            rig.channel.close()
            await engine_task
            recorder_task.cancel()
            writer_task.cancel()
        rig.predictor.close()
        return {
            "records": records,
            "predictor": rig.predictor.stats(),
            "trading": rig.trading.stats(),
        }
    finally:
        await conn.close()


def percentiles(ns: Sequence[int]) -> dict[str, float]:
    """Return count, p50, p99, max and mean of nanosecond timings, in ms."""
    if not ns:
        return {"count": 0}
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p99 = (float(v) for v in np.percentile(ms, [50, 99]))
    return {"count": len(ms), "p50_ms": p50, "p99_ms": p99, "max_ms": float(ms.max()),
            "mean_ms": float(ms.mean())}  # fmt: skip


def summarise(outcome: dict[str, Any], symbols: int, goal_ms: float) -> dict[str, Any]:
    """Return the latency figures of one case: overall, per segment, FAST vs LEDGER commits."""
    records = outcome["records"]
    total = percentiles([r["total_ns"] for r in records])
    return {
        "symbols": symbols,
        "total": total,
        "goal_p99_ms": goal_ms,
        "goal_met": total["p99_ms"] <= goal_ms,
        "segments": {
            name: percentiles([r["segments_ns"][i] for r in records])
            for i, (name, _, _) in enumerate(SEGMENTS)
        },
        "fast_commits": percentiles([r["total_ns"] for r in records if not r["ledger"]]),
        "ledger_commits": percentiles([r["total_ns"] for r in records if r["ledger"]]),
        "entries": sum(r["entries"] for r in records),
        "exits": sum(r["exits"] for r in records),
        "decisions": sum(r["decisions"] for r in records),
        "predictor": outcome["predictor"],
        "trading": outcome["trading"],
    }


def latency_section(args: argparse.Namespace, work: Path, models_dir: Path) -> dict[str, Any]:
    """Measure the one-symbol and the 100-symbol case."""
    warm = default_spec().warmup + args.settle
    cases = (("1 symbol", 1, args.instants, GOAL_ONE_MS),
             (f"{BATCH} symbols", BATCH, args.batch_instants, GOAL_BATCH_MS))  # fmt: skip
    out: dict[str, Any] = {}
    for index, (case, count, measured, goal) in enumerate(cases):
        symbols = symbols_for(count)
        settings = settings_for(work, models_dir, symbols)
        instants = market(symbols, warm + measured)
        logs = configure_logging(
            log_config(settings), stream=open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        )
        try:
            db = args.dir / f"pipeline-{os.getpid()}-{index}.db"
            outcome = asyncio.run(latency_case(settings, db, instants, warm, args.gap_ms / 1e3))
        finally:
            logs.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        out[case] = summarise(outcome, count, goal)
    return out


def replay_case(work: Path, models_dir: Path, symbols: list[str], candles: int) -> dict[str, Any]:
    """Replay synthetic CSVs of ``symbols`` through ``run_replay``; return its throughput."""
    csvs = []
    for k, symbol in enumerate(symbols):
        csv = work / f"replay-{len(symbols)}-{k}.csv"
        write_csv(generate_candles(count=candles, seed=200 + k, symbol=symbol, venue=VENUE), csv)
        csvs.append(csv)
    settings = settings_for(work, models_dir, symbols, log_level="WARNING")
    db = work / f"replay-{len(symbols)}.db"
    request = ReplayRequest(
        csvs=tuple(csvs), symbols=tuple(symbols), interval=Interval.M1, venue=VENUE, db_path=db
    )
    started = time.perf_counter()
    result = run_replay(settings, request)
    wall = time.perf_counter() - started
    processed = result.run.engine.candles_processed
    trading = result.report.to_json()
    return {
        "symbols": len(symbols),
        "candles": processed,
        "daemon_s": result.run.elapsed_s,
        "wall_s": wall,
        "daemon_rate": processed / result.run.elapsed_s,
        "wall_rate": processed / wall,
        "exit_code": result.run.outcome.exit_code,
        "trades": trading.get("trades"),
        "decisions": trading.get("decisions"),
    }


def replay_section(args: argparse.Namespace, work: Path, models_dir: Path) -> dict[str, Any]:
    """Measure replay throughput for 1 symbol and for 10 symbols."""
    return {
        "1 symbol": replay_case(work, models_dir, symbols_for(1), args.replay_candles),
        f"{REPLAY_SYMBOLS} symbols": replay_case(
            work, models_dir, symbols_for(REPLAY_SYMBOLS), args.replay_10_candles
        ),
    }


def verdict(met: bool) -> str:
    """Return the goal's verdict as a word."""
    return "met" if met else "NOT met"


def print_latency(latency: dict[str, Any]) -> None:
    """Print the latency tables."""
    print("\ndecision latency, candle put in the channel -> ledger instant committed (ms):")
    print(f"  {'case':<34}{'n':>6}{'p50':>8}{'p99':>8}{'max':>8}{'mean':>8}   goal (p99)")
    for case, s in latency.items():
        rows = (("", s["total"]), ("  FAST commits", s["fast_commits"]),
                ("  LEDGER commits (fsync)", s["ledger_commits"]))  # fmt: skip
        for label, t in rows:
            if not t["count"]:
                continue
            goal = f"   <= {s['goal_p99_ms']:g} ms {verdict(s['goal_met'])}" if not label else ""
            print(
                f"  {case + label if not label else label:<34}{t['count']:>6}{t['p50_ms']:>8.2f}"
                f"{t['p99_ms']:>8.2f}{t['max_ms']:>8.2f}{t['mean_ms']:>8.2f}{goal}"
            )
        for name, t in s["segments"].items():
            print(
                f"    {name:<32}{'':>6}{t['p50_ms']:>8.2f}{t['p99_ms']:>8.2f}"
                f"{t['max_ms']:>8.2f}{t['mean_ms']:>8.2f}"
            )
    print("\ntrading while measured (the broker path ran):")
    for case, s in latency.items():
        t = s["trading"]
        print(
            f"  {case:<12}: {s['entries']} entries, {s['exits']} exits, "
            f"{s['total']['count'] - s['fast_commits']['count']} LEDGER commits; whole run: "
            f"{t['entered']} entered, {t['rejected']} rejected, {t['skipped']} skipped, "
            f"state {t['state']}, equity {float(t['equity']):,.2f}; "
            f"{s['predictor']['rows']:,} predictions"
        )


def print_replay(replay: dict[str, Any]) -> None:
    """Print the throughput table."""
    print("\nreplay throughput (run_replay: CSV -> daemon -> SQLite), symbol-candles per second:")
    print(f"  {'case':<12}{'candles':>10}{'daemon s':>10}{'per s':>10}{'wall s':>9}{'per s':>10}"
          f"{'trades':>8}")  # fmt: skip
    for case, r in replay.items():
        print(
            f"  {case:<12}{r['candles']:>10,}{r['daemon_s']:>10.2f}{r['daemon_rate']:>10,.0f}"
            f"{r['wall_s']:>9.2f}{r['wall_rate']:>10,.0f}{r['trades'] or 0:>8}"
        )


def report(results: dict[str, Any]) -> None:
    """Print the figures and the verdicts."""
    m = results["machine"]
    print(
        f"machine: {m['cpus']} CPUs ({m['cpus_usable']} usable), Python {m['python']}; "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    if m["loadavg_start"][0] >= 0.5:
        print("note: other processes were using the CPUs at start; the figures are pessimistic")
    print(f"model: {results['model']}; database in {results['dir']}")
    print_latency(results["latency"])
    print_replay(results["replay"])
    print("\nsummary:")
    for case, s in results["latency"].items():
        t = s["total"]
        print(
            f"  {case:<12}: p50 {t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms "
            f"(goal p99 <= {s['goal_p99_ms']:g} ms: {verdict(s['goal_met'])}; "
            f"designs in this field quote {PEER_MS})"
        )
    for case, r in results["replay"].items():
        print(f"  replay {case:<12}: {r['daemon_rate']:,.0f} symbol-candles/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instants", type=int, default=2000, help="timed 1-symbol instants")
    parser.add_argument("--batch-instants", type=int, default=300, help="timed 100-symbol ones")
    parser.add_argument("--settle", type=int, default=50, help="untimed instants after warm-up")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="idle time between instants")
    parser.add_argument("--train-candles", type=int, default=6000, help="model training data")
    parser.add_argument("--replay-candles", type=int, default=20_000, help="1-symbol replay")
    parser.add_argument("--replay-10-candles", type=int, default=3000, help="per symbol, 10")
    parser.add_argument("--dir", type=Path, help="directory of the latency databases (default: a temporary one)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        work = Path(tmp)
        args.dir = args.dir or work
        results["dir"] = str(args.dir)
        version = train_model(work, args.train_candles)
        results["model"] = f"{version}, ModelConfig() tree counts, {args.train_candles} candles"
        results["latency"] = latency_section(args, work, work / "models")
        results["replay"] = replay_section(args, work, work / "models")
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
