"""What the daemon says about itself: health, the model in use, its log, version and settings.

The facts live in parts control may not import (the health monitor, the prediction stack, the
settings), so the composition root hands ``SystemInfo`` small provider callables that return
the frozen values below; they are read cheaply and without I/O on the loop. The log is read in
an executor.
"""

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paper_trader import __version__
from paper_trader.control.health import HealthLevel, HealthLimit, health_level, health_score
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.runtime.logs import MAIN_LOG
from paper_trader.runtime.versions import package_versions

__all__ = [  # the score and its bands live in control/health.py, importable from here too
    "MAX_LOG_LINES",
    "HealthLevel",
    "HealthLimit",
    "HealthProvider",
    "HealthView",
    "ModelInfo",
    "ModelProvider",
    "SystemInfo",
    "VersionInfo",
    "health_level",
    "health_score",
]

MAX_LOG_LINES = 500
_TAIL_CHUNK = 65_536
_VERSIONED = ("python-telegram-bot", "aiosqlite", "numpy", "scikit-learn", "xgboost-cpu")


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthView:
    """The latest health check: the worst status, a 0-100 score, each component's health.

    ``checked_ms`` is when the check ran (wall clock), if known; ``limits`` the ceilings that
    hold the score down (``control.health.assess_health``), lowest first; ``tasks``, ``threads``
    and ``open_fds`` the process's asyncio tasks, threads and open file descriptors then.
    """

    status: HealthStatus
    score: int
    components: tuple[ComponentHealth, ...]
    rss_mb: float
    cpu_percent: float
    loop_lag_ms: float
    checked_ms: int | None = None
    limits: tuple[HealthLimit, ...] = ()
    tasks: int = 0
    threads: int = 0
    open_fds: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """The model version in use and how it does live.

    Accuracies are shares (0.55 is 55 %); ``weights`` are the ensemble's current weights per
    member; ``drift`` the worst inputs by PSI against training; ``alerts`` the drift alerts
    latched now; ``blocked`` why no entry may be taken, if none may.
    """

    version: str | None
    walk_forward_accuracy: float | None
    live_accuracy: float | None
    resolved: int
    pending: int
    weights: tuple[tuple[str, float], ...] = ()
    drift: tuple[tuple[str, float], ...] = ()
    alerts: tuple[str, ...] = ()
    blocked: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionInfo:
    """paper-trader's version and those of the libraries that matter most."""

    version: str
    packages: tuple[tuple[str, str], ...] = field(default=())


HealthProvider = Callable[[], HealthView | None]
ModelProvider = Callable[[], ModelInfo | None]


class SystemInfo:
    """Health, model, log, version and configuration queries."""

    def __init__(
        self,
        *,
        health: HealthProvider,
        model: ModelProvider,
        config: Callable[[], Mapping[str, str]],
        log_dir: Path | None,
    ) -> None:
        """``config`` returns the effective settings with secrets already masked."""
        self._health = health
        self._model = model
        self._config = config
        self._log_dir = log_dir

    def health(self) -> HealthView | None:
        """Return the latest health check, or None before the first one."""
        return self._health()

    def model(self) -> ModelInfo | None:
        """Return the model in use and its live scores, or None when nothing predicts."""
        return self._model()

    def config(self) -> tuple[tuple[str, str], ...]:
        """Return every setting as (NAME, value), sorted by name, secrets masked."""
        return tuple(sorted(self._config().items()))

    def version(self) -> VersionInfo:
        """Return paper-trader's and its main libraries' versions."""
        return VersionInfo(
            version=__version__, packages=tuple(package_versions(_VERSIONED).items())
        )

    async def log_tail(self, lines: int) -> tuple[str, ...]:
        """Return the last ``lines`` lines (at most 500) of the main log; none if there is none.

        The logger masked every secret before the line was written.
        """
        if self._log_dir is None or lines < 1:
            return ()
        path = self._log_dir / MAIN_LOG
        count = min(lines, MAX_LOG_LINES)
        return await asyncio.get_running_loop().run_in_executor(None, _tail, path, count)


def _tail(path: Path, count: int) -> tuple[str, ...]:
    """Return the last ``count`` lines of ``path``, reading backwards in chunks."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            position = file.tell()
            data = b""
            while position > 0 and data.count(b"\n") <= count:
                step = min(_TAIL_CHUNK, position)
                position -= step
                file.seek(position)
                data = file.read(step) + data
    except FileNotFoundError:
        return ()
    text = data.decode("utf-8", errors="replace")
    return tuple(text.splitlines()[-count:])
