"""The notification outbox in SQLite: categories and priorities (migration 7 included), the
deliveries per channel and how the outbox row follows them, pruning, and the trade notices
that commit in the ledger's own transaction (never lost, never recorded twice); a stop in the
middle of a batch leaves the ledger at its last commit."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
from conftest import eventually
from fakes.control_rig import BALANCE, SERIES, VIEW, buy, config, row
from fakes.trading import MINUTE, T0, bar

from paper_trader.app.trading import ledger_loader
from paper_trader.control.outbox import Outbox
from paper_trader.domain import Event, EventKind, EventSource, Severity
from paper_trader.domain.notifications import Priority, classify
from paper_trader.features.stage import ClosedCandle
from paper_trader.runtime.events import EventBus, EventRecorder
from paper_trader.runtime.service import Readiness
from paper_trader.storage import (
    AppendOutbox,
    Durability,
    Statement,
    StorageWriter,
    apply_transaction,
    migrate,
    open_database,
    open_reader,
    outbox_entries,
)
from paper_trader.storage.ledger_ops import LedgerState, RecordInstant
from paper_trader.trading.stage import TradingStage

SOURCE = EventSource("test")
NOW = 1_700_000_000_000
DAY = 86_400_000


def event(kind: EventKind, at_ms: int = NOW, severity: Severity = Severity.INFO) -> Event:
    """Return an event of ``kind`` at ``at_ms``."""
    return SOURCE.event(kind, severity, f"{kind} happened", at_ms=at_ms, data={"symbol": "BTC"})


async def rows(conn: aiosqlite.Connection, sql: str) -> list[tuple[object, ...]]:
    """Return the rows of a query as tuples."""
    return [tuple(r) for r in await conn.execute_fetchall(sql)]


async def test_rows_queued_before_migration_7_get_their_kinds_category_and_priority(
    tmp_path: Path,
) -> None:
    """Every kind older than migration 7, at every severity, is backfilled exactly as
    ``classify`` says (the reports' kinds came later: no older row can hold one)."""
    later = {EventKind.DAILY_REPORT, EventKind.WEEKLY_REPORT}
    conn = await open_database(tmp_path / "old.db")
    try:
        await migrate(conn, target=6)
        cases = [(k.value, s.value) for k in EventKind if k not in later for s in Severity]
        await conn.executemany(
            "INSERT INTO notification_outbox (created_at_ms, kind, severity, source, message, "
            "data_json) VALUES (1, ?, ?, 'x', 'm', '{}')",
            cases,
        )
        await conn.commit()
        await migrate(conn)
        stored = await rows(conn, "SELECT kind, severity, category, priority FROM "
                                  "notification_outbox ORDER BY id")  # fmt: skip
    finally:
        await conn.close()
    expected = [(k, s, *(v.value for v in classify(k, s))) for k, s in cases]
    assert stored == expected


async def test_deliveries_are_served_by_priority_and_the_row_follows_them(
    conn: aiosqlite.Connection, reader: aiosqlite.Connection, writer: StorageWriter
) -> None:
    """Two channels: pending in priority order; the row is sent once neither is pending and
    one was sent; a channel no longer configured has its pending deliveries failed."""
    kinds = [EventKind.MODEL_LOADED, EventKind.TRADE_CLOSED, EventKind.DATA_GAP]
    for kind in kinds:
        await writer.write(AppendOutbox(event=event(kind)))
    await writer.write(
        AppendOutbox(event=event(EventKind.SERVICE_FAILED, severity=Severity.CRITICAL))
    )
    outbox = Outbox(reader, writer)
    await outbox.claim(["telegram:1", "webhook"])
    pending = await outbox.pending("telegram:1", 10)
    assert [(n.id, n.priority) for n in pending] == [
        (4, Priority.CRITICAL),
        (2, Priority.HIGH),
        (3, Priority.NORMAL),
        (1, Priority.LOW),
    ]
    assert pending[0].data == {"symbol": "BTC"}

    await outbox.mark_sent("telegram:1", [4, 2], message_ids=["7"], at_ms=NOW + 5, folded=True)
    await outbox.defer("webhook", [4], until_ms=NOW + 60_000, error="unreachable: down")
    await outbox.mark_failed("webhook", [2], "rejected: HTTP 400")
    assert [n.id for n in await outbox.pending("telegram:1", 10)] == [3, 1]
    [deferred, *_] = await outbox.pending("webhook", 10)
    assert (deferred.id, deferred.attempts, deferred.next_attempt_at_ms) == (4, 1, NOW + 60_000)

    await outbox.retire(["telegram:1"])
    entries = {e.id: e for e in await outbox_entries(reader)}
    assert (entries[2].status, entries[2].sent_at_ms) == ("sent", NOW + 5)
    assert entries[2].last_error == "rejected: HTTP 400"
    assert entries[4].status == "sent"  # the webhook's delivery retired: telegram sent it
    assert entries[3].status == "pending"
    recent = await outbox.recent("telegram:1", NOW)
    assert len(recent) == 1  # one message delivered both: it counts once
    assert await outbox.pending("webhook", 10) == []


async def test_old_rows_are_pruned_and_what_never_went_out_expires(
    reader: aiosqlite.Connection, writer: StorageWriter
) -> None:
    """Past the retention, sent rows are deleted and a pending one is given up (then
    deleted); newer rows stay."""
    old, new = NOW - 40 * DAY, NOW - DAY
    for at in (old, old, new):
        await writer.write(AppendOutbox(event=event(EventKind.DATA_GAP, at_ms=at)))
    outbox = Outbox(reader, writer)
    await outbox.claim(["telegram:1"])
    await outbox.mark_sent("telegram:1", [1], message_ids=["1"], at_ms=old)
    await outbox.prune(NOW - 30 * DAY)
    left = {e.id: e.status for e in await outbox_entries(reader)}
    assert left == {3: "pending"}
    assert [n.id for n in await outbox.pending("telegram:1", 10)] == [3]
    assert await rows(reader, "SELECT outbox_id FROM notification_deliveries") == [(3,)]


async def test_an_event_of_a_past_candle_time_is_kept_for_the_retention_after_it_was_sent(
    reader: aiosqlite.Connection, writer: StorageWriter
) -> None:
    """A replay's or the simulator's event is stamped with its candle's time, years back:
    sent now, it stays as long as one sent now of today's time (the audit keeps it)."""
    await writer.write(AppendOutbox(event=event(EventKind.DATA_GAP, at_ms=NOW - 900 * DAY)))
    outbox = Outbox(reader, writer)
    await outbox.claim(["telegram:1"])
    await outbox.mark_sent("telegram:1", [1], message_ids=["1"], at_ms=NOW)
    await outbox.prune(NOW - 30 * DAY)
    assert {e.id: e.status for e in await outbox_entries(reader)} == {1: "sent"}
    await outbox.prune(NOW + 31 * DAY)  # once the retention has passed since it was sent
    assert await outbox_entries(reader) == []


class Refused:
    """A write op that fails inside the transaction it shares."""

    durability = Durability.LEDGER

    def prepare(self) -> list[Statement]:
        return [Statement("INSERT INTO no_such_table VALUES (1)")]


async def test_the_ledger_commit_and_its_notices_land_together_or_not_at_all(
    conn: aiosqlite.Connection,
) -> None:
    """A RecordInstant writes its notices in its own transaction: if that transaction fails,
    neither the ledger state nor the outbox rows are there; if it commits, both are."""
    state = LedgerState(cash="9000", next_fill_id=2, last_candle_ms=T0, state_json="{}")
    notice = event(EventKind.TRADE_OPENED)
    instant = RecordInstant(state=state, notices=(notice,))
    with contextlib.suppress(Exception):
        await apply_transaction(conn, [instant, Refused()])
    assert await rows(conn, "SELECT count(*) FROM notification_outbox") == [(0,)]
    assert await rows(conn, "SELECT count(*) FROM trading_state") == [(0,)]

    await apply_transaction(conn, [instant])
    assert await rows(conn, "SELECT cash FROM trading_state") == [("9000",)]
    assert await rows(conn, "SELECT kind, category, priority FROM notification_outbox") == [
        ("trade_opened", "trade", "high")
    ]


@dataclass
class Stage:
    """A trading stage whose events also go through the recorder, as in the daemon."""

    stage: TradingStage
    reader: aiosqlite.Connection
    recorder: EventRecorder
    bus: EventBus


@contextlib.asynccontextmanager
async def recorded_stage(tmp_path: Path) -> AsyncIterator[Stage]:
    """Run the writer, the event recorder (into the outbox) and a started trading stage."""
    path = tmp_path / "paper_trader.db"
    conn = await open_database(path)
    await migrate(conn)
    writer = StorageWriter(conn)
    bus = EventBus()
    recorder = EventRecorder(bus.subscribe(), lambda e: writer.write(AppendOutbox(event=e)))
    reader = await open_reader(path)
    try:
        async with asyncio.TaskGroup() as group:
            ready = Readiness()
            tasks = [group.create_task(writer.run(ready), name=writer.name)]
            await ready.wait()
            tasks.append(group.create_task(recorder.run(Readiness()), name=recorder.name))
            stage = TradingStage(
                config(),
                initial_balance=BALANCE,
                view=VIEW,
                load=ledger_loader(conn, SERIES, kelly=100, window=100),
                commit=writer.write,
                events=bus,
                now_ms=lambda: NOW,
            )
            await stage.start()
            try:
                yield Stage(stage, reader, recorder, bus)
            finally:
                bus.close()
                await tasks[1]
                tasks[0].cancel()
    finally:
        await reader.close()
        await conn.close()


async def test_a_trade_is_queued_once_with_its_ledger_commit_and_other_events_still_recorded(
    tmp_path: Path,
) -> None:
    """The entry's notification is in the outbox as soon as the batch returns (its commit),
    pointing at its fill; the recorder leaves it out, so it is there once; an event from
    another component still goes through the recorder."""
    async with recorded_stage(tmp_path) as rig:
        candle = bar("BTCUSDT", T0, "100")
        await rig.stage.on_batch(
            [ClosedCandle(candle=candle, row=row(candle))], [buy("BTCUSDT", T0)]
        )
        at_commit = await outbox_entries(rig.reader)
        fills = await rows(rig.reader, "SELECT fill_id FROM fills")
        gap = SOURCE.warning(EventKind.DATA_GAP, "gap", at_ms=NOW)
        rig.bus.publish(gap)
        await eventually(lambda: rig.recorder.recorded == 1)
        entries = await outbox_entries(rig.reader)
        recorded, dropped = rig.recorder.recorded, rig.recorder.dropped
    assert [e.kind for e in at_commit] == ["trade_opened"]
    assert json.loads(at_commit[0].data_json)["fill_id"] == fills[0][0]
    assert [e.kind for e in entries] == ["trade_opened", "data_gap"]
    assert (recorded, dropped) == (1, 0)


async def test_the_recorder_counts_and_reports_what_its_queue_dropped() -> None:
    """A burst over the subscription's capacity: the oldest are dropped, counted and said."""
    bus = EventBus()
    recorded: list[Event] = []

    async def record(e: Event) -> None:
        recorded.append(e)

    recorder = EventRecorder(bus.subscribe(capacity=5), record)
    for i in range(12):
        bus.publish(SOURCE.info(EventKind.DATA_GAP, f"gap {i}", at_ms=i))
    health = recorder.health()
    bus.close()
    await recorder.run(Readiness())
    assert recorder.dropped == 7
    assert [e.message for e in recorded] == [f"gap {i}" for i in range(7, 12)]
    assert health.status.label == "degraded"
    assert "7 dropped" in health.detail
    assert "7 dropped" in recorder.health().detail


async def test_a_stop_in_the_middle_of_a_batch_saves_nothing_the_batch_did_not_commit(
    tmp_path: Path,
) -> None:
    """A catch-up batch cancelled while the loop breathes (SIGTERM), its instants traded in
    memory but not committed: the stop's save writes nothing, so the database keeps the last
    committed ledger (cash, the candles handled), whose fills and decisions it holds, and the
    restart recovers the rest from the stored candles."""
    async with recorded_stage(tmp_path) as rig:
        first = bar("BTCUSDT", T0, "100")
        await rig.stage.on_batch([ClosedCandle(candle=first, row=row(first))], [buy("BTCUSDT", T0)])
        state = "SELECT cash, last_candle_ms, state_json FROM trading_state"
        committed = await rows(rig.reader, state)
        later = [bar("BTCUSDT", T0 + k * MINUTE, "100") for k in range(1, 4_000)]
        batch = asyncio.create_task(
            rig.stage.on_batch([ClosedCandle(candle=c, row=row(c)) for c in later], [])
        )
        await eventually(lambda: (rig.stage.trader.last_candle_ms or 0) > T0, interval=0.001)
        assert not batch.done()  # stopped in the middle, not after its commit
        batch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batch
        await rig.stage.save()
        assert await rows(rig.reader, state) == committed
        assert await rows(rig.reader, "SELECT max(candle_time_ms) FROM decisions") == [(T0,)]
