"""Writer cost: one instant's commit through the old writer (every statement an awaited
aiosqlite call) and the new one (the whole transaction one call on the writer's own thread).

Method. An instant is what the daemon writes when ``--symbols`` (100) close together: an
``UpsertCandles`` of 100 candles (submitted, as the engine's candle store does) and the
instant's ``RecordInstant`` (written, waited for) with 100 decisions, one equity snapshot and
the trading state row (a 2 kB ``state_json``); a LEDGER instant also carries one notice (an
outbox row), which makes it ``synchronous=FULL`` (fsync). Three writers, each on its own fresh
SQLite file in ``--dir`` (default: a temporary directory on the work disk, so fsync is real):

- ``old``: the writer of commit 12c8879, reduced to what a commit costs (a queue, FAST ops
  batched up to a LEDGER op, which gets a transaction of its own) with its ``_Transaction``
  copied below: ``PRAGMA``, ``BEGIN IMMEDIATE``, one awaited ``executemany`` per statement,
  ``COMMIT``, ``PRAGMA``, each a hop to aiosqlite's thread and back through the loop. The
  statements are the ops' own (``prepare()``), as their old ``apply`` awaited them one by one.
- ``new-apart``: today's ``StorageWriter`` with the candles written in their own transaction
  first (the one-call path alone, without folding).
- ``new``: today's ``StorageWriter``, candles submitted then the instant written: the candles
  join the instant's transaction.

Instants go back to back (no idle gap): per instant, t0 before the candles are handed over,
t1 when the instant's write returns. Reported per writer and kind (FAST, LEDGER): commits per
second (instants / wall time), p50 / p99 of t1 - t0, and the CPU time of the event loop's
thread and of the process per instant (the ops are built before the timing; the loop's share
includes their ``prepare()``, about 0.45 ms for the candles and the instant together).
``--blocks`` blocks of ``--instants`` instants, writers interleaved in ABC CBA order, after
``--warmup`` untimed instants each; the p50 of each writer over old's in the same block, the
median of those ratios, is the figure least moved by load from other processes (they inflate
the p99: the load average is printed). Last, what one LEDGER instant writes to the WAL once as
many instants are stored (plain sqlite3 on a fourth file, checkpoints off).

    .venv/bin/python bench/writer.py [--symbols 100] [--instants 10] [--blocks 40] [--json FILE]
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402
from results import row  # noqa: E402

from paper_trader.domain import Candle, Event, EventKind, Interval, Severity, Venue  # noqa: E402
from paper_trader.domain.trading import Action, Decision, EquitySnapshot  # noqa: E402
from paper_trader.runtime.service import Readiness  # noqa: E402
from paper_trader.storage import (  # noqa: E402
    Durability,
    Statement,
    StorageWriter,
    UpsertCandles,
    WriteOp,
    migrate,
    open_database,
)
from paper_trader.storage.database import connect_writer  # noqa: E402
from paper_trader.storage.ledger_ops import LedgerState, RecordInstant  # noqa: E402

SYMBOLS = [f"S{i:03d}USDT" for i in range(100)]
MINUTE = 60_000
T0 = 1_700_000_040_000 - 1_700_000_040_000 % MINUTE
WRITERS = ("old", "new-apart", "new")


class _OldTransaction:
    """The old writer's ``_Transaction`` (12c8879 storage/writer.py), every call awaited."""

    def __init__(self, conn: aiosqlite.Connection, ops: Sequence[WriteOp]) -> None:
        self._conn = conn
        self._ops = ops
        self.committed = False
        self.ledger = any(op.durability is Durability.LEDGER for op in ops)

    async def run(self) -> None:
        try:
            if self.ledger:
                await self._conn.execute("PRAGMA synchronous=FULL")
            await self._conn.execute("BEGIN IMMEDIATE")
            for op in self._ops:
                await _old_apply(self._conn, op)
            await self._conn.execute("COMMIT")
            self.committed = True
        finally:
            if not self.committed:
                await self._conn.rollback()
            if self.ledger:
                await self._conn.execute("PRAGMA synchronous=NORMAL")


async def _old_apply(conn: aiosqlite.Connection, op: WriteOp) -> None:
    """What an op's old ``apply`` did: build its rows on the loop, await each statement."""
    for step in op.prepare():
        if not isinstance(step, Statement):
            raise TypeError("the bench's ops are plain statements")
        await conn.executemany(step.sql, step.rows)


class OldWriter:
    """The old ``StorageWriter``'s loop: FAST ops batched, a LEDGER op alone."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._queue: asyncio.Queue[tuple[WriteOp, asyncio.Future[None] | None]] = asyncio.Queue()
        self._carry: tuple[WriteOp, asyncio.Future[None] | None] | None = None

    async def submit(self, op: WriteOp) -> None:
        self._queue.put_nowait((op, None))

    async def write(self, op: WriteOp) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, done))
        await done

    async def run(self, ready: Readiness) -> None:
        ready.set()
        while True:
            first = self._carry or await self._queue.get()
            self._carry = None
            batch = [first]
            while first[0].durability is Durability.FAST and not self._queue.empty():
                pending = self._queue.get_nowait()
                if pending[0].durability is Durability.LEDGER:
                    self._carry = pending
                    break
                batch.append(pending)
            await _OldTransaction(self._conn, [op for op, _ in batch]).run()
            for _, done in batch:
                if done is not None:
                    done.set_result(None)


class Writer(Protocol):
    async def submit(self, op: WriteOp) -> None: ...
    async def write(self, op: WriteOp) -> None: ...
    async def run(self, ready: Readiness) -> None: ...


def candles_at(index: int, symbols: Sequence[str]) -> tuple[Candle, ...]:
    price = Decimal(20_000 + index % 500) / Decimal(7)
    return tuple(
        Candle(
            venue=Venue.BINANCE,
            symbol=symbol,
            interval=Interval.M1,
            open_time_ms=T0 + index * MINUTE,
            open=price,
            high=price + Decimal("1.5"),
            low=price - Decimal("0.5"),
            close=price + Decimal("0.25"),
            volume=Decimal("3.75"),
        )
        for symbol in symbols
    )


def instant_at(index: int, symbols: Sequence[str], *, ledger: bool) -> RecordInstant:
    at = T0 + index * MINUTE
    decisions = tuple(
        Decision(
            venue=Venue.BINANCE,
            symbol=symbol,
            interval=Interval.M1,
            candle_time_ms=at,
            strength="neutral",
            score=0.01 * (index % 7),
            confidence=0.5,
            model_version="bench-model",
            action=Action.REJECTED,
            side=None,
            quantity=None,
            price=None,
            rule="no_signal",
            detail="score under the entry threshold",
        )
        for symbol in symbols
    )
    cash = Decimal("10000.12345678")
    snapshot = EquitySnapshot(
        candle_time_ms=at,
        cash=cash,
        positions_value=Decimal(0),
        equity=cash,
        peak_equity=cash,
        open_positions=0,
    )
    state_json = json.dumps({"last": dict.fromkeys(symbols, at), "pad": "x" * 200})
    state = LedgerState(cash=str(cash), next_fill_id=1, last_candle_ms=at, state_json=state_json)
    notices = (_notice(at),) if ledger else ()
    return RecordInstant(state=state, decisions=decisions, snapshots=(snapshot,), notices=notices)


def _notice(at: int) -> Event:
    return Event(
        kind=EventKind.TRADE_OPENED,
        severity=Severity.INFO,
        message="opened S000USDT long",
        at_ms=at,
        source="bench",
        data={"symbol": "S000USDT"},
    )


@contextlib.asynccontextmanager
async def running(name: str, work: Path) -> AsyncIterator[Writer]:
    conn = await open_database(work / f"{name}.db", check=False)
    await migrate(conn)
    writer: Writer = OldWriter(conn) if name == "old" else StorageWriter(conn)
    ready = Readiness()
    task = asyncio.create_task(writer.run(ready), name=f"writer-{name}")
    await ready.wait()
    try:
        yield writer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await conn.close()


Instant = tuple[UpsertCandles, RecordInstant]


def instants(start: int, count: int, symbols: int, *, ledger: bool) -> list[Instant]:
    """Return the ops of ``count`` instants of ``symbols`` symbols from ``start`` (built
    before any timing)."""
    names = SYMBOLS[:symbols]
    return [
        (UpsertCandles(candles=candles_at(i, names)), instant_at(i, names, ledger=ledger))
        for i in range(start, start + count)
    ]


async def commit_instant(name: str, writer: Writer, ops: Instant) -> None:
    candles, instant = ops
    if name == "new-apart":
        await writer.write(candles)
    else:
        await writer.submit(candles)
    await writer.write(instant)


async def block(name: str, writer: Writer, ops: Sequence[Instant]) -> dict[str, Any]:
    latencies: list[int] = []
    cpu, process, wall = time.thread_time_ns(), time.process_time_ns(), time.perf_counter_ns()
    for instant in ops:
        t0 = time.perf_counter_ns()
        await commit_instant(name, writer, instant)
        latencies.append(time.perf_counter_ns() - t0)
    return {
        "latencies": latencies,
        "cpu_ns": time.thread_time_ns() - cpu,
        "process_ns": time.process_time_ns() - process,
        "wall_ns": time.perf_counter_ns() - wall,
    }


def percentile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1e6


def summary(blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    latencies = [ns for b in blocks for ns in b["latencies"]]
    count = len(latencies)
    wall = sum(b["wall_ns"] for b in blocks)
    return {
        "instants": count,
        "commits_per_s": round(count / (wall / 1e9), 1),
        "p50_ms": round(percentile(latencies, 0.50), 3),
        "p99_ms": round(percentile(latencies, 0.99), 3),
        "loop_cpu_ms_per_instant": round(sum(b["cpu_ns"] for b in blocks) / count / 1e6, 3),
        "process_cpu_ms_per_instant": round(sum(b["process_ns"] for b in blocks) / count / 1e6, 3),
        "block_p50_ms": [round(percentile(b["latencies"], 0.5), 3) for b in blocks],
    }


def paired(by_writer: dict[str, dict[str, Any]], name: str) -> float:
    """Return the median over blocks of ``name``'s p50 over old's p50 in the same block (the
    blocks are interleaved, so load that comes and goes hits both)."""
    ratios = sorted(
        new / old
        for new, old in zip(
            by_writer[name]["block_p50_ms"], by_writer["old"]["block_p50_ms"], strict=True
        )
    )
    return round(ratios[len(ratios) // 2], 3)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        kind: {name: [] for name in WRITERS} for kind in ("fast", "ledger")
    }
    async with contextlib.AsyncExitStack() as stack:
        writers = {name: await stack.enter_async_context(running(name, work)) for name in WRITERS}
        for name, writer in writers.items():
            for ops in instants(0, args.warmup, args.symbols, ledger=True):
                await commit_instant(name, writer, ops)
        start = args.warmup
        for number in range(args.blocks):
            order = WRITERS if number % 2 == 0 else tuple(reversed(WRITERS))
            for kind in ("fast", "ledger"):
                ops = instants(start, args.instants, args.symbols, ledger=kind == "ledger")
                for name in order:
                    results[kind][name].append(await block(name, writers[name], ops))
                start += args.instants
    summaries: dict[str, Any] = {
        kind: {name: summary(blocks) for name, blocks in by_writer.items()}
        for kind, by_writer in results.items()
    }
    for by_writer in summaries.values():
        for name in WRITERS:
            by_writer[name]["p50_vs_old_paired"] = paired(by_writer, name)
    return summaries


async def wal_per_instant(work: Path, count: int, symbols: int) -> dict[str, float]:
    """Return the WAL written per LEDGER instant once ``count`` instants are stored, with the
    checkpoints off so that the file only grows: what each commit writes (and fsyncs)."""
    path = work / "pages.db"
    migrated = await open_database(path, check=False)
    await migrate(migrated)
    await migrated.close()
    conn = connect_writer(str(path))
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        sizes = []
        for candles, instant in instants(0, count, symbols, ledger=True):
            conn.execute("BEGIN IMMEDIATE")
            for step in [*candles.prepare(), *instant.prepare()]:
                if isinstance(step, Statement):
                    conn.executemany(step.sql, step.rows)
            conn.execute("COMMIT")
            sizes.append(path.with_name(path.name + "-wal").stat().st_size)
    finally:
        conn.close()
    page = 4096 + 24  # a WAL frame: its header and one default-sized page
    last = sizes[-1] - sizes[-11]
    return {"wal_kb": round(last / 10 / 1024, 1), "pages": round(last / 10 / page, 1)}


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(
        f"{m['cpus']} CPUs, Python {m['python']}; load average at start {m['loadavg_start']}, "
        f"at end {m['loadavg_end']}; databases in {results['dir']}"
    )
    header = (
        f"{'kind':7} {'writer':10} {'commits/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'loop CPU ms':>12} {'process CPU ms':>15} {'p50/old (paired)':>17}"
    )
    print(header)
    for kind in ("fast", "ledger"):
        for name in WRITERS:
            r = results["writers"][kind][name]
            print(
                f"{kind:7} {name:10} {r['commits_per_s']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} "
                f"{r['loop_cpu_ms_per_instant']:>12} {r['process_cpu_ms_per_instant']:>15} "
                f"{r['p50_vs_old_paired']:>17}"
            )
    w = results["wal"]
    print(
        f"WAL written per instant after {w['after']} instants: {w['wal_kb']} kB, about "
        f"{w['pages']} pages (the candles, keyed by series, put {results['symbols']} symbols' rows "
        "on as many leaves; the decisions, keyed by time, share a few)"
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--instants", type=int, default=10, help="timed instants per block and writer")
    add("--blocks", type=int, default=40, help="blocks per kind (writers interleaved)")
    add("--symbols", type=int, default=100, help="symbols closing together (at most 100)")
    add("--warmup", type=int, default=50, help="untimed instants per writer first")
    add(
        "--dir", type=Path, help="directory of the databases (default: temporary, on the work disk)"
    )
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        }
    }
    (ROOT / "cache").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-writer-", dir=ROOT / "cache") as tmp:
        work = args.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results["dir"] = str(work)
        results["symbols"] = args.symbols
        results["writers"] = asyncio.run(measure(args, work))
        after = args.warmup + args.blocks * args.instants * 2
        results["wal"] = {"after": after, **asyncio.run(wal_per_instant(work, after, args.symbols))}
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["rows"] = [
        row(
            f"ledger instant commit ({kind.upper()}), {args.symbols} symbols, p50",
            f"{r['new']['p50_ms']} ms, loop CPU {r['new']['loop_cpu_ms_per_instant']} ms "
            f"(the awaited-statement writer in the same run: {r['old']['p50_ms']} ms, "
            f"{r['old']['loop_cpu_ms_per_instant']} ms)",
            goal=None,
            met=None,
            method="100 candles + decisions + snapshot + state per instant on a fresh SQLite "
            "file, the writers interleaved in ABC CBA blocks",
            command=".venv/bin/python bench/writer.py",
        )
        for kind, r in results["writers"].items()
    ]
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
