"""Run the real daemon as a subprocess with a real systemd notification socket."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / "run_paper_trader.py")


def _workdir(env: Mapping[str, str]) -> Path:
    """Run in the test's own directory (next to DB_PATH), never where a real .env may be."""
    return Path(env["DB_PATH"]).parent


def run_cli(
    args: list[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``run_paper_trader.py ARGS`` to completion and return its result."""
    return subprocess.run(
        [sys.executable, CLI, *args],
        env=dict(env),
        cwd=_workdir(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class NotifySocket:
    """A bound ``AF_UNIX`` datagram socket standing in for systemd's ``NOTIFY_SOCKET``."""

    path: str
    sock: socket.socket
    received: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        """Return the first datagram (seen before or arriving) that contains ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                if text in message:
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} datagram within {timeout} s: {self.received}")
            self.sock.settimeout(remaining)
            try:
                self.received.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def count(self, text: str) -> int:
        """Return how many datagrams received so far contain ``text``."""
        return sum(text in message for message in self.received)


@contextmanager
def notify_socket() -> Iterator[NotifySocket]:
    """Yield a notify socket in a short temporary path (Unix socket paths are short)."""
    directory = tempfile.mkdtemp(prefix="pt-", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield NotifySocket(path=path, sock=sock)
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(directory)


@contextmanager
def daemon(
    env: Mapping[str, str], *args: str, output: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Start ``run_paper_trader.py run`` and make sure it is gone afterwards.

    Its stdout and stderr are pipes, unless ``output`` names a file to append both to: a
    long run fills a pipe nobody reads, and then the daemon blocks on its next log line.
    """
    with ExitStack() as stack:
        sink = stack.enter_context(output.open("a")) if output is not None else None
        process = subprocess.Popen(
            [sys.executable, CLI, *(args or ("run",))],
            env=dict(env),
            cwd=_workdir(env),
            stdout=sink or subprocess.PIPE,
            stderr=sink or subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)


@dataclass
class SimulatorProcess:
    """The simulated exchange running as a subprocess on loopback."""

    process: subprocess.Popen[str]
    port: int

    @property
    def env(self) -> dict[str, str]:
        """Return the settings that point the daemon's Binance feed at this simulator."""
        return {
            "EXCHANGE": "binance",
            "BINANCE_WS_URL": f"ws://127.0.0.1:{self.port}",
            "BINANCE_REST_URL": f"http://127.0.0.1:{self.port}",
        }


@contextmanager
def simulator(
    env: Mapping[str, str], *args: str, timeout: float = 20.0
) -> Iterator[SimulatorProcess]:
    """Start ``python -m paper_trader.simulator ARGS`` on a free port; stop it after."""
    workdir = _workdir(env)
    port_file = workdir / "simulator.port"
    port_file.unlink(missing_ok=True)
    log = (workdir / "simulator.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paper_trader.simulator",
            "--port-file",
            str(port_file),
            *args,
        ],
        env=dict(env),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the simulator did not start: {(workdir / 'simulator.log').read_text()}"
                )
            time.sleep(0.05)
        yield SimulatorProcess(process=process, port=int(port_file.read_text().strip()))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(name="market")
def market_fixture(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Run the simulated exchange (x60 real time, 100 candles of history) for the daemon."""
    with simulator(subprocess_env(tmp_path), "--speed", "60", "--history", "100") as sim:
        yield {**sim.env, "SYMBOLS": "BTCUSDT", "WARMUP_CANDLES": "50"}


# Entries on every buy signal: nothing throttles them (a model's every "buy" is tried).
BUSY = {
    "AUTO_TRAIN": "false",
    "RETRAIN_INTERVAL": "0",
    "SIGNAL_BUY_THRESHOLD": "0.01",
    "SIGNAL_STRONG_THRESHOLD": "0.2",
    "MIN_CONFIDENCE": "0",
    "MIN_TIME_BETWEEN_TRADES": "0",
    "MAX_POSITION_SIZE": "0.3",
    "CORRELATION_LIMIT": "1",
}


def query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run a read-only query (an empty list while the database or table does not exist)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def count(db: Path, sql: str) -> int:
    """Return the single number a ``SELECT count(*)`` gives (0 before the table exists)."""
    rows = query(db, sql)
    return int(str(rows[0][0])) if rows else 0


def wait_until(
    process: subprocess.Popen[Any], condition: Callable[[], bool], what: str, timeout: float = 150
) -> None:
    """Wait until ``condition()``; fail if the daemon exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the daemon exited"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
