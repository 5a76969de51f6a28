"""Read-side queries; they work on a reader (``open_reader``) or on the writer connection.

Prefer a reader for anything a person asks for (status, reports): on the writer connection a
query waits behind queued writes and sees the writer's uncommitted transaction.
"""

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiosqlite

from paper_trader.domain import Candle, Interval, PredictionRow, Venue
from paper_trader.errors import DataIntegrityError, TransientError
from paper_trader.storage.migrations import schema_version_of


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesSummary:
    """What is stored for one candle series, and how many candles are missing inside it."""

    venue: str
    symbol: str
    interval: str
    candles: int
    first_open_time_ms: int
    last_open_time_ms: int
    missing_candles: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One row of the notification outbox."""

    id: int
    created_at_ms: int
    kind: str
    severity: str
    source: str
    message: str
    data_json: str
    status: str
    attempts: int
    sent_at_ms: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One run of the daemon."""

    id: int
    started_at_ms: int
    stopped_at_ms: int | None
    mode: str
    pid: int
    app_version: str
    config_hash: str
    versions_json: str
    exit_code: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GapRecord:
    """A recorded gap: candles ``[start_ms, end_ms)`` that could not be filled, and why."""

    venue: str
    symbol: str
    interval: str
    start_ms: int
    end_ms: int
    missing: int
    reason: str
    detail: str
    detected_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPrediction:
    """One row of the prediction log, as ``RecordPredictions`` and ``ResolvePredictions`` left it.

    ``outcome`` is ``pending``, ``resolved`` or ``expired``; ``label``, ``forward_return`` and
    ``resolved_open_time_ms`` are None while it is pending (``label`` also once expired).
    """

    prediction: PredictionRow
    outcome: str
    label: int | None
    forward_return: float | None
    resolved_open_time_ms: int | None


_SERIES_SQL = """
SELECT venue, symbol, interval, count(*), min(open_time_ms), max(open_time_ms)
FROM candles GROUP BY venue, symbol, interval ORDER BY venue, symbol, interval
"""
_CANDLES_SQL = """
SELECT venue, symbol, interval, open_time_ms, open, high, low, close, volume FROM candles
WHERE venue = ? AND symbol = ? AND interval = ? AND open_time_ms >= ?
ORDER BY open_time_ms LIMIT ?
"""
_LAST_OPEN_SQL = """
SELECT max(open_time_ms) FROM candles WHERE venue = ? AND symbol = ? AND interval = ?
"""
_GAPS_SQL = """
SELECT venue, symbol, interval, start_ms, end_ms, missing, reason, detail, detected_at_ms
FROM gaps ORDER BY venue, symbol, interval, start_ms
"""
_OUTBOX_COLUMNS = (
    "id, created_at_ms, kind, severity, source, message, data_json, status, attempts, "
    "sent_at_ms, last_error"
)
_RUN_COLUMNS = (
    "id, started_at_ms, stopped_at_ms, mode, pid, app_version, config_hash, versions_json, "
    "exit_code"
)
_MIN_TIME_MS = -(2**63)
_PREDICTION_COLUMNS = (
    "venue, symbol, interval, open_time_ms, model_version, spec_hash, close, horizon, threshold, "
    "p_down, p_flat, p_up, score, strength, confidence, models_json, weights_json, outcome, "
    "label, forward_return, resolved_open_time_ms"
)
_PENDING_PREDICTIONS_SQL = f"""
SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE outcome = 'pending'
ORDER BY open_time_ms, venue, symbol, interval LIMIT ?
"""
_RECENT_PREDICTIONS_SQL = f"""
SELECT {_PREDICTION_COLUMNS} FROM predictions
ORDER BY open_time_ms DESC, venue DESC, symbol DESC, interval DESC LIMIT ?
"""
_PREDICTION_OUTCOMES = ("pending", "resolved", "expired")


async def series_summaries(conn: aiosqlite.Connection) -> list[SeriesSummary]:
    """Return one summary per stored candle series, ordered by venue, symbol and interval."""
    summaries = []
    for venue, symbol, interval, count, first, last in await _fetchall(conn, _SERIES_SQL):
        expected = (last - first) // _interval(interval).ms + 1
        summaries.append(
            SeriesSummary(
                venue=venue,
                symbol=symbol,
                interval=interval,
                candles=count,
                first_open_time_ms=first,
                last_open_time_ms=last,
                missing_candles=expected - count,
            )
        )
    return summaries


async def load_candles(
    conn: aiosqlite.Connection,
    venue: Venue | str,
    symbol: str,
    interval: Interval | str,
    *,
    since_ms: int | None = None,
    limit: int | None = None,
) -> list[Candle]:
    """Return one series' candles in ascending time, from ``since_ms`` on, at most ``limit``."""
    params = (
        str(venue),
        symbol,
        str(interval),
        _MIN_TIME_MS if since_ms is None else since_ms,
        -1 if limit is None else limit,
    )
    return [_candle(row) for row in await _fetchall(conn, _CANDLES_SQL, params)]


async def untradable_since(
    conn: aiosqlite.Connection, venue: Venue, symbol: str, interval: Interval, since_ms: int
) -> set[int]:
    """Return the open times, from ``since_ms`` on, of the series' stored candles the
    data-quality gate judged not tradable (a candle stored before it said is tradable)."""
    sql = (
        "SELECT open_time_ms FROM candles WHERE venue = ? AND symbol = ? AND interval = ? "
        "AND open_time_ms >= ? AND tradable = 0"
    )
    rows = await _fetchall(conn, sql, (venue.value, symbol, interval.value, since_ms))
    return {int(t) for (t,) in rows}


async def quality_states(conn: aiosqlite.Connection) -> list[tuple[Venue, str, Interval, bytes]]:
    """Return the data-quality gate's state of each series, as the last stored candles left it."""
    rows = await _fetchall(conn, "SELECT venue, symbol, interval, state FROM quality_state", ())
    return [(Venue(v), str(s), Interval(i), bytes(b)) for v, s, i, b in rows]


_AT_OR_BEFORE_SQL = """
SELECT venue, symbol, interval, open_time_ms, open, high, low, close, volume FROM candles
WHERE venue = ? AND symbol = ? AND interval = ? AND open_time_ms <= ?
ORDER BY open_time_ms DESC LIMIT 1
"""


async def candle_at_or_before(
    conn: aiosqlite.Connection,
    venue: Venue | str,
    symbol: str,
    interval: Interval | str,
    at_ms: int,
) -> Candle | None:
    """Return the newest stored candle of a series that opened at or before ``at_ms``."""
    rows = await _fetchall(conn, _AT_OR_BEFORE_SQL, (str(venue), symbol, str(interval), at_ms))
    return _candle(rows[0]) if rows else None


async def last_open_time(
    conn: aiosqlite.Connection, venue: Venue | str, symbol: str, interval: Interval | str
) -> int | None:
    """Return the open time of the newest stored candle of a series, or None."""
    rows = await _fetchall(conn, _LAST_OPEN_SQL, (str(venue), symbol, str(interval)))
    value = rows[0][0] if rows else None
    return int(value) if value is not None else None


async def candles_to_resume(
    conn: aiosqlite.Connection,
    venue: Venue | str,
    symbol: str,
    interval: Interval,
    *,
    after_ms: int | None,
    count: int,
) -> list[Candle]:
    """Return up to ``count`` candles after ``after_ms``, or with None the last ``count`` stored."""
    if after_ms is not None:
        return await load_candles(conn, venue, symbol, interval, since_ms=after_ms + 1, limit=count)
    last = await last_open_time(conn, venue, symbol, interval)
    if last is None:
        return []
    since = last - (count - 1) * interval.ms
    return await load_candles(conn, venue, symbol, interval, since_ms=since, limit=count)


async def gap_records(conn: aiosqlite.Connection) -> list[GapRecord]:
    """Return every recorded gap, by series and start time."""
    fields = list(GapRecord.__dataclass_fields__)
    rows = await _fetchall(conn, _GAPS_SQL)
    return [GapRecord(**dict(zip(fields, row, strict=True))) for row in rows]


async def outbox_entries(
    conn: aiosqlite.Connection, *, status: str | None = None
) -> list[OutboxEntry]:
    """Return outbox rows in insertion order, only those with ``status`` if given."""
    sql = f"SELECT {_OUTBOX_COLUMNS} FROM notification_outbox"
    if status is None:
        rows = await _fetchall(conn, sql + " ORDER BY id")
    else:
        rows = await _fetchall(conn, sql + " WHERE status = ? ORDER BY id", (status,))
    fields = [name.strip() for name in _OUTBOX_COLUMNS.split(",")]
    return [OutboxEntry(**dict(zip(fields, row, strict=True))) for row in rows]


async def runs(conn: aiosqlite.Connection) -> list[RunRecord]:
    """Return every recorded run, oldest first."""
    rows = await _fetchall(conn, f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id")
    fields = [name.strip() for name in _RUN_COLUMNS.split(",")]
    return [RunRecord(**dict(zip(fields, row, strict=True))) for row in rows]


async def pending_predictions(
    conn: aiosqlite.Connection, *, limit: int = 10_000
) -> list[StoredPrediction]:
    """Return up to ``limit`` pending predictions, oldest first, then by venue, symbol, interval.

    The resolver calls it at start-up to resume what an earlier run left pending.
    """
    rows = await _fetchall(conn, _PENDING_PREDICTIONS_SQL, (_check_limit(limit),))
    return [_prediction(row) for row in rows]


async def ensemble_state(conn: aiosqlite.Connection, model_version: str) -> bytes | None:
    """Return the scorecard the ensemble of ``model_version`` last committed, or None."""
    sql = "SELECT scorecard FROM ensemble_state WHERE model_version = ?"
    rows = await _fetchall(conn, sql, (model_version,))
    return bytes(rows[0][0]) if rows else None


async def recent_predictions(conn: aiosqlite.Connection, *, limit: int) -> list[StoredPrediction]:
    """Return the newest ``limit`` predictions of any outcome, oldest first."""
    rows = await _fetchall(conn, _RECENT_PREDICTIONS_SQL, (_check_limit(limit),))
    return [_prediction(row) for row in reversed(rows)]


async def prediction_counts(conn: aiosqlite.Connection) -> dict[str, int]:
    """Return how many predictions there are per outcome, zero for an outcome with none."""
    counts = dict.fromkeys(_PREDICTION_OUTCOMES, 0)
    sql = "SELECT outcome, count(*) FROM predictions GROUP BY outcome"
    for outcome, count in await _fetchall(conn, sql):
        counts[outcome] = count
    return counts


async def metadata_values(conn: aiosqlite.Connection) -> dict[str, str]:
    """Return the metadata table as key -> value."""
    return {str(k): str(v) for k, v in await _fetchall(conn, "SELECT key, value FROM metadata")}


async def schema_version(conn: aiosqlite.Connection) -> int:
    """Return the database's schema version (``PRAGMA user_version``)."""
    try:
        return await schema_version_of(conn)
    except sqlite3.Error as exc:
        raise _query_failure(exc) from exc


async def _fetchall(
    conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> list[sqlite3.Row]:
    try:
        return list(await conn.execute_fetchall(sql, params))
    except sqlite3.Error as exc:
        raise _query_failure(exc) from exc


def _query_failure(exc: sqlite3.Error) -> Exception:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return TransientError(f"database busy: {exc}")
    return DataIntegrityError(f"database query failed: {exc}")


def _interval(value: str) -> Interval:
    try:
        return Interval(value)
    except ValueError:
        raise DataIntegrityError(f"the candles table holds an unknown interval {value!r}") from None


def _candle(row: sqlite3.Row) -> Candle:
    venue, symbol, interval, open_time_ms, open_, high, low, close, volume = row
    try:
        return Candle(
            venue=Venue(venue),
            symbol=symbol,
            interval=Interval(interval),
            open_time_ms=open_time_ms,
            open=Decimal(open_),
            high=Decimal(high),
            low=Decimal(low),
            close=Decimal(close),
            volume=Decimal(volume),
        )
    except (ValueError, ArithmeticError) as exc:
        raise DataIntegrityError(f"the candles table holds an unreadable row: {exc}") from exc


def _check_limit(limit: int) -> int:
    if limit < 0:  # SQLite reads a negative LIMIT as "no limit"
        raise ValueError(f"limit must not be negative, got {limit}")
    return limit


def _prediction(row: sqlite3.Row) -> StoredPrediction:
    venue, symbol, interval, open_time_ms, model_version, spec_hash, close = row[:7]
    horizon, threshold, p_down, p_flat, p_up, score, strength, confidence = row[7:15]
    models_json, weights_json, outcome, label, forward_return, resolved_ms = row[15:]
    try:
        models = json.loads(models_json)
        prediction = PredictionRow(
            venue=Venue(venue),
            symbol=symbol,
            interval=Interval(interval),
            open_time_ms=open_time_ms,
            model_version=model_version,
            spec_hash=spec_hash,
            close=Decimal(close),
            horizon=horizon,
            threshold=threshold,
            probabilities=(p_down, p_flat, p_up),
            score=score,
            strength=strength,
            confidence=confidence,
            model_probabilities={name: _triple(p) for name, p in models.items()},
            weights={name: float(w) for name, w in json.loads(weights_json).items()},
        )
        return StoredPrediction(
            prediction=prediction,
            outcome=outcome,
            label=label,
            forward_return=forward_return,
            resolved_open_time_ms=resolved_ms,
        )
    except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
        raise DataIntegrityError(f"the predictions table holds an unreadable row: {exc}") from exc


def _triple(values: Any) -> tuple[float, float, float]:
    down, flat, up = values
    return float(down), float(flat), float(up)
