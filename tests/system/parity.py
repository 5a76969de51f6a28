"""Live runs against the simulator and replays of their candles, compared by ledger digest."""

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from daemon_harness import BUSY, CLI, query, run_cli, simulator

from paper_trader.domain import Candle, Interval
from paper_trader.simulator.market import synthetic_series
from paper_trader.simulator.synthetic import write_csv

START_MS = 1_672_531_200_000
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADING = {
    **BUSY,
    "STOP_LOSS_COOLDOWN": "0",
    "PREDICTION_TIMEOUT": "30",  # a loaded CI machine must not turn inference into a deviation
}
# Every fault the simulator has, at rates a bad day on a real venue would show.
ALL_FAULTS = (
    "--drop-every", "25", "--silence-every", "40", "--silence-for", "3",
    "--shutdown-every", "35", "--duplicate-rate", "0.05", "--reorder-rate", "0.03",
    "--garbage-rate", "0.01", "--final-drop-rate", "0.03", "--rest-429-rate", "0.06",
    "--rest-418-rate", "0.02", "--rest-5xx-rate", "0.03", "--retry-after", "1",
    "--fault-seed", "7",
)  # fmt: skip


def dirty_market(directory: Path, count: int, *, halt: range, missing: range) -> list[Path]:
    """Write the simulator's synthetic BTC and ETH markets as CSVs, made dirty: ETH halts
    (zero-volume flat candles at the last close) over ``halt``, BTC has no candles over
    ``missing`` (the venue lost them). Return the CSVs in ``SYMBOLS`` order."""
    series = synthetic_series(SYMBOLS, seed=7, count=count, interval=Interval.M1, start_ms=START_MS)
    eth = series["ETHUSDT"]
    for i in halt:
        price = eth[halt.start - 1].close
        eth[i] = Candle(
            venue=eth[i].venue,
            symbol=eth[i].symbol,
            interval=eth[i].interval,
            open_time_ms=eth[i].open_time_ms,
            open=price,
            high=price,
            low=price,
            close=price,
            volume=Decimal(0),
        )
    series["BTCUSDT"] = [c for i, c in enumerate(series["BTCUSDT"]) if i not in missing]
    paths = []
    for symbol in SYMBOLS:
        path = directory / f"market-{symbol}.csv"
        write_csv(iter(series[symbol]), path)
        paths.append(path)
    return paths


def market_args(paths: Sequence[Path]) -> list[str]:
    """Return the simulator arguments that serve ``paths`` as ``SYMBOLS``."""
    args: list[str] = []
    for path, symbol in zip(paths, SYMBOLS, strict=True):
        args += ["--csv", str(path), "--symbol", symbol]
    return args


def last_open_times(paths: Sequence[Path]) -> dict[str, int]:
    """Return the last open time of each market CSV, by stored symbol (``BTC-USDT``)."""
    out = {}
    for path, symbol in zip(paths, SYMBOLS, strict=True):
        last = path.read_text().strip().splitlines()[-1]
        out[f"{symbol[:-4]}-{symbol[-4:]}"] = int(last.split(",")[0])
    return out


def handled(db: Path) -> dict[str, int]:
    """Return the last candle the ledger handled, per symbol."""
    rows = query(db, "SELECT state_json FROM trading_state")
    return {} if not rows else dict(json.loads(str(rows[0][0]))["handled"])


@dataclass(frozen=True)
class LiveRun:
    """A finished live run: its database and the counters its feed logged at the stop."""

    db: Path
    log: list[dict[str, object]]

    def feed_counters(self) -> dict[str, object]:
        """Return the ``feed_stopped`` line's fields."""
        return next(e for e in reversed(self.log) if e["event"] == "feed_stopped")


def run_live(
    directory: Path,
    env: Mapping[str, str],
    sim_args: Sequence[str],
    until: Mapping[str, int],
    *,
    timeout: float = 300,
) -> LiveRun:
    """Run the daemon against the simulator until its ledger handled ``until``; stop it."""
    directory.mkdir(parents=True, exist_ok=True)
    run_env = {
        **env,
        "DB_PATH": str(directory / "paper_trader.db"),
        "LOG_DIR": str(directory / "logs"),
        "CACHE_DIR": str(directory / "cache"),
    }
    db = Path(run_env["DB_PATH"])
    with simulator(run_env, *sim_args) as sim, _daemon({**run_env, **sim.env}) as process:
        deadline = time.monotonic() + timeout
        while handled(db) != dict(until):
            assert process.poll() is None, (directory / "daemon.err").read_text()[-3000:]
            assert time.monotonic() < deadline, f"handled {handled(db)}, not {dict(until)}"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    lines = (directory / "logs" / "paper_trader.log").read_text().splitlines()
    return LiveRun(db=db, log=[json.loads(line) for line in lines])


@contextmanager
def _daemon(env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``run`` with its console output in files beside its database (a long run logs
    more than a pipe nobody reads can hold)."""
    workdir = Path(env["DB_PATH"]).parent
    with (workdir / "daemon.out").open("wb") as out, (workdir / "daemon.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, CLI, "run"],
            env=dict(env),
            cwd=workdir,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)


def report(db: Path, env: Mapping[str, str]) -> dict[str, object]:
    """Return ``report``'s JSON for ``db``."""
    result = run_cli(["report", "--db", str(db), "--json"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def replay(db: Path, directory: Path, env: Mapping[str, str]) -> dict[str, object]:
    """Export the candles ``db``'s ledger handled to CSVs, replay them, return the summary."""
    directory.mkdir(parents=True, exist_ok=True)
    paths, symbols = [], []
    for symbol, last in sorted(handled(db).items()):
        path = directory / f"{symbol}.csv"
        rows = query(
            db,
            "SELECT open_time_ms, open, high, low, close, volume FROM candles "
            "WHERE symbol = ? AND open_time_ms <= ? ORDER BY open_time_ms",
            (symbol, last),
        )
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp_ms", "open", "high", "low", "close", "volume"])
            writer.writerows(rows)
        paths.append(str(path))
        symbols.append(symbol)
    out = directory / "replay.json"
    result = run_cli(
        [
            "replay", "--csv", *paths, "--symbol", *symbols, "--interval", "1m",
            "--db", str(directory / "replay.db"), "--report", str(out),
        ],
        env,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(out.read_text())
    return summary


def candles(db: Path) -> list[tuple[object, ...]]:
    """Return every stored candle."""
    return query(
        db,
        "SELECT symbol, open_time_ms, open, high, low, close, volume FROM candles "
        "ORDER BY symbol, open_time_ms",
    )


def decisions(db: Path) -> list[tuple[object, ...]]:
    """Return every decision with what candles determine (no wall-clock field)."""
    return query(
        db,
        "SELECT symbol, candle_time_ms, strength, round(score, 9), action, side, quantity, "
        "price, rule FROM decisions ORDER BY candle_time_ms, symbol",
    )


def outbox_kinds(db: Path) -> list[str]:
    """Return the kinds of the events the run put in the notification outbox."""
    return [str(kind) for (kind,) in query(db, "SELECT kind FROM notification_outbox")]
