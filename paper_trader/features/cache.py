"""The feature cache: each series' engine state on disk, so a restart resumes mid-series.

One file per series under ``<CACHE_DIR>/features/``. The file is the JSON payload (format,
spec hash, series, last candle time, save time, engine state, recent rows) followed by a line
``sha256:<hex of the payload>``. It is written to a temporary file, flushed to disk and renamed
over the old one, so a crash leaves the old file or the new one, never half of either. A file
that is missing, truncated, altered, from another spec version or another series, or older than
``CACHE_TTL_SECONDS`` is refused with its reason; the caller logs it and rebuilds from the
candles in SQLite. Deleting the directory is always safe.
"""

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paper_trader.domain import Interval, Venue
from paper_trader.errors import DataIntegrityError
from paper_trader.features.atomic import write_atomically
from paper_trader.features.engine import FeatureRow, SeriesEngine, SeriesKey
from paper_trader.features.spec import FeatureSpec

FORMAT = 2  # 2: the recent rows as one base64 block of float64s (1: a JSON list per row)
_CHECKSUM_PREFIX = b"sha256:"


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheConfig:
    """Where and how long to keep engine state, and how many recent rows per series."""

    directory: Path
    ttl_s: float
    keep_rows: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Restored:
    """A series brought back from its file."""

    engine: SeriesEngine
    rows: list[FeatureRow]


class CacheMiss(Exception):
    """The file could not be used; ``reason`` is one of absent, corrupt, stale, spec, series."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(slots=True)
class CacheCounters:
    """Hits, misses by reason, saves."""

    hits: int = 0
    misses: dict[str, int] = field(default_factory=dict)
    saves: int = 0
    save_failures: int = 0

    def demote(self, reason: str) -> None:
        """Count a restored file that its caller could not use after all as a miss."""
        self.hits -= 1
        self.misses[reason] = self.misses.get(reason, 0) + 1

    @property
    def hit_rate(self) -> float | None:
        """Return hits over restore attempts, None before the first."""
        attempts = self.hits + sum(self.misses.values())
        return None if attempts == 0 else self.hits / attempts

    def to_json(self) -> dict[str, object]:
        """Return the counters for logs and health."""
        rate = self.hit_rate
        return {
            "hits": self.hits,
            "misses": sum(self.misses.values()),
            "miss_reasons": dict(self.misses),
            "hit_rate": None if rate is None else round(rate, 3),
            "saves": self.saves,
            "save_failures": self.save_failures,
        }


class FeatureCache:
    """Save and restore ``SeriesEngine`` state for one spec."""

    def __init__(self, config: CacheConfig, spec: FeatureSpec, wall_ms: Callable[[], int]) -> None:
        self._counting = threading.Lock()
        self.config = config
        self.spec = spec
        self._wall_ms = wall_ms
        self.counters = CacheCounters()

    def path(self, key: SeriesKey) -> Path:
        """Return the file of one series."""
        venue, symbol, interval = key
        return self.config.directory / f"{venue}_{symbol}_{interval}.json"

    def load(self, key: SeriesKey) -> Restored:
        """Return the series' saved engine and rows; raise ``CacheMiss`` with the reason."""
        try:
            restored = self._load(key)
        except CacheMiss as miss:
            self.counters.misses[miss.reason] = self.counters.misses.get(miss.reason, 0) + 1
            raise
        self.counters.hits += 1
        return restored

    def _load(self, key: SeriesKey) -> Restored:
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise CacheMiss("absent", f"no cache file {path}") from None
        except OSError as exc:
            raise CacheMiss("corrupt", f"cannot read {path}: {exc}") from None
        payload = _verified_payload(blob, path)
        if payload.get("format") != FORMAT:
            raise CacheMiss("corrupt", f"{path} has format {payload.get('format')!r}")
        if payload.get("spec_hash") != self.spec.version_hash:
            raise CacheMiss(
                "spec",
                f"{path} was written for feature spec {str(payload.get('spec_hash'))[:12]}, "
                f"the running spec is {self.spec.version_hash[:12]}",
            )
        venue, symbol, interval = key
        if [payload.get("venue"), payload.get("symbol"), payload.get("interval")] != [
            str(venue),
            symbol,
            str(interval),
        ]:
            raise CacheMiss("series", f"{path} holds another series")
        saved_at = payload.get("saved_at_ms")
        if not isinstance(saved_at, int):
            raise CacheMiss("corrupt", f"{path} has no save time")
        age_s = (self._wall_ms() - saved_at) / 1000
        if age_s > self.config.ttl_s:
            raise CacheMiss(
                "stale", f"{path} is {age_s:.0f} s old, more than {self.config.ttl_s:.0f} s"
            )
        engine = SeriesEngine(self.spec, interval.ms)
        try:
            engine.restore(payload["state"])
            rows = decode_rows(key, payload["rows"], len(self.spec.names))
        except (DataIntegrityError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise CacheMiss("corrupt", f"{path}: {exc}") from None
        return Restored(engine=engine, rows=rows[-self.config.keep_rows :])

    def save(self, key: SeriesKey, engine: SeriesEngine, rows: list[FeatureRow]) -> Path:
        """Write the series atomically; raise ``OSError`` if the disk refuses."""
        return self.write(key, self.payload(key, engine, encode_rows(rows, len(self.spec.names))))

    def payload(
        self, key: SeriesKey, engine: SeriesEngine, rows: dict[str, object]
    ) -> dict[str, object]:
        """Return what the file will hold, ``rows`` as ``encode_rows`` or ``encode_columns``
        made them."""
        venue, symbol, interval = key
        return {
            "format": FORMAT,
            "spec_hash": self.spec.version_hash,
            "venue": str(venue),
            "symbol": symbol,
            "interval": str(interval),
            "last_open_time_ms": engine.last_open_ms,
            "saved_at_ms": self._wall_ms(),
            "state": engine.snapshot(),
            "rows": rows,
        }

    def write(self, key: SeriesKey, payload: dict[str, object]) -> Path:
        """Encode and write a ``payload()`` atomically (slow: call it in a worker thread)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        blob = body + b"\n" + _CHECKSUM_PREFIX + hashlib.sha256(body).hexdigest().encode() + b"\n"
        path = self.path(key)
        try:
            write_atomically(path, blob)
        except OSError:
            with self._counting:
                self.counters.save_failures += 1
            raise
        with self._counting:  # several series are written at once, from worker threads
            self.counters.saves += 1
        return path


def _verified_payload(blob: bytes, path: Path) -> dict[str, Any]:
    body, sep, tail = blob.rstrip(b"\n").rpartition(b"\n")
    if not sep or not tail.startswith(_CHECKSUM_PREFIX):
        raise CacheMiss("corrupt", f"{path} is truncated (no checksum line)")
    if hashlib.sha256(body).hexdigest().encode() != tail[len(_CHECKSUM_PREFIX) :]:
        raise CacheMiss("corrupt", f"{path} does not match its checksum")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise CacheMiss("corrupt", f"{path} is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise CacheMiss("corrupt", f"{path} is not a cache object")
    return payload


def encode_rows(rows: list[FeatureRow], width: int) -> dict[str, object]:
    """Return the rows as the file holds them: their times, their readiness, and every value
    as one base64 block of little-endian float64s (a thousand rows of 55 values encode in a
    millisecond, where JSON numbers took tens: the stop at 100 symbols waited on them)."""
    values = np.stack([r.array for r in rows]) if rows else np.empty((0, width))
    times = np.array([r.open_time_ms for r in rows], dtype=np.int64)
    return encode_columns(times, np.array([r.is_ready for r in rows], dtype=np.bool_), values)


def encode_columns(
    times: npt.NDArray[np.int64], ready: npt.NDArray[np.bool_], values: npt.NDArray[np.float64]
) -> dict[str, object]:
    """Return rows held as arrays (``RowRings.columns``) as ``encode_rows`` writes them."""
    return {
        "times": times.tolist(),
        "ready": ready.tolist(),
        "values": base64.b64encode(values.astype("<f8").tobytes()).decode("ascii"),
    }


def decode_rows(key: SeriesKey, saved: object, width: int) -> list[FeatureRow]:
    """Return the rows ``encode_rows`` saved; raise ``ValueError`` or ``TypeError`` if they do
    not fit ``width`` columns."""
    if not isinstance(saved, dict) or set(saved) != {"times", "ready", "values"}:
        raise ValueError("the saved rows are not {times, ready, values}")
    times, ready, blob = saved["times"], saved["ready"], saved["values"]
    if not isinstance(times, list) or not all(isinstance(t, int) for t in times):
        raise TypeError("the saved row times are not whole numbers")
    if not isinstance(ready, list) or not all(isinstance(r, bool) for r in ready):
        raise TypeError("the saved row readiness is not true/false")
    if not isinstance(blob, str):
        raise TypeError("the saved row values are not base64 text")
    raw = base64.b64decode(blob, validate=True)
    if len(times) != len(ready) or len(raw) != 8 * width * len(times):
        raise ValueError(f"the saved rows do not hold {len(times)} rows of {width} values")
    values = np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(len(times), width)
    venue, symbol, interval = key
    return [
        FeatureRow(
            venue=Venue(venue),
            symbol=symbol,
            interval=Interval(interval),
            open_time_ms=t,
            values=tuple(values[i].tolist()),
            is_ready=r,
        )
        for i, (t, r) in enumerate(zip(times, ready, strict=True))
    ]
