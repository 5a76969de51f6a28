"""Tests for the supervisor: restarts, crash loops, fatal errors, ordered stop, readiness."""

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import structlog
from conftest import eventually
from fakes.services import FailsToClose, Finishing, Flaky, Idle, SlowToStart, Stubborn

from paper_trader.clock import SystemClock
from paper_trader.domain import Event, EventKind, HealthStatus, Severity
from paper_trader.errors import RateLimited
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.channel import DropOldestChannel
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.supervisor import Outcome, RestartPolicy, Supervisor

TINY_BACKOFF = Backoff(base_s=0.001, cap_s=0.01)
HEALTHY_RUN_S = 0.2


@dataclass
class Calls:
    """Counts calls of a no-argument callback (``on_ready``, ``on_stopping``)."""

    count: int = 0

    def __call__(self) -> None:
        self.count += 1


@dataclass
class Harness:
    """A supervisor with tiny timings, its event subscription and callback counters."""

    supervisor: Supervisor
    events: DropOldestChannel[Event]
    on_ready: Calls = field(default_factory=Calls)
    on_stopping: Calls = field(default_factory=Calls)
    seen: list[Event] = field(default_factory=list)

    def published(self, kind: EventKind) -> list[Event]:
        """Return every event of ``kind`` published so far."""
        self.seen.extend(self.events.drain(1000))
        return [event for event in self.seen if event.kind is kind]


class TopOfRange(random.Random):
    """An rng whose jitter always picks the top of the range, so delays equal the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make_harness(
    *,
    backoff: Backoff = TINY_BACKOFF,
    crash_loop_restarts: int = 5,
    shutdown_timeout_s: float = 1.0,
    rng: random.Random | None = None,
) -> Harness:
    """Build a supervisor publishing to an EventBus the harness subscribes to."""
    bus = EventBus()
    on_ready, on_stopping = Calls(), Calls()
    supervisor = Supervisor(
        policy=RestartPolicy(
            backoff=backoff,
            healthy_run_s=HEALTHY_RUN_S,
            crash_loop_restarts=crash_loop_restarts,
            crash_loop_window_s=10.0,
        ),
        clock=SystemClock(),
        events=bus,
        shutdown_timeout_s=shutdown_timeout_s,
        on_ready=on_ready,
        on_stopping=on_stopping,
        rng=rng or random.Random(0),
    )
    return Harness(supervisor, bus.subscribe(), on_ready=on_ready, on_stopping=on_stopping)


@asynccontextmanager
async def running(supervisor: Supervisor) -> AsyncIterator[asyncio.Task[Outcome]]:
    """Run the supervisor in a task; on exit, request a stop and wait for the run to end."""
    task = asyncio.create_task(supervisor.run(), name="test-supervisor-run")
    try:
        yield task
    finally:
        supervisor.request_stop("test finished")
        async with asyncio.timeout(5):
            await task


def supervisor_tasks() -> list[asyncio.Task[object]]:
    """Return the supervisor's own tasks (group, services, recovery) that are still running."""
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith(("service:", "supervisor-")) and not task.done()
    ]


async def reap_leftover_tasks() -> None:
    """Cancel and await the tasks a supervisor leaves behind after missing its deadline."""
    leftovers = supervisor_tasks()
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=5)
    assert supervisor_tasks() == []


def is_status(harness: Harness, status: HealthStatus) -> Callable[[], bool]:
    """Return a condition: the supervisor's health is ``status``."""
    return lambda: harness.supervisor.health().status is status


def test_duplicate_service_names_are_refused() -> None:
    """Adding a second service with a name already registered raises ValueError."""
    harness = make_harness()
    harness.supervisor.add(Idle("feed"))

    with pytest.raises(ValueError, match="already registered"):
        harness.supervisor.add(Idle("feed"))


async def test_service_raising_transient_error_is_restarted_and_then_serves() -> None:
    """A TransientError restarts the service; once it serves, a stop exits with code 0."""
    harness = make_harness()
    feed = Flaky("feed", fail_after_s=[0.0, 0.0])
    harness.supervisor.add(feed)

    async with running(harness.supervisor) as run:
        await eventually(lambda: feed.runs == 3)
        await eventually(is_status(harness, HealthStatus.OK))
        harness.supervisor.request_stop("SIGTERM")
        outcome = await run

    assert outcome == Outcome(exit_code=0, reason="SIGTERM", deadline_exceeded=False)
    assert feed.runs == 3
    assert harness.on_ready.count == 1
    assert harness.published(EventKind.SERVICE_FAILED) == []


async def test_rate_limited_service_waits_at_least_retry_after_before_restarting() -> None:
    """RateLimited(retry_after_s=0.2) delays the restart by at least 0.2 s despite tiny backoff."""
    harness = make_harness()
    feed = Flaky(
        "feed",
        fail_after_s=[0.0],
        error=lambda: RateLimited("429 Too Many Requests", retry_after_s=0.2),
    )
    harness.supervisor.add(feed)

    async with running(harness.supervisor):
        await eventually(lambda: feed.runs == 2)

    assert feed.started[1] - feed.started[0] >= 0.2


async def test_health_is_degraded_while_a_ready_service_waits_to_restart() -> None:
    """Between a failure and the restart the supervisor reports DEGRADED, then OK again."""
    harness = make_harness()
    feed = Flaky(
        "feed", fail_after_s=[0.0], error=lambda: RateLimited("slow down", retry_after_s=0.2)
    )
    harness.supervisor.add(feed)

    async with running(harness.supervisor):
        await eventually(is_status(harness, HealthStatus.DEGRADED))
        assert harness.supervisor.health().detail == "restarting: feed"
        await eventually(lambda: feed.runs == 2)
        await eventually(is_status(harness, HealthStatus.OK))


async def test_crash_loop_turns_health_critical_and_alerts_once_then_recovers() -> None:
    """Repeated restarts raise one CRITICAL crash-loop event; a healthy run recovers it."""
    harness = make_harness(crash_loop_restarts=3)
    feed = Flaky("feed", keep_failing=True)
    harness.supervisor.add(Idle("store"))
    harness.supervisor.add(feed)

    async with running(harness.supervisor):
        await eventually(is_status(harness, HealthStatus.CRITICAL))
        assert "feed" in harness.supervisor.health().detail
        await eventually(lambda: feed.runs >= 10)  # keeps restarting while in the loop
        crash_loops = harness.published(EventKind.SERVICE_CRASH_LOOP)
        assert len(crash_loops) == 1
        assert crash_loops[0].severity is Severity.CRITICAL
        assert crash_loops[0].source == "supervisor"
        assert crash_loops[0].data["service"] == "feed"
        assert crash_loops[0].data["error"] == "TransientError: connection reset"

        feed.keep_failing = False
        await eventually(lambda: len(harness.published(EventKind.SERVICE_RECOVERED)) == 1)
        assert harness.supervisor.health().status is HealthStatus.OK

    recovered = harness.published(EventKind.SERVICE_RECOVERED)
    assert len(recovered) == 1
    assert recovered[0].severity is Severity.INFO
    assert recovered[0].data["service"] == "feed"
    assert len(harness.published(EventKind.SERVICE_CRASH_LOOP)) == 1


async def test_backoff_resets_after_a_healthy_run() -> None:
    """After a run that lasted healthy_run_s, the next restart waits the first-attempt delay."""
    backoff = Backoff(base_s=0.001, cap_s=1.0)
    harness = make_harness(backoff=backoff, rng=TopOfRange(0))
    # Three quick failures, then one after a healthy run, then one more quick failure.
    feed = Flaky("feed", fail_after_s=[0.0, 0.0, 0.0, HEALTHY_RUN_S + 0.05, 0.0])
    harness.supervisor.add(feed)

    with structlog.testing.capture_logs() as logs:
        async with running(harness.supervisor):
            await eventually(lambda: feed.runs == 6)

    delays = [entry["delay_s"] for entry in logs if entry["event"] == "service_restarting"]
    ceilings = [round(backoff.ceiling(attempt), 3) for attempt in (0, 1, 2, 0, 1)]
    assert delays == ceilings == [0.001, 0.002, 0.004, 0.001, 0.002]


async def test_non_transient_error_stops_the_daemon_with_exit_code_1() -> None:
    """A ValueError is fatal: other services are cancelled, SERVICE_FAILED is published."""
    harness = make_harness()
    journal: list[str] = []
    store = Idle("store", journal=journal)
    feed = Flaky("feed", fail_after_s=[0.05], error=lambda: ValueError("unparseable frame"))
    harness.supervisor.add(store)
    harness.supervisor.add(feed)

    async with running(harness.supervisor) as run:
        outcome = await run

    assert outcome.exit_code == 1
    assert outcome.deadline_exceeded is False
    assert outcome.reason == "feed failed: ValueError: unparseable frame"
    assert feed.runs == 1
    assert journal == ["store stopping", "store stopped"]
    assert harness.on_stopping.count == 1
    failed = harness.published(EventKind.SERVICE_FAILED)
    assert len(failed) == 1
    assert failed[0].severity is Severity.CRITICAL
    assert failed[0].data["service"] == "feed"
    assert failed[0].data["error"] == "ValueError: unparseable frame"


async def test_graceful_stop_stops_services_one_by_one_in_reverse_order() -> None:
    """request_stop cancels the last-added service first, each finishing before the next."""
    harness = make_harness()
    journal: list[str] = []
    for name in ("store", "engine", "feed"):
        harness.supervisor.add(Idle(name, journal=journal, cleanup_s=0.01))

    async with running(harness.supervisor) as run:
        await eventually(lambda: harness.supervisor.is_ready)
        harness.supervisor.request_stop("SIGTERM")
        outcome = await run

    assert outcome == Outcome(exit_code=0, reason="SIGTERM", deadline_exceeded=False)
    assert journal == [
        "feed stopping",
        "feed stopped",
        "engine stopping",
        "engine stopped",
        "store stopping",
        "store stopped",
    ]
    assert harness.on_stopping.count == 1


async def test_request_stop_keeps_the_first_reason() -> None:
    """A second request_stop does not replace the reason of the first."""
    harness = make_harness()
    harness.supervisor.add(Idle("store"))

    async with running(harness.supervisor) as run:
        await eventually(lambda: harness.supervisor.is_ready)
        harness.supervisor.request_stop("SIGTERM")
        harness.supervisor.request_stop("SIGINT")
        outcome = await run

    assert outcome.reason == "SIGTERM"
    assert harness.on_stopping.count == 1


async def test_stop_requested_before_run_ends_the_run_cleanly() -> None:
    """A stop that arrives before run() starts still gives an orderly exit 0."""
    harness = make_harness()
    harness.supervisor.add(Idle("store"))
    harness.supervisor.request_stop("SIGTERM")

    async with asyncio.timeout(5):
        outcome = await harness.supervisor.run()

    assert outcome == Outcome(exit_code=0, reason="SIGTERM", deadline_exceeded=False)
    assert supervisor_tasks() == []


async def test_service_that_ends_the_daemon_stops_it_with_exit_code_0() -> None:
    """An ends_daemon service returning normally stops everything, naming itself as reason."""
    harness = make_harness()
    journal: list[str] = []
    replay = Finishing("replay")
    harness.supervisor.add(Idle("store", journal=journal))
    harness.supervisor.add(replay, ends_daemon=True)

    async with running(harness.supervisor) as run:
        await eventually(lambda: harness.supervisor.is_ready)
        replay.go.set()
        outcome = await run

    assert outcome.exit_code == 0
    assert outcome.deadline_exceeded is False
    assert "replay" in outcome.reason
    assert journal == ["store stopping", "store stopped"]


async def test_service_that_finishes_without_ending_the_daemon_leaves_it_running() -> None:
    """A normal return of an ordinary service does not stop the daemon."""
    harness = make_harness()
    migrations = Finishing("migrations")
    store = Idle("store")
    harness.supervisor.add(migrations)
    harness.supervisor.add(store)

    async with running(harness.supervisor) as run:
        migrations.go.set()
        await eventually(lambda: migrations.finished)
        assert harness.supervisor.is_ready
        assert harness.supervisor.health().status is HealthStatus.OK
        harness.supervisor.request_stop("SIGTERM")
        outcome = await run

    assert outcome.reason == "SIGTERM"  # the first reason wins, so none was set before
    assert store.runs == 1


async def test_run_ends_with_exit_code_0_when_every_service_finishes() -> None:
    """With no service left running, run() returns on its own."""
    harness = make_harness()
    first, second = Finishing("first"), Finishing("second")
    harness.supervisor.add(first)
    harness.supervisor.add(second)
    first.go.set()
    second.go.set()

    async with asyncio.timeout(5):
        outcome = await harness.supervisor.run()

    assert outcome == Outcome(exit_code=0, reason="all services finished")


async def test_on_ready_is_called_once_after_every_service_is_ready() -> None:
    """A service that is slow to declare readiness delays on_ready; it fires exactly once."""
    harness = make_harness()
    store = Idle("store")
    feed = SlowToStart("feed")
    flaky = Flaky("notifier", fail_after_s=[0.0, 0.0])  # declares ready on each of 3 runs
    for service in (store, feed, flaky):
        harness.supervisor.add(service)

    async with running(harness.supervisor):
        await eventually(lambda: store.serving and flaky.runs == 3)
        assert (harness.on_ready.count, harness.supervisor.is_ready) == (0, False)

        feed.gate.set()
        await eventually(lambda: harness.on_ready.count == 1)
        assert harness.supervisor.is_ready

    assert harness.on_ready.count == 1


async def test_on_ready_fires_when_the_last_unready_service_finishes() -> None:
    """is_ready counts finished services as ready, so their finishing must announce readiness."""
    harness = make_harness()
    store = Idle("store")
    backfill = Finishing("backfill", declares_ready=False)
    harness.supervisor.add(store)
    harness.supervisor.add(backfill)

    async with running(harness.supervisor):
        await eventually(lambda: store.serving)
        backfill.go.set()
        await eventually(lambda: backfill.finished)
        assert harness.supervisor.is_ready
        assert harness.on_ready.count == 1


async def test_missed_shutdown_deadline_is_reported_with_the_task_stack() -> None:
    """A service that ignores cancellation makes run() return exit 1, deadline exceeded."""
    harness = make_harness(shutdown_timeout_s=0.5)
    journal: list[str] = []
    store = Idle("store", journal=journal)
    stubborn = Stubborn("stubborn", linger_s=2.0)
    harness.supervisor.add(store)
    harness.supervisor.add(stubborn)

    try:
        with structlog.testing.capture_logs() as logs:
            async with asyncio.timeout(5):
                run = asyncio.create_task(harness.supervisor.run())
                await eventually(lambda: harness.supervisor.is_ready)
                harness.supervisor.request_stop("SIGTERM")
                outcome = await run

        assert outcome == Outcome(exit_code=1, reason="SIGTERM", deadline_exceeded=True)
        assert stubborn.cancellations == 1
        reports = {e["task"]: e for e in logs if e["event"] == "shutdown_deadline_exceeded"}
        report = reports["service:stubborn"]
        assert report["log_level"] == "error"
        assert report["timeout_s"] == 0.5
        # The stack reaches down the await chain to where the service itself is stuck.
        assert "_supervise" in report["stack"]
        assert "services.py" in report["stack"]
        assert "in run" in report["stack"]
        # Services after the one that hung are still cancelled, not abandoned.
        await eventually(lambda: journal == ["store stopping", "store stopped"])
    finally:
        assert stubborn.task is not None
        stubborn.task.cancel()
        await reap_leftover_tasks()
    assert stubborn.task.cancelled()


async def test_transient_error_during_shutdown_does_not_restart_the_service() -> None:
    """A clean-up that fails with a TransientError while stopping must not restart the service."""
    harness = make_harness(shutdown_timeout_s=0.5)
    feed = FailsToClose("feed")
    harness.supervisor.add(feed)

    try:
        with structlog.testing.capture_logs() as logs:
            async with running(harness.supervisor) as run:
                await eventually(lambda: harness.supervisor.is_ready)
                harness.supervisor.request_stop("SIGTERM")
                outcome = await run

        assert outcome == Outcome(exit_code=0, reason="SIGTERM", deadline_exceeded=False)
        assert feed.runs == 1
        stopped = [e for e in logs if e["event"] == "service_stopped_with_error"]
        assert [e["error"] for e in stopped] == ["TransientError: connection reset while closing"]
        assert not any(e["event"] == "service_restarting" for e in logs)
    finally:
        await reap_leftover_tasks()  # a regression would leave the restarted service running
