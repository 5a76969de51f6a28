"""Start-up and shutdown time of the daemon, as systemd sees them.

Method: start the simulated exchange (loopback, one symbol, 1000 closed 1m candles), then
start `run_paper_trader.py run` against it as a subprocess with NOTIFY_SOCKET pointing at a
datagram socket of ours, time from spawn to the READY=1 datagram (interpreter start, imports,
settings, database open + quick_check + migrations, venue clock, a 500-candle REST warm-up,
every service ready), then send SIGTERM and time until the process has exited. Fresh
database each run. Median and max of the runs.

    .venv/bin/python bench/startup.py [--runs 5]
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(work: Path, index: int, port: int) -> tuple[float, float]:
    path = f"/tmp/pt-bench-{os.getpid()}-{index}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": path,
        "DB_PATH": str(work / f"{index}.db"),
        "LOG_DIR": str(work / "logs"),
        "LOG_FORMAT": "json",
        "EXCHANGE": "binance",
        "SYMBOLS": "BTCUSDT",
        "WARMUP_CANDLES": "500",
        "BINANCE_WS_URL": f"ws://127.0.0.1:{port}",
        "BINANCE_REST_URL": f"http://127.0.0.1:{port}",
    }
    try:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_paper_trader.py"), "run"],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while b"READY=1" not in sock.recv(4096):
            pass
        ready = time.perf_counter() - started
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        stopped = time.perf_counter() - stopping
        assert code == 0, code
        return ready, stopped
    finally:
        sock.close()
        os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        simulator = subprocess.Popen(
            [sys.executable, "-m", "paper_trader.simulator", "--port-file", str(port_file),
             "--history", "1000", "--candles", "2000", "--speed", "1"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not (port_file.exists() and port_file.read_text().strip()):
                time.sleep(0.05)
            port = int(port_file.read_text())
            results = [one_run(Path(tmp), i, port) for i in range(args.runs)]
        finally:
            simulator.terminate()
            simulator.wait()
    ready = [r for r, _ in results]
    stop = [s for _, s in results]
    print(f"{args.runs} runs:")
    for label, values in (("spawn -> READY=1 ", ready), ("SIGTERM -> exit 0", stop)):
        median_ms, max_ms = statistics.median(values) * 1000, max(values) * 1000
        print(f"  {label} : median {median_ms:.0f} ms, max {max_ms:.0f} ms")


if __name__ == "__main__":
    main()
