"""The record of every way a live run may differ from a replay of its candles.

The ledger is a function of the candles, the model and the settings, except where the live
daemon had to decide on the wall clock: an instant it stopped waiting for a symbol's candles
(``series_stalled``), a candle that arrived after its instant was decided (``candle_late``),
an inference that timed out (``prediction_timeout``). Each is stored here when it is queued
for the notifier (one transaction with its outbox row);
``report`` counts them, with the entries skipped while catching up and the model versions that
predicted, and says whether a replay of the stored candles is expected to give the same ledger
digest.
"""

import json
from dataclasses import dataclass

import aiosqlite

from paper_trader.domain import Event, EventKind

DEVIATION_KINDS = frozenset(
    {EventKind.SERIES_STALLED, EventKind.CANDLE_LATE, EventKind.PREDICTION_TIMEOUT}
)


def data_json(event: Event) -> str:
    """Return an event's data as JSON with sorted keys, as the outbox and this table store it."""
    return json.dumps(dict(event.data), sort_keys=True, separators=(",", ":"))


INSERT_DEVIATION = (
    "INSERT INTO deviations (kind, symbol, candle_time_ms, detected_at_ms, message, "
    "data_json) VALUES (?, ?, ?, ?, ?, ?)"
)


def deviation_row(event: Event) -> tuple[object, ...]:
    """Return the ``INSERT_DEVIATION`` row of a deviation event (one of ``DEVIATION_KINDS``),
    with its candle time (-1 if none).

    Inserted by ``AppendOutbox`` in the transaction that queues the event for the notifier.
    """
    candle_time = event.data.get("candle_time_ms", -1)
    return (
        event.kind.value,
        str(event.data.get("symbol", "")),
        int(candle_time) if isinstance(candle_time, int | float) else -1,
        event.at_ms,
        event.message,
        data_json(event),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Deviation:
    """One stored deviation."""

    kind: str
    symbol: str
    candle_time_ms: int
    message: str


async def deviation_counts(conn: aiosqlite.Connection) -> dict[str, int]:
    """Return how many deviations of each kind were recorded."""
    rows = await conn.execute_fetchall(
        "SELECT kind, count(*) FROM deviations GROUP BY kind ORDER BY kind"
    )
    return {str(kind): int(count) for kind, count in rows}


async def first_deviations(conn: aiosqlite.Connection, limit: int) -> list[Deviation]:
    """Return the first ``limit`` deviations, in the order they were recorded."""
    rows = await conn.execute_fetchall(
        "SELECT kind, symbol, candle_time_ms, message FROM deviations ORDER BY id LIMIT ?",
        (limit,),
    )
    return [
        Deviation(kind=str(k), symbol=str(s), candle_time_ms=int(t), message=str(m))
        for k, s, t, m in rows
    ]


async def prediction_model_versions(conn: aiosqlite.Connection) -> int:
    """Return how many model versions made the logged predictions."""
    rows = list(
        await conn.execute_fetchall("SELECT count(DISTINCT model_version) FROM predictions")
    )
    return int(rows[0][0]) if rows else 0
