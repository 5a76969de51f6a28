"""What the benchmarks of the live daemon share (``bench/live.py``, ``bench/soak.py``): their
common options, the simulated exchange they run against, the daemon's environment on it, and
the trained model's work directory."""

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_live_options(parser: argparse.ArgumentParser, *, speed: float) -> None:
    """Add the options every live benchmark takes: symbols, speed, the model, where to write."""
    add = parser.add_argument
    add("--symbols", type=int, default=100, help="symbols closing together")
    add(
        "--speed",
        type=float,
        default=speed,
        help="simulator speed (x real time: 60, a candle a second)",
    )
    add("--train-candles", type=int, default=6000, help="candles the model is trained on")
    add("--json", type=Path, metavar="FILE", help="also write the figures here")
    add("--dir", type=Path, help="keep the run's files here (default: a temporary directory)")


def symbol_names(count: int) -> list[str]:
    """Return ``count`` synthetic symbols: S000USDT, S001USDT, ..."""
    return [f"S{k:03d}USDT" for k in range(count)]


@contextmanager
def work_dir(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    """Yield ``--dir`` (created), or a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = args.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        yield work


@contextmanager
def simulated_exchange(
    work: Path,
    symbols: Sequence[str],
    *,
    history: int,
    candles: int,
    speed: float,
    extra: Sequence[str] = (),
) -> Iterator[int]:
    """Run ``python -m paper_trader.simulator`` (its log in ``work/simulator.log``) with
    ``history`` of ``candles`` per symbol closed at start; yield its port; stop it."""
    port_file = work / "port"
    with (work / "simulator.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "paper_trader.simulator", "--port-file", str(port_file),
             "--symbols", ",".join(symbols), "--history", str(history), "--candles", str(candles),
             "--speed", str(speed), "--log-level", "WARNING", *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            while not (port_file.exists() and port_file.read_text().strip()):
                if process.poll() is not None:
                    raise SystemExit(f"the simulator exited with {process.returncode}")
                time.sleep(0.05)
            yield int(port_file.read_text())
        finally:
            process.terminate()
            process.wait()


def live_env(work: Path, port: int, symbols: Sequence[str], *, db: str) -> dict[str, str]:
    """Return the settings of a daemon live on the simulator at ``port`` with the published
    model, its files in ``work``, JSON logs, health checks every 5 s, ports chosen by the OS."""
    return {
        "DB_PATH": str(work / db),
        "LOG_DIR": str(work / "logs"),
        "MODELS_DIR": str(work / "models"),
        "CACHE_DIR": str(work / "cache"),
        "LOG_FORMAT": "json",
        "EXCHANGE": "binance",
        "SYMBOLS": ",".join(symbols),
        "AUTO_TRAIN": "false",
        "HEALTH_PORT": "0",
        "STATUS_WS_PORT": "0",
        "HEALTH_CHECK_INTERVAL": "5",
        "BINANCE_WS_URL": f"ws://127.0.0.1:{port}",
        "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
    }
