"""The soak of ``make proof``: the real daemon live on the simulator for days of candle time at
100 symbols, with a model, retraining, Telegram and status-feed clients, sampled every hour.

Method. A model is trained once, untimed, as ``bench/live.py`` trains it, and published in a
fresh ``MODELS_DIR``. The simulated exchange (``python -m paper_trader.simulator``) serves
``--symbols`` synthetic symbols of 1m candles: 1,100 closed at start (the 1,000-candle REST
warm-up) and then ``--days`` of them, a candle of every symbol at once every 60 / ``--speed``
seconds (x300: a pace the daemon keeps up with on this 2-core machine beside other work; at
x400 it fell behind while a fuzzing run and a retraining shared the cores, and a soak is not
a flood).
``run_paper_trader.py run`` trades it as a user runs it: JSON logs, health checks every 5 s,
Telegram pointed at the fake Bot API server (in this process, a thread of its own), ``--clients``
status-feed clients reading every message (a thread of their own), retraining every
``RETRAIN_INTERVAL`` (600 s, the least it takes) on the stored candles, and retention short
enough to bite within the run: decisions, predictions, the audit and notifications after a day,
equity snapshots thinned after a day, candles after the least training and warm-up need (2,000
+ 1,000 candles + a day, so about 3.1 days).

Every simulated hour (60 candles handled by the ledger) the process is sampled: RSS, open file
descriptors and threads (psutil), asyncio tasks and the event loop's lag p99 (the daemon's own
``performance.log``, its latest 5 s window), the database's size (file, WAL and shared memory),
the outbox's undelivered notifications, and the rows of the pruned tables. The figures: RSS's
growth from the end of the first simulated day to the end (goal < 5 %) and its slope; each
count's floor over the last day against its ceiling over the first (goal: none grows: a leak
ratchets the floor up, while a retraining's pipes and threads come and go); the database size
over the last simulated day, once retention has bitten (goal: bounded, < 5 % growth); and
the outbox: once the market is over, the daemon runs on until every notification is
delivered (goal: all of them, at the chat's pace of about one a second).
The samples go to ``bench/results/soak.csv``, the plot (RSS, database size, loop lag over
simulated time) to ``bench/results/soak.png``.

    .venv/bin/python bench/soak.py [--symbols 100] [--days 7] [--speed 300] [--json FILE]
"""

import argparse
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import psutil  # noqa: E402
from fakes.telegram_server import ThreadedTelegram, fake_telegram_thread  # noqa: E402
from live_common import add_live_options, live_env, simulated_exchange, symbol_names, work_dir  # noqa: E402
from pipeline import machine, train_model  # noqa: E402
from soak_clients import FeedClients  # noqa: E402
from soak_report import plot, result_rows, verdicts, write_csv  # noqa: E402

from paper_trader.domain import Venue  # noqa: E402

HOUR_CANDLES = 60
DRAIN_TIMEOUT_S = 1800.0  # the outbox after the market: at about a message a second per chat
HOUR_MS = HOUR_CANDLES * 60_000
START_MS = 1_672_531_200_000  # 2023-01-01 00:00 UTC
DAY_HOURS = 24
HISTORY = 1_100
RETENTION = {
    "DECISION_RETENTION_DAYS": "1",
    "EQUITY_DETAIL_DAYS": "1",
    "CANDLE_RETENTION_DAYS": "1",  # lengthened to training + warm-up + a day
    "AUDIT_RETENTION_DAYS": "1",
    "NOTIFICATION_RETENTION_DAYS": "1",
}
# Telegram's limits are the wall clock's (the notifier paces a chat to about a message a second),
# and so are the caps per hour: at x300 a wall hour holds 300 hours of candles, and every
# notification over a cap would wait for the wall hour to end. The soak turns the caps off
# (0, a setting a user may choose too) and trades at the default risk settings, so the chat's
# own pace keeps up with the notifications of the compressed days.
NOTIFY = {
    "ERROR_NOTIFICATIONS_PER_HOUR": "0",
    "TRADE_NOTIFICATIONS_PER_HOUR": "0",
    "STATUS_NOTIFICATIONS_PER_HOUR": "0",
}


def daemon_env(work: Path, port: int, symbols: list[str], tg: ThreadedTelegram) -> dict[str, str]:
    """Return the daemon's environment: live on the simulator, retraining, Telegram, retention."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NOTIFY_"))},
        **live_env(work, port, symbols, db="soak.db"),
        "RETRAIN_INTERVAL": "600",
        "TRAINING_CANDLES": "2000",
        "CATCHUP_LIMIT": "10000000",
        "PREDICTION_TIMEOUT": "30",
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_CHAT_ID": "111",
        "TELEGRAM_ALLOWED_USERS": "111",
        "TELEGRAM_API_URL": tg.api_url,
        **RETENTION,
        **NOTIFY,
    }


def read_only(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run a read-only query ([] while the database or its tables do not exist yet)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def handled_through(db: Path) -> int:
    """Return the open time of the oldest of the symbols' last candles the ledger handled."""
    rows = read_only(db, "SELECT state_json FROM trading_state")
    handled = json.loads(rows[0][0])["handled"] if rows else {}
    return min(handled.values()) if handled else 0


def latest_performance(logs: Path) -> dict[str, Any]:
    """Return the latest ``performance.log`` line (the daemon's last 5 s health window)."""
    path = logs / "performance.log"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 8192))
        lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    return json.loads(lines[-1]) if len(lines) > 1 else {}


def db_size_mb(db: Path) -> float:
    """Return the database's size with its WAL and shared memory, in MB."""
    files = (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
    return sum(p.stat().st_size for p in files if p.exists()) / 2**20


_TABLE_ROWS = {
    "candles": "SELECT count(*) FROM candles",
    "decisions": "SELECT count(*) FROM decisions",
    "predictions": "SELECT count(*) FROM predictions",
    "equity_snapshots": "SELECT count(*) FROM equity_snapshots",
    "outbox": "SELECT count(*) FROM notification_outbox",
    "outbox_pending": "SELECT count(*) FROM notification_deliveries WHERE status = 'pending'",
    "trades": "SELECT count(*) FROM trades",
}


def sample(hour: int, process: psutil.Process, work: Path, clients: FeedClients) -> dict[str, Any]:
    """Return one hourly sample of the daemon's resources and its database."""
    db = work / "soak.db"
    with process.oneshot():
        rss = process.memory_info().rss / 2**20
        fds, threads = process.num_fds(), process.num_threads()
    perf = latest_performance(work / "logs")
    rows = {name: (read_only(db, sql) or [(0,)])[0][0] for name, sql in _TABLE_ROWS.items()}
    return {
        "hour": hour,
        "wall_s": round(time.monotonic() - clients.started, 1),
        "rss_mb": round(rss, 1),
        "open_fds": fds,
        "threads": threads,
        "tasks": perf.get("tasks", 0),
        "loop_lag_p99_ms": perf.get("loop_lag_p99_ms", 0.0),
        "db_mb": round(db_size_mb(db), 2),
        **rows,
        "feed_messages": clients.messages(),
    }


@contextmanager
def running_daemon(work: Path, env: Mapping[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``run_paper_trader.py run``; SIGTERM it at the end (SIGKILL if it hangs)."""
    with (work / "daemon.err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_paper_trader.py"), "run"],
            env=dict(env),
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def listening_url(logs: Path, event: str, deadline: float) -> str:
    """Wait for the daemon's log line ``event`` and return its ``url``."""
    path = logs / "paper_trader.log"
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                if entry.get("event") == event:
                    return str(entry["url"])
        time.sleep(0.5)
    raise SystemExit(f"the daemon never logged {event}")


@contextmanager
def simulator(work: Path, args: argparse.Namespace, symbols: list[str]) -> Iterator[int]:
    """Run the simulated exchange for the soak; yield its port."""
    candles = HISTORY + args.days * DAY_HOURS * HOUR_CANDLES + 2 * HOUR_CANDLES
    extra = ["--start-ms", str(START_MS), *args.faults.split()]
    with simulated_exchange(
        work, symbols, history=HISTORY, candles=candles, speed=args.speed, extra=extra
    ) as port:
        yield port


def soak(
    work: Path, args: argparse.Namespace, port: int, symbols: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the daemon until it handled ``--days`` of live candles, then until its outbox is
    delivered; return the hourly samples and how the outbox drained."""
    with ExitStack() as stack:
        tg = stack.enter_context(fake_telegram_thread())
        p = stack.enter_context(running_daemon(work, daemon_env(work, port, symbols, tg)))
        feed = listening_url(work / "logs", "status_feed_listening", time.monotonic() + 900)
        clients = stack.enter_context(FeedClients(feed, args.clients))
        samples = sample_hours(p, work, args.days * DAY_HOURS, clients)
        drain = drain_outbox(work / "soak.db", samples[-1]["outbox_pending"])
        clients.check()
        drain["telegram_messages"] = len(tg.delivered())
        print(f"outbox: {drain}", flush=True)
    return samples, drain


def drain_outbox(db: Path, pending: int, timeout_s: float = DRAIN_TIMEOUT_S) -> dict[str, Any]:
    """Wait until no notification waits (the market is over: none is added); return how long
    it took, or that it did not within ``timeout_s``."""
    started = time.monotonic()
    sql = _TABLE_ROWS["outbox_pending"]
    while (left := (read_only(db, sql) or [(0,)])[0][0]) and time.monotonic() - started < timeout_s:
        time.sleep(0.5)
    return {
        "pending_at_end": pending,
        "left": left,
        "drain_s": round(time.monotonic() - started, 1),
    }


def sample_hours(
    p: subprocess.Popen[bytes], work: Path, hours: int, clients: FeedClients
) -> list[dict[str, Any]]:
    """Sample the daemon each time its ledger has handled one more hour of live candles."""
    live_ms = START_MS + (HISTORY - 1) * 60_000  # the last candle closed when the clock starts
    child = psutil.Process(p.pid)
    samples: list[dict[str, Any]] = []
    while len(samples) < hours:
        if p.poll() is not None:
            raise SystemExit(f"the daemon exited with {p.returncode}: see {work}")
        if (handled_through(work / "soak.db") - live_ms) // HOUR_MS > len(samples):
            samples.append(sample(len(samples) + 1, child, work, clients))
            print(format_sample(samples[-1]), flush=True)
        time.sleep(0.25)
    return samples


def format_sample(s: Mapping[str, Any]) -> str:
    """Return one sample as a progress line."""
    return (
        f"hour {s['hour']:4d} ({s['wall_s']:7.0f} s): RSS {s['rss_mb']:6.1f} MB, "
        f"db {s['db_mb']:7.1f} MB, fds {s['open_fds']}, threads {s['threads']}, "
        f"tasks {s['tasks']}, lag p99 {s['loop_lag_p99_ms']} ms, outbox {s['outbox_pending']}, "
        f"trades {s['trades']}"
    )


def retrainings(logs: Path) -> dict[str, int]:
    """Return how many retrainings the run finished, and how many failed or were promoted."""
    counts = {"finished": 0, "failed": 0, "promoted": 0}
    for line in (logs / "paper_trader.log").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("event") == "retrain_finished":
            counts["finished"] += 1
            counts["failed"] += entry.get("exit_code") != 0
            counts["promoted"] += bool(entry.get("promoted"))
    return counts


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train, start the simulator and soak the daemon; return the samples and the run's facts."""
    symbols = symbol_names(args.symbols)
    with work_dir(args, "bench-soak-") as work:
        model = train_model(work, args.train_candles, venue=Venue.BINANCE)
        with simulator(work, args, symbols) as port:
            samples, drain = soak(work, args, port, symbols)
        return samples, {"model": model, "retrainings": retrainings(work / "logs"), "outbox": drain}


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Return the samples of an earlier run's CSV, as numbers."""
    with path.open(encoding="utf-8") as handle:
        return [
            {k: float(v) if "." in v else int(v) for k, v in r.items()}
            for r in csv.DictReader(handle)
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_live_options(parser, speed=300.0)
    add = parser.add_argument
    add("--days", type=int, default=7, help="simulated days of live candles (at least 2)")
    add("--clients", type=int, default=3, help="status-feed clients reading every message")
    add("--out", type=Path, default=BENCH / "results", help="where soak.csv and soak.png go")
    add("--faults", default="", help="simulator fault options, e.g. '--drop-every 30'")
    add("--from-csv", type=Path, metavar="CSV", help="judge and plot an earlier run's samples")
    args = parser.parse_args()
    if args.days < 2:
        parser.error("--days must be at least 2: the first day is the baseline")
    started = time.monotonic()
    if args.from_csv:
        samples, facts = read_csv(args.from_csv), {}
    else:
        samples, facts = run(args)
    v = verdicts(samples, facts.get("outbox"))
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.from_csv:
        write_csv(samples, args.out / "soak.csv")
    plot(samples, args.out / "soak.png", title=f"{args.symbols} symbols, x{args.speed:g}")
    results = {
        "machine": machine(),
        **facts,
        "symbols": args.symbols,
        "days": args.days,
        "speed": args.speed,
        "seconds": round(time.monotonic() - started, 1),
        "verdicts": v,
        "rows": result_rows(args, v),
    }
    for r in results["rows"]:
        verdict = "met" if r["met"] else "NOT met"
        print(f"{r['measure']}: {r['figure']}; goal {r['goal']}: {verdict}")
    print(f"retrainings: {facts.get('retrainings')}")
    print(f"samples: {args.out / 'soak.csv'}, plot: {args.out / 'soak.png'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["met"] is not False for r in results["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
