"""Retention through the real writer on a real SQLite file: what goes, what stays, in steps."""

import random
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import aiosqlite
import pytest

from paper_trader.app.retention import Retention, RetentionPolicy
from paper_trader.broker.analytics import analyse
from paper_trader.clock import SystemClock
from paper_trader.settings import Settings
from paper_trader.storage import (
    Durability,
    Statement,
    StorageWriter,
    allow_page_release,
    open_database,
)
from paper_trader.storage.ledger_repository import equity_snapshots
from paper_trader.storage.retention import (
    AUDIT,
    DECISIONS,
    PREDICTIONS,
    PruneByTime,
    PruneCandles,
    ReleasePages,
)
from paper_trader.storage.thinning import HOUR_MS, ThinEquity

MINUTE = 60_000
DAY = 86_400_000
T0 = 1_700_000_000_000 // DAY * DAY


class Rows:
    """A FAST op inserting ``rows`` with one statement (test data, written by the writer)."""

    def __init__(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._statement = Statement(sql, rows)

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    def prepare(self) -> list[Statement]:
        """The one statement."""
        return [self._statement]


async def scalar(conn: aiosqlite.Connection, sql: str, *args: object) -> int:
    rows = list(await conn.execute_fetchall(sql, args))
    return int(rows[0][0])


def prediction(symbol: str, at_ms: int, outcome: str) -> tuple[object, ...]:
    return ("kraken", symbol, "1m", at_ms, "v1", "h", "100", 5, 0.1, 0.2, 0.5, 0.3, 0.1,
            "buy", 0.2, "{}", "{}", outcome)  # fmt: skip


async def add_predictions(writer: StorageWriter, rows: list[tuple[object, ...]]) -> None:
    await writer.write(Rows(
        "INSERT INTO predictions (venue, symbol, interval, open_time_ms, model_version, "
        "spec_hash, close, horizon, threshold, p_down, p_flat, p_up, score, strength, "
        "confidence, models_json, weights_json, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    ))  # fmt: skip


async def add_candles(writer: StorageWriter, rows: list[tuple[str, int]]) -> None:
    """Store (symbol, open time) candles of one kraken 1m series each."""
    await writer.write(Rows(
        "INSERT INTO candles (venue, symbol, interval, open_time_ms, open, high, low, close, "
        "volume) VALUES ('kraken', ?, '1m', ?, '1', '1', '1', '1', '1')",
        rows,
    ))  # fmt: skip


async def prune_all(writer: StorageWriter, make: object) -> list[int]:
    """Run ops from ``make`` until one says nothing more is due; return each op's rows."""
    steps = []
    while True:
        op = make()  # type: ignore[operator]
        await writer.write(op)
        steps.append(op.done.rows)
        if not op.done.more:
            return steps


async def test_predictions_go_after_their_retention_in_bounded_steps_pending_ones_stay(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Resolved predictions older than the retention (counted back from the newest one, in
    candle time) go, at most ``limit`` per transaction; newer ones and pending ones stay."""
    rows = [
        prediction(symbol, T0 + k * MINUTE, "pending" if k % 500 == 7 else "resolved")
        for k in range(3 * 1440)  # three days of minutes
        for symbol in ("A-USD", "B-USD", "C-USD")
    ]
    await add_predictions(writer, rows)
    newest = T0 + (3 * 1440 - 1) * MINUTE
    keep = DAY

    steps = await prune_all(
        writer, lambda: PruneByTime(table=PREDICTIONS, keep_ms=keep, limit=1000)
    )

    assert max(steps) <= 1000
    assert len(steps) > 5
    cutoff = newest - keep
    assert await scalar(reader, "SELECT count(*) FROM predictions WHERE open_time_ms < ? "
                        "AND outcome != 'pending'", cutoff) == 0  # fmt: skip
    kept = sum(1 for r in rows if int(r[3]) >= cutoff)  # type: ignore[call-overload]
    pending_old = sum(1 for r in rows if int(r[3]) < cutoff and r[-1] == "pending")  # type: ignore[call-overload]
    assert pending_old > 0
    assert await scalar(reader, "SELECT count(*) FROM predictions") == kept + pending_old
    assert sum(steps) == len(rows) - kept - pending_old
    assert await prune_all(writer, lambda: PruneByTime(table=PREDICTIONS, keep_ms=keep)) == [0]


async def test_decisions_and_the_audit_are_cut_by_their_own_clocks(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Decisions are cut back from their newest candle time; the audit by the wall-clock time
    given (it is stamped when a command came in)."""
    await writer.write(Rows(
        "INSERT INTO decisions (venue, symbol, interval, candle_time_ms, strength, score, "
        "confidence, model_version, action, side, detail) "
        "VALUES ('kraken', 'A-USD', '1m', ?, 'buy', 0.2, 0.3, 'v1', 'skipped', 'long', '')",
        [(T0 + k * HOUR_MS,) for k in range(100)],
    ))  # fmt: skip
    await writer.write(Rows(
        "INSERT INTO command_audit (at_ms, interface, chat_id, user_id, command, arguments, "
        "result, ok) VALUES (?, 'telegram', 1, 2, '/status', '', 'ok', 1)",
        [(T0 + k * DAY,) for k in range(10)],
    ))  # fmt: skip

    await prune_all(writer, lambda: PruneByTime(table=DECISIONS, keep_ms=10 * HOUR_MS, limit=7))
    await prune_all(writer, lambda: PruneByTime(table=AUDIT, before_ms=T0 + 4 * DAY, limit=3))

    assert await scalar(reader, "SELECT min(candle_time_ms) FROM decisions") == T0 + 89 * HOUR_MS
    assert await scalar(reader, "SELECT count(*) FROM decisions") == 11
    assert await scalar(reader, "SELECT min(at_ms) FROM command_audit") == T0 + 4 * DAY
    assert await scalar(reader, "SELECT count(*) FROM command_audit") == 6


async def test_candles_are_cut_per_series_back_from_that_series_newest(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Each series keeps ``keep_ms`` back from its own newest candle (a series that stopped
    keeps its last stretch); the ops walk the series in steps of at most ``limit`` rows."""
    series = {"A-USD": 3000, "B-USD": 1000, "C-USD": 2500}  # candles each, all from T0
    await add_candles(writer, [(s, T0 + k * MINUTE) for s, n in series.items() for k in range(n)])
    keep = 600 * MINUTE
    start, steps = None, []
    while True:
        op = PruneCandles(keep_ms=keep, start=start, limit=900)
        await writer.write(op)
        steps.append(op.done.rows)
        start = op.resume[0]
        if start is None:
            break

    assert max(steps) <= 900
    assert len(steps) >= 6
    for symbol, n in series.items():
        first = await scalar(
            reader, "SELECT min(open_time_ms) FROM candles WHERE symbol = ?", symbol
        )
        assert first == T0 + (n - 1 - 600) * MINUTE
        assert await scalar(reader, "SELECT count(*) FROM candles WHERE symbol = ?", symbol) == 601


def equity_walk(days: int, seed: int) -> list[tuple[int, str, str, str, str, int]]:
    """A minute-by-minute equity path with drawdowns, positions opening and closing."""
    rng = random.Random(seed)
    equity, peak, rows, holding = Decimal(10_000), Decimal(10_000), [], 0
    for k in range(days * 1440):
        equity = max(Decimal(1), equity + Decimal(rng.gauss(0, 12)).quantize(Decimal("0.01")))
        peak = max(peak, equity)
        if rng.random() < 0.02:
            holding = 0 if holding else rng.randint(1, 3)
        rows.append((T0 + k * MINUTE, str(equity), "0", str(equity), str(peak), holding))
    return rows


async def test_thinned_equity_keeps_the_reports_figures(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Past the detail period an hour keeps at most six snapshots, and the figures the report
    computes from them stay: the deepest drawdown, the daily and final equity, exposure and
    the annualised return exactly; the longest time under a peak within an hour each side."""
    await writer.write(Rows(
        "INSERT INTO equity_snapshots (candle_time_ms, cash, positions_value, equity, "
        "peak_equity, open_positions) VALUES (?, ?, ?, ?, ?, ?)",
        equity_walk(days=4, seed=5),
    ))  # fmt: skip
    before = await equity_snapshots(reader)
    figures = analyse([], before, initial_equity=Decimal(10_000), interval_ms=MINUTE)

    steps = await prune_all(writer, lambda: ThinEquity(detail_ms=DAY, hours=10))

    after = await equity_snapshots(reader)
    thinned = analyse([], after, initial_equity=Decimal(10_000), interval_ms=MINUTE)
    assert len(steps) > 1
    old = [s for s in after if s.candle_time_ms < T0 + 3 * DAY]
    assert len(old) <= 6 * 72
    assert len(old) < len(before) / 10
    assert [s for s in after if s.candle_time_ms >= T0 + 3 * DAY] == [
        s for s in before if s.candle_time_ms >= T0 + 3 * DAY
    ]
    assert sum(s.instants for s in after) == len(before)
    assert thinned.max_drawdown == figures.max_drawdown
    assert thinned.daily_equity == figures.daily_equity
    assert thinned.final_equity == figures.final_equity
    assert thinned.exposure == figures.exposure
    assert thinned.annualised_return == figures.annualised_return
    assert abs(thinned.max_drawdown_duration_ms - figures.max_drawdown_duration_ms) <= 2 * HOUR_MS  # type: ignore[operator]
    again = ThinEquity(detail_ms=DAY)
    await writer.write(again)
    assert again.done.rows == 0


async def test_a_new_database_gives_freed_pages_back(
    writer: StorageWriter, reader: aiosqlite.Connection, db_path: Path
) -> None:
    """Pages freed by pruning go back to the file system, so the file shrinks."""
    await add_predictions(
        writer, [prediction("A-USD", T0 + k * MINUTE, "resolved") for k in range(20_000)]
    )
    await prune_all(writer, lambda: PruneByTime(table=PREDICTIONS, keep_ms=MINUTE, limit=5000))
    free = await scalar(reader, "PRAGMA freelist_count")
    assert free > 100
    steps = await prune_all(writer, lambda: ReleasePages(pages=free // 3 + 1))

    assert len(steps) == 3
    assert sum(steps) == free
    assert await scalar(reader, "PRAGMA freelist_count") == 0


async def test_an_old_database_is_rewritten_once_to_give_pages_back(tmp_path: Path) -> None:
    """A file made before retention (auto_vacuum off) is rewritten once, keeping its rows."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE t (x)")
        old.executemany("INSERT INTO t VALUES (?)", [(b"x" * 500,)] * 1000)
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 0

    conn = await open_database(path)
    try:
        assert await allow_page_release(conn, path)
        assert await scalar(conn, "PRAGMA auto_vacuum") == 2  # incremental
        assert await scalar(conn, "SELECT count(*) FROM t") == 1000
        assert not await allow_page_release(conn, path)  # once
    finally:
        await conn.close()


@pytest.mark.parametrize("table", [PREDICTIONS, DECISIONS])
async def test_an_empty_table_has_nothing_to_prune(writer: StorageWriter, table: object) -> None:
    assert await prune_all(writer, lambda: PruneByTime(table=table, keep_ms=DAY)) == [0]  # type: ignore[arg-type]


async def test_a_round_prunes_every_kind_and_says_what_it_did(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """The retention service's round, on the real writer: each kind goes by its own policy,
    the freed pages go back, and the health line counts it."""
    await add_predictions(
        writer, [prediction("A-USD", T0 + k * MINUTE, "resolved") for k in range(3000)]
    )
    await add_candles(writer, [("A-USD", T0 + k * MINUTE) for k in range(3000)])
    policy = RetentionPolicy(
        decisions_ms=1000 * MINUTE, equity_detail_ms=0, candles_ms=2000 * MINUTE, audit_ms=0
    )
    retention = Retention(writer, policy, candle_time=lambda: T0, clock=SystemClock(), pause_s=0)

    counts = await retention.round()

    assert counts["predictions"] == 1999  # before the newest minus 1,000 minutes
    assert counts["decisions"] == 0
    assert counts["candles"] == 999
    assert "command_audit" not in counts  # 0: kept for ever
    assert "equity_snapshots" not in counts
    assert counts["pages_released"] > 0
    assert await scalar(reader, "PRAGMA freelist_count") == 0
    assert retention.health().detail == "1 rounds, 2998 rows pruned"


def test_candles_are_kept_as_long_as_training_and_the_warm_up_need() -> None:
    """A candle retention shorter than TRAINING_CANDLES + WARMUP_CANDLES is lengthened."""
    short = Settings(_env_file=None, candle_retention_days=1, interval="1h")
    assert RetentionPolicy.of(short).candles_ms == (43_200 + 1000) * HOUR_MS + DAY
    long = Settings(_env_file=None, candle_retention_days=3650, interval="1m")
    assert RetentionPolicy.of(long).candles_ms == 3650 * DAY
    assert RetentionPolicy.of(Settings(_env_file=None, candle_retention_days=0)).candles_ms == 0


def steps_of(*stretches: tuple[int, int]) -> list[int]:
    """Minute-by-minute equities from (minutes, equity) stretches."""
    return [equity for minutes, equity in stretches for _ in range(minutes)]


@pytest.mark.parametrize(
    ("initial", "path"),
    [
        # From an earlier hour's peak (200) the deepest point is the hour's lowest (90), not
        # the trough of the hour's own deepest fall (130 -> 95).
        (
            200,
            steps_of(
                (1, 200), (59, 199), (10, 110), (10, 90), (10, 130), (10, 95), (20, 96), (60, 96)
            ),
        ),
        # From a peak within the hour (400) the deepest fall ends at 300, which is neither
        # the hour's first, last, lowest (250) nor highest equity.
        (250, steps_of((60, 250), (1, 250), (9, 400), (10, 300), (40, 390), (60, 390))),
    ],
    ids=["from-an-earlier-peak", "within-the-hour"],
)
async def test_thinning_keeps_the_deepest_drawdown_whichever_peak_it_falls_from(
    writer: StorageWriter, reader: aiosqlite.Connection, initial: int, path: list[int]
) -> None:
    """The two ways a drawdown can be deepest inside a thinned hour both survive thinning."""
    await writer.write(Rows(
        "INSERT INTO equity_snapshots (candle_time_ms, cash, positions_value, equity, "
        "peak_equity, open_positions) VALUES (?, ?, '0', ?, ?, 0)",
        [(T0 + k * MINUTE, str(e), str(e), str(e)) for k, e in enumerate(path)],
    ))  # fmt: skip
    before = await equity_snapshots(reader)
    full = analyse([], before, initial_equity=Decimal(initial), interval_ms=MINUTE)

    await prune_all(writer, lambda: ThinEquity(detail_ms=30 * MINUTE))

    after = await equity_snapshots(reader)
    assert len([s for s in after if s.candle_time_ms < T0 + 2 * HOUR_MS]) <= 12  # of 120
    thinned = analyse([], after, initial_equity=Decimal(initial), interval_ms=MINUTE)
    assert thinned.max_drawdown == full.max_drawdown
