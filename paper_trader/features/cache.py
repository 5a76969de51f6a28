"""The feature cache: each series' engine state on disk, so a restart resumes mid-series.

One file per series under ``<CACHE_DIR>/features/``. The file is the JSON payload (format,
spec hash, series, last candle time, save time, engine state, recent rows) followed by a line
``sha256:<hex of the payload>``. It is written to a temporary file, flushed to disk and renamed
over the old one, so a crash leaves the old file or the new one, never half of either. A file
that is missing, truncated, altered, from another spec version or another series, or older than
``CACHE_TTL_SECONDS`` is refused with its reason; the caller logs it and rebuilds from the
candles in SQLite. Deleting the directory is always safe.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paper_trader.domain import Interval, Venue
from paper_trader.errors import DataIntegrityError
from paper_trader.features.atomic import write_atomically
from paper_trader.features.engine import FeatureRow, SeriesEngine, SeriesKey
from paper_trader.features.spec import FeatureSpec

FORMAT = 1
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
            rows = [_row(key, item, len(self.spec.names)) for item in payload["rows"]]
        except (DataIntegrityError, KeyError, TypeError, ValueError) as exc:
            raise CacheMiss("corrupt", f"{path}: {exc}") from None
        return Restored(engine=engine, rows=rows[-self.config.keep_rows :])

    def save(self, key: SeriesKey, engine: SeriesEngine, rows: list[FeatureRow]) -> Path:
        """Write the series atomically; raise ``OSError`` if the disk refuses."""
        return self.write(key, self.payload(key, engine, rows))

    def payload(
        self, key: SeriesKey, engine: SeriesEngine, rows: list[FeatureRow]
    ) -> dict[str, object]:
        """Return a copy of what the file will hold (cheap: call it on the event loop)."""
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
            "rows": [[r.open_time_ms, r.is_ready, list(r.values)] for r in rows],
        }

    def write(self, key: SeriesKey, payload: dict[str, object]) -> Path:
        """Encode and write a ``payload()`` atomically (slow: call it in a worker thread)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        blob = body + b"\n" + _CHECKSUM_PREFIX + hashlib.sha256(body).hexdigest().encode() + b"\n"
        path = self.path(key)
        try:
            write_atomically(path, blob)
        except OSError:
            self.counters.save_failures += 1
            raise
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


def _row(key: SeriesKey, item: object, width: int) -> FeatureRow:
    if not isinstance(item, list) or len(item) != 3:
        raise ValueError("a saved row is not [time, ready, values]")
    t, ready, values = item
    if not isinstance(t, int) or not isinstance(ready, bool) or not isinstance(values, list):
        raise TypeError("a saved row has the wrong types")
    if len(values) != width:
        raise ValueError(f"a saved row has {len(values)} values, the spec {width}")
    venue, symbol, interval = key
    return FeatureRow(
        venue=Venue(venue),
        symbol=symbol,
        interval=Interval(interval),
        open_time_ms=t,
        values=tuple(float(x) for x in values),
        is_ready=ready,
    )
