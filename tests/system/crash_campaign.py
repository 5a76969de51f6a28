"""A crash campaign: the daemon live against the simulator with every fault on, killed with
``kill -9`` at random moments and started again on the same database each time, with Telegram
attached; then an uninterrupted run of the same market. ``tests/system/test_crash_campaign.py``
runs a short one, ``bench/crash.py`` the long one of ``make proof``.

A kill lands anywhere: before the daemon is ready, during the REST warm-up or the catch-up of
the candles it missed while it was down, or while it decides live candles. ``CATCHUP_LIMIT`` is
unlimited here: with a limit, entries on candles further behind the venue than the limit are
skipped on purpose, and an outage's length (wall-clock time) would choose which.
"""

import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import NotifySocket, daemon, notify_socket, query, simulator
from fakes.models import publish_model
from fakes.telegram_server import ThreadedTelegram, fake_telegram_thread
from parity import (
    ALL_FAULTS,
    TRADING,
    candles,
    decisions,
    dirty_market,
    handled,
    last_open_times,
    market_args,
    report,
    run_live,
)
from telegram_harness import CHAT, OPERATOR, Daemon, Delivery, delivered_once, notices

from paper_trader.interfaces.notify.policy import REPEAT_WINDOW_MS

HISTORY = 700  # the features are ready from candle 660
SPEED = 300  # a simulated minute every 0.2 s
CANDLES_PER_KILL = 45  # the market runs on while the daemon restarts (about 9 s a round)
HALT_AT, MISSING_AT = 90, 230  # ETH halts for 70 candles, BTC misses 6, this far into the live part
LEDGER_KINDS = ("trade_opened", "trade_closed", "breaker_tripped", "breaker_reset", "daily_report")


@dataclass(frozen=True)
class Plan:
    """How many kills, where they may land (seconds after a start), and the seed of both."""

    kills: int
    seed: int = 1
    earliest_s: float = 0.5
    latest_s: float = 9.0

    @property
    def live(self) -> int:
        """Return how many live candles the market has: enough to keep moving through the kills."""
        return max(400, 120 + self.kills * CANDLES_PER_KILL)

    def delays(self) -> list[float]:
        """Return the moment of each kill, in seconds after its start."""
        chance = random.Random(self.seed)
        return [round(chance.uniform(self.earliest_s, self.latest_s), 2) for _ in range(self.kills)]


@dataclass
class Outcome:
    """What the campaign found, beside what its runs left on disk."""

    plan: Plan
    kill_moments: list[dict[str, object]] = field(default_factory=list)
    crashed: dict[str, object] = field(default_factory=dict)
    clean: dict[str, object] = field(default_factory=dict)
    fills: tuple[int, int] = (0, 0)  # the crashed run's, the clean run's
    deliveries: list[Delivery] = field(default_factory=list)
    possible_repeats: int = 0
    messages: int = 0
    seconds: float = 0.0


def _settings(tmp: Path, tg: ThreadedTelegram) -> dict[str, str]:
    """Return the daemon's settings: trading on every signal, Telegram at the fake."""
    return subprocess_env(
        tmp,
        **TRADING,
        SYMBOLS="BTCUSDT,ETHUSDT",
        WARMUP_CANDLES=str(HISTORY),
        CATCHUP_LIMIT="10000000",
        STREAM_SILENCE_TIMEOUT="5",
        TELEGRAM_BOT_TOKEN=tg.token,
        TELEGRAM_CHAT_ID=str(CHAT),
        TELEGRAM_ALLOWED_USERS=str(OPERATOR),
        TELEGRAM_API_URL=tg.api_url,
        ERROR_NOTIFICATIONS_PER_HOUR="0",  # the caps are per wall hour: at x300 one holds 300
        TRADE_NOTIFICATIONS_PER_HOUR="0",
        STATUS_NOTIFICATIONS_PER_HOUR="0",
    )


def run_campaign(tmp: Path, plan: Plan, say: Callable[[str], None] = lambda _: None) -> Outcome:
    """Run the campaign in ``tmp``: the crashed run, then the uninterrupted one."""
    began = time.monotonic()
    outcome = Outcome(plan=plan)
    publish_model(tmp / "models", mirrored=True)
    live = plan.live
    halt = range(HISTORY + HALT_AT, HISTORY + HALT_AT + 70)
    missing = range(HISTORY + MISSING_AT, HISTORY + MISSING_AT + 6)
    paths = dirty_market(tmp, HISTORY + live, halt=halt, missing=missing)
    until = last_open_times(paths)
    market = ["--speed", str(SPEED), "--history", str(HISTORY), *market_args(paths)]
    with fake_telegram_thread() as tg:
        env = _settings(tmp, tg)
        crashed = tmp / "crashed"
        crashed.mkdir()
        run_env = {
            **env,
            "DB_PATH": str(crashed / "paper_trader.db"),
            "LOG_DIR": str(crashed / "logs"),
            "CACHE_DIR": str(crashed / "cache"),
        }
        with simulator(run_env, *market, *ALL_FAULTS) as sim:
            run_env.update(sim.env)
            for number, delay in enumerate(plan.delays(), start=1):
                outcome.kill_moments.append(_start_and_kill(run_env, delay))
                say(f"kill {number}/{plan.kills}: {outcome.kill_moments[-1]}")
            _finish(run_env, tg, until, outcome)
        outcome.crashed = report(crashed / "paper_trader.db", env)
        clean_env = {k: v for k, v in env.items() if not k.startswith("TELEGRAM_")}
        clean = run_live(tmp / "clean", clean_env, market, until, timeout=_market_s(live) + 120)
        outcome.clean = report(clean.db, clean_env)
    outcome.fills = (_count_fills(crashed / "paper_trader.db"), _count_fills(clean.db))
    outcome.seconds = round(time.monotonic() - began, 1)
    return outcome


def _market_s(live: int) -> float:
    """Return how long the live part of the market lasts (wall seconds), with a margin for a
    daemon that keeps up (a candle every 60 / SPEED s)."""
    return live * 60 / SPEED * 1.5


def _start_and_kill(env: Mapping[str, str], delay: float) -> dict[str, object]:
    """Start the daemon, ``kill -9`` it ``delay`` seconds later; say where it was."""
    db = Path(env["DB_PATH"])
    before = handled(db)
    with notify_socket() as notify, _running({**env, "NOTIFY_SOCKET": notify.path}) as process:
        time.sleep(delay)
        assert process.poll() is None, (db.parent / "daemon.out").read_text()[-3000:]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        ready = _was_ready(notify)
    after = handled(db)
    moved = sum(after.values()) > sum(before.values())
    return {"after_s": delay, "ready": ready, "decided": moved}


def _was_ready(notify: NotifySocket) -> bool:
    """Return whether the daemon had said READY=1 (reading what is still in the socket)."""
    try:
        notify.wait_for("READY=1", timeout=0.05)
    except AssertionError:
        return False
    return True


@contextmanager
def _running(env: Mapping[str, str]) -> Iterator[subprocess.Popen[str]]:
    """Run the daemon with its output appended to ``daemon.out`` beside its database."""
    with daemon(env, output=Path(env["DB_PATH"]).parent / "daemon.out") as process:
        yield process


def _finish(
    env: dict[str, str], tg: ThreadedTelegram, until: Mapping[str, int], outcome: Outcome
) -> None:
    """Start once more and run until the ledger handled the whole market and every
    notification is delivered; stop with SIGTERM."""
    db = Path(env["DB_PATH"])
    # A repeat of a noisy notification (a model's drift, say) waits for the notifier's repeat
    # window (10 min of the wall clock) to end before it goes out with its count.
    deadline = time.monotonic() + _market_s(outcome.plan.live) + REPEAT_WINDOW_MS / 1000 + 300
    with ExitStack() as stack:
        notify = stack.enter_context(notify_socket())
        process = stack.enter_context(_running({**env, "NOTIFY_SOCKET": notify.path}))
        notify.wait_for("READY=1", timeout=120)
        running = Daemon(tg, process, db, notify)
        while not (handled(db) == dict(until) and _all_sent(running)):
            assert process.poll() is None, (db.parent / "daemon.out").read_text()[-3000:]
            assert time.monotonic() < deadline, f"handled {handled(db)}, not {dict(until)}"
            time.sleep(0.2)
        outcome.deliveries = running.deliveries()
        messages = notices(tg)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    delivered_once(outcome.deliveries, messages)
    outcome.possible_repeats = sum(r.possible_repeat for r in outcome.deliveries)
    outcome.messages = len(messages)


def _all_sent(running: Daemon) -> bool:
    rows = running.deliveries()
    return bool(rows) and all(r.status == "sent" for r in rows)


def _count_fills(db: Path) -> int:
    return int(str(query(db, "SELECT count(*) FROM fills")[0][0]))


def fills(db: Path) -> list[tuple[object, ...]]:
    """Return every fill, without its row id, in the order they were made."""
    return query(
        db,
        "SELECT symbol, side, quantity, price, fee, slippage_bps, candle_time_ms, reason, "
        "fill_model FROM fills ORDER BY fill_id",
    )


def ledger_notices(db: Path) -> list[tuple[object, ...]]:
    """Return the outbox rows the ledger itself wrote (trades, breakers, reports), in order."""
    marks = ",".join("?" * len(LEDGER_KINDS))
    return query(
        db,
        f"SELECT kind, message FROM notification_outbox WHERE kind IN ({marks}) ORDER BY id",
        LEDGER_KINDS,
    )


def same_ledger(tmp: Path) -> dict[str, bool]:
    """Compare the crashed run's ledger with the clean run's, part by part."""
    crashed, clean = tmp / "crashed" / "paper_trader.db", tmp / "clean" / "paper_trader.db"
    return {
        "candles": candles(crashed) == candles(clean),
        "fills": fills(crashed) == fills(clean),
        "decisions": decisions(crashed) == decisions(clean),
        "ledger notices": ledger_notices(crashed) == ledger_notices(clean),
    }
