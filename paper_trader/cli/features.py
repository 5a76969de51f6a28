"""``features``: compute the feature spec over a candle CSV and write every row to a CSV.

The candle file is read and validated by ``CandleCsv`` exactly as ``replay`` reads it, so a
bad file is refused with the same ``FILE:LINE`` message before anything is written. Either
engine can compute the rows: ``incremental`` (``SeriesEngine``, candle by candle, as the
daemon does) or ``batch`` (the vectorised reference). The output has ``timestamp_ms`` and then
every column of the spec; a value is an empty cell until its warm-up and otherwise the
float's ``repr``, which reads back to the same float, so the two engines' files can be
compared exactly. An impossible candle (zero price, high below low) gives an empty row and is
counted; it never stops the run. The file is written to a temporary file next to ``--out``
and moved into place at the end, so an interrupted run leaves no half file.
"""

import argparse
import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from paper_trader.domain import Interval, Venue
from paper_trader.errors import CannotProceed, ConfigError, DataIntegrityError
from paper_trader.features.atomic import atomic_text
from paper_trader.features.engine import SeriesEngine, candle_values
from paper_trader.features.spec import FeatureSpec, default_spec
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.settings import Settings

ENGINES = ("incremental", "batch")
CHUNK_SIZE = 5000
# CandleCsv files its candles under a venue and symbol; the features do not depend on either.
_VENUE = Venue.BINANCE
_SYMBOL = "CSV"

Row = tuple[int, Sequence[float] | None]  # open time and values; None for an impossible candle


@dataclass(frozen=True, slots=True, kw_only=True)
class DumpRequest:
    """What to compute: the candle file, its interval, the engine and the output file."""

    csv: Path
    out: Path
    interval: Interval = Interval.M1
    engine: str = "incremental"


@dataclass(frozen=True, slots=True, kw_only=True)
class DumpResult:
    """What was written: the row count, the spec, the first ready row, impossible candles."""

    out: Path
    engine: str
    rows: int
    spec_hash: str
    columns: int
    first_ready_ms: int | None
    impossible_candles: int

    def to_json(self) -> dict[str, Any]:
        """Return the summary the CLI prints."""
        return {
            "rows": self.rows,
            "engine": self.engine,
            "spec_hash": self.spec_hash,
            "columns": self.columns,
            "first_ready_timestamp_ms": self.first_ready_ms,
            "impossible_candles": self.impossible_candles,
            "out": str(self.out),
        }


@dataclass(slots=True)
class _Tally:
    rows: int = 0
    impossible: int = 0
    first_ready_ms: int | None = None


def features_command(_settings: Settings, args: argparse.Namespace) -> int:
    """Dump the features of ``--csv`` into ``--out``; print the one-line JSON summary."""
    request = DumpRequest(csv=args.csv, out=args.out, interval=args.interval, engine=args.engine)
    result = dump_features(request)
    print(json.dumps(result.to_json()))
    return 0


def dump_features(request: DumpRequest, spec: FeatureSpec | None = None) -> DumpResult:
    """Validate the candle file, compute every feature row and write it atomically.

    Raises ``DataIntegrityError`` for a bad candle file and ``ConfigError`` for an unknown
    engine or a file that cannot be read or written; nothing is written in either case.
    """
    spec = spec or default_spec()
    if request.engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {request.engine!r}")
    _check_paths(request.csv, request.out)
    candles = CandleCsv(request.csv, venue=_VENUE, symbol=_SYMBOL, interval=request.interval)
    try:
        candles.validate()
    except UnicodeDecodeError:
        raise DataIntegrityError(f"bad candle file: {request.csv}: not UTF-8 text") from None
    if request.engine == "batch":
        rows = batch_rows(spec, candles)
    else:
        rows = incremental_rows(spec, candles)
    try:
        with atomic_text(request.out) as handle:
            tally = write_rows(handle, spec, rows)
    except OSError as exc:
        raise CannotProceed(f"cannot write {request.out} ({exc.strerror})") from None
    return DumpResult(
        out=request.out,
        engine=request.engine,
        rows=tally.rows,
        spec_hash=spec.version_hash,
        columns=len(spec.names),
        first_ready_ms=tally.first_ready_ms,
        impossible_candles=tally.impossible,
    )


def _check_paths(source: Path, out: Path) -> None:
    if out.is_dir():
        raise CannotProceed(f"--out {out} is a directory; name a file instead")
    if out.exists() and source.exists() and out.samefile(source):
        raise CannotProceed(f"refusing to write the features over the candle file {source}")


def incremental_rows(spec: FeatureSpec, candles: CandleCsv) -> Iterator[Row]:
    """Yield the rows of ``SeriesEngine`` candle by candle; None for an impossible candle."""
    engine = SeriesEngine(spec, candles.interval.ms)
    for chunk in candles.chunks(CHUNK_SIZE):
        for c in chunk:
            try:
                values = engine.update(c.open_time_ms, *candle_values(c))
            except DataIntegrityError:
                values = None
            yield c.open_time_ms, values


def batch_rows(spec: FeatureSpec, candles: CandleCsv) -> Iterator[Row]:
    """Yield the rows of the vectorised reference; None for an impossible candle."""
    # numpy and pandas take half a second to import: only this engine pays for them.
    import numpy as np  # noqa: PLC0415

    from paper_trader.features import batch  # noqa: PLC0415

    times: list[int] = []
    ohlcv: list[tuple[float, float, float, float, float]] = []
    for chunk in candles.chunks(CHUNK_SIZE):
        for c in chunk:
            times.append(c.open_time_ms)
            ohlcv.append(candle_values(c))
    values = np.array(ohlcv, dtype=np.float64).reshape(-1, 5).T
    frame = batch.compute(spec, np.array(times, dtype=np.int64), values, candles.interval.ms)
    bad = batch.invalid_rows(values).tolist()
    table: list[list[float]] = frame[list(spec.names)].to_numpy(dtype=np.float64).tolist()
    for t, row, impossible in zip(times, table, bad, strict=True):
        yield t, None if impossible else row


def write_rows(handle: TextIO, spec: FeatureSpec, rows: Iterable[Row]) -> _Tally:
    """Write the header and every row (NaN as an empty cell, floats by ``repr``)."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(("timestamp_ms", *spec.names))
    empty = [""] * len(spec.names)
    tally = _Tally()
    for t, values in rows:
        tally.rows += 1
        if values is None:
            tally.impossible += 1
            writer.writerow((t, *empty))
            continue
        cells = ["" if math.isnan(x) else repr(x) for x in values]
        if tally.first_ready_ms is None and "" not in cells:
            tally.first_ready_ms = t
        writer.writerow((t, *cells))
    return tally
