"""The prediction log on a real SQLite file: migrations 3 and 9, recording, resolving, queries."""

import math
from decimal import Decimal
from pathlib import Path

import aiosqlite
import pytest
from fakes.candles import candle

from paper_trader.domain import Gap, GapReason, Interval, PredictionOutcome, PredictionRow, Venue
from paper_trader.storage import (
    RecordGap,
    RecordPredictions,
    ResolvePredictions,
    StorageWriter,
    StoredPrediction,
    UpsertCandles,
    apply_transaction,
    gap_records,
    load_candles,
    migrate,
    open_database,
    pending_predictions,
    prediction_counts,
    recent_predictions,
    schema_version,
)

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
M1 = Interval.M1.ms
NO_PREDICTIONS = {"pending": 0, "resolved": 0, "expired": 0}


def prediction(
    index: int,
    symbol: str = "BTCUSDT",
    *,
    venue: Venue = Venue.BINANCE,
    model_version: str = "v1",
    probabilities: tuple[float, float, float] = (0.1, 0.2, 0.7),
) -> PredictionRow:
    """Return a prediction made at the close of the ``index``-th 1m candle after T0."""
    down, _, up = probabilities
    return PredictionRow(
        venue=venue,
        symbol=symbol,
        interval=Interval.M1,
        open_time_ms=T0 + index * M1,
        model_version=model_version,
        spec_hash="spec-abc",
        close=Decimal("67123.45000000000001"),
        horizon=5,
        threshold=0.0015,
        probabilities=probabilities,
        score=up - down,
        strength="strong_buy",
        confidence=1 / 3,
        model_probabilities={"forest": (0.3, 0.3, 0.4), "boost": (1 / 7, 2 / 7, 4 / 7)},
        weights={"forest": 0.6, "boost": 0.4},
    )


def stored(
    row: PredictionRow,
    *,
    outcome: str = "pending",
    label: int | None = None,
    forward_return: float | None = None,
    resolved_open_time_ms: int | None = None,
) -> StoredPrediction:
    """Return what the log should hold for ``row`` with the given outcome."""
    return StoredPrediction(
        prediction=row,
        outcome=outcome,
        label=label,
        forward_return=forward_return,
        resolved_open_time_ms=resolved_open_time_ms,
    )


def resolution(
    row: PredictionRow, *, label: int = 2, forward_return: float = 0.0123
) -> PredictionOutcome:
    """Return a "resolved" outcome for ``row`` at the candle ``horizon`` later."""
    return PredictionOutcome(
        venue=row.venue,
        symbol=row.symbol,
        interval=row.interval,
        open_time_ms=row.open_time_ms,
        outcome="resolved",
        label=label,
        forward_return=forward_return,
        resolved_open_time_ms=row.open_time_ms + row.horizon * M1,
    )


async def test_migration_3_adds_the_log_to_a_v2_database_keeping_its_data(tmp_path: Path) -> None:
    """A version-2 database with candles and a gap migrates to 3 with an empty prediction log."""
    conn = await open_database(tmp_path / "old.db")
    try:
        await migrate(conn, target=2)
        gap = Gap(
            venue=Venue.BINANCE,
            symbol="BTCUSDT",
            interval=Interval.M1,
            start_ms=3 * M1,
            end_ms=5 * M1,
            reason=GapReason.MISSING_AT_VENUE,
        )
        candles = (candle(0), candle(1), candle(2))
        await apply_transaction(
            conn, [UpsertCandles(candles=candles), RecordGap(gap=gap, detected_at_ms=9)]
        )

        result = await migrate(conn, target=3)

        assert (result.from_version, result.to_version) == (2, 3)
        assert await schema_version(conn) == 3
        assert await load_candles(conn, Venue.BINANCE, "BTCUSDT", Interval.M1) == list(candles)
        assert [(g.start_ms, g.missing) for g in await gap_records(conn)] == [(3 * M1, 2)]
        assert await prediction_counts(conn) == NO_PREDICTIONS
    finally:
        await conn.close()


async def test_migration_3_applies_to_an_empty_database(tmp_path: Path) -> None:
    """A new file reaches version 3 with the predictions table and its pending index."""
    conn = await open_database(tmp_path / "new.db")
    try:
        result = await migrate(conn, target=3)

        assert (result.from_version, result.to_version) == (0, 3)
        assert await schema_version(conn) == 3
        names = await conn.execute_fetchall(
            "SELECT type, name FROM sqlite_master WHERE tbl_name = 'predictions' ORDER BY type"
        )
        assert [tuple(n) for n in names] == [
            ("index", "predictions_pending"),
            ("table", "predictions"),
        ]
        assert await prediction_counts(conn) == NO_PREDICTIONS
        assert await pending_predictions(conn) == []
    finally:
        await conn.close()


async def test_migration_9_keys_the_log_by_time_and_keeps_every_prediction(
    tmp_path: Path,
) -> None:
    """A version-8 log of several symbols comes through the re-keying whole: the pending ones
    in time order, the settled ones settled, and the pending index holds only the pending."""
    conn = await open_database(tmp_path / "old.db")
    try:
        await migrate(conn, target=8)
        rows = tuple(prediction(i, symbol) for i in range(3) for symbol in ("XRPUSDT", "ADAUSDT"))
        settled = PredictionOutcome(
            venue=Venue.BINANCE,
            symbol="XRPUSDT",
            interval=Interval.M1,
            open_time_ms=T0,
            outcome="resolved",
            label=2,
            forward_return=0.01,
            resolved_open_time_ms=T0 + 5 * M1,
        )
        await apply_transaction(
            conn, [RecordPredictions(rows=rows), ResolvePredictions(outcomes=(settled,))]
        )

        await migrate(conn, target=9)

        assert await schema_version(conn) == 9
        assert await prediction_counts(conn) == {"pending": 5, "resolved": 1, "expired": 0}
        pending = [
            (p.prediction.open_time_ms, p.prediction.symbol)
            for p in await pending_predictions(conn)
        ]
        everything = sorted((r.open_time_ms, r.symbol) for r in rows)
        assert pending == [key for key in everything if key != (T0, "XRPUSDT")]
        newest = await recent_predictions(conn, limit=2)
        assert [p.prediction.symbol for p in newest] == ["ADAUSDT", "XRPUSDT"]
        (index,) = await conn.execute_fetchall(
            "SELECT sql FROM sqlite_master WHERE name = 'predictions_pending'"
        )
        assert index[0].endswith("WHERE outcome = 'pending'")
    finally:
        await conn.close()


async def test_recorded_predictions_come_back_pending_exactly(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Decimal close, floats and both JSON maps round-trip exactly; keys are stored sorted."""
    rows = (prediction(1), prediction(0, "ETHUSDT"), prediction(0, "BTC-EUR", venue=Venue.BITVAVO))

    await writer.write(RecordPredictions(rows=rows))

    pending = await pending_predictions(reader)
    assert pending == [stored(rows[1]), stored(rows[2]), stored(rows[0])]  # time, then venue
    assert pending[0].prediction.close == Decimal("67123.45000000000001")
    assert pending[0].prediction.model_probabilities["boost"] == (1 / 7, 2 / 7, 4 / 7)
    raw = await reader.execute_fetchall(
        "SELECT close, models_json, weights_json FROM predictions WHERE symbol = 'BTC-EUR'"
    )
    assert [tuple(r) for r in raw] == [
        (
            "67123.45000000000001",
            f'{{"boost":[{1 / 7!r},{2 / 7!r},{4 / 7!r}],"forest":[0.3,0.3,0.4]}}',
            '{"boost":0.4,"forest":0.6}',
        )
    ]
    assert await pending_predictions(reader, limit=1) == [stored(rows[1])]


async def test_resolving_stores_the_outcome_and_ends_pending(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """A resolved row keeps its label, return and resolving candle; a gap expires another."""
    first, second, third = prediction(0), prediction(1), prediction(2)
    expired = PredictionOutcome(
        venue=second.venue,
        symbol=second.symbol,
        interval=second.interval,
        open_time_ms=second.open_time_ms,
        outcome="expired",
        label=None,
        forward_return=None,
        resolved_open_time_ms=second.open_time_ms + 5 * M1,
    )
    await writer.write(RecordPredictions(rows=(first, second, third)))

    await writer.write(
        ResolvePredictions(outcomes=(resolution(first, label=0, forward_return=-0.02), expired))
    )

    assert await pending_predictions(reader) == [stored(third)]
    assert await recent_predictions(reader, limit=3) == [
        stored(
            first,
            outcome="resolved",
            label=0,
            forward_return=-0.02,
            resolved_open_time_ms=first.open_time_ms + 5 * M1,
        ),
        stored(second, outcome="expired", resolved_open_time_ms=second.open_time_ms + 5 * M1),
        stored(third),
    ]
    assert await prediction_counts(reader) == {"pending": 1, "resolved": 1, "expired": 1}


async def test_resolving_a_settled_prediction_changes_nothing(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """A second outcome for a resolved row is ignored; an outcome for no row is a no-op."""
    row = prediction(0)
    await writer.write(RecordPredictions(rows=(row,)))
    await writer.write(
        ResolvePredictions(outcomes=(resolution(row, label=2, forward_return=0.01),))
    )
    before = await recent_predictions(reader, limit=10)

    unknown = resolution(prediction(7, "XRPUSDT"))
    await writer.write(
        ResolvePredictions(outcomes=(resolution(row, label=0, forward_return=-0.5), unknown))
    )

    assert await recent_predictions(reader, limit=10) == before
    assert before[0].label == 2
    assert await prediction_counts(reader) == {"pending": 0, "resolved": 1, "expired": 0}


async def test_recording_the_same_candle_again_replaces_it_as_pending(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """A re-run over a resolved candle replaces the row and clears its outcome."""
    old = prediction(0)
    await writer.write(RecordPredictions(rows=(old,)))
    await writer.write(ResolvePredictions(outcomes=(resolution(old),)))
    new = prediction(0, model_version="v2", probabilities=(0.6, 0.3, 0.1))

    await writer.write(RecordPredictions(rows=(new,)))

    assert await recent_predictions(reader, limit=10) == [stored(new)]
    assert await prediction_counts(reader) == {"pending": 1, "resolved": 0, "expired": 0}


async def test_recent_predictions_are_the_newest_oldest_first(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """The newest ``limit`` rows of any outcome come back in ascending time, then key."""
    rows = [prediction(i, symbol) for i in (3, 0, 2, 1) for symbol in ("ETHUSDT", "BTCUSDT")]
    await writer.write(RecordPredictions(rows=tuple(rows)))
    await writer.write(ResolvePredictions(outcomes=(resolution(prediction(3, "ETHUSDT")),)))

    recent = await recent_predictions(reader, limit=3)
    everything = await recent_predictions(reader, limit=100)

    assert [(p.prediction.open_time_ms - T0, p.prediction.symbol, p.outcome) for p in recent] == [
        (2 * M1, "ETHUSDT", "pending"),
        (3 * M1, "BTCUSDT", "pending"),
        (3 * M1, "ETHUSDT", "resolved"),
    ]
    assert len(everything) == 8
    keys = [(p.prediction.open_time_ms, p.prediction.symbol) for p in everything]
    assert keys == sorted(keys)
    assert await recent_predictions(reader, limit=0) == []
    assert await prediction_counts(reader) == {"pending": 7, "resolved": 1, "expired": 0}


def test_an_unknown_outcome_is_refused_at_construction() -> None:
    """Only "resolved" and "expired" are outcomes; a resolved one needs a label."""
    row = prediction(0)
    with pytest.raises(ValueError, match="outcome must be"):
        PredictionOutcome(
            venue=row.venue,
            symbol=row.symbol,
            interval=row.interval,
            open_time_ms=row.open_time_ms,
            outcome="pending",
            label=None,
            forward_return=None,
            resolved_open_time_ms=row.open_time_ms,
        )
    with pytest.raises(ValueError, match="needs its label"):
        PredictionOutcome(
            venue=row.venue,
            symbol=row.symbol,
            interval=row.interval,
            open_time_ms=row.open_time_ms,
            outcome="resolved",
            label=None,
            forward_return=0.0,
            resolved_open_time_ms=row.open_time_ms,
        )


def test_a_non_finite_prediction_is_refused_at_construction() -> None:
    """NaN would reach SQLite as NULL and fail the writer, so the row refuses it up front."""
    with pytest.raises(ValueError, match="non-finite"):
        prediction(0, probabilities=(math.nan, 0.5, 0.5))


async def test_a_negative_limit_is_refused(reader: aiosqlite.Connection) -> None:
    """SQLite would read a negative LIMIT as no limit at all."""
    with pytest.raises(ValueError, match="limit"):
        await recent_predictions(reader, limit=-1)
