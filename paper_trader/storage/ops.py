"""The writes the daemon makes, as ``WriteOp`` values for the ``StorageWriter``.

Just over 400 lines (417): every op but the ledger's stays here, side by side, where what
each one writes and how durably can be compared.

A run's id is needed before anything else is written, so a run is started with ``start_run``
on the writer connection *before* the ``StorageWriter`` starts (its own LEDGER transaction,
returning the new id); there is no queued op for it. Every other write is an op below.
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import aiosqlite
import msgspec

from paper_trader.domain import (
    Candle,
    Event,
    Gap,
    Interval,
    JudgedCandles,
    PredictionLog,
    PredictionOutcome,
    PredictionRow,
    Venue,
)
from paper_trader.errors import FatalError
from paper_trader.storage.outbox import outbox_statements
from paper_trader.storage.writer import Durability, Statement, Step, apply_transaction, one


def _upsert_candles(*columns: str) -> str:
    """Return the candle upsert, with ``columns`` after the OHLCV ones (replaced too)."""
    values = ("open", "high", "low", "close", "volume", *columns)
    names = ", ".join(("venue", "symbol", "interval", "open_time_ms", *values))
    marks = ", ".join("?" * (4 + len(values)))
    updates = ",\n    ".join(f"{v} = excluded.{v}" for v in values)
    return (
        f"INSERT INTO candles ({names})\nVALUES ({marks})\n"
        f"ON CONFLICT (venue, symbol, interval, open_time_ms) DO UPDATE SET\n    {updates}\n"
    )


_UPSERT_CANDLE = _upsert_candles()
_UPSERT_JUDGED_CANDLE = _upsert_candles("tradable")  # with the gate's verdict
_UPSERT_QUALITY = """
INSERT INTO quality_state (venue, symbol, interval, state) VALUES (?, ?, ?, ?)
ON CONFLICT (venue, symbol, interval) DO UPDATE SET state = excluded.state
"""


def decimal_text(value: Decimal) -> str:
    """Return the exact, exponent-free text stored for a decimal (``format(d, "f")``)."""
    return format(value, "f")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertCandles:
    """Store closed candles, replacing any already stored under the same key.

    From the decision task, with what the data-quality gate judged (``JudgedCandles``): each
    candle's tradable flag (none: unknown, NULL) and the gate's state of their series, in the
    same transaction, so a start resumes the gate where the stored candles leave it.
    """

    candles: tuple[Candle, ...]
    tradable: tuple[bool, ...] = ()
    quality: tuple[tuple[Venue, str, Interval, bytes], ...] = ()

    @classmethod
    def judged(cls, batch: JudgedCandles) -> "UpsertCandles":
        """Return the write of a batch the gate judged."""
        return cls(candles=batch.candles, tradable=batch.tradable, quality=batch.quality)

    @property
    def durability(self) -> Durability:
        """Return FAST: candles can be fetched again from the exchange."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Upsert every candle with one ``executemany``."""
        rows = [
            (
                c.venue.value,
                c.symbol,
                c.interval.value,
                c.open_time_ms,
                decimal_text(c.open),
                decimal_text(c.high),
                decimal_text(c.low),
                decimal_text(c.close),
                decimal_text(c.volume),
            )
            for c in self.candles
        ]
        steps: list[Step] = []
        if self.tradable:  # the gate's verdict with each: the candles are judged
            judged = [(*r, int(t)) for r, t in zip(rows, self.tradable, strict=True)]
            steps.append(Statement(_UPSERT_JUDGED_CANDLE, judged))
        elif rows:
            steps.append(Statement(_UPSERT_CANDLE, rows))
        states = [(v.value, s, i.value, data) for v, s, i, data in self.quality]
        return steps + ([Statement(_UPSERT_QUALITY, states)] if states else [])


_UPSERT_GAP = """
INSERT INTO gaps (
    venue, symbol, interval, start_ms, end_ms, missing, reason, detail, detected_at_ms
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (venue, symbol, interval, start_ms) DO UPDATE SET
    end_ms = max(end_ms, excluded.end_ms),
    missing = max(missing, excluded.missing),
    reason = excluded.reason,
    detail = excluded.detail
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordGap:
    """Record candles that cannot be filled (the same gap found again updates its row)."""

    gap: Gap
    detected_at_ms: int

    @property
    def durability(self) -> Durability:
        """Return FAST: a gap found again is recorded again."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Upsert the gap's row."""
        g = self.gap
        row = (
            g.venue.value,
            g.symbol,
            g.interval.value,
            g.start_ms,
            g.end_ms,
            g.missing,
            g.reason.value,
            g.detail,
            self.detected_at_ms,
        )
        return [Statement(_UPSERT_GAP, (row,))]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStart:
    """What is recorded about a run of the daemon when it starts."""

    started_at_ms: int
    mode: str
    pid: int
    app_version: str
    config_hash: str
    versions_json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordRunStop:
    """Record when and how a run ended."""

    run_id: int
    stopped_at_ms: int
    exit_code: int

    @property
    def durability(self) -> Durability:
        """Return LEDGER: the run history must survive power loss."""
        return Durability.LEDGER

    def prepare(self) -> Sequence[Step]:
        """Set the run's stop time and exit code."""
        sql = "UPDATE runs SET stopped_at_ms = ?, exit_code = ? WHERE id = ?"
        return [one(sql, self.stopped_at_ms, self.exit_code, self.run_id)]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendOutbox:
    """Queue an event for the notifier in the outbox, as ``pending``."""

    event: Event

    @property
    def durability(self) -> Durability:
        """Return LEDGER: a notification must not be lost once the daemon decided to send it."""
        return Durability.LEDGER

    def prepare(self) -> Sequence[Step]:
        """Insert the event with its category and priority, its data as JSON with sorted keys;
        a deviation from replay parity also goes into ``deviations``."""
        return outbox_statements((self.event,))


UPSERT_METADATA = (
    "INSERT INTO metadata (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMetadata:
    """Set one metadata key to a value."""

    key: str
    value: str

    @property
    def durability(self) -> Durability:
        """Return FAST: metadata is informational."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Insert or replace the key."""
        return [one(UPSERT_METADATA, self.key, self.value)]


class _InsertRun:
    """The LEDGER op behind ``start_run``; keeps the new row's id."""

    __slots__ = ("run", "run_id")

    def __init__(self, run: RunStart) -> None:
        self.run = run
        self.run_id: int | None = None

    @property
    def durability(self) -> Durability:
        return Durability.LEDGER

    def prepare(self) -> Sequence[Step]:
        return [self._insert]

    def _insert(self, conn: sqlite3.Connection) -> None:
        """Insert the row and keep its id (on the writer's thread, inside the transaction)."""
        run = self.run
        cursor = conn.execute(
            "INSERT INTO runs (started_at_ms, mode, pid, app_version, config_hash, versions_json) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                run.started_at_ms,
                run.mode,
                run.pid,
                run.app_version,
                run.config_hash,
                run.versions_json,
            ),
        )
        self.run_id = cursor.lastrowid


async def start_run(conn: aiosqlite.Connection, run: RunStart) -> int:
    """Record the start of a run in its own LEDGER transaction and return the run's id.

    Call it on the writer connection before the ``StorageWriter`` starts.
    """
    insert = _InsertRun(run)
    await apply_transaction(conn, [insert])
    if insert.run_id is None:
        raise FatalError("storage write failed: the new run got no id")
    return insert.run_id


_UPSERT_PREDICTION = """
INSERT INTO predictions (
    venue, symbol, interval, open_time_ms, model_version, spec_hash, close, horizon, threshold,
    p_down, p_flat, p_up, score, strength, confidence, models_json, weights_json
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (venue, symbol, interval, open_time_ms) DO UPDATE SET
    model_version = excluded.model_version,
    spec_hash = excluded.spec_hash,
    close = excluded.close,
    horizon = excluded.horizon,
    threshold = excluded.threshold,
    p_down = excluded.p_down,
    p_flat = excluded.p_flat,
    p_up = excluded.p_up,
    score = excluded.score,
    strength = excluded.strength,
    confidence = excluded.confidence,
    models_json = excluded.models_json,
    weights_json = excluded.weights_json,
    outcome = 'pending',
    label = NULL,
    forward_return = NULL,
    resolved_open_time_ms = NULL
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPredictions:
    """Log predictions as ``pending``; one made again at the same candle replaces the old row."""

    rows: tuple[PredictionRow, ...]

    @property
    def durability(self) -> Durability:
        """Return FAST: a lost prediction is a lost log line, not a ledger change."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Upsert every prediction with one ``executemany`` (numpy floats become ``float``)."""
        weights: dict[int, str] = {}  # an instant's rows share one weights mapping

        def weights_text(row: PredictionRow) -> str:
            key = id(row.weights)
            if key not in weights:
                weights[key] = _json({m: float(w) for m, w in row.weights.items()})
            return weights[key]

        rows = [
            (
                r.venue.value,
                r.symbol,
                r.interval.value,
                r.open_time_ms,
                r.model_version,
                r.spec_hash,
                decimal_text(r.close),
                r.horizon,
                float(r.threshold),
                *(float(p) for p in r.probabilities),
                float(r.score),
                str(r.strength),
                float(r.confidence),
                _json({m: [float(p) for p in ps] for m, ps in r.model_probabilities.items()}),
                weights_text(r),
            )
            for r in self.rows
        ]
        return [Statement(_UPSERT_PREDICTION, rows)]


_RESOLVE_PREDICTION = """
UPDATE predictions SET outcome = ?, label = ?, forward_return = ?, resolved_open_time_ms = ?
WHERE venue = ? AND symbol = ? AND interval = ? AND open_time_ms = ? AND outcome = 'pending'
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvePredictions:
    """Settle pending predictions; one already resolved or expired is left as it is."""

    outcomes: tuple[PredictionOutcome, ...]

    @property
    def durability(self) -> Durability:
        """Return FAST: a lost outcome is resolved again from the stored candles."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Update every matching pending row with one ``executemany``."""
        rows = [
            (
                o.outcome,
                None if o.label is None else int(o.label),
                None if o.forward_return is None else float(o.forward_return),
                o.resolved_open_time_ms,
                o.venue.value,
                o.symbol,
                o.interval.value,
                o.open_time_ms,
            )
            for o in self.outcomes
        ]
        return [Statement(_RESOLVE_PREDICTION, rows)]


_UPSERT_ENSEMBLE_STATE = """
INSERT INTO ensemble_state (model_version, scorecard) VALUES (?, ?)
ON CONFLICT (model_version) DO UPDATE SET scorecard = excluded.scorecard
"""
_DELETE_OTHER_ENSEMBLE_STATES = "DELETE FROM ensemble_state WHERE model_version <> ?"


def prediction_log_steps(log: PredictionLog) -> list[Step]:
    """Return the writes of a batch's prediction log: its predictions, then their outcomes
    (one may resolve a prediction of the same batch), then the ensemble's state (only the
    version in use keeps one)."""
    steps: list[Step] = []
    if log.rows:
        steps.extend(RecordPredictions(rows=log.rows).prepare())
    if log.outcomes:
        steps.extend(ResolvePredictions(outcomes=log.outcomes).prepare())
    if log.ensemble is not None:
        version = log.ensemble.model_version
        steps.append(one(_UPSERT_ENSEMBLE_STATE, version, log.ensemble.scorecard))
        steps.append(one(_DELETE_OTHER_ENSEMBLE_STATES, version))
    return steps


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordPredictionLog:
    """A batch's prediction log alone, for the candles no decision commit carries (no
    trading step, or candles the ledger had handled before)."""

    log: PredictionLog

    @property
    def durability(self) -> Durability:
        """Return FAST: the ledger did not move."""
        return Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Write the predictions, the outcomes and the ensemble's state."""
        return prediction_log_steps(self.log)


_ENCODER = msgspec.json.Encoder(order="sorted")


def _json(value: object) -> str:
    """Return compact JSON with sorted keys (floats in their shortest exact form)."""
    return _ENCODER.encode(value).decode()
