"""Memory and stop of the real daemon at 100 symbols: RSS after warm-up, SIGTERM → exit.

Method. A model is trained once, untimed, as ``bench/pipeline.py`` trains it (production tree
counts, ``--train-candles`` synthetic 1m candles), but for Binance, and published in a fresh
``MODELS_DIR``. The simulated exchange (``python -m paper_trader.simulator``) serves
``--symbols`` synthetic symbols with ``--history`` closed candles each and then closes a candle
of every symbol at once every 60 / ``--speed`` seconds. ``run_paper_trader.py run`` is started
against it as a subprocess, as a user runs it (``AUTO_TRAIN=false`` with the model above, the
default ``WARMUP_CANDLES``: a REST warm-up of 1,000 candles per symbol, the feature cache on,
JSON logs, health checks every 5 s, ``NOTIFY_SOCKET`` pointing at a datagram socket of ours).
From ``READY=1`` the child's RSS is sampled every second (psutil) for ``--live-s`` seconds of
live candles: the figure is the RSS at the end (the goal: ≤ 300 MB), with its value at READY
and its maximum. Then SIGTERM, and the time until the process has exited with 0 (goal ≤ 2 s).
The daemon's own loop-lag sampler (100 ms sleeps) is read from ``performance.log``: the worst
lag of any 5 s check window while live. The candles the daemon decided are counted from its
database.

    .venv/bin/python bench/live.py [--symbols 100] [--live-s 60] [--speed 60] [--json FILE]
"""

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from live_common import add_live_options, live_env, simulated_exchange, symbol_names, work_dir  # noqa: E402
from pipeline import machine, train_model  # noqa: E402
from results import row  # noqa: E402

from paper_trader.domain import Venue  # noqa: E402

RSS_GOAL_MB = 300.0
STOP_GOAL_S = 2.0


def live_candles(args: argparse.Namespace) -> int:
    """Return how many candles per symbol the live part needs, with room for the warm-up."""
    return int(args.live_s * args.speed / 60) + 600


def daemon_env(work: Path, port: int, symbols: list[str], notify: str) -> dict[str, str]:
    """Return the daemon's environment: live on the simulator, the trained model, no training."""
    return {
        **os.environ,
        **live_env(work, port, symbols, db="live.db"),
        "NOTIFY_SOCKET": notify,
        "RETRAIN_INTERVAL": "0",
    }


def live_run(work: Path, args: argparse.Namespace, port: int, symbols: list[str]) -> dict[str, Any]:
    """Run the daemon: time to READY, RSS while live, SIGTERM → exit."""
    notify = str(work / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    sock.settimeout(600)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_paper_trader.py"), "run"],
        env=daemon_env(work, port, symbols, notify),
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=(work / "stderr.txt").open("wb"),
    )
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
        ready_s = time.perf_counter() - started
        child = psutil.Process(process.pid)
        samples = [child.memory_info().rss / 2**20]
        end = time.monotonic() + args.live_s
        while time.monotonic() < end:
            time.sleep(1.0)
            samples.append(child.memory_info().rss / 2**20)
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        stop_s = time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()
        sock.close()
    return {
        "ready_s": round(ready_s, 2),
        "rss_ready_mb": round(samples[0], 1),
        "rss_end_mb": round(samples[-1], 1),
        "rss_max_mb": round(max(samples), 1),
        "stop_s": round(stop_s, 3),
        "exit_code": code,
        **decided(work / "live.db"),
        "loop_lag_max_ms": worst_lag(work / "logs" / "performance.log"),
    }


def decided(db: Path) -> dict[str, Any]:
    """Return how many candles and decided instants the run's database holds."""
    with sqlite3.connect(db) as conn:
        candles = conn.execute("SELECT count(*) FROM candles").fetchone()[0]
        snapshots = conn.execute("SELECT count(*) FROM equity_snapshots").fetchone()[0]
    return {"candles_stored": candles, "instants_decided": snapshots}


def worst_lag(path: Path) -> float | None:
    """Return the worst loop lag of the performance log's check windows (ms)."""
    if not path.exists():
        return None
    worst = None
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        value = record.get("loop_lag_max_ms")
        if isinstance(value, (int, float)):
            worst = value if worst is None else max(worst, value)
    return worst


def result_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of ``bench/results.md``: RSS after warm-up, and the stop."""
    live, symbols = results["live"], results["symbols"]
    command = ".venv/bin/python bench/live.py"
    method = (
        f"run_paper_trader.py run, {symbols} symbols live on the simulator with a model, "
        f"1,000-candle REST warm-up each, {results['live_s']:g} s of live candles after READY=1"
    )
    return [
        row(
            f"RSS, {symbols} symbols live with a model, after warm-up",
            f"{live['rss_end_mb']:.0f} MB (at READY {live['rss_ready_mb']:.0f}, "
            f"max {live['rss_max_mb']:.0f})",
            goal=f"≤ {RSS_GOAL_MB:.0f} MB",
            met=live["rss_end_mb"] <= RSS_GOAL_MB,
            method=method + "; psutil every second",
            command=command,
        ),
        row(
            f"SIGTERM → exit, {symbols} symbols",
            f"{live['stop_s']:.2f} s (exit code {live['exit_code']})",
            goal=f"≤ {STOP_GOAL_S:g} s",
            met=live["stop_s"] <= STOP_GOAL_S and live["exit_code"] == 0,
            method=method + "; then SIGTERM, timed to the process's exit",
            command=command,
        ),
    ]


def report(results: dict[str, Any]) -> None:
    """Print the figures next to their goals."""
    live = results["live"]
    rss_met = live["rss_end_mb"] <= RSS_GOAL_MB
    stop_met = live["stop_s"] <= STOP_GOAL_S and live["exit_code"] == 0
    print(f"machine: {results['machine']}")
    print(f"{results['symbols']} symbols live on the simulator with a model, {results['live_s']} s")
    print(f"  spawn -> READY=1 (1,000-candle REST warm-up per symbol): {live['ready_s']} s")
    print(
        f"  RSS: {live['rss_ready_mb']} MB at READY, {live['rss_end_mb']} MB at the end, "
        f"max {live['rss_max_mb']} MB; goal <= {RSS_GOAL_MB:.0f} MB: "
        f"{'met' if rss_met else 'NOT met'}"
    )
    print(
        f"  SIGTERM -> exit {live['exit_code']}: {live['stop_s']} s; goal <= {STOP_GOAL_S} s: "
        f"{'met' if stop_met else 'NOT met'}"
    )
    print(
        f"  stored {live['candles_stored']:,} candles, decided {live['instants_decided']:,} "
        f"instants; worst loop lag of a 5 s window {live['loop_lag_max_ms']} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_live_options(parser, speed=60.0)
    add = parser.add_argument
    add("--live-s", type=float, default=60.0, help="seconds live after READY")
    add("--history", type=int, default=1100, help="candles the simulator has closed at start")
    args = parser.parse_args()
    symbols = symbol_names(args.symbols)
    results: dict[str, Any] = {"machine": machine(), "symbols": args.symbols}
    results["live_s"] = args.live_s
    with work_dir(args, "bench-live-") as work:
        results["model"] = train_model(work, args.train_candles, venue=Venue.BINANCE)
        candles = args.history + live_candles(args)
        with simulated_exchange(
            work, symbols, history=args.history, candles=candles, speed=args.speed
        ) as port:
            results["live"] = live_run(work, args, port, symbols)
    results["rows"] = result_rows(results)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
