"""Small test-double services and health reporters for supervisor and monitor tests.

Each is a dataclass: its repr shows its name and counters, and fields holding events, tasks or
callables are left out of it so that reprs in failure messages stay predictable.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.errors import TransientError
from paper_trader.runtime.service import Readiness


def _connection_reset() -> Exception:
    return TransientError("connection reset")


async def _serve_forever() -> None:
    await asyncio.Event().wait()


@dataclass
class Idle:
    """Declare itself ready and serve until cancelled; log its stop in ``journal``.

    On cancellation it appends ``"<name> stopping"``, cleans up for ``cleanup_s`` seconds, then
    appends ``"<name> stopped"``, so a shared journal shows the order services stopped in.
    """

    name: str
    journal: list[str] = field(default_factory=list, repr=False)
    cleanup_s: float = 0.0
    runs: int = 0
    serving: bool = False

    async def run(self, ready: Readiness) -> None:
        """Serve until cancelled."""
        self.runs += 1
        ready.set()
        self.serving = True
        try:
            await _serve_forever()
        finally:
            self.serving = False
            self.journal.append(f"{self.name} stopping")
            await asyncio.sleep(self.cleanup_s)
            self.journal.append(f"{self.name} stopped")


@dataclass
class Flaky:
    """Declare itself ready, then fail as planned; once the plan is used up, serve.

    ``fail_after_s`` holds, for each failing run in turn, how long it serves before it raises
    ``error()``. While ``keep_failing`` is true every run fails at once, whatever the plan.
    ``started`` records the monotonic time each run began.
    """

    name: str
    fail_after_s: list[float] = field(default_factory=list)
    keep_failing: bool = False
    error: Callable[[], Exception] = field(default=_connection_reset, repr=False)
    runs: int = 0
    started: list[float] = field(default_factory=list, repr=False)

    async def run(self, ready: Readiness) -> None:
        """Fail as planned, or serve until cancelled."""
        self.runs += 1
        self.started.append(time.monotonic())
        ready.set()
        if self.keep_failing or self.fail_after_s:
            await asyncio.sleep(self.fail_after_s.pop(0) if self.fail_after_s else 0.0)
            raise self.error()
        await _serve_forever()


@dataclass
class Finishing:
    """Declare itself ready unless told not to, wait for ``go``, then return normally."""

    name: str
    declares_ready: bool = True
    go: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    finished: bool = False

    async def run(self, ready: Readiness) -> None:
        """Finish once ``go`` is set."""
        if self.declares_ready:
            ready.set()
        await self.go.wait()
        self.finished = True


@dataclass
class SlowToStart:
    """Declare itself ready only once ``gate`` is set, then serve until cancelled."""

    name: str
    gate: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    serving: bool = False

    async def run(self, ready: Readiness) -> None:
        """Wait for the gate, declare readiness, serve."""
        await self.gate.wait()
        ready.set()
        self.serving = True
        await _serve_forever()


@dataclass
class Stubborn:
    """Misbehave on purpose: swallow the first cancellation and linger for ``linger_s``.

    ``task`` is the task running it, so the test can cancel it again and reap it.
    """

    name: str
    linger_s: float = 2.0
    cancellations: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def run(self, ready: Readiness) -> None:
        """Serve; on the first cancellation, keep running for ``linger_s`` (the misbehaviour)."""
        self.task = asyncio.current_task()
        ready.set()
        try:
            await _serve_forever()
        except asyncio.CancelledError:
            self.cancellations += 1
            await asyncio.sleep(self.linger_s)
            raise


@dataclass
class FailsToClose:
    """Serve until cancelled; the first ``close_failures`` clean-ups raise ``TransientError``.

    Models a connection whose close fails with a translated, retryable error while stopping.
    """

    name: str
    close_failures: int = 1
    runs: int = 0

    async def run(self, ready: Readiness) -> None:
        """Serve; close the (pretend) connection in ``finally``."""
        self.runs += 1
        ready.set()
        try:
            await _serve_forever()
        finally:
            self._close()

    def _close(self) -> None:
        if self.close_failures > 0:
            self.close_failures -= 1
            raise TransientError("connection reset while closing")


@dataclass
class FixedHealth:
    """A health reporter whose status the test sets."""

    component: str
    status: HealthStatus = HealthStatus.OK
    detail: str = ""

    def health(self) -> ComponentHealth:
        """Return the configured health."""
        return ComponentHealth(component=self.component, status=self.status, detail=self.detail)
