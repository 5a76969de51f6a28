"""systemd's notify protocol (sd_notify(3)) and a watchdog tied to real progress.

``Type=notify`` units are told ``READY=1`` once every service is serving, ``STATUS=…`` lines
for ``systemctl status``, ``STOPPING=1`` when shutdown begins and ``WATCHDOG=1`` pings. Without
``NOTIFY_SOCKET`` in the environment every call is a no-op.

The watchdog pings only while the decision loop proves it is alive (a ``Heartbeat`` it beats
on every candle and on every idle wake-up). A wedged decision task or a blocked event loop
stops the pings, and systemd restarts the daemon.

A long step before ``READY=1`` (a migration that rebuilds a large table) runs inside
``SystemdNotifier.extending``, which asks systemd for more start-up time while it lasts, so
that ``TimeoutStartSec`` does not kill it half done and restart into the same step forever.
"""

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from paper_trader.clock import Clock
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("systemd")

T = TypeVar("T")
EXTEND_EVERY_S = 10.0  # how often a long start-up step says it is still running
EXTEND_BY_S = 60  # how much more start-up time each message asks for, from then


class SystemdNotifier:
    """Send datagrams to systemd's notification socket, best effort and without blocking."""

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._failures = 0
        if self._address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "SystemdNotifier":
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` set by systemd."""
        address = environ.get("NOTIFY_SOCKET") or None
        usec_text = environ.get("WATCHDOG_USEC", "")
        pid_text = environ.get("WATCHDOG_PID", "")
        watchdog_usec = int(usec_text) if usec_text.isdigit() and int(usec_text) > 0 else None
        if pid_text.isdigit() and int(pid_text) != os.getpid():
            watchdog_usec = None  # the watchdog is meant for another process
        return cls(address, watchdog_usec=watchdog_usec)

    @property
    def enabled(self) -> bool:
        """Return whether there is a socket to notify."""
        return self._socket is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """Return the ping period: half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        if self._socket is None or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def notify(self, *assignments: str) -> None:
        """Send ``KEY=value`` assignments in one datagram; failures are logged, never raised."""
        if self._socket is None or self._address is None:
            return
        payload = "\n".join(assignments).encode()
        try:
            self._socket.sendto(payload, self._address)
        except OSError as exc:
            self._failures += 1
            if self._failures == 1 or self._failures % 100 == 0:
                log.warning("sd_notify_failed", error=str(exc), count=self._failures)

    def ready(self, status: str) -> None:
        """Tell systemd the daemon is serving."""
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """Set the one-line status shown by ``systemctl status``."""
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        """Tell systemd a graceful stop has begun."""
        self.notify("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        """Ping the watchdog."""
        self.notify("WATCHDOG=1")

    async def extending(
        self, work: Awaitable[T], *, doing: str, every_s: float = EXTEND_EVERY_S
    ) -> T:
        """Await ``work`` (a long start-up step: a schema migration that rebuilds a table); while
        it runs, every ``every_s`` tell systemd to wait ``EXTEND_BY_S`` more for start-up (past
        ``TimeoutStartSec``), ping the watchdog, show ``doing`` in ``systemctl status`` and log
        it with the time so far. A step done within ``every_s`` says nothing."""
        started = time.monotonic()

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(every_s)
                elapsed = round(time.monotonic() - started)
                self.notify(
                    f"EXTEND_TIMEOUT_USEC={EXTEND_BY_S * 1_000_000}",
                    "WATCHDOG=1",
                    f"STATUS={doing} ({elapsed} s so far)",
                )
                log.info("start_up_step_running", doing=doing, elapsed_s=elapsed)

        ticker = asyncio.create_task(keep_alive(), name="sd-extend")
        try:
            return await work
        finally:
            ticker.cancel()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class Heartbeat:
    """When the decision loop last proved it was making progress (monotonic seconds)."""

    __slots__ = ("_clock", "_last", "beats")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = clock.monotonic()
        self.beats = 0

    def beat(self) -> None:
        """Record progress now."""
        self._last = self._clock.monotonic()
        self.beats += 1

    def age_s(self) -> float:
        """Return seconds since the last beat."""
        return self._clock.monotonic() - self._last


class WatchdogService:
    """Ping systemd's watchdog while the heartbeat is fresh; stay silent when it is stale."""

    name = "systemd_watchdog"

    def __init__(
        self,
        notifier: SystemdNotifier,
        heartbeat: Heartbeat,
        *,
        interval_s: float,
        stale_after_s: float,
    ) -> None:
        self._notifier = notifier
        self._heartbeat = heartbeat
        self._interval_s = interval_s
        self._stale_after_s = stale_after_s

    async def run(self, ready: Readiness) -> None:
        """Ping every ``interval_s`` while the decision loop beats; warn when it stalls."""
        ready.set()
        stalled = False
        while True:
            age = self._heartbeat.age_s()
            if age <= self._stale_after_s:
                self._notifier.watchdog()
                if stalled:
                    log.info("decision_loop_resumed", age_s=round(age, 3))
                stalled = False
            elif not stalled:
                stalled = True
                log.error("decision_loop_stalled", age_s=round(age, 3))
            await asyncio.sleep(self._interval_s)
