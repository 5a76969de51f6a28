"""The feature cache restores an identical engine, and refuses every file it should not trust."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fakes.feature_series import MINUTE, incremental_rows, random_series

from paper_trader.domain import Interval, Venue
from paper_trader.features.cache import CacheConfig, CacheMiss, FeatureCache
from paper_trader.features.engine import FeatureRow, SeriesEngine, SeriesKey
from paper_trader.features.spec import FeatureSpec, default_spec
from paper_trader.features.stage import rows_within

SPEC = default_spec()
KEY: SeriesKey = (Venue.BINANCE, "BTC-USDT", Interval.M1)
NOW_MS = 1_800_000_000_000


def make_cache(tmp_path: Path, *, spec: FeatureSpec = SPEC, now_ms: int = NOW_MS) -> FeatureCache:
    config = CacheConfig(directory=tmp_path / "features", ttl_s=3600.0, keep_rows=50)
    return FeatureCache(config, spec, lambda: now_ms)


def warmed(n: int = 900) -> tuple[SeriesEngine, list[FeatureRow], tuple[np.ndarray, np.ndarray]]:
    times, ohlcv = random_series(21, n + 300)
    engine = SeriesEngine(SPEC, MINUTE)
    rows = incremental_rows(engine, times[:n], ohlcv[:, :n])
    recent = [
        FeatureRow(
            venue=KEY[0],
            symbol=KEY[1],
            interval=KEY[2],
            open_time_ms=int(t),
            values=tuple(r),
            is_ready=i >= SPEC.warmup - 1,
        )
        for i, (t, r) in enumerate(zip(times[:n], rows, strict=True))
    ][-50:]
    return engine, recent, (times[n:], ohlcv[:, n:])


def test_a_saved_engine_resumes_exactly_where_it_stopped(tmp_path: Path) -> None:
    """Save, load, and the next rows equal those of the engine that never stopped."""
    cache = make_cache(tmp_path)
    engine, recent, rest = warmed()
    cache.save(KEY, engine, recent)
    restored = cache.load(KEY)
    np.testing.assert_array_equal(
        incremental_rows(restored.engine, *rest), incremental_rows(engine, *rest)
    )
    assert [r.open_time_ms for r in restored.rows] == [r.open_time_ms for r in recent]
    assert np.array_equal(
        np.array([r.values for r in restored.rows]),
        np.array([r.values for r in recent]),
        equal_nan=True,
    )
    assert cache.counters.hits == 1
    assert cache.counters.hit_rate == 1.0


def test_a_missing_file_is_a_miss_named_absent(tmp_path: Path) -> None:
    """No file: a miss with reason absent, counted."""
    cache = make_cache(tmp_path)
    with pytest.raises(CacheMiss) as miss:
        cache.load(KEY)
    assert miss.value.reason == "absent"
    assert cache.counters.misses == {"absent": 1}


@pytest.mark.parametrize(
    ("damage", "reason", "words"),
    [
        (lambda b: b[: len(b) // 2], "corrupt", "truncated"),
        (lambda b: b.replace(b'"count":', b'"count" :', 1), "corrupt", "checksum"),
        (lambda b: b"", "corrupt", "truncated"),
    ],
)
def test_a_damaged_file_is_refused(tmp_path: Path, damage, reason: str, words: str) -> None:  # type: ignore[no-untyped-def]
    """A half-written or altered file is a miss with a reason that says so."""
    cache = make_cache(tmp_path)
    engine, recent, _ = warmed()
    path = cache.save(KEY, engine, recent)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CacheMiss, match=words) as miss:
        cache.load(KEY)
    assert miss.value.reason == reason


def test_a_file_from_another_spec_names_both_hashes(tmp_path: Path) -> None:
    """A spec mismatch is refused with the file's and the running spec's hash."""
    other = FeatureSpec(SPEC.indicators, implementation_version=SPEC.implementation_version + 1)
    writer = make_cache(tmp_path, spec=other)
    engine = SeriesEngine(other, MINUTE)
    times, ohlcv = random_series(22, 100)
    incremental_rows(engine, times, ohlcv)
    writer.save(KEY, engine, [])
    with pytest.raises(CacheMiss) as miss:
        make_cache(tmp_path).load(KEY)
    assert miss.value.reason == "spec"
    assert other.version_hash[:12] in str(miss.value)
    assert SPEC.version_hash[:12] in str(miss.value)


def test_a_file_of_another_series_is_refused(tmp_path: Path) -> None:
    """A file copied over another series' name is not loaded into it."""
    cache = make_cache(tmp_path)
    engine, recent, _ = warmed()
    eth: SeriesKey = (Venue.BINANCE, "ETH-USDT", Interval.M1)
    cache.path(eth).parent.mkdir(parents=True, exist_ok=True)
    cache.path(eth).write_bytes(cache.save(KEY, engine, recent).read_bytes())
    with pytest.raises(CacheMiss) as miss:
        cache.load(eth)
    assert miss.value.reason == "series"


def test_a_file_older_than_the_ttl_is_stale(tmp_path: Path) -> None:
    """Saved more than CACHE_TTL_SECONDS ago: refused as stale."""
    engine, recent, _ = warmed()
    make_cache(tmp_path, now_ms=NOW_MS).save(KEY, engine, recent)
    later = make_cache(tmp_path, now_ms=NOW_MS + 3_601_000)
    with pytest.raises(CacheMiss, match="old") as miss:
        later.load(KEY)
    assert miss.value.reason == "stale"
    assert make_cache(tmp_path, now_ms=NOW_MS + 3_599_000).load(KEY).engine.count == engine.count


def test_saving_replaces_the_file_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    """Two saves: one file, the newer content, no temporary files left behind."""
    cache = make_cache(tmp_path)
    engine, recent, rest = warmed()
    cache.save(KEY, engine, recent)
    incremental_rows(engine, *rest)
    path = cache.save(KEY, engine, recent)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert cache.load(KEY).engine.last_open_ms == engine.last_open_ms


def test_recent_rows_are_bounded_by_the_memory_budget() -> None:
    """The rows kept per series shrink to fit MAX_CACHE_MEMORY_MB, never below one."""
    assert rows_within(256, 1, 55, 1_000) == 1_000
    assert rows_within(1, 100, 55, 1_000) == 23  # 1 MiB over 100 rings of 55 float64 + time
    assert rows_within(1, 100_000, 55, 1_000) == 1


def _resealed(payload: dict[str, object]) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body + b"\nsha256:" + hashlib.sha256(body).hexdigest().encode() + b"\n"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda p: p.update(format=1), "format 1"),  # a file of the JSON-rows format
        (lambda p: p["rows"].update(values=p["rows"]["values"][:-12]), "rows"),  # short block
        (lambda p: p["rows"].update(values="not base64!"), "Non-base64|Incorrect|rows"),
        (lambda p: p["rows"].update(ready=[1] * len(p["rows"]["ready"])), "readiness"),
    ],
)
def test_rows_that_do_not_fit_are_refused(tmp_path: Path, change, words: str) -> None:  # type: ignore[no-untyped-def]
    """A file whose rows (or format) do not fit, even with a valid checksum, is a corrupt miss."""
    cache = make_cache(tmp_path)
    engine, recent, _ = warmed()
    path = cache.save(KEY, engine, recent)
    payload = json.loads(path.read_bytes().rsplit(b"\n", 2)[0])
    change(payload)
    path.write_bytes(_resealed(payload))
    with pytest.raises(CacheMiss, match=words) as miss:
        cache.load(KEY)
    assert miss.value.reason == "corrupt"
