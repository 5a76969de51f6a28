"""The contract between a long-lived service and the supervisor."""

import asyncio
from collections.abc import Callable
from typing import Protocol

from paper_trader.domain import ComponentHealth


class Readiness:
    """A service's "I am really serving now" flag (anyio's ``task_status.started()``).

    The supervisor creates one per run of a service; the service calls ``set()`` once it can
    do its job (connected, subscribed, database open). A restarted service starts unready.
    """

    __slots__ = ("_event", "_on_set")

    def __init__(self, on_set: Callable[[], None] | None = None) -> None:
        self._event = asyncio.Event()
        self._on_set = on_set

    def set(self) -> None:
        """Declare the service ready (idempotent)."""
        if self._event.is_set():
            return
        self._event.set()
        if self._on_set is not None:
            self._on_set()

    def is_set(self) -> bool:
        """Return whether the service has declared itself ready."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Wait until the service is ready."""
        await self._event.wait()


class Service(Protocol):
    """Long-lived work run by the supervisor.

    ``run`` returns when the work is finished, raises ``TransientError`` to be restarted after a
    backoff, and raises anything else to stop the daemon. Cancellation is how it is stopped: it
    cleans up in ``finally`` (bounded by ``asyncio.timeout``) and lets ``CancelledError`` through.
    """

    @property
    def name(self) -> str:
        """Return the service's name, used for its task, its logs and its health."""
        ...

    async def run(self, ready: Readiness) -> None:
        """Do the work; call ``ready.set()`` once serving."""
        ...


class HealthReporter(Protocol):
    """Anything that can say how healthy it is, cheaply and without I/O."""

    def health(self) -> ComponentHealth:
        """Return the current health."""
        ...
