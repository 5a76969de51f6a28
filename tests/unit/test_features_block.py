"""The column-wise engine equals the batch reference for a set of series closing together,
resets only the series a gap or an impossible candle hits, and hands series to and from the
per-series engine without a trace in their rows."""

import dataclasses
import itertools
import json
import math
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pytest
from fakes.feature_series import MINUTE, incremental_rows, random_series
from hypothesis import given, settings
from hypothesis import strategies as st
from test_features_engine import assert_equal_rows

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.errors import DataIntegrityError
from paper_trader.features import batch, transfer
from paper_trader.features.block import SeriesBlock
from paper_trader.features.cache import CacheConfig, FeatureCache
from paper_trader.features.engine import FeatureRow, SeriesEngine, candle_values
from paper_trader.features.series_set import FeatureEngine
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import FeatureStage

SPEC = default_spec()
Series = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


def reference(series: Series) -> npt.NDArray[np.float64]:
    times, ohlcv = series
    return batch.compute(SPEC, times, ohlcv, MINUTE)[list(SPEC.names)].to_numpy()


def columnwise(all_series: list[Series], block: SeriesBlock | None = None) -> list[npt.NDArray]:  # type: ignore[type-arg]
    """Feed the series instant by instant (each candle time once, its series together)."""
    block = block or SeriesBlock(SPEC, MINUTE, slots=len(all_series))
    out = [np.full((len(t), len(SPEC.names)), np.nan) for t, _ in all_series]
    by_time: dict[int, list[tuple[int, int]]] = {}
    for j, (times, _) in enumerate(all_series):
        for i, t in enumerate(times.tolist()):
            by_time.setdefault(t, []).append((j, i))
    for t in sorted(by_time):
        members = by_time[t]
        slots = np.array([j for j, _ in members])
        ohlcv = np.array([all_series[j][1][:, i] for j, i in members])
        done = block.update(slots, np.full(len(members), t), ohlcv)
        for r, (j, i) in enumerate(members):
            out[j][i] = done.rows[r]
    return out


def test_a_set_of_series_closing_together_equals_the_batch_reference() -> None:
    """Twelve series with halts, bridged and long gaps, impossible candles and different
    starts: every row of every series equals the batch reference."""
    all_series = []
    for seed in range(12):
        times, ohlcv = random_series(seed, 2_500, halts=seed % 3, bridged_gaps=2, long_gaps=1)
        if seed % 4 == 1:
            ohlcv[3, 700 + seed] = math.nan
            ohlcv[1, 1_900] = ohlcv[2, 1_900] * 0.5  # high below low
        start = 97 * seed
        all_series.append((times[start:], ohlcv[:, start:]))
    for got, series in zip(columnwise(all_series), all_series, strict=True):
        assert_equal_rows(SPEC, got, reference(series))


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 900),
    price=st.sampled_from([0.05, 3.7, 61_234.5]),
    halts=st.integers(0, 2),
    gaps=st.integers(0, 2),
)
def test_the_column_wise_engine_equals_the_batch_on_any_series(
    seed: int, n: int, price: float, halts: int, gaps: int
) -> None:
    """Hypothesis: two series of any length, price scale, halts and gaps."""
    pair = []
    for k in range(2):
        times, ohlcv = random_series(seed + k, n, price=price, halts=halts, bridged_gaps=gaps)
        ohlcv[:4] = np.maximum(ohlcv[:4], 0.01)
        pair.append((times, ohlcv))
    for got, series in zip(columnwise(pair), pair, strict=True):
        assert_equal_rows(SPEC, got, reference(series))


def test_an_impossible_candle_resets_only_its_slot_and_is_reported_for_it() -> None:
    """A NaN close in one of three slots: refused there, the others' rows unchanged."""
    block = SeriesBlock(SPEC, MINUTE, slots=3)
    series = [random_series(20 + k, 800) for k in range(3)]
    slots = np.arange(3)
    for i in range(799):
        ohlcv = np.array([x[:, i] for _, x in series])
        if i == 700:
            ohlcv[1, 3] = math.nan
        done = block.update(slots, np.array([t[i] for t, _ in series]), ohlcv)
        if i == 700:
            assert done.refused.tolist() == [False, True, False]
            assert np.isnan(done.rows[1]).all()
            assert np.isfinite(done.rows[[0, 2]]).all()
    assert block.count.tolist() == [799, 98, 799]
    before = block.count.copy()
    again = block.update(slots[:1], series[0][0][798:799], series[0][1][:, 798:799].T)
    assert again.skipped.tolist() == [True]
    assert (block.count == before).all()


def test_a_series_moves_between_the_engines_without_a_trace_in_its_rows() -> None:
    """Per-series engine, block, engine, block... through halts and gaps: equal to the batch."""
    times, ohlcv = random_series(5, 3_000, halts=2, bridged_gaps=3, long_gaps=1)
    cuts = [0, 3, 40, 700, 1_300, 1_301, 2_200, 3_000]
    block = SeriesBlock(SPEC, MINUTE, slots=2)
    engine = SeriesEngine(SPEC, MINUTE)
    got = np.full((len(times), len(SPEC.names)), np.nan)
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):
        if k % 2 == 0:
            got[a:b] = incremental_rows(engine, times[a:b], ohlcv[:, a:b])
            transfer.adopt(block, 1, engine)
        else:
            got[a:b] = columnwise([(times[a:b], ohlcv[:, a:b])], _OneSlot(block, 1))[0]
            engine = transfer.export(block, 1)
    assert_equal_rows(SPEC, got, reference((times, ohlcv)))
    assert engine.snapshot()["count"] == engine.count


class _OneSlot(SeriesBlock):
    """A view of one slot of a block as a block of one (for ``columnwise``)."""

    def __init__(self, block: SeriesBlock, slot: int) -> None:
        self.inner, self.slot = block, slot

    def update(self, slots, times, ohlcv):  # type: ignore[no-untyped-def,override]
        return self.inner.update(np.array([self.slot]), times, ohlcv)


def candles(symbol: str, seed: int, n: int) -> list[Candle]:
    times, ohlcv = random_series(seed, n)
    return [
        Candle(
            venue=Venue.BINANCE,
            symbol=symbol,
            interval=Interval.M1,
            open_time_ms=int(t),
            open=Decimal(str(o)),
            high=Decimal(str(h)),
            low=Decimal(str(lo)),
            close=Decimal(str(c)),
            volume=Decimal(str(v)),
        )
        for t, (o, h, lo, c, v) in zip(times.tolist(), ohlcv.T.tolist(), strict=True)
    ]


def test_wide_instants_give_the_rows_counters_and_errors_of_one_candle_at_a_time() -> None:
    """Ten series through the column-wise path and through the per-candle path: the same rows,
    the same counters, the same error for the same impossible candle, the same recent rows."""
    markets = [candles(f"S{k}-USDT", 30 + k, 720) for k in range(10)]
    bad = markets[3][500]
    markets[3][500] = dataclasses.replace(bad, close=Decimal("NaN"))
    wide, narrow = (
        FeatureEngine(SPEC, keep_rows=4, wide=2),
        FeatureEngine(SPEC, keep_rows=4, wide=99),
    )
    for i in range(720):
        instant = [m[i] for m in markets]
        a, b = wide.update_many(instant), narrow.update_many(instant)
        for x, y in zip(a, b, strict=True):
            if isinstance(x, DataIntegrityError):
                assert isinstance(y, DataIntegrityError)
                assert str(x) == str(y)
            elif x is None:
                assert y is None
            else:
                assert y is not None
                assert x.is_ready == y.is_ready
                np.testing.assert_allclose(x.values, y.values, rtol=1e-9, atol=1e-9)
    assert wide.counters == narrow.counters
    assert wide.counters.integrity_errors == 1
    key = (Venue.BINANCE, "S3-USDT", Interval.M1)
    assert wide.series(key).count == narrow.series(key).count == 219
    for k in range(10):
        key = (Venue.BINANCE, f"S{k}-USDT", Interval.M1)
        got, want = wide.recent(key), narrow.recent(key)
        assert [r.open_time_ms for r in got] == [r.open_time_ms for r in want]
        np.testing.assert_allclose(got[-1].values, want[-1].values, rtol=1e-9, atol=1e-9)


def test_a_series_saved_from_the_block_resumes_exactly(tmp_path: object) -> None:
    """copy_of a series living in the block: restored into an engine, it continues like it."""
    markets = [candles(f"S{k}-USDT", 40 + k, 800) for k in range(3)]
    engine = FeatureEngine(SPEC, wide=2)
    for i in range(700):
        engine.update_many([m[i] for m in markets])
    key = (Venue.BINANCE, "S1-USDT", Interval.M1)
    saved = engine.copy_of(key).snapshot()
    copy = SeriesEngine(SPEC, MINUTE)
    copy.restore(saved)
    for i in range(700, 800):
        rows = engine.update_many([m[i] for m in markets])
        row = rows[1]
        mine = copy.update(markets[1][i].open_time_ms, *transfer_values(markets[1][i]))
        assert isinstance(row, FeatureRow)
        assert mine is not None
        np.testing.assert_allclose(row.array, mine, rtol=1e-9, atol=1e-9)


def transfer_values(candle: Candle) -> tuple[float, float, float, float, float]:
    return candle_values(candle)


def test_the_stage_reports_an_impossible_candle_of_a_wide_instant_and_goes_on() -> None:
    """on_instant: a NaN close among ten is None and logged, its series re-warms, the rest
    have rows; a row handed out cannot be written to."""
    markets = [candles(f"S{k}-USDT", 50 + k, 300) for k in range(10)]
    stage = FeatureStage(SPEC, [], keep_rows=2, cache=None, history=None, monotonic=lambda: 0.0)
    for i in range(299):
        instant = [m[i] for m in markets]
        if i == 200:
            instant[4] = dataclasses.replace(instant[4], close=Decimal("NaN"))
        rows = stage.on_instant(instant)
        if i == 200:
            assert rows[4] is None
            assert all(r is not None for j, r in enumerate(rows) if j != 4)
    assert stage.engine.counters.integrity_errors == 1
    last = stage.on_instant([m[299] for m in markets])
    row = last[0]
    assert isinstance(row, FeatureRow)
    with pytest.raises(ValueError, match="read-only"):
        row.array[0] = 1.0
    assert stage.engine.series((Venue.BINANCE, "S4-USDT", Interval.M1)).count == 99


def test_a_frozen_copy_holds_the_state_and_rows_of_the_moment_it_was_taken() -> None:
    """frozen(): series in the block and series in engines alike; later candles leave it."""
    markets = [candles(f"S{k}-USDT", 70 + k, 300) for k in range(4)]
    engine = FeatureEngine(SPEC, keep_rows=3, wide=3)
    for i in range(200):
        engine.update_many([m[i] for m in markets])
    engine.update_many([markets[3][200]])  # S3 alone: into an engine object, out of the block
    engine.series((Venue.BINANCE, "S3-USDT", Interval.M1))
    assert not engine.is_columnwise((Venue.BINANCE, "S3-USDT", Interval.M1))
    assert engine.is_columnwise((Venue.BINANCE, "S0-USDT", Interval.M1))
    frozen = engine.frozen()
    want = {k: (engine.copy_of(k).snapshot(), engine.recent(k)) for k in engine.series_keys()}
    for i in range(201, 300):
        engine.update_many([m[i] for m in markets])
    assert sorted(frozen.keys()) == sorted(want)
    for key, (state, rows) in want.items():
        assert json.dumps(frozen.engine(key).snapshot()) == json.dumps(state)  # NaN as NaN
        assert frozen.recent(key) == rows


async def test_a_save_skips_a_series_that_never_had_a_candle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A configured series the venue gave nothing (start-up stopped early) is not saved, and
    does not stop the others' save: the stop at start-up exits cleanly."""
    config = CacheConfig(directory=tmp_path / "features", ttl_s=3600.0, keep_rows=2)
    cache = FeatureCache(config, SPEC, lambda: 0)
    btc = (Venue.BINANCE, "BTC-USDT", Interval.M1)
    foo = (Venue.BINANCE, "FOO-USDT", Interval.M1)
    history = candles("BTC-USDT", 7, 50)

    async def stored(key, _after, _count):  # type: ignore[no-untyped-def]
        return history if key == btc else []

    stage = FeatureStage(
        SPEC, [btc, foo], keep_rows=2, cache=cache, history=stored, monotonic=lambda: 0.0
    )
    await stage.prepare()
    await stage.save()
    assert cache.path(btc).exists()
    assert not cache.path(foo).exists()
    assert cache.load(btc).engine.last_open_ms == history[-1].open_time_ms
