"""Fixtures and helpers shared by every test layer."""

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

NETGUARD = Path(__file__).parent / "netguard"
sys.path.insert(0, str(NETGUARD))
import sitecustomize as netguard  # noqa: E402 -- the guard must be importable from NETGUARD

from paper_trader.settings import Settings  # noqa: E402 -- after the guard, like every import

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
    )
    env.update(overrides)
    return env
