"""The feature stage resumes from the cache only when the database continues it exactly."""

import dataclasses
import itertools
import math
from decimal import Decimal
from pathlib import Path

import pytest
from fakes.feature_series import MINUTE, START_MS, random_series

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.features.cache import CacheConfig, FeatureCache
from paper_trader.features.engine import SeriesEngine, SeriesKey
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import FeatureStage

SPEC = default_spec()
KEY: SeriesKey = (Venue.BINANCE, "BTC-USDT", Interval.M1)


def market(seed: int, n: int) -> list[Candle]:
    times, ohlcv = random_series(seed, n)
    return [
        Candle(
            venue=KEY[0],
            symbol=KEY[1],
            interval=KEY[2],
            open_time_ms=int(t),
            open=Decimal(repr(o)),
            high=Decimal(repr(h)),
            low=Decimal(repr(lo)),
            close=Decimal(repr(c)),
            volume=Decimal(repr(v)),
        )
        for t, o, h, lo, c, v in zip(times.tolist(), *ohlcv.tolist(), strict=True)
    ]


class Database:
    """The candles SQLite would hold, behind the stage's history port."""

    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles

    async def history(self, key: SeriesKey, after_ms: int | None, count: int) -> list[Candle]:
        assert key == KEY
        if after_ms is None:
            return self.candles[-count:]
        return list(itertools.islice((c for c in self.candles if c.open_time_ms > after_ms), count))


def stage(tmp_path: Path, db: Database, now_ms: int = START_MS) -> FeatureStage:
    config = CacheConfig(directory=tmp_path, ttl_s=3600.0, keep_rows=10)
    cache = FeatureCache(config, SPEC, lambda: now_ms)
    return FeatureStage(
        SPEC, [KEY], keep_rows=10, cache=cache, history=db.history, monotonic=lambda: 0.0
    )


def uninterrupted(candles: list[Candle]) -> list[float]:
    engine = SeriesEngine(SPEC, MINUTE)
    row: list[float] | None = None
    for c in candles:
        row = engine.update(
            c.open_time_ms, *(float(x) for x in (c.open, c.high, c.low, c.close, c.volume))
        )
    assert row is not None
    return row


async def run_and_save(tmp_path: Path, candles: list[Candle]) -> FeatureStage:
    first = stage(tmp_path, Database([]))
    await first.prepare()
    for c in candles:
        first.on_candle(c)
    await first.save()
    return first


async def test_a_restart_continues_from_the_cache_and_the_candles_stored_since(
    tmp_path: Path,
) -> None:
    """Cache at candle 1,000, database at 1,100: the next row equals an uninterrupted run's."""
    candles = market(41, 1_200)
    await run_and_save(tmp_path, candles[:1_000])
    second = stage(tmp_path, Database(candles[:1_100]))
    await second.prepare()
    assert second.cache is not None
    assert second.cache.counters.hits == 1
    assert second.rebuilds == 0
    row = second.on_candle(candles[1_100])
    assert row is not None
    assert list(row.values) == uninterrupted(candles[:1_101])


async def test_a_restart_has_the_recent_rows_that_were_saved(tmp_path: Path) -> None:
    """The rows kept in memory (their ring wrapped round) come back in order from the file."""
    candles = market(43, 1_003)
    first = await run_and_save(tmp_path, candles)
    second = stage(tmp_path, Database(candles))
    await second.prepare()
    assert second.cache is not None
    assert second.cache.counters.hits == 1
    assert second.engine.recent(KEY) == first.engine.recent(KEY)


@pytest.mark.parametrize("change", ["absent", "different"])
async def test_a_cache_the_database_does_not_continue_is_discarded(
    tmp_path: Path, change: str
) -> None:
    """The cached last candle missing from, or different in, the database: re-warm instead."""
    candles = market(42, 1_200)
    await run_and_save(tmp_path, candles[:1_000])
    other = market(43, 1_200) if change == "different" else candles[1_000:]
    second = stage(tmp_path, Database(other))
    await second.prepare()
    assert second.cache is not None
    assert second.cache.counters.misses == {"database": 1}
    assert second.cache.counters.hits == 0
    assert second.rebuilds == 1
    engine = second.engine.series(KEY)
    assert engine.last_open_ms == other[-1].open_time_ms
    assert engine.count == len(other[-2 * SPEC.warmup :])


async def test_without_a_cache_the_series_rewarms_from_the_last_stored_candles(
    tmp_path: Path,
) -> None:
    """No file: the last two warm-ups of stored candles, and the row is ready."""
    candles = market(44, 2_000)
    fresh = stage(tmp_path, Database(candles))
    await fresh.prepare()
    engine = fresh.engine.series(KEY)
    assert engine.count == 2 * SPEC.warmup
    assert engine.is_ready
    assert fresh.cache is not None
    assert fresh.cache.counters.misses == {"absent": 1}
    row = fresh.engine.recent(KEY)[-1]
    assert all(math.isfinite(x) for x in row.values)


async def test_an_impossible_candle_is_counted_and_leaves_other_series_alone(
    tmp_path: Path,
) -> None:
    """A NaN close resets its series only; the stage keeps going."""
    candles = market(45, 800)
    eth = [dataclasses.replace(c, symbol="ETH-USDT") for c in candles]
    s = FeatureStage(SPEC, [], keep_rows=5, cache=None, history=None, monotonic=lambda: 0.0)
    for btc, e in zip(candles[:700], eth[:700], strict=True):
        s.on_candle(btc)
        s.on_candle(e)
    bad = Candle(
        **{
            **{f: getattr(candles[700], f) for f in candles[700].__dataclass_fields__},
            "close": Decimal("NaN"),
        }
    )
    assert s.on_candle(bad) is None
    assert s.on_candle(eth[700]) is not None
    assert s.engine.counters.integrity_errors == 1
    assert s.engine.series(KEY).count == 0
    assert s.engine.series((KEY[0], "ETH-USDT", KEY[2])).count == 701
