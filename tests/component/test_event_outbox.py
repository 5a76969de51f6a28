"""Escalations reach the notification outbox in SQLite (what the notifier will send)."""

import asyncio
import json
import random
from pathlib import Path

from fakes.storage import migrated_database

from paper_trader.clock import SystemClock
from paper_trader.control.report import replay_parity
from paper_trader.domain import Event, EventKind, Severity
from paper_trader.errors import TransientError
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.events import EventBus, EventRecorder
from paper_trader.runtime.service import Readiness
from paper_trader.runtime.supervisor import RestartPolicy, Supervisor
from paper_trader.storage import (
    AppendOutbox,
    OutboxEntry,
    StorageWriter,
    apply_transaction,
    outbox_entries,
)


class AlwaysFailing:
    """A service whose every run fails with a transient error."""

    name = "flaky_feed"

    async def run(self, ready: Readiness) -> None:
        ready.set()
        raise TransientError("venue closed the connection")


async def test_crash_loop_is_written_to_the_outbox_before_the_daemon_stops(tmp_path: Path) -> None:
    """A crash loop becomes a pending, critical outbox row, committed by the single writer."""
    async with migrated_database(tmp_path / "db.sqlite") as conn:
        writer = StorageWriter(conn)
        bus = EventBus()
        recorder = EventRecorder(bus.subscribe(), lambda e: writer.write(AppendOutbox(event=e)))
        supervisor = Supervisor(
            policy=RestartPolicy(
                backoff=Backoff(base_s=0.001, cap_s=0.005),
                healthy_run_s=60,
                crash_loop_restarts=3,
                crash_loop_window_s=60,
            ),
            clock=SystemClock(),
            events=bus,
            shutdown_timeout_s=2,
            rng=random.Random(0),
        )
        for service in (writer, recorder, AlwaysFailing()):
            supervisor.add(service)
        run = asyncio.create_task(supervisor.run())

        async def first_outbox_rows() -> list[OutboxEntry]:
            while not (rows := await outbox_entries(conn)):  # noqa: ASYNC110 -- polls the db
                await asyncio.sleep(0.01)
            return rows

        async with asyncio.timeout(10):
            await first_outbox_rows()
        supervisor.request_stop("test over")
        outcome = await run
        assert outcome.exit_code == 0
        [entry] = await outbox_entries(conn)
        assert entry.kind == "service_crash_loop"
        assert entry.severity == "critical"
        assert entry.status == "pending"
        assert "flaky_feed is in a crash loop" in entry.message
        assert json.loads(entry.data_json)["service"] == "flaky_feed"


async def test_a_deviation_event_is_recorded_and_the_report_expects_no_replay_parity(
    tmp_path: Path,
) -> None:
    """A late candle queued for the notifier is also a deviation: the report says a replay of
    this database's candles need not give its ledger, and why."""
    db = tmp_path / "db.sqlite"
    async with migrated_database(db) as conn:
        late = Event(
            kind=EventKind.CANDLE_LATE,
            severity=Severity.WARNING,
            message="ETH-USDT candle 120000 arrived after its instant was decided",
            at_ms=180_000,
            source="decision_engine",
            data={"symbol": "ETH-USDT", "candle_time_ms": 120_000},
        )
        others = Event(
            kind=EventKind.DATA_GAP, severity=Severity.WARNING, message="gap", at_ms=1, source="x"
        )
        await apply_transaction(conn, [AppendOutbox(event=late), AppendOutbox(event=others)])
        parity = await replay_parity(conn, {})
    assert parity["expected"] is False
    assert parity["reasons"] == {"candle_late": 1}
    assert parity["first"][0]["symbol"] == "ETH-USDT"
    assert parity["first"][0]["candle_time"] == "1970-01-01T00:02:00Z"
