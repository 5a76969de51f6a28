"""The daemon: one supervised run, from the database lock to the run record of its stop.

Resources open in an ``AsyncExitStack`` (lock → database → …) and close in reverse, iff they
opened; services run under the supervisor, which stops them in the reverse of their start
order. ``run`` and ``demo`` read the live feed; ``replay`` (``app/replay.py``) hands over a
source of recorded candles instead.
"""

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from paper_trader.app.build import SourceFactory, build
from paper_trader.app.configs import log_config, traded_series, venue_adapter
from paper_trader.app.ledger import RunPlan, plan_run
from paper_trader.app.run_record import record_start, record_stop
from paper_trader.app.signals import disarm_exit_deadline, exit_now, is_stop_signal, stop_on_signals
from paper_trader.clock import Clock, SystemClock
from paper_trader.engine import EngineStats
from paper_trader.errors import ConfigError
from paper_trader.features.engine import SeriesKey
from paper_trader.runtime.heap import thaw_heap
from paper_trader.runtime.logs import LoggingHandle, configure_logging, get_logger
from paper_trader.runtime.sdnotify import SystemdNotifier
from paper_trader.runtime.supervisor import Outcome, Supervisor
from paper_trader.settings import Settings
from paper_trader.storage import DatabaseLock, allow_page_release, migrate, open_database

log = get_logger("app")


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonRun:
    """How one run of the daemon went."""

    outcome: Outcome
    engine: EngineStats
    elapsed_s: float
    interrupted_by: str | None = None  # a replay stopped by this signal before its end

    @property
    def exit_code(self) -> int:
        """Return the process's exit code: 128 + the signal for an interrupted replay."""
        if self.interrupted_by is not None and self.outcome.exit_code == 0:
            return 128 + signal.Signals[self.interrupted_by].value
        return self.outcome.exit_code


def run_daemon(settings: Settings) -> int:
    """Run the daemon until SIGTERM/SIGINT or a fatal error; return the exit code.

    Raise ``ConfigError`` if the outside world refused a setting while running (exit code 2).
    """
    outcome = run_live(settings).outcome
    if outcome.refusal:
        raise ConfigError(outcome.refusal)
    return outcome.exit_code


def run_live(
    settings: Settings, *, mode: str = "run", stop_after_s: float | None = None
) -> DaemonRun:
    """Run the daemon on the live feed until a signal, a fatal error or ``stop_after_s``."""
    logs = configure_logging(log_config(settings))
    try:
        return asyncio.run(
            run_supervised(
                settings, settings.db_path, mode, logs, source=None, stop_after_s=stop_after_s
            )
        )
    except ConfigError as exc:
        # A refusal is an answer, not a crash: one line, no traceback (the CLI prints it too).
        log.error("startup_refused", error=str(exc))  # noqa: TRY400
        raise
    finally:
        logs.close()


async def run_supervised(
    settings: Settings,
    db_path: Path,
    mode: str,
    logs: LoggingHandle,
    *,
    source: SourceFactory | None,
    stop_after_s: float | None = None,
    series: list[SeriesKey] | None = None,
) -> DaemonRun:
    """Open the database, plan the run, build and supervise its services; record the run.

    Without a ``source`` the candles come from the live feed of ``series`` (default
    ``SYMBOLS``).
    """
    clock = SystemClock()
    started = clock.monotonic()
    notifier = SystemdNotifier.from_environ(os.environ)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(notifier.close)
        # Disarms the last-resort exit timer that a stop arms, however this function leaves.
        stack.callback(disarm_exit_deadline)
        stack.callback(thaw_heap)  # frozen once every service was ready (app/supervision.py)
        conn = await _open_database(stack, db_path, notifier)
        plan = await _plan(stack, settings, conn, clock, mode, db_path, series, live=source is None)
        run_id = await record_start(conn, settings, clock, mode)
        log.info("daemon_starting", mode=mode, db=str(db_path), run_id=run_id)
        supervisor, engine = build(settings, conn, clock, notifier, source=source, plan=plan)
        outcome = await _supervise(supervisor, logs, stop_after_s=stop_after_s)
        run = DaemonRun(
            outcome=outcome,
            engine=engine.stats(),
            elapsed_s=clock.monotonic() - started,
            interrupted_by=_interrupted_replay(mode, outcome),
        )
        await record_stop(conn, run_id, clock, exit_code=run.exit_code)
    log.info("daemon_stopped", exit_code=run.exit_code, reason=outcome.reason)
    return run


async def _open_database(
    stack: contextlib.AsyncExitStack, db_path: Path, notifier: SystemdNotifier
) -> aiosqlite.Connection:
    """Lock the database for this process, open the writer connection, rewrite a file made
    before retention once, migrate the schema (a long step asks systemd for its time)."""
    stack.enter_context(DatabaseLock.acquire(db_path))
    conn = await open_database(db_path)
    stack.push_async_callback(conn.close)
    await notifier.extending(
        allow_page_release(conn, db_path), doing=f"rewriting {db_path} once for retention"
    )
    await notifier.extending(migrate(conn), doing=f"migrating the database schema of {db_path}")
    return conn


async def _plan(  # noqa: PLR0917 -- the run's facts, as run_supervised gathered them
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    conn: aiosqlite.Connection,
    clock: Clock,
    mode: str,
    db_path: Path,
    series: list[SeriesKey] | None,
    *,
    live: bool,
) -> RunPlan:
    """Plan the run (ledger checks, exit-only series); its control reader closes with ``stack``."""
    plan = await plan_run(
        settings,
        conn,
        clock,
        mode,
        db_path,
        series or traded_series(settings),
        adapter=(lambda: venue_adapter(settings)) if live else None,
    )
    if plan.reader is not None:
        stack.push_async_callback(plan.reader.close)
    return plan


async def _supervise(
    supervisor: Supervisor, logs: LoggingHandle, *, stop_after_s: float | None
) -> Outcome:
    """Run the services until a signal, the end of a replay or ``stop_after_s``.

    Past the shutdown deadline, leave at once with exit code 1 (``exit_now``).
    """
    timer = (
        asyncio.get_running_loop().call_later(
            stop_after_s, supervisor.request_stop, f"ran for {stop_after_s:g} s"
        )
        if stop_after_s
        else None
    )
    with stop_on_signals(supervisor):
        outcome = await supervisor.run()
    if timer is not None:
        timer.cancel()
    if outcome.deadline_exceeded:
        exit_now(logs)
    return outcome


def _interrupted_replay(mode: str, outcome: Outcome) -> str | None:
    """Return the signal that stopped a replay before its end, if one did."""
    return outcome.reason if mode == "replay" and is_stop_signal(outcome.reason) else None
