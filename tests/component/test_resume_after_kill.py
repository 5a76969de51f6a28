"""What a start after ``kill -9`` takes back of the trading step: the volatility breaker's
windows exactly as they stood at the last commit, not as they were last written whole.

The crash is a consistent copy of the database taken while the daemon runs (SQLite's backup:
what was committed, as ``kill -9`` leaves it); the start runs on the copy.
"""

import sqlite3
from pathlib import Path

from fakes.decision_rig import SteadyFeatures, feed, running

from paper_trader.domain import Candle
from paper_trader.trading.stage import WINDOWS_EVERY


class MovingVolatility(SteadyFeatures):
    """Feature rows whose ATR % differs on every candle, so each window value counts."""

    def atr_pct(self, candle: Candle) -> float:
        return 1.0 + (candle.open_time_ms // 60_000 % 97) / 50


def crash_copy(db: Path, to: Path) -> None:
    """Copy what is committed in ``db`` to ``to``, as a kill -9 would leave it."""
    with sqlite3.connect(db) as source, sqlite3.connect(to) as target:
        source.backup(target)


async def test_a_start_after_kill_9_has_the_volatility_windows_of_the_last_commit(
    tmp_path: Path,
) -> None:
    """Killed between two writes of the whole windows (every WINDOWS_EVERY instants), the
    start has each symbol's window value for value, the instants since the last write too."""
    db, crashed = tmp_path / "paper_trader.db", tmp_path / "crashed.db"
    killed_after = WINDOWS_EVERY + 37  # one whole write behind, 37 instants since
    async with running(db, MovingVolatility, capacity=512) as first:
        await feed(first, range(WINDOWS_EVERY))  # the windows are written whole once
        for minute in range(WINDOWS_EVERY, killed_after):  # then an instant a commit
            await feed(first, range(minute, minute + 1))
        crash_copy(db, crashed)
        at_kill = first.stage.trader.breakers.windows_snapshot()
    assert {len(w) for w in at_kill.values()} == {killed_after}
    with sqlite3.connect(crashed) as conn:
        samples = conn.execute("SELECT count(*) FROM volatility_samples").fetchone()[0]
    assert samples == 37 * len(at_kill)  # the ones since the windows were written whole

    async with running(crashed, MovingVolatility) as second:
        await second.stage.started.wait()
        assert second.stage.trader.breakers.windows_snapshot() == at_kill
        await feed(second, range(killed_after, killed_after + 3))
    with sqlite3.connect(crashed) as conn:  # the stop wrote the windows whole: none pending
        assert conn.execute("SELECT count(*) FROM volatility_samples").fetchone()[0] == 0
