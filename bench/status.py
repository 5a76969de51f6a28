"""Status feed load: decision latency, 100 symbols, no client vs 50 (1 slow); messages/s delivered.

Candle close -> committed decision latency with no status feed client and with 50 connected
(one of them slow), side by side in one run, and the feed's messages per second delivered.

Method. One process, one event loop, one model (trained once, untimed, as ``bench/pipeline.py``
trains it), the settings of pipeline's 100-symbol case (its busy market: the broker path runs)
but ``STATUS_WS_PORT=0``. One decision path is built by pipeline's ``build_rig`` as
``app/stages.py`` builds it, on a fresh SQLite file, and the status feed is wired to it as
``app/ways_in.py`` wires it: a ``FeedSnapshot`` over ``Control``, ``Reports``, a read-only
connection (``open_reader``), the engine's quality monitor and the trading stage, and
``status_feed`` of ``app/status.py``, which makes the ``StatusHub``, has the ``Teller`` observe
the trading stage and the event recorder, and returns the ``StatusServer`` (the daemon's
defaults: loopback, no token, 100 clients at most, heartbeats every 10 s), run as a task with a
``Readiness`` as the supervisor runs it. Not wired: the health monitor (the feed polls a provider
that has no check yet, so no ``health`` events) and the dashboard's origin. Both cases run on
this one path after one warm-up (``--warmup`` instants, untimed; the feed tells them too).

A, "no client": the feed runs and tells every event (numbered, encoded once, kept in the ring);
nobody is connected. B, "50 clients": a child process (``bench/feed_clients.py``, forked at the
start, before the model is trained; its own event loop, so the clients' work is not on the
measured loop, nor under its GIL) opens 49 reading ``websockets`` clients and 1 slow one: a
``websockets`` client on a socket with ``SO_RCVBUF`` 4096 bytes, ``max_queue=1``, that never
reads. Each reader decodes every message's ``type`` and ``seq`` (msgspec) and checks that the
events come one ``seq`` after the other from its snapshot's; it writes its last ``seq`` to an
array shared with the parent.

The cases alternate in blocks of ``--block-instants``, in ABBA order (``--blocks`` per case), as
in ``bench/notify.py``; a B block starts by connecting the 50 clients (untimed: until every
reader has its snapshot, then ``--settle-s``) and ends by closing them: the readers with a
normal close, then the slow one reads what it was sent, to see how the feed ended it. Timed, as
in ``bench/pipeline.py``: t0 = ``perf_counter_ns()`` before an instant's 100 candles go into the
engine's channel, t1 = when that instant's ``RecordInstant`` has committed. The feed is told
after the commit, so its work falls between instants: between two, the path is quiesced as
pipeline quiesces it, then (B) waits until every reader has the last event told (live, instants
are a minute apart; the feed delivers an instant in well under one), then idles ``--gap-ms``.
The time from t1 to that is the instant's delivery time; the messages delivered per second are
the instant's events x 49 over it, and the messages the readers counted over the B blocks' wall
time. ``--no-wait``: B does not wait for the readers (the quiesce still waits for the barrier
write, whose answer the loop runs after the feed's sending: in practice only the clients'
reading overlaps). Measured per instant, in both cases: the event loop's lag, the worst
oversleep of a task that sleeps ``LAG_PERIOD_S`` on the loop (how long a candle, an HTTP request
or a ping would have waited for it); per block: the CPU time of the event loop's thread (the
feed's sending included) and of the whole process, the garbage collector's pauses; per B block,
when the server counted the slow client fallen behind and when its connection ended (polled
after each instant), and what it logged (``status_client_fell_behind``,
``status_client_closed``). The child samples the machine's busy CPU time (``/proc/stat``) and
its own every 10 ms: the CPUs busy from t0 to t1 with this process, with the clients and with
other processes (which inflate the p99).

Printed per case: p50, p99, max (ms), segments, p99 per block, CPU; the feed's events per
instant, delivery time, messages/s, the readers' check, the slow client's fate; the change of
p99 from A to B against the goal, a rise of at most 10 % (the clients only add work: a fall is
noise), and each case's own blocks in ABBA halves as a measure of that noise. ``--profile N``
prints the top N functions of the event loop's thread in each case (cProfile; the latencies are
then inflated). About 4 minutes on an idle 2-core machine, 5 when other processes share it;
the load average is printed.

    .venv/bin/python bench/status.py [--blocks 4] [--block-instants 150] [--profile 25]
        [--json FILE]
"""

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import numpy as np  # noqa: E402
from feed_clients import CLIENTS, READERS, feed_clients  # noqa: E402
from pipeline import (  # noqa: E402 -- bench/ is on the path: it is the script's directory
    BATCH,
    SEGMENTS,
    GcPauses,
    Rig,
    build_rig,
    machine,
    market,
    measure,
    order,
    percentiles,
    profile_text,
    self_change,
    settings_for,
    symbols_for,
    train_model,
    verdict,
    warm_up,
)

from paper_trader.app.configs import log_config  # noqa: E402
from paper_trader.app.status import FeedSnapshot, status_feed  # noqa: E402
from paper_trader.app.telegram import health_provider, model_provider  # noqa: E402
from paper_trader.clock import SystemClock  # noqa: E402
from paper_trader.control.api import Control  # noqa: E402
from paper_trader.control.reports import Reports  # noqa: E402
from paper_trader.domain import Candle  # noqa: E402
from paper_trader.features.spec import default_spec  # noqa: E402
from paper_trader.interfaces.status.hub import (  # noqa: E402
    CLIENT_QUEUE,
    RING_FRAMES,
    StatusHub,
)
from paper_trader.interfaces.status.server import CLOSE_TIMEOUT_S, StatusServer  # noqa: E402
from paper_trader.runtime.logs import MAIN_LOG, configure_logging  # noqa: E402
from paper_trader.runtime.service import Readiness  # noqa: E402
from paper_trader.settings import Settings  # noqa: E402
from paper_trader.storage import migrate, open_database, open_reader  # noqa: E402

GOAL_PCT = 10.0
TITLES = {"A": "A  no client", "B": f"B  {CLIENTS} clients (1 slow)"}
POLL_S = 0.0005  # how often the parent looks at the readers' last seq
DELIVERY_TIMEOUT_S = 60.0
LAG_PERIOD_S = 0.005
PHASES = ("start + warm-up", "blocks")


class LoopLag:
    """How late a ``LAG_PERIOD_S`` sleep on the event loop wakes: the longest another task
    (a candle arriving, an HTTP request) would have waited for the loop."""

    def __init__(self) -> None:
        self.worst_ns = 0

    async def run(self) -> None:
        """Sleep and note the oversleep, until cancelled."""
        period_ns = int(LAG_PERIOD_S * 1e9)
        while True:
            start = time.perf_counter_ns()
            await asyncio.sleep(LAG_PERIOD_S)
            self.worst_ns = max(self.worst_ns, time.perf_counter_ns() - start - period_ns)

    def take(self) -> int:
        """Return the worst lag since the last call."""
        worst, self.worst_ns = self.worst_ns, 0
        return worst


@dataclass
class Case:
    """One case's figures, gathered over its blocks."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[list[int]] = field(default_factory=list)  # each block's latencies, ns
    gc: dict[int, list[int]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    cpu_loop_ns: int = 0  # the loop thread over the whole blocks: the feed's sending included
    cpu_process_ns: int = 0
    wall_ns: int = 0
    told: list[int] = field(default_factory=list)  # events told per instant
    delivery_ns: list[int] = field(default_factory=list)  # t1 -> the readers have them all
    lag_ns: list[int] = field(default_factory=list)  # the loop's worst lag, per instant
    sessions: list[dict[str, Any]] = field(default_factory=list)  # B: what the clients saw
    profiler: cProfile.Profile | None = None


@dataclass
class Feed:
    """The feed's parts the benchmark watches, and the child process's handle."""

    rig: Rig
    hub: StatusHub
    server: StatusServer
    commands: Connection
    acks: Any
    lag: LoopLag
    wait: bool = True  # B: the next instant only once the readers have this one's events
    readers: int = 0  # readers connected now
    case: Case | None = None
    seq: int = 0
    watch: dict[str, Any] = field(default_factory=dict)  # the slow client, this block

    async def settle(self, index: int) -> None:
        """After an instant: count its events; wait until every reader has them (B, unless
        ``--no-wait``)."""
        assert self.case is not None
        target = self.hub.seq
        self.case.told.append(target - self.seq)
        self.seq = target
        if self.readers and self.wait:
            await self.delivered(target)
            done = time.perf_counter_ns()
            self.case.delivery_ns.append(done - self.rig.probe.marks["committed"])
        self.case.lag_ns.append(self.lag.take())
        if self.readers:
            self._look(index)

    async def delivered(self, seq: int) -> None:
        """Return once every reader has received the event ``seq``."""
        async with asyncio.timeout(DELIVERY_TIMEOUT_S):
            while min(self.acks[: self.readers]) < seq:  # noqa: ASYNC110 -- another process
                await asyncio.sleep(POLL_S)

    def _look(self, index: int) -> None:
        """Note when the server counts the slow client fallen behind, and when it is gone."""
        w, since = self.watch, (time.perf_counter_ns() - self.watch["connected_ns"]) / 1e9
        if "fell_behind" not in w and self.server.fell_behind > w["fell_behind_before"]:
            w["fell_behind"] = {"instant": index, "s": since}
        if "gone" not in w and self.hub.clients < CLIENTS:
            w["gone"] = {"instant": index, "s": since}

    async def connect(self) -> None:
        """Have the child connect its clients; return once every reader has its snapshot."""
        self.commands.send(("connect", self.server.port))
        answer = await asyncio.to_thread(self.commands.recv)
        while self.hub.clients < CLIENTS:  # noqa: ASYNC110 -- the server's count
            await asyncio.sleep(0.01)
        self.readers = READERS
        self.watch = {
            "slow_port": answer["slow_port"],
            "connected_ns": time.perf_counter_ns(),
            "fell_behind_before": self.server.fell_behind,
        }

    async def disconnect(self) -> dict[str, Any]:
        """Have the child close its clients; return what they saw and the slow one's fate."""
        await self.delivered(self.hub.seq)
        self._look(-1)
        self.readers = 0
        self.commands.send(("disconnect",))
        seen = await asyncio.to_thread(self.commands.recv)
        while self.hub.clients:  # noqa: ASYNC110 -- the server's count
            await asyncio.sleep(0.01)
        self.watch["block_s"] = (time.perf_counter_ns() - self.watch["connected_ns"]) / 1e9
        return seen | {"watch": self.watch, "hub_seq": self.hub.seq}


@contextlib.asynccontextmanager
async def decision_path(
    settings: Settings, db: Path, commands: Connection, acks: Any, *, wait: bool
) -> AsyncIterator[Feed]:
    """Run the decision path and the status feed (wired as ``app/ways_in.py`` wires it) on a
    fresh ``db``; yield the feed once it listens."""
    async with contextlib.AsyncExitStack() as stack:
        conn = await open_database(db)
        stack.push_async_callback(conn.close)
        await migrate(conn)
        reader = await open_reader(db)
        stack.push_async_callback(reader.close)
        rig = build_rig(settings, conn)
        stack.callback(rig.models.stage.predictor.close)
        snapshot = FeedSnapshot(
            Control(rig.trading, reader, interval_ms=settings.interval.ms),
            Reports(rig.trading, reader),
            reader,
            rig.engine.quality,
            rig.trading,
            health=health_provider(lambda: None),
            model=model_provider(rig.models.stage),
        )
        clock = SystemClock()
        server = status_feed(
            settings, clock, rig.trading, rig.recorder, snapshot, dashboard_port=lambda: None
        )
        assert snapshot.hub is not None  # set by status_feed
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(rig.writer.run(Readiness()), name="writer")
            recorder = group.create_task(rig.recorder.run(Readiness()), name="recorder")
            ready, listening = Readiness(), Readiness()
            engine = group.create_task(rig.engine.run(ready), name="engine")
            feed = group.create_task(server.run(listening), name="status_feed")
            lag = LoopLag()
            sampler = group.create_task(lag.run(), name="loop_lag")
            await ready.wait()
            await listening.wait()
            yield Feed(rig, snapshot.hub, server, commands, acks, lag, wait=wait)
            rig.channel.close()
            await engine
            for task in (sampler, feed, recorder, writer):
                task.cancel()


async def run_block(
    case: Case, feed: Feed, instants: Iterator[list[Candle]], args: argparse.Namespace
) -> None:
    """Measure ``--block-instants`` instants of ``case`` (B: with the clients connected)."""
    if case.name == "B":
        await feed.connect()
        await asyncio.sleep(args.settle_s)
    feed.case, feed.seq = case, feed.hub.seq
    feed.lag.take()
    cpu, process, wall = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
    with case.profiler or contextlib.nullcontext(), GcPauses() as pauses:
        block = itertools.islice(instants, args.block_instants)
        records = await measure(feed.rig, block, args.gap_ms / 1e3, feed.settle)
    case.cpu_loop_ns += time.thread_time_ns() - cpu
    case.cpu_process_ns += time.process_time_ns() - process
    case.wall_ns += time.perf_counter_ns() - wall
    if case.name == "B":
        case.sessions.append(await feed.disconnect())
    case.records += records
    case.blocks.append([r["total_ns"] for r in records])
    for generation, times in pauses.pauses.items():
        case.gc[generation] += times


async def run_cases(
    args: argparse.Namespace, settings: Settings, db: Path, commands: Connection, acks: Any
) -> dict[str, Any]:
    """Warm the path up, then run the blocks in ABBA order."""
    instants = market(settings.symbols, args.warmup + args.blocks * args.block_instants * 2)
    cases = {n: Case(n, profiler=cProfile.Profile() if args.profile else None) for n in "AB"}
    marks = [time.perf_counter()]
    async with decision_path(settings, db, commands, acks, wait=not args.no_wait) as feed:
        await warm_up(feed.rig, itertools.islice(instants, args.warmup), args.gap_ms / 1e3)
        marks.append(time.perf_counter())
        for name in order(args.blocks):
            await run_block(cases[name], feed, instants, args)
        marks.append(time.perf_counter())
        port, told = feed.server.port, feed.hub.seq
        commands.send(("samples",))
        samples = await asyncio.to_thread(commands.recv)
    laps = itertools.pairwise(marks)
    return {
        "cases": {name: summarise(case, args, samples) for name, case in cases.items()},
        "feed": {"port": port, "told": told, "fell_behind": feed.server.fell_behind},
        "phases_s": {p: b - a for p, (a, b) in zip(PHASES, laps, strict=True)},
    }


# --- figures ---------------------------------------------------------------------------------


def summarise(
    case: Case, args: argparse.Namespace, samples: list[tuple[int, float, float]]
) -> dict[str, Any]:
    """Return a case's figures: latency, segments, blocks, CPU, the feed's work."""
    records, instants = case.records, len(case.records)
    return {
        "cpus_in_use": cpus_in_use(records, samples),
        "total": percentiles([r["total_ns"] for r in records]),
        "segments": {
            name: percentiles([r["segments_ns"][i] for r in records])
            for i, (name, _, _) in enumerate(SEGMENTS)
        },
        "cpu_loop": percentiles([r["cpu_ns"][0] for r in records]),
        "block_p99_ms": [percentiles(b)["p99_ms"] for b in case.blocks],
        "self_change_pct": self_change(case.blocks),
        "ledger_commits": sum(r["ledger"] for r in records),
        "entries": sum(r["entries"] for r in records),
        "exits": sum(r["exits"] for r in records),
        "gc": {f"gen{g}": [len(p), max(p, default=0) / 1e6] for g, p in case.gc.items()},
        "loop_cpu_per_instant_ms": case.cpu_loop_ns / instants / 1e6,
        "process_cpu_per_instant_ms": case.cpu_process_ns / instants / 1e6,
        "wall_s": case.wall_ns / 1e9,
        "told_median": sorted(case.told)[len(case.told) // 2],
        "delivery": percentiles(case.delivery_ns),
        "lag": percentiles(case.lag_ns),
        "rates": rates(case),
        "sessions": [session_summary(s) for s in case.sessions],
        "profile": profile_text(case.profiler, args.profile),
    }


def cpus_in_use(
    records: list[dict[str, Any]], samples: list[tuple[int, float, float]]
) -> dict[str, float]:
    """Return how many CPUs were busy, on average over the measured instants (t0 to t1): with
    this process, with the clients' process, with any other (the machine's busy time from
    ``/proc/stat``, interpolated between the child's samples, less the two)."""
    at, busy, child = (np.asarray(c, dtype=np.float64) for c in zip(*samples, strict=True))
    t0 = np.asarray([r["t0_ns"] for r in records], dtype=np.float64)
    t1 = t0 + np.asarray([r["total_ns"] for r in records], dtype=np.float64)
    wall = float((t1 - t0).sum()) / 1e9
    machine = float((np.interp(t1, at, busy) - np.interp(t0, at, busy)).sum())
    clients = float((np.interp(t1, at, child) - np.interp(t0, at, child)).sum())
    own = sum(r["cpu_ns"][1] for r in records) / 1e9
    return {
        "process": own / wall,
        "clients": clients / wall,
        "others": max(0.0, machine - own - clients) / wall,
    }


def rates(case: Case) -> dict[str, float]:
    """Return the messages per second delivered to the readers: over the B blocks' wall time
    (the readers' own counts), and while delivering an instant (its events x readers over its
    delivery time; the median instant and the slowest 1 %)."""
    if not case.sessions:
        return {}
    messages = sum(r["messages"] for s in case.sessions for r in s["readers"])
    megabytes = sum(r["size"] for s in case.sessions for r in s["readers"]) / 1e6
    out = {
        "overall": messages / (case.wall_ns / 1e9),
        "messages": messages,
        "mb_per_s": megabytes / (case.wall_ns / 1e9),
        "client_cpu_s": sum(s["cpu_s"] for s in case.sessions),
    }
    if case.delivery_ns:
        pairs = zip(case.told, case.delivery_ns, strict=True)
        per = sorted(n * READERS / (d / 1e9) for n, d in pairs)
        out |= {"instant_median": per[len(per) // 2], "instant_p1": per[len(per) // 100]}
    return out


def session_summary(seen: dict[str, Any]) -> dict[str, Any]:
    """Return a B block's check of the readers and the slow client's fate."""
    readers = seen["readers"]
    complete = sum(
        1
        for r in readers
        if r["out_of_order"] == 0
        and r["last_seq"] == seen["hub_seq"]
        and r["events"] == r["last_seq"] - r["snapshot_seq"]
    )
    faults = [r["first_fault"] for r in readers if r["first_fault"]]
    return {
        "readers": len(readers),
        "complete_in_order": complete,
        "events_min": min(r["events"] for r in readers),
        "events_max": max(r["events"] for r in readers),
        "faults": faults[:3],
        "closes": dict(Counter(str(r["close_code"]) for r in readers)),
        "slow": seen["slow"],
        "watch": seen["watch"],
        "client_cpu_s": seen["cpu_s"],
    }


def server_log(log_dir: Path, ports: set[int]) -> list[dict[str, Any]]:
    """Return what the feed logged of the slow clients (by their local ports)."""
    path, found = log_dir / MAIN_LOG, []
    if not path.exists():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            port = str(entry.get("peer", "")).rpartition(":")[2]
            if entry.get("event", "").startswith("status_client_") and int(port or 0) in ports:
                found.append({k: entry.get(k) for k in ("timestamp", "event", "code", "peer")})
    return found


def change_pct(results: dict[str, Any]) -> float:
    """Return the change of p99 from case A to case B, in %."""
    a, b = (results["cases"][n]["total"]["p99_ms"] for n in ("A", "B"))
    return float((b - a) / a * 100)


def print_latency(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print each case's latency table."""
    print(
        f"\ndecision latency, {BATCH} symbols: candles put in the channel -> ledger instant "
        f"committed (ms); {args.blocks} blocks of {args.block_instants} instants per case, "
        f"order {' '.join(order(args.blocks))}"
    )
    print(f"  {'case':<36}{'n':>6}{'p50':>8}{'p99':>8}{'max':>8}{'mean':>8}   p99 per block")
    for name, s in results["cases"].items():
        rows = [(TITLES[name], s["total"], " ".join(f"{p:.1f}" for p in s["block_p99_ms"]))]
        rows += [(f"  {segment}", t, "") for segment, t in s["segments"].items()]
        rows += [("  CPU time, event loop thread", s["cpu_loop"], "")]
        rows += [("  loop lag, worst per instant", s["lag"], "")]
        for label, t, note in rows:
            line = (
                f"  {label:<36}{t['count']:>6}{t['p50_ms']:>8.2f}{t['p99_ms']:>8.2f}"
                f"{t['max_ms']:>8.2f}{t['mean_ms']:>8.2f}   {note}"
            )
            print(line.rstrip())
        gc = ", ".join(f"{g} {n} x (longest {m:.1f} ms)" for g, (n, m) in s["gc"].items())
        print(
            f"    {s['ledger_commits']} LEDGER commits, {s['entries']} entries, {s['exits']} "
            f"exits; garbage collector: {gc}"
        )
        print(
            f"    per instant over the blocks (the feed's sending included): event loop thread "
            f"{s['loop_cpu_per_instant_ms']:.1f} ms CPU, whole process "
            f"{s['process_cpu_per_instant_ms']:.1f} ms; {s['wall_s']:.1f} s in all"
        )
        use = s["cpus_in_use"]
        print(
            f"    CPUs busy from t0 to t1, on average: this process {use['process']:.2f}, the "
            f"clients' process {use['clients']:.2f}, other processes {use['others']:.2f}"
        )


def print_feed(results: dict[str, Any]) -> None:
    """Print what the feed delivered, the readers' check and the slow client's fate."""
    a, b = results["cases"]["A"], results["cases"]["B"]
    d, r = b["delivery"], b["rates"]
    print(
        f"\nstatus feed on port {results['feed']['port']} (ring {RING_FRAMES:,}, client queue "
        f"{CLIENT_QUEUE:,}, close timeout {CLOSE_TIMEOUT_S:g} s); {results['feed']['told']:,} "
        f"events told in the run; per instant {b['told_median']} events (median; "
        f"{a['told_median']} in A)"
    )
    if d["count"]:
        print(
            f"B: delivery, t1 -> the {READERS} readers have every event told: p50 "
            f"{d['p50_ms']:.1f}, p99 {d['p99_ms']:.1f}, max {d['max_ms']:.1f} ms; messages/s to "
            f"the readers while delivering {r['instant_median']:,.0f} (median instant; slowest "
            f"1 %: {r['instant_p1']:,.0f})"
        )
    else:
        print("B: --no-wait: each instant began without waiting for the feed to deliver the last")
    la, lb = a["lag"], b["lag"]
    print(
        f"event loop lag, worst per instant: A p50 {la['p50_ms']:.1f} / max {la['max_ms']:.1f} ms,"
        f" B p50 {lb['p50_ms']:.1f} / max {lb['max_ms']:.1f} ms; event loop thread CPU per "
        f"instant A {a['loop_cpu_per_instant_ms']:.1f} ms, B {b['loop_cpu_per_instant_ms']:.1f} ms"
    )
    print(
        f"B: messages/s to the readers over the B blocks' wall time {r['overall']:,.0f} "
        f"({r['messages']:,} messages, {r['mb_per_s']:.1f} MB/s); the clients' process used "
        f"{r['client_cpu_s']:.1f} s CPU"
    )
    for k, s in enumerate(b["sessions"], 1):
        slow, w = s["slow"], s["watch"]
        fell = w.get("fell_behind")
        gone = w.get("gone")
        print(
            f"  B block {k}: {s['complete_in_order']}/{s['readers']} readers got every event in "
            f"seq order ({s['events_min']:,}-{s['events_max']:,} events each"
            + (f"; faults: {', '.join(s['faults'])}" if s["faults"] else "")
            + "); slow client: "
            + (
                f"counted fallen behind after {fell['s']:.1f} s (instant {fell['instant']})"
                if fell and fell["instant"] >= 0
                else f"NOT counted fallen behind in the block's {w['block_s']:.0f} s"
            )
            + (
                f", its connection gone after {gone['s']:.1f} s"
                if gone and gone["instant"] >= 0
                else ", its connection still open at the block's end"
            )
            + f"; reading then, it got {slow['read']} messages and close code {slow['close']}"
        )
    for entry in results["slow_log"]:
        print(f"    log: {entry['timestamp']} {entry['event']} code={entry['code']}")


def print_profiles(results: dict[str, Any]) -> None:
    """Print the profiles of the event loop's thread, if taken."""
    for name, s in results["cases"].items():
        if s["profile"]:
            print(f"\nprofile of the event loop's thread, {TITLES[name]} (own time):")
            print("\n".join(line for line in s["profile"].splitlines()[:60] if line.strip()))


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the figures and the verdict."""
    m = results["machine"]
    print(
        f"machine: {m['cpus']} CPUs ({m['cpus_usable']} usable), Python {m['python']}; "
        f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}"
    )
    if m["loadavg_start"][0] >= 0.5:
        print("note: other processes were using the CPUs at start; the figures are pessimistic")
    print(f"model: {results['model']}")
    print("phases (s): " + ", ".join(f"{p} {t:.1f}" for p, t in results["phases_s"].items()))
    print_latency(results, args)
    print_feed(results)
    print_profiles(results)
    pct = change_pct(results)
    a, b = (results["cases"][n]["total"] for n in ("A", "B"))
    rates = results["cases"]["B"]["rates"]
    rate, when = rates.get("instant_median", rates["overall"]), "while delivering"
    when = when if "instant_median" in rates else "over the B blocks"
    floors = [results["cases"][n]["self_change_pct"] for n in ("A", "B")]
    if None not in floors:
        print(
            f"\nnoise: the p99 of a case's own blocks in ABBA halves changes by {floors[0]:+.1f} %"
            f" (A) and {floors[1]:+.1f} % (B) with nothing else different"
        )
    print(
        f"\nsummary: p50 {a['p50_ms']:.2f} -> {b['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} -> "
        f"{b['p99_ms']:.2f} ms: {CLIENTS} feed clients change p99 by {pct:+.1f} %; goal within "
        f"{GOAL_PCT:g} %: {verdict(pct <= GOAL_PCT)}"
        + (" (a fall: noise, the clients only add work)" if pct <= -GOAL_PCT else "")
        + f"; {rate:,.0f} messages/s delivered to the readers {when}"
    )


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--blocks", type=int, default=4, help="blocks per case (ABBA order)")
    add("--block-instants", type=int, default=150, help="timed instants per block")
    add("--warmup", type=int, default=1500, help="untimed instants first")
    add("--gap-ms", type=float, default=2.0, help="idle time between measured instants")
    add("--settle-s", type=float, default=1.0, help="untimed after the clients connect")
    add("--no-wait", action="store_true", help="B: do not wait for the feed between instants")
    add("--train-candles", type=int, default=6000, help="candles the model is trained on")
    add("--profile", type=int, default=0, metavar="N", help="print the top N functions")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    if args.warmup < default_spec().warmup:
        parser.error(f"the warm-up must be at least the features' {default_spec().warmup}")
    return args


def main() -> None:
    args = arguments()
    results: dict[str, Any] = {"machine": machine()}
    context = multiprocessing.get_context("fork")  # before the model and the loop exist
    commands, theirs = context.Pipe()
    acks = context.RawArray("q", READERS)
    child = context.Process(target=feed_clients, args=(theirs, acks), name="feed-clients")
    child.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
            work = Path(tmp)
            version = train_model(work, args.train_candles)
            results["model"] = f"{version} (ModelConfig() trees, {args.train_candles} candles)"
            settings = settings_for(work, symbols_for(BATCH)).model_copy(
                update={"status_ws_port": 0}
            )
            with open(os.devnull, "w", encoding="utf-8") as devnull:
                logs = configure_logging(log_config(settings), stream=devnull)
                try:
                    results |= asyncio.run(
                        run_cases(args, settings, work / "bench-status.db", commands, acks)
                    )
                finally:
                    logs.close()
            ports = {s["watch"]["slow_port"] for s in results["cases"]["B"]["sessions"]}
            results["slow_log"] = server_log(settings.log_dir, ports)
    finally:
        commands.send(("quit",))
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["p99_change_pct"] = change_pct(results)
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
