"""Retention: what the database lets go of, a few thousand rows per transaction.

Each op here deletes at most ``limit`` rows in one short transaction of the single writer,
so a round of pruning is many small commits between the decision path's own, never one long
one. An op reads what it needs inside its transaction (on the writer's thread) and leaves
what it did in ``done`` (rows deleted, and whether more are due) for the caller to go on.

The cut-off is counted back from each table's newest row, so it is candle time wherever the
rows are stamped with candle time: a replay of 2019 keeps and prunes what a live run of 2019
would have, and the wall clock never decides what a ledger forgets. Candles go per series,
back from that series' newest candle. Only the command audit, stamped with the wall clock
when a command came in, is cut by the wall-clock time the caller passes. Pending predictions
stay until they are resolved. Trades, fills, positions, the ledger state, breaker events,
gaps and deviations are never pruned: they are the ledger and its explanation.
"""

import abc
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from paper_trader.storage.writer import Durability, Step

NEVER = 0  # a retention of 0 days keeps everything


@dataclass(slots=True)
class Pruned:
    """What an op did: ``rows`` deleted, and whether it stopped at its limit (``more``)."""

    rows: int = 0
    more: bool = False


class OneStep(abc.ABC):
    """A FAST op of one step, ``run`` on the writer's thread inside its transaction; one lost
    to a crash is done again by the next round."""

    __slots__ = ()

    @property
    def durability(self) -> Durability:
        """Return FAST: what a prune did is not ledger state."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """The one step."""
        return [self.run]

    @abc.abstractmethod
    def run(self, conn: sqlite3.Connection) -> None:
        """Do the op's work on ``conn``."""


@dataclass(frozen=True, slots=True)
class TimeTable:
    """A table whose rows are cut by one time column that leads its primary key or an
    index (the search for the cut-off walks it); ``only`` narrows which rows may go."""

    name: str
    column: str
    only: str = ""


PREDICTIONS = TimeTable("predictions", "open_time_ms", only="outcome != 'pending'")
DECISIONS = TimeTable("decisions", "candle_time_ms")
AUDIT = TimeTable("command_audit", "at_ms")


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneByTime(OneStep):
    """Delete up to ``limit`` of ``table``'s rows older than ``keep_ms`` before its newest row,
    or, with ``before_ms``, older than that time (the wall-clock-stamped audit)."""

    table: TimeTable
    keep_ms: int = 0
    before_ms: int | None = None
    limit: int = 5000
    done: Pruned = field(default_factory=Pruned)

    def run(self, conn: sqlite3.Connection) -> None:
        name, column = self.table.name, self.table.column
        cutoff = self.before_ms
        if cutoff is None:
            newest = conn.execute(f"SELECT max({column}) FROM {name}").fetchone()[0]
            if newest is None:
                return
            cutoff = int(newest) - self.keep_ms
        only = f" AND {self.table.only}" if self.table.only else ""
        # The time of the limit-th oldest row due, walking the key: delete before it. Rows of
        # one time stay together, except that the oldest time always goes (progress).
        bound_row = conn.execute(
            f"SELECT {column} FROM {name} WHERE {column} < ?{only} "
            f"ORDER BY {column} LIMIT 1 OFFSET ?",
            (cutoff, self.limit),
        ).fetchone()
        bound = cutoff if bound_row is None else int(bound_row[0])
        oldest = conn.execute(
            f"SELECT min({column}) FROM {name} WHERE {column} < ?{only}",
            (cutoff,),
        ).fetchone()[0]
        if oldest is None:
            return
        bound = max(bound, int(oldest) + 1)
        cursor = conn.execute(f"DELETE FROM {name} WHERE {column} < ?{only}", (bound,))
        self.done.rows = cursor.rowcount
        self.done.more = bound_row is not None


SeriesKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneCandles(OneStep):
    """Delete candles older than ``keep_ms`` before their series' newest, series by series
    from ``start`` (a series key, included; ``None``: the first), up to ``limit`` rows in
    all. ``resume[0]`` is where the next op goes on: the series it stopped in, or ``None``
    once every series was seen."""

    keep_ms: int
    start: SeriesKey | None = None
    limit: int = 5000
    done: Pruned = field(default_factory=Pruned)
    resume: list[SeriesKey | None] = field(default_factory=lambda: [None])

    def run(self, conn: sqlite3.Connection) -> None:
        key = _series_from(conn, self.start, inclusive=True)
        while key is not None:
            left = self.limit - self.done.rows
            deleted = _prune_series(conn, key, self.keep_ms, left)
            self.done.rows += deleted
            if deleted >= left:  # the series may hold more: the next op starts on it again
                self.done.more = True
                self.resume[0] = key
                return
            key = _series_from(conn, key, inclusive=False)
        self.resume[0] = None


def _series_from(
    conn: sqlite3.Connection, key: SeriesKey | None, *, inclusive: bool
) -> SeriesKey | None:
    """Return the first series at (or after) ``key`` in key order: one index seek."""
    order = " ORDER BY venue, symbol, interval LIMIT 1"
    if key is None:
        row = conn.execute("SELECT venue, symbol, interval FROM candles" + order).fetchone()
    else:
        compare = ">=" if inclusive else ">"
        row = conn.execute(
            "SELECT venue, symbol, interval FROM candles "
            f"WHERE (venue, symbol, interval) {compare} (?, ?, ?)" + order,
            key,
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def _prune_series(conn: sqlite3.Connection, key: SeriesKey, keep_ms: int, limit: int) -> int:
    """Delete up to ``limit`` of the series' candles older than its newest minus ``keep_ms``."""
    where = "venue = ? AND symbol = ? AND interval = ?"
    newest = conn.execute(
        f"SELECT open_time_ms FROM candles WHERE {where} ORDER BY open_time_ms DESC LIMIT 1",
        key,
    ).fetchone()
    cutoff = int(newest[0]) - keep_ms
    bound_row = conn.execute(
        f"SELECT open_time_ms FROM candles WHERE {where} AND open_time_ms < ? "
        "ORDER BY open_time_ms LIMIT 1 OFFSET ?",
        (*key, cutoff, max(0, limit - 1)),
    ).fetchone()
    bound = cutoff if bound_row is None else int(bound_row[0]) + 1
    cursor = conn.execute(
        f"DELETE FROM candles WHERE {where} AND open_time_ms < ?",
        (*key, bound),
    )
    return cursor.rowcount


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleasePages(OneStep):
    """Give up to ``pages`` free pages back to the file system (``incremental_vacuum``);
    ``done.rows`` counts them, ``done.more`` says whether free pages are left."""

    pages: int
    done: Pruned = field(default_factory=Pruned)

    def run(self, conn: sqlite3.Connection) -> None:
        # Python's sqlite3 steps this pragma once per execute, and each step frees one page.
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        for _ in range(min(free, self.pages)):
            conn.execute("PRAGMA incremental_vacuum(1)")
        self.done.rows = min(free, self.pages)
        self.done.more = free > self.pages
