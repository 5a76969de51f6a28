"""Replay throughput: candles per second from CSV through the supervised daemon into SQLite.

Method: generate a seeded synthetic 1m candle CSV, then run the real CLI
(`run_paper_trader.py replay`) as a subprocess against a fresh database, several times.
Reported: the daemon's own figure (candles handled per second between start-up and the
orderly stop, validation pass excluded) and the wall time of the whole command (interpreter
start, CSV validation, daemon, report). Median of the runs.

    .venv/bin/python bench/replay.py [--candles 200000] [--runs 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paper_trader.simulator.synthetic import generate_candles, write_csv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv = work / "candles.csv"
        write_csv(generate_candles(count=args.candles, seed=11), csv)
        daemon_rates, walls = [], []
        for run in range(args.runs):
            db = work / f"run{run}.db"
            env = {**os.environ, "LOG_DIR": str(work / "logs"), "LOG_LEVEL": "WARNING"}
            command = [
                sys.executable,
                str(ROOT / "run_paper_trader.py"),
                "replay",
                "--csv",
                str(csv),
                "--symbol",
                "BTCUSDT",
                "--interval",
                "1m",
                "--db",
                str(db),
            ]
            started = time.perf_counter()
            result = subprocess.run(
                command, env=env, cwd=work, capture_output=True, text=True, check=True
            )
            walls.append(time.perf_counter() - started)
            summary = json.loads(result.stdout)
            assert summary["candles"] == args.candles, summary
            daemon_rates.append(summary["replay"]["candles_per_s"])
    print(f"replay of {args.candles} candles, {args.runs} runs, median:")
    print(
        f"  daemon throughput : {statistics.median(daemon_rates):,.0f} candles/s "
        f"(runs: {', '.join(f'{r:,.0f}' for r in daemon_rates)})"
    )
    print(
        f"  whole command     : {statistics.median(walls):.2f} s wall "
        f"= {args.candles / statistics.median(walls):,.0f} candles/s incl. start-up and validation"
    )


if __name__ == "__main__":
    main()
