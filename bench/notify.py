"""Notifier load: candle close -> committed decision latency, Telegram idle and in a 429 storm.

Method. One process, one event loop, one model (trained once, untimed, as ``bench/pipeline.py``
trains it), the same settings for both cases: the daemon's defaults but ``EXCHANGE=kraken``,
``FEE_RATE=0.001``, ``PREDICTION_HORIZON=5`` (the model's), ``AUTO_TRAIN=false``, no feature
cache, ``MAX_POSITIONS=10``; 10 symbols closing together per instant. Not pipeline's busy
market: it trades at about every third instant, and at ~100 instants a second its own trade
notifications would outrun Telegram's pace (one message a second per chat): case A would not
be idle. Two decision paths are built by pipeline's ``build_rig`` as ``app/stages.py`` builds
them, each on its own SQLite file with its own writer and the same candles (same seeds), warmed
up untimed (``--warmup`` instants): A, "Telegram idle", and B, "429 storm". Each has the
notifier of ``app/notify.py::build_notifier`` (its own chat: the one setting that differs) over
the path's writer and a read-only connection (``open_reader``), run as a task with a
``Readiness``, as the supervisor runs it, against the fake Bot API of
``tests/fakes/telegram_server.py`` (imported from ``tests/fakes``), which runs in a thread and
event loop of its own (``fake_telegram_thread``): its work is not on the measured loop, though
it shares the GIL.

A: every send accepted and nothing queued beforehand; the path's own notifications (trades,
breakers, drift) go out as they come. B: before anything is measured the fake refuses every
``sendMessage`` to B's chat with 429 and ``retry_after`` ``--retry-after`` s (one fault that
lasts until it is cleared, so the storm covers every measured instant), then 1,000
notifications are committed to B's outbox through its writer (``AppendOutbox``, as the
recorder queues them): ``MIX``, spread over the last 10 minutes, several symbols and services,
so that repeats fold, every cap counts and one overflows into a digest once the storm ends.

The cases alternate in blocks of ``--block-instants``, in ABBA order (A B B A A B B A ...,
``--blocks`` per case), so that a drift of the machine (other processes, heat) falls on both
alike; block k of A and of B see the same candles. Only the measured case's notifier runs in a
block: it is built anew at the block's start, as a restart builds it (it restores its caps and
the storm's wait from the outbox), left ``--settle-s`` untimed, and cancelled at the block's
end as the supervisor stops it (a block of ~10 s in the storm sees about two of its 429s).

Timed, as in ``bench/pipeline.py``: t0 = ``perf_counter_ns()`` before an instant's 10 candles
go into the engine's channel, t1 = when that instant's ``RecordInstant`` has committed; between
instants the path is quiesced and idles ``--gap-ms``. The notifier is not timed: it competes
for the loop, the writer and the database, as in the daemon. Not timed either: training,
warm-up, queueing, the notifiers' starts and stops, the end. At the end the storm is cleared
and B's notifier runs until no message has arrived for 4 s (at most ``--drain-s``): the
messages delivered, the notifications they carried (alone or folded), those failed and those
still pending, with what the policy holds them for (a full cap's digest, an hour after the
cap's first message; a repeat window, 10 minutes), against what was queued.

Printed per case: p50, p99, max (ms), instants, segments, p99 per block, and the instants
begun within 100 ms of a request of its notifier (A: a delivery; B: a 429) apart from the
others; in B the 429s answered; the change of p99 from A to B against the goal, a rise of less
than 10 % (the storm only adds work: a fall is noise), and, as a measure of that noise, the
change between each case's own blocks in ABBA halves. A is not free of notifier work: with
~100 instants a second the path's own notifications come thousands of times faster than live,
and A delivers them. About 3 minutes on an idle 2-core machine; the load average is printed.

    .venv/bin/python bench/notify.py [--blocks 4] [--block-instants 1000] [--retry-after 5]
        [--json FILE]
"""

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["PTB_TIMEDELTA"] = "1"  # before telegram is imported: a 429's wait as a timedelta
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "tests")]  # paper_trader, tests/fakes

import aiosqlite  # noqa: E402
from fakes.telegram_server import ThreadedTelegram, fake_telegram_thread  # noqa: E402
from pipeline import (  # noqa: E402 -- bench/ is on the path: it is the script's directory
    SEGMENTS,
    GcPauses,
    Rig,
    build_rig,
    machine,
    market,
    measure,
    order,
    percentiles,
    self_change,
    symbols_for,
    train_model,
    verdict,
    warm_up,
)

from paper_trader.app.configs import log_config  # noqa: E402
from paper_trader.app.notify import build_notifier, caps  # noqa: E402
from paper_trader.clock import SystemClock  # noqa: E402
from paper_trader.domain import Candle, Event, EventKind, EventSource, Severity  # noqa: E402
from paper_trader.domain.notifications import Notification, Priority  # noqa: E402
from paper_trader.interfaces.notify.policy import CAP_OF, HOUR_MS, Cap, DeliveryPolicy  # noqa: E402
from paper_trader.interfaces.notify.service import Notifier  # noqa: E402
from paper_trader.runtime.logs import configure_logging  # noqa: E402
from paper_trader.runtime.service import Readiness  # noqa: E402
from paper_trader.settings import Settings  # noqa: E402
from paper_trader.storage import AppendOutbox, migrate, open_database, open_reader  # noqa: E402
from paper_trader.storage.outbox_repository import (  # noqa: E402
    pending_deliveries,
    recent_deliveries,
)

GOAL_PCT = 10.0
SYMBOLS = 10
CHATS = {"A": 111, "B": 222}
TITLES = {"A": "A  Telegram idle", "B": "B  429 storm"}
NEAR_S = 0.1  # an instant begun this close to a 429 may have met the worker's retry
QUIET_S = 4.0  # no message for this long after the storm: the notifier has nothing ready
STORM_S = 3600.0  # the fault's lifetime: longer than any run, ended by clear_faults()
PHASES = ("start + warm-up", "queueing 1,000", "blocks", "drain")
SPREAD_MS = 600_000  # the queued notifications happened over the last 10 minutes
MARKET: dict[str, Any] = {
    "exchange": "kraken", "fee_rate": 0.001, "prediction_horizon": 5, "auto_train": False,
    "retrain_interval": 0, "cache_features": False, "max_positions": SYMBOLS,
}  # fmt: skip
S = Severity
MIX = (  # kind, severity, source, notifications, over how many symbols or services
    (EventKind.SERVICE_FAILED, S.CRITICAL, "supervisor", 2, 2),  # critical: never capped
    (EventKind.SERVICE_CRASH_LOOP, S.CRITICAL, "supervisor", 2, 2),
    (EventKind.SERVICE_RESTARTED, S.WARNING, "supervisor", 150, 3),  # errors: folded x50
    (EventKind.FEED_RECONNECT_STORM, S.WARNING, "feed", 40, 1),
    (EventKind.PREDICTION_TIMEOUT, S.WARNING, "prediction", 100, 5),
    (EventKind.BREAKER_TRIPPED, S.WARNING, "risk", 3, 3),  # the errors' cap, one message each
    (EventKind.BREAKER_RESET, S.INFO, "risk", 3, 3),
    (EventKind.TRADE_OPENED, S.INFO, "trading", 5, 5),  # the trades' cap, one message each
    (EventKind.TRADE_CLOSED, S.INFO, "trading", 5, 5),
    (EventKind.MODEL_DRIFT, S.WARNING, "prediction", 20, 1),  # status: 10 an hour
    (EventKind.DATA_GAP, S.WARNING, "feed", 360, 10),
    (EventKind.CANDLE_LATE, S.INFO, "feed", 200, 10),  # the status cap full: a digest
    (EventKind.SERVICE_RECOVERED, S.INFO, "supervisor", 50, 3),
    (EventKind.FEED_RECOVERED, S.INFO, "feed", 60, 1),
)


@dataclass
class Case:
    """One case's decision path, notifier settings and what was measured in its blocks."""

    name: str
    settings: Settings
    rig: Rig
    reader: aiosqlite.Connection
    instants: Iterator[list[Candle]]
    records: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[list[int]] = field(default_factory=list)  # each block's latencies, ns
    gc: dict[int, list[int]] = field(default_factory=lambda: {0: [], 1: [], 2: []})
    refused: int = 0  # 429s the fake answered to its chat during its blocks
    pending_at_start: list[int] = field(default_factory=list)

    @property
    def chat(self) -> int:
        """Return the case's Telegram chat."""
        return CHATS[self.name]


def settings_for(work: Path, name: str, tg: ThreadedTelegram) -> Settings:
    """Return the settings of case ``name``: the same but for the chat."""
    return Settings(
        _env_file=None,
        symbols=symbols_for(SYMBOLS),
        models_dir=work / "models",
        db_path=work / "unused.db",
        log_dir=work / "logs",
        telegram_bot_token=tg.token,
        telegram_chat_id=[CHATS[name]],
        telegram_api_url=tg.api_url,
        **MARKET,
    )


def backlog(symbols: Sequence[str], now_ms: int) -> list[Event]:
    """Return ``MIX`` as events, shuffled (seeded) over the ``SPREAD_MS`` before ``now_ms``."""
    entries = []
    for kind, severity, source, count, keys in MIX:
        field_ = "service" if source == "supervisor" else "symbol"
        names = [f"svc{k}" for k in range(keys)] if field_ == "service" else symbols[:keys]
        entries += [(kind, severity, source, field_, names[i % keys], i) for i in range(count)]
    random.Random(7).shuffle(entries)
    step = SPREAD_MS // len(entries)
    return [
        EventSource(source).event(
            kind,
            severity,
            f"{name}: {kind.value.replace('_', ' ')} #{i}",
            at_ms=now_ms - (len(entries) - n) * step,
            data={field_: name},
        )
        for n, (kind, severity, source, field_, name, i) in enumerate(entries)
    ]


@contextlib.asynccontextmanager
async def decision_path(
    settings: Settings, db: Path, instants: Iterator[list[Candle]], name: str
) -> AsyncIterator[Case]:
    """Run a decision path (writer, recorder, engine) on a fresh ``db``; yield its case."""
    async with contextlib.AsyncExitStack() as stack:
        conn = await open_database(db)
        stack.push_async_callback(conn.close)
        await migrate(conn)
        reader = await open_reader(db)
        stack.push_async_callback(reader.close)
        rig = build_rig(settings, conn)
        stack.callback(rig.models.stage.predictor.close)
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(rig.writer.run(Readiness()), name=f"writer-{name}")
            recorder = group.create_task(rig.recorder.run(Readiness()), name=f"recorder-{name}")
            ready = Readiness()
            engine = group.create_task(rig.engine.run(ready), name=f"engine-{name}")
            await ready.wait()
            yield Case(name, settings, rig, reader, instants)
            rig.channel.close()
            await engine
            recorder.cancel()
            writer.cancel()


@contextlib.asynccontextmanager
async def notifier_running(case: Case, settle_s: float) -> AsyncIterator[Notifier]:
    """Build the case's notifier as the daemon does, run it, and stop it as the supervisor
    does; yield it once ready and ``settle_s`` later (its start-up work done)."""
    notifier = build_notifier(
        case.settings,
        case.reader,
        case.rig.writer,
        SystemClock(),
        telegram_api_url=case.settings.telegram_api_url,
    )
    async with asyncio.TaskGroup() as group:
        ready = Readiness()
        task = group.create_task(notifier.run(ready), name=f"{notifier.name}-{case.name}")
        try:
            async with asyncio.timeout(10):
                await ready.wait()
            await asyncio.sleep(settle_s)
            yield notifier
        finally:
            task.cancel()


def refusals(tg: ThreadedTelegram, chat: int) -> int:
    """Return how many requests to ``chat`` the fake answered with 429 so far."""
    return sum(1 for call in tg.refusals(429) if call.chat_id == chat)


async def pending(case: Case) -> int:
    """Return the deliveries pending on the case's chat."""
    [[count]] = await case.reader.execute_fetchall(
        "SELECT count(*) FROM notification_deliveries WHERE channel = ? AND status = 'pending'",
        (f"telegram:{case.chat}",),
    )
    return int(count)


async def run_block(case: Case, tg: ThreadedTelegram, args: argparse.Namespace) -> None:
    """Measure ``--block-instants`` instants of ``case`` with its notifier running."""
    async with notifier_running(case, args.settle_s):
        case.pending_at_start.append(await pending(case))
        refused = refusals(tg, case.chat)
        with GcPauses() as pauses:
            instants = itertools.islice(case.instants, args.block_instants)
            records = await measure(case.rig, instants, args.gap_ms / 1e3)
        case.refused += refusals(tg, case.chat) - refused
    case.records += records
    case.blocks.append([r["total_ns"] for r in records])
    for generation, times in pauses.pauses.items():
        case.gc[generation] += times


async def drain(case: Case, tg: ThreadedTelegram, limit_s: float) -> dict[str, Any]:
    """End the storm; run the notifier until nothing arrives for ``QUIET_S``; count."""
    tg.clear_faults()
    started = now = time.monotonic()
    async with notifier_running(case, 0):
        count, changed = 0, started
        while now - started < limit_s:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            arrived = len(tg.delivered(case.chat))
            if arrived != count:
                count, changed = arrived, now
            elif count and now - changed >= QUIET_S:
                break
    out = await deliveries(case)  # the stop's flush may have sent what was ready
    arrived = len(tg.delivered(case.chat))
    return out | {"arrived": arrived, "drain_s": changed - started, "waited_s": now - started}


async def deliveries(case: Case) -> dict[str, Any]:
    """Return what became of the deliveries on the case's chat; for those pending, what the
    policy holds them for (a full cap's digest, a repeat window) and when one is next ready."""
    channel, now = f"telegram:{case.chat}", SystemClock().now_ms()
    rows = list(
        await case.reader.execute_fetchall(
            "SELECT status, folded, message_ids FROM notification_deliveries WHERE channel = ?",
            (channel,),
        )
    )
    [[queued]] = await case.reader.execute_fetchall("SELECT count(*) FROM notification_outbox")
    status = Counter(state for state, _, _ in rows)
    parts = {i for state, _, ids in rows if state == "sent" for i in ids.split(",")}
    policy = DeliveryPolicy(caps(case.settings))
    policy.restore(await recent_deliveries(case.reader, channel, since_ms=now - HOUR_MS))
    waiting = await pending_deliveries(case.reader, channel, limit=len(rows) + 1)
    limits = caps(case.settings).per_hour
    held = Counter(held_for(n, policy, limits, now) for n in waiting)
    choice = policy.choose(waiting, now)
    wake = None if choice.wake_at_ms is None else (choice.wake_at_ms - now) / 60_000
    return {
        "queued": int(queued),
        "deliveries": len(rows),
        "sent": status["sent"],
        "folded": sum(1 for state, folded, _ in rows if state == "sent" and folded),
        "pending": status["pending"],
        "failed": status["failed"],
        "messages": len(parts),
        "held": dict(held),
        "ready_now": choice.outgoing is not None,
        "next_ready_min": wake,
        "caps_used": {cap.value: policy.used(cap, now) for cap in Cap},
        "caps": {cap.value: limit for cap, limit in limits.items()},
    }


def held_for(n: Notification, policy: DeliveryPolicy, limits: Mapping[Cap, int], now: int) -> str:
    """Return what a pending notification waits for: its cap's digest, else its repeat
    window (or nothing: critical)."""
    if n.priority is Priority.CRITICAL:
        return "nothing (critical!)"
    cap = CAP_OF[n.category]
    is_full = 0 < limits[cap] <= policy.used(cap, now)
    return f"the {cap} digest" if is_full else "their repeat window"


async def run_cases(args: argparse.Namespace, work: Path, tg: ThreadedTelegram) -> dict[str, Any]:
    """Warm both paths, queue B's backlog in the storm, run the blocks, drain B."""
    total = args.warmup + args.blocks * args.block_instants
    marks = [time.perf_counter()]
    async with contextlib.AsyncExitStack() as stack:
        cases: dict[str, Case] = {}
        for name in CHATS:
            settings = settings_for(work, name, tg)
            instants = market(settings.symbols, total)
            db = work / f"bench-notify-{name}.db"
            cases[name] = await stack.enter_async_context(
                decision_path(settings, db, instants, name)
            )
            warm = itertools.islice(cases[name].instants, args.warmup)
            await warm_up(cases[name].rig, warm, args.gap_ms / 1e3)
        storm = cases["B"]
        tg.flood(args.retry_after, method="sendMessage", chat_id=storm.chat, seconds=STORM_S)
        marks.append(time.perf_counter())
        for e in backlog(storm.settings.symbols, SystemClock().now_ms()):
            await storm.rig.writer.write(AppendOutbox(event=e))
        marks.append(time.perf_counter())
        for name in order(args.blocks):
            await run_block(cases[name], tg, args)
        marks.append(time.perf_counter())
        idle = await deliveries(cases["A"])
        after = await drain(storm, tg, args.drain_s)
        marks.append(time.perf_counter())
        laps = itertools.pairwise(marks)
        return {
            "cases": {name: summarise(case) for name, case in cases.items()},
            "near_requests": {name: near_requests(case, tg) for name, case in cases.items()},
            "refused_total": refusals(tg, storm.chat),
            "idle_notifier": idle | {"arrived": len(tg.delivered(cases["A"].chat))},
            "after_storm": after,
            "phases_s": {p: b - a for p, (a, b) in zip(PHASES, laps, strict=True)},
        }


def near_requests(case: Case, tg: ThreadedTelegram) -> dict[str, Any]:
    """Return the case's instants begun within ``NEAR_S`` of a ``sendMessage`` reaching the
    fake from its notifier (A: a message delivered; B: a 429, the worker's retry: pending
    rows read, the policy's choice, the send, the deferral), and the others."""
    calls = tg.calls_to("sendMessage")
    times = sorted(c.at for c in calls if c.chat_id == case.chat and c.status in {200, 429})
    near: list[int] = []
    far: list[int] = []
    for r in case.records:
        t0 = r["t0_ns"] / 1e9  # perf_counter and the fake's time.monotonic: one clock on Linux
        k = bisect.bisect_left(times, t0 - NEAR_S)
        (near if k < len(times) and times[k] <= t0 + NEAR_S else far).append(r["total_ns"])
    return {"near": percentiles(near), "others": percentiles(far)}


def summarise(case: Case) -> dict[str, Any]:
    """Return a case's figures: overall, per segment, per block, GC, 429s, backlog."""
    records = case.records
    return {
        "total": percentiles([r["total_ns"] for r in records]),
        "segments": {
            name: percentiles([r["segments_ns"][i] for r in records])
            for i, (name, _, _) in enumerate(SEGMENTS)
        },
        "block_p99_ms": [percentiles(b)["p99_ms"] for b in case.blocks],
        "self_change_pct": self_change(case.blocks),
        "ledger_commits": sum(r["ledger"] for r in records),
        "gc": {f"gen{g}": [len(p), max(p, default=0) / 1e6] for g, p in case.gc.items()},
        "refused": case.refused,
        "pending_at_block_start": case.pending_at_start,
    }


def change_pct(results: dict[str, Any]) -> float:
    """Return the change of p99 from case A to case B, in %."""
    a, b = (results["cases"][n]["total"]["p99_ms"] for n in ("A", "B"))
    return float((b - a) / a * 100)


def print_latency(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print each case's latency table."""
    print(
        f"\ndecision latency, {SYMBOLS} symbols: candles put in the channel -> ledger instant "
        f"committed (ms); {args.blocks} blocks of {args.block_instants} instants per case, "
        f"order {' '.join(order(args.blocks))}"
    )
    print(f"  {'case':<34}{'n':>6}{'p50':>8}{'p99':>8}{'max':>8}{'mean':>8}   p99 per block")
    for name, s in results["cases"].items():
        rows = [(TITLES[name], s["total"], " ".join(f"{p:.2f}" for p in s["block_p99_ms"]))]
        rows += [(f"  {segment}", t, "") for segment, t in s["segments"].items()]
        for label, t, note in rows:
            line = (
                f"  {label:<34}{t['count']:>6}{t['p50_ms']:>8.2f}{t['p99_ms']:>8.2f}"
                f"{t['max_ms']:>8.2f}{t['mean_ms']:>8.2f}   {note}"
            )
            print(line.rstrip())
        gc = ", ".join(f"{g} {n} x (longest {m:.1f} ms)" for g, (n, m) in s["gc"].items())
        print(f"  {'':<4}{s['ledger_commits']} LEDGER commits; garbage collector: {gc}")


def print_notifiers(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Print what the notifiers did: A's deliveries, B's 429s, the end of the storm."""
    idle, after, b = results["idle_notifier"], results["after_storm"], results["cases"]["B"]
    print(
        f"\nA's notifier: {idle['arrived']} messages delivered, carrying {idle['sent']} of the "
        f"path's {idle['queued']} notifications; {idle['pending']} pending "
        f"({held_text(idle['held']) or 'none'})"
    )
    starts = b["pending_at_block_start"]
    print(
        f"B's storm: 429 with retry_after {args.retry_after} s to every sendMessage; "
        f"{min(starts):,} to {max(starts):,} notifications pending at its blocks' starts; the "
        f"fake answered 429 {b['refused']} times during B's blocks, {results['refused_total']} "
        "in all"
    )
    for name, what in (("A", "a message delivered"), ("B", "a 429")):
        split = results["near_requests"][name]
        near, others = split["near"], split["others"]
        print(
            f"{name}'s instants begun within {NEAR_S * 1000:.0f} ms of {what}: {near['count']}"
            + (f" (p50 {near['p50_ms']:.2f}, max {near['max_ms']:.2f} ms)" if near["count"] else "")
            + f"; the other {others['count']}: p50 {others['p50_ms']:.2f}, p99 "
            f"{others['p99_ms']:.2f}, max {others['max_ms']:.2f} ms"
        )
    print_storm_end(after)


def held_text(held: dict[str, int]) -> str:
    """Return what pending notifications wait for, as text."""
    return ", ".join(f"{n} for {what}" for what, n in held.items())


def print_storm_end(after: dict[str, Any]) -> None:
    """Print what the storm's backlog came to once it ended: nothing lost, or what was."""
    lost = after["queued"] - after["sent"] - after["pending"] - after["failed"]
    whole = after["failed"] == 0 and lost == 0 and not after["ready_now"]
    used = ", ".join(f"{c} {n}/{after['caps'][c]}" for c, n in after["caps_used"].items())
    held = held_text(after["held"])
    if after["ready_now"]:
        waiting = "some READY: the wait was cut short by --drain-s"
    else:
        waiting = f"none ready ({held}), the next ready in {after['next_ready_min'] or 0:.0f} min"
    print(
        f"after the storm: {after['arrived']} messages delivered in {after['drain_s']:.0f} s "
        f"(waited {after['waited_s']:.0f} s; the outbox records {after['messages']}), carrying "
        f"{after['sent']:,} notifications ({after['folded']:,} folded into repeat counts or "
        f"digests); {after['failed']} failed; {after['pending']} pending, {waiting} (caps used "
        f"this hour: {used}); {after['queued']:,} queued in all (1,000 + the path's own): "
        + ("nothing lost" if whole else f"{lost} unaccounted, or pending but ready")
    )


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
    print_notifiers(results, args)
    pct = change_pct(results)
    a, b = (results["cases"][n]["total"] for n in ("A", "B"))
    floors = [results["cases"][n]["self_change_pct"] for n in ("A", "B")]
    if None not in floors:
        print(
            f"\nnoise: the p99 of a case's own blocks in ABBA halves changes by {floors[0]:+.1f} %"
            f" (A) and {floors[1]:+.1f} % (B) with nothing else different"
        )
    print(
        f"\nsummary: p50 {a['p50_ms']:.2f} -> {b['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} -> "
        f"{b['p99_ms']:.2f} ms: the storm changes p99 by {pct:+.1f} %; goal < {GOAL_PCT:g} %: "
        f"{verdict(pct < GOAL_PCT)}"
        + (" (a fall: noise, the storm only adds work)" if pct <= -GOAL_PCT else "")
    )


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--blocks", type=int, default=4, help="blocks per case (ABBA order)")
    add("--block-instants", type=int, default=1000, help="timed instants per block")
    add("--warmup", type=int, default=1500, help="untimed instants first, per path")
    add("--gap-ms", type=float, default=5.0, help="idle time between measured instants")
    add("--retry-after", type=int, default=5, help="the storm's retry_after, seconds")
    add("--settle-s", type=float, default=1.0, help="untimed after a notifier starts")
    add("--drain-s", type=float, default=120.0, help="longest wait for delivery after the storm")
    add("--train-candles", type=int, default=6000, help="candles the model is trained on")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp, fake_telegram_thread() as tg:
        work = Path(tmp)
        version = train_model(work, args.train_candles)
        results["model"] = f"{version} (ModelConfig() trees, {args.train_candles} candles)"
        settings = settings_for(work, "A", tg)
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            logs = configure_logging(log_config(settings), stream=devnull)
            try:
                results |= asyncio.run(run_cases(args, work, tg))
            finally:
                logs.close()
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["p99_change_pct"] = change_pct(results)
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
