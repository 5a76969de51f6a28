"""The run record: one row per run of the daemon, written when it starts and when it stops."""

import json
import os

import aiosqlite

from paper_trader import __version__
from paper_trader.clock import Clock
from paper_trader.runtime.versions import package_versions
from paper_trader.settings import Settings
from paper_trader.storage import RecordRunStop, RunStart, apply_transaction, start_run

# The packages whose versions shape behaviour.
RECORDED_PACKAGES = (
    "aiosqlite",
    "numpy",
    "pandas",
    "scikit-learn",
    "xgboost-cpu",
    "python-telegram-bot",
)


async def record_start(
    conn: aiosqlite.Connection, settings: Settings, clock: Clock, mode: str
) -> int:
    """Record that a run starts (its mode, process, settings and versions); return its id."""
    return await start_run(
        conn,
        RunStart(
            started_at_ms=clock.now_ms(),
            mode=mode,
            pid=os.getpid(),
            app_version=__version__,
            config_hash=settings.config_hash(),
            versions_json=json.dumps(versions(), sort_keys=True),
        ),
    )


async def record_stop(
    conn: aiosqlite.Connection, run_id: int, clock: Clock, *, exit_code: int
) -> None:
    """Record when and with which exit code the run stopped."""
    stop = RecordRunStop(run_id=run_id, stopped_at_ms=clock.now_ms(), exit_code=exit_code)
    await apply_transaction(conn, [stop])


def versions() -> dict[str, str]:
    """Return the versions that shape behaviour, for the run record."""
    return {"paper_trader": __version__, **package_versions(RECORDED_PACKAGES)}
