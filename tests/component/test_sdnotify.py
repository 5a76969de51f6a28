"""Tests for the systemd notify protocol and the heartbeat-driven watchdog, over real sockets."""

import asyncio
import os
import select
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import structlog
from conftest import eventually

from paper_trader.clock import SystemClock
from paper_trader.runtime.sdnotify import Heartbeat, SystemdNotifier, WatchdogService
from paper_trader.runtime.service import Readiness

WATCHDOG = b"WATCHDOG=1"


@dataclass
class NotifySocket:
    """The receiving end systemd would own: a bound, non-blocking AF_UNIX datagram socket."""

    sock: socket.socket
    address: str
    received: list[bytes] = field(default_factory=list)

    def receive(self) -> bytes:
        """Return the next datagram, waiting up to two seconds for it."""
        readable, _, _ = select.select([self.sock], [], [], 2.0)
        assert readable, "no datagram arrived"
        return self.sock.recv(4096)

    def collect(self) -> list[bytes]:
        """Move every datagram already queued into ``received`` and return ``received``."""
        while True:
            try:
                self.received.append(self.sock.recv(4096))
            except BlockingIOError:
                return self.received

    def pings(self) -> int:
        """Return how many watchdog pings have arrived so far."""
        return self.collect().count(WATCHDOG)


@pytest.fixture
def systemd() -> Iterator[NotifySocket]:
    """Bind a notification socket at a short filesystem path (Unix paths max ~107 bytes)."""
    directory = tempfile.mkdtemp(prefix="pt-", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        sock.setblocking(False)
        yield NotifySocket(sock, path)
    finally:
        sock.close()
        shutil.rmtree(directory)


@pytest.fixture
def abstract_systemd() -> Iterator[NotifySocket]:
    """Bind a notification socket in Linux's abstract namespace, named as systemd writes it."""
    name = f"paper-trader-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind("\0" + name)
        sock.setblocking(False)
        yield NotifySocket(sock, "@" + name)
    finally:
        sock.close()


@pytest.fixture
def notifier(systemd: NotifySocket) -> Iterator[SystemdNotifier]:
    """A notifier pointed at ``systemd`` with a 200 ms watchdog."""
    notifier = SystemdNotifier.from_environ(
        {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "200000"}
    )
    try:
        yield notifier
    finally:
        notifier.close()


@asynccontextmanager
async def watching(service: WatchdogService) -> AsyncIterator[None]:
    """Run the watchdog service in a task for the duration of the block."""
    task = asyncio.create_task(service.run(Readiness()), name="test-watchdog")
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@asynccontextmanager
async def beating(heartbeat: Heartbeat, beat: asyncio.Event) -> AsyncIterator[None]:
    """Beat ``heartbeat`` every 10 ms while ``beat`` is set, like a live decision loop."""

    async def beat_forever() -> None:
        while True:
            await beat.wait()
            heartbeat.beat()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(beat_forever(), name="test-heartbeat")
    try:
        yield
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_ready_sends_ready_and_status_in_one_datagram(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    """ready() sends READY=1 and the status line together."""
    notifier.ready("serving 3 symbols")

    assert systemd.receive() == b"READY=1\nSTATUS=serving 3 symbols"


def test_status_stopping_and_watchdog_send_their_assignments(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    """status(), stopping() and watchdog() each send exactly their protocol datagram."""
    notifier.status("health ok: all components ok, rss 80 MB")
    notifier.stopping()
    notifier.watchdog()

    assert [systemd.receive() for _ in range(3)] == [
        b"STATUS=health ok: all components ok, rss 80 MB",
        b"STOPPING=1\nSTATUS=stopping",
        WATCHDOG,
    ]


def test_notify_joins_assignments_with_newlines(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    """notify() sends arbitrary KEY=value assignments as one newline-separated datagram."""
    notifier.notify("RELOADING=1", "STATUS=reloading")

    assert systemd.receive() == b"RELOADING=1\nSTATUS=reloading"


def test_abstract_namespace_address_is_supported(abstract_systemd: NotifySocket) -> None:
    """A NOTIFY_SOCKET starting with '@' names an abstract-namespace socket."""
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": abstract_systemd.address})
    try:
        notifier.ready("ready")
    finally:
        notifier.close()

    assert abstract_systemd.receive() == b"READY=1\nSTATUS=ready"


def test_watchdog_interval_is_half_of_watchdog_usec(notifier: SystemdNotifier) -> None:
    """WATCHDOG_USEC=200000 (0.2 s) gives a ping period of 0.1 s."""
    assert notifier.enabled
    assert notifier.watchdog_interval_s == 0.1


def test_watchdog_pid_of_this_process_keeps_the_watchdog(systemd: NotifySocket) -> None:
    """WATCHDOG_PID naming this process leaves the watchdog enabled."""
    notifier = SystemdNotifier.from_environ(
        {
            "NOTIFY_SOCKET": systemd.address,
            "WATCHDOG_USEC": "200000",
            "WATCHDOG_PID": str(os.getpid()),
        }
    )
    try:
        assert notifier.watchdog_interval_s == 0.1
    finally:
        notifier.close()


def test_watchdog_pid_of_another_process_disables_the_watchdog(systemd: NotifySocket) -> None:
    """WATCHDOG_PID naming another process means the watchdog is not ours to ping."""
    notifier = SystemdNotifier.from_environ(
        {
            "NOTIFY_SOCKET": systemd.address,
            "WATCHDOG_USEC": "200000",
            "WATCHDOG_PID": str(os.getpid() + 1),
        }
    )
    try:
        assert notifier.enabled
        assert notifier.watchdog_interval_s is None
    finally:
        notifier.close()


@pytest.mark.parametrize("usec", ["", "0", "-5", "soon"])
def test_missing_or_invalid_watchdog_usec_disables_the_watchdog(
    systemd: NotifySocket, usec: str
) -> None:
    """Only a positive whole number of microseconds enables the watchdog."""
    notifier = SystemdNotifier.from_environ(
        {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": usec}
    )
    try:
        assert notifier.enabled
        assert notifier.watchdog_interval_s is None
    finally:
        notifier.close()


def test_without_notify_socket_the_notifier_is_disabled_and_calls_do_nothing() -> None:
    """No NOTIFY_SOCKET: enabled is False, no watchdog, and every call is a no-op."""
    notifier = SystemdNotifier.from_environ({"WATCHDOG_USEC": "200000"})

    notifier.ready("ready")
    notifier.status("fine")
    notifier.stopping()
    notifier.watchdog()
    notifier.close()

    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None


def test_close_is_idempotent_and_disables_the_notifier(systemd: NotifySocket) -> None:
    """After close() the notifier is disabled, and closing again is harmless."""
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": systemd.address})

    notifier.close()
    notifier.close()
    notifier.watchdog()

    assert not notifier.enabled


def test_unreachable_socket_is_logged_not_raised() -> None:
    """A NOTIFY_SOCKET path that does not exist logs sd_notify_failed and does not raise."""
    directory = tempfile.mkdtemp(prefix="pt-", dir="/tmp")
    notifier = SystemdNotifier(os.path.join(directory, "missing"))
    try:
        with structlog.testing.capture_logs() as logs:
            notifier.ready("ready")
    finally:
        notifier.close()
        shutil.rmtree(directory)

    failures = [entry for entry in logs if entry["event"] == "sd_notify_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "warning"
    assert failures[0]["count"] == 1


def test_repeated_send_failures_are_throttled_in_the_log() -> None:
    """Of 100 failed sends only the first and the 100th are logged."""
    directory = tempfile.mkdtemp(prefix="pt-", dir="/tmp")
    notifier = SystemdNotifier(os.path.join(directory, "missing"))
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(100):
                notifier.watchdog()
    finally:
        notifier.close()
        shutil.rmtree(directory)

    counts = [entry["count"] for entry in logs if entry["event"] == "sd_notify_failed"]
    assert counts == [1, 100]


def test_heartbeat_counts_beats_and_resets_its_age() -> None:
    """beat() increments beats and brings age_s back to (almost) zero."""
    heartbeat = Heartbeat(SystemClock())

    heartbeat.beat()
    heartbeat.beat()

    assert heartbeat.beats == 2
    assert 0.0 <= heartbeat.age_s() < 60.0


async def test_watchdog_pings_repeatedly_while_the_heartbeat_is_fresh(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    """With a live decision loop the watchdog service sends WATCHDOG=1 again and again."""
    heartbeat = Heartbeat(SystemClock())
    beat = asyncio.Event()
    beat.set()
    service = WatchdogService(notifier, heartbeat, interval_s=0.02, stale_after_s=0.2)

    async with beating(heartbeat, beat), watching(service):
        await eventually(lambda: systemd.pings() >= 3)

    assert set(systemd.collect()) == {WATCHDOG}


async def test_watchdog_stops_pinging_when_the_loop_stalls_and_resumes_after(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    """A stale heartbeat stops the pings and logs decision_loop_stalled; fresh beats resume them."""
    heartbeat = Heartbeat(SystemClock())
    beat = asyncio.Event()
    beat.set()
    stale_after_s, interval_s = 0.25, 0.02
    service = WatchdogService(
        notifier, heartbeat, interval_s=interval_s, stale_after_s=stale_after_s
    )

    with structlog.testing.capture_logs() as logs:
        async with beating(heartbeat, beat), watching(service):
            await eventually(lambda: systemd.pings() >= 2)

            beat.clear()  # the decision loop wedges
            await eventually(lambda: any(e["event"] == "decision_loop_stalled" for e in logs))
            pings_when_stalled = systemd.pings()
            # Let the watchdog wake several more times while the heartbeat stays stale.
            await eventually(lambda: heartbeat.age_s() > stale_after_s + 5 * interval_s)
            assert systemd.pings() == pings_when_stalled

            beat.set()  # the decision loop comes back
            await eventually(lambda: systemd.pings() > pings_when_stalled)
            await eventually(lambda: any(e["event"] == "decision_loop_resumed" for e in logs))

    stalled = [e for e in logs if e["event"] == "decision_loop_stalled"]
    assert len(stalled) == 1
    assert stalled[0]["log_level"] == "error"
    assert stalled[0]["age_s"] > stale_after_s


async def _slow(value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


async def test_a_long_start_up_step_asks_for_more_time_while_it_runs(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    """A migration longer than TimeoutStartSec would be killed half done and rerun forever:
    while the step runs, systemd is asked for another minute, the watchdog is pinged and
    ``systemctl status`` says what is going on; once it is done, nothing more is sent."""
    result = await notifier.extending(_slow("migrated", 0.35), doing="migrating", every_s=0.1)

    assert result == "migrated"
    sent = systemd.collect()
    assert len(sent) >= 2
    for datagram in sent:
        lines = datagram.decode().split("\n")
        assert lines[:2] == ["EXTEND_TIMEOUT_USEC=60000000", "WATCHDOG=1"]
        assert lines[2].startswith("STATUS=migrating (")
    count = len(sent)
    await asyncio.sleep(0.25)
    assert len(systemd.collect()) == count


async def test_a_quick_start_up_step_says_nothing(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    assert await notifier.extending(_slow("done", 0.01), doing="migrating", every_s=0.2) == "done"
    await asyncio.sleep(0.3)
    assert systemd.collect() == []


async def test_a_failed_start_up_step_raises_and_stops_asking(
    systemd: NotifySocket, notifier: SystemdNotifier
) -> None:
    async def broken() -> None:
        await asyncio.sleep(0.15)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        await notifier.extending(broken(), doing="migrating", every_s=0.1)
    count = len(systemd.collect())
    await asyncio.sleep(0.25)
    assert len(systemd.collect()) == count
