"""Fixtures and helpers shared by every test layer."""

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiosqlite
import pytest

NETGUARD = Path(__file__).parent / "netguard"
sys.path.insert(0, str(NETGUARD))
import sitecustomize as netguard  # noqa: E402 -- the guard must be importable from NETGUARD
from fakes.storage import migrated_database, running_writer  # noqa: E402 -- after the guard
from fakes.telegram_server import FakeTelegram  # noqa: E402 -- after the guard

from paper_trader.settings import Settings  # noqa: E402 -- after the guard, like every import
from paper_trader.storage import StorageWriter, open_reader  # noqa: E402 -- after the guard

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
SYSTEMD_NAMES = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})


@pytest.fixture
def settings_free_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every paper-trader setting from the environment: only what a test sets counts."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _loopback_only() -> None:
    """Fail any test that opens a non-loopback connection (re-armed for every test)."""
    netguard.install()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Return where the test's database file lives (not created yet)."""
    return tmp_path / "paper_trader.db"


@pytest.fixture
async def conn(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """Yield a connection to a migrated, empty database at ``db_path``."""
    async with migrated_database(db_path) as connection:
        yield connection


@pytest.fixture
async def reader(db_path: Path, conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """Yield a read-only connection to the database ``conn`` migrated."""
    connection = await open_reader(db_path)
    yield connection
    await connection.close()


@pytest.fixture
async def writer(conn: aiosqlite.Connection) -> AsyncIterator[StorageWriter]:
    """Yield a running StorageWriter on the migrated database, cancelled after the test."""
    storage_writer = StorageWriter(conn)
    async with running_writer(storage_writer):
        yield storage_writer


async def eventually(
    condition: Callable[[], bool], *, timeout: float = 5.0, interval: float = 0.01
) -> None:
    """Wait until ``condition()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {condition}")
        await asyncio.sleep(interval)


def subprocess_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Return an environment for a daemon subprocess: hermetic paths, loopback guard loaded."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in SETTING_NAMES and key not in SYSTEMD_NAMES
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(NETGUARD), str(ROOT)]),
        DB_PATH=str(tmp_path / "paper_trader.db"),
        LOG_DIR=str(tmp_path / "logs"),
        MODELS_DIR=str(tmp_path / "models"),
        CACHE_DIR=str(tmp_path / "cache"),
        LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
        # A daemon without a model would otherwise warm up 30 days and train in the background;
        # the tests that exercise that say so.
        AUTO_TRAIN="false",
        # Any free port: daemons of parallel tests (or a real one on 8766) never collide.
        HEALTH_PORT="0",
        STATUS_WS_PORT="0",
    )
    env.update(overrides)
    return env


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run PTB as production does: ``RetryAfter.retry_after`` is a timedelta (reference §2.3)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """Yield a running fake Bot API server on loopback."""
    async with FakeTelegram() as fake:
        yield fake
