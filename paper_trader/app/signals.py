"""OS signals and the exit deadline.

SIGTERM and SIGINT only ask the supervisor to stop. Once a stop begins, a last-resort timer
(``faulthandler``) dumps every thread's stack and exits in case the loop itself is stuck; if
the supervisor reports tasks that ignored the shutdown deadline, the process leaves at once
with exit code 1.
"""

import asyncio
import contextlib
import faulthandler
import os
import signal
import sys
from collections.abc import Iterator

from paper_trader.runtime.logs import LoggingHandle, get_logger
from paper_trader.runtime.sdnotify import SystemdNotifier
from paper_trader.runtime.supervisor import Supervisor

log = get_logger("app")

DEADLINE_GRACE_S = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(supervisor: Supervisor) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into an orderly stop while the daemon runs."""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, supervisor.request_stop, signal.Signals(signum).name)
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


def is_stop_signal(name: str) -> bool:
    """Return whether ``name`` is the name of a signal that stops the daemon."""
    return name in {s.name for s in STOP_SIGNALS}


def on_stopping(notifier: SystemdNotifier, shutdown_timeout_s: float) -> None:
    """Tell systemd, and arm a last-resort dump-and-exit in case the loop itself is stuck."""
    notifier.stopping()
    faulthandler.dump_traceback_later(shutdown_timeout_s + DEADLINE_GRACE_S, exit=True)


def disarm_exit_deadline() -> None:
    """Cancel the last-resort dump-and-exit that ``on_stopping`` armed (if it did)."""
    faulthandler.cancel_dump_traceback_later()


def exit_now(logs: LoggingHandle) -> None:
    """Leave at once with exit code 1: tasks ignored the shutdown deadline (already logged)."""
    log.error("exit_after_shutdown_deadline", exit_code=1)
    logs.close()
    sys.stderr.flush()
    os._exit(1)
