"""Thinning the equity snapshots: every instant for the detail period, a few per hour after.

An hour older than the detail period keeps at most six of its snapshots: the first, the last,
the lowest and the highest equity, and the peak and trough of the deepest fall within the
hour. Each kept snapshot stands for the instants dropped before it (``instants``, and
``open_instants`` of them with a position open), so what ``report`` computes from them stays
what it was:

- the deepest drawdown, exactly: a fall measured from a peak of an earlier hour is deepest at
  the hour's lowest equity, and one from a peak within the hour is at most the hour's deepest
  fall (both kept), while every peak a kept snapshot is measured from is a real one;
- the final and each day's closing equity, the span, and exposure (weighted by ``instants``);
- only the longest time under a peak can move, by less than an hour at each end.

Hours are thinned oldest first, up to ``hours`` per op, and the metadata key
``equity_thinned_through_ms`` says how far; thinning an hour twice changes nothing.
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from paper_trader.storage.ops import UPSERT_METADATA
from paper_trader.storage.retention import OneStep, Pruned

HOUR_MS = 3_600_000
THINNED_THROUGH = "equity_thinned_through_ms"


@dataclass(frozen=True, slots=True)
class _Row:
    time_ms: int
    equity: Decimal
    instants: int
    open_instants: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinEquity(OneStep):
    """Thin up to ``hours`` whole hours of snapshots older than ``detail_ms`` before the
    newest one (see the module's docstring)."""

    detail_ms: int
    hours: int = 24
    done: Pruned = field(default_factory=Pruned)

    def run(self, conn: sqlite3.Connection) -> None:
        span = _span(conn, self.detail_ms)
        if span is None:
            return
        start, cutoff = span
        end = min(cutoff, start + self.hours * HOUR_MS)
        rows = [
            _Row(int(t), Decimal(e), int(n), int(o))
            for t, e, n, o in conn.execute(
                "SELECT candle_time_ms, equity, instants, "
                "coalesce(open_instants, open_positions > 0) FROM equity_snapshots "
                "WHERE candle_time_ms >= ? AND candle_time_ms < ? ORDER BY candle_time_ms",
                (start, end),
            )
        ]
        kept: list[tuple[int, int, int]] = []
        dropped: list[tuple[int]] = []
        for hour in _hours(rows):
            keep = kept_in(hour)
            instants = opened = 0
            for index, row in enumerate(hour):
                instants, opened = instants + row.instants, opened + row.open_instants
                if index in keep:
                    kept.append((instants, opened, row.time_ms))
                    instants = opened = 0
                else:
                    dropped.append((row.time_ms,))
        conn.executemany(
            "UPDATE equity_snapshots SET instants = ?, open_instants = ? WHERE candle_time_ms = ?",
            kept,
        )
        conn.executemany("DELETE FROM equity_snapshots WHERE candle_time_ms = ?", dropped)
        conn.execute(UPSERT_METADATA, (THINNED_THROUGH, str(end)))
        self.done.rows = len(dropped)
        self.done.more = end < cutoff


def _span(conn: sqlite3.Connection, detail_ms: int) -> tuple[int, int] | None:
    """Return (the first hour not yet thinned, the first hour of the detail period)."""
    newest, oldest = conn.execute(
        "SELECT max(candle_time_ms), min(candle_time_ms) FROM equity_snapshots"
    ).fetchone()
    if newest is None:
        return None
    cutoff = (int(newest) - detail_ms) // HOUR_MS * HOUR_MS
    row = conn.execute("SELECT value FROM metadata WHERE key = ?", (THINNED_THROUGH,)).fetchone()
    start = max(int(oldest) // HOUR_MS * HOUR_MS, int(row[0]) if row else 0)
    return (start, cutoff) if start < cutoff else None


def _hours(rows: list[_Row]) -> list[list[_Row]]:
    """Group time-ordered rows by the hour they fall in."""
    groups: list[list[_Row]] = []
    for row in rows:
        if groups and groups[-1][0].time_ms // HOUR_MS == row.time_ms // HOUR_MS:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def kept_in(hour: Sequence[_Row]) -> set[int]:
    """Return the indexes of the snapshots an hour keeps (at most six; see the docstring)."""
    equities = [row.equity for row in hour]
    lowest = min(range(len(hour)), key=equities.__getitem__)
    highest = max(range(len(hour)), key=equities.__getitem__)
    peak, deep_peak, deep_trough, deepest = 0, 0, 0, Decimal(0)
    for index, equity in enumerate(equities):
        if equity > equities[peak]:
            peak = index
        elif equities[peak] > 0 and (fall := (equities[peak] - equity) / equities[peak]) > deepest:
            deep_peak, deep_trough, deepest = peak, index, fall
    return {0, len(hour) - 1, lowest, highest, deep_peak, deep_trough}
