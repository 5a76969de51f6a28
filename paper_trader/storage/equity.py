"""The equity curve at a coarser step: the last snapshot of each bucket of candle time.

A live run writes one equity snapshot per decision instant (1440 a day on 1m candles); reports,
charts and the value at risk need one per day or per hour, which SQLite picks in one query
instead of the caller reading every row.
"""

from decimal import Decimal
from typing import Any

import aiosqlite

from paper_trader.domain.trading import EquitySnapshot

SNAPSHOT_COLUMNS = (
    "candle_time_ms, cash, positions_value, equity, peak_equity, open_positions, instants, "
    "open_instants"
)
_CLOSES = f"""
SELECT {", ".join("e." + c for c in SNAPSHOT_COLUMNS.split(", "))}
FROM equity_snapshots AS e
JOIN (
    SELECT MAX(candle_time_ms) AS last FROM equity_snapshots
    WHERE candle_time_ms >= ? GROUP BY candle_time_ms / ?
) AS b ON e.candle_time_ms = b.last
ORDER BY e.candle_time_ms
"""


async def equity_closes(
    conn: aiosqlite.Connection, *, since_ms: int, bucket_ms: int
) -> list[EquitySnapshot]:
    """Return the last snapshot of every ``bucket_ms`` bucket from ``since_ms`` on, in order.

    Buckets are aligned on the Unix epoch (a ``bucket_ms`` of a day gives UTC days).
    """
    if bucket_ms < 1:
        raise ValueError(f"bucket_ms must be at least 1, not {bucket_ms}")
    rows = await conn.execute_fetchall(_CLOSES, (since_ms, bucket_ms))
    return [snapshot_of(r) for r in rows]


async def first_snapshot_ms(conn: aiosqlite.Connection, *, since_ms: int) -> int | None:
    """Return the candle time of the first snapshot at or after ``since_ms`` (None if none)."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT MIN(candle_time_ms) FROM equity_snapshots WHERE candle_time_ms >= ?",
            (since_ms,),
        )
    )
    return None if not rows or rows[0][0] is None else int(rows[0][0])


async def last_snapshot_before(conn: aiosqlite.Connection, ms: int) -> EquitySnapshot | None:
    """Return the last snapshot at or before ``ms`` (the equity a window starts from)."""
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {SNAPSHOT_COLUMNS} FROM equity_snapshots WHERE candle_time_ms <= ? "
            "ORDER BY candle_time_ms DESC LIMIT 1",
            (ms,),
        )
    )
    if not rows:
        return None
    return snapshot_of(rows[0])


def snapshot_of(r: Any) -> EquitySnapshot:
    """Return the snapshot of a row of ``SNAPSHOT_COLUMNS``."""
    return EquitySnapshot(
        candle_time_ms=int(r[0]),
        cash=Decimal(r[1]),
        positions_value=Decimal(r[2]),
        equity=Decimal(r[3]),
        peak_equity=Decimal(r[4]),
        open_positions=int(r[5]),
        instants=int(r[6]),
        open_instants=None if r[7] is None else int(r[7]),
    )
