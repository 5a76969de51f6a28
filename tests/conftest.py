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

ROOT = Path(__file__).resolve().parent.parent


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
        if not key.startswith(("NOTIFY_SOCKET", "WATCHDOG_", "TELEGRAM_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(NETGUARD), str(ROOT)]),
        DB_PATH=str(tmp_path / "paper_trader.db"),
        LOG_DIR=str(tmp_path / "logs"),
        MODELS_DIR=str(tmp_path / "models"),
        CACHE_DIR=str(tmp_path / "cache"),
        LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env
