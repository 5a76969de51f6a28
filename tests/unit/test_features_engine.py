"""The incremental feature engine equals the batch reference, is causal, and survives bad input."""

import math

import numpy as np
import numpy.typing as npt
import pytest
from fakes.feature_series import MINUTE, incremental_rows, random_series
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_trader.errors import DataIntegrityError
from paper_trader.features import batch
from paper_trader.features.engine import SeriesEngine
from paper_trader.features.spec import FeatureSpec, default_spec

SPEC = default_spec()
TOLERANCE = 1e-9


def assert_equal_rows(
    spec: FeatureSpec, got: npt.NDArray[np.float64], want: npt.NDArray[np.float64]
) -> None:
    """Same NaN positions; values equal to 1e-9 relative (ratios near 0 relative to 1)."""
    assert got.shape == want.shape
    for j, name in enumerate(spec.names):
        a, b = got[:, j], want[:, j]
        missing = np.flatnonzero(np.isnan(a) != np.isnan(b))
        assert missing.size == 0, f"{name}: NaN differs at rows {missing[:5]}"
        both = ~np.isnan(a)
        scale = np.maximum(1.0, np.maximum(np.abs(a[both]), np.abs(b[both])))
        err = np.abs(a[both] - b[both]) / scale
        worst = int(np.argmax(err)) if err.size else 0
        assert err.size == 0 or err[worst] <= TOLERANCE, (
            f"{name}: {a[both][worst]!r} vs {b[both][worst]!r}"
        )


def both_engines(
    times: npt.NDArray[np.int64], ohlcv: npt.NDArray[np.float64], spec: FeatureSpec = SPEC
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    inc = incremental_rows(SeriesEngine(spec, MINUTE), times, ohlcv)
    ref = batch.compute(spec, times, ohlcv, MINUTE)[list(spec.names)].to_numpy()
    return inc, ref


def test_incremental_equals_batch_on_a_long_random_series() -> None:
    """Twenty thousand candles: every column agrees with the batch reference."""
    times, ohlcv = random_series(1, 20_000)
    inc, ref = both_engines(times, ohlcv)
    assert_equal_rows(SPEC, inc, ref)
    assert np.isfinite(inc[SPEC.warmup - 1 :]).all()


def test_incremental_equals_batch_through_halts_and_gaps() -> None:
    """Flat zero-volume halts, bridged gaps and long gaps: still equal, never inf."""
    times, ohlcv = random_series(2, 12_000, halts=6, bridged_gaps=8, long_gaps=3)
    inc, ref = both_engines(times, ohlcv)
    assert_equal_rows(SPEC, inc, ref)
    assert not np.isinf(inc).any()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 1_500),
    price=st.sampled_from([0.05, 3.7, 2_000.0, 61_234.5]),
    halts=st.integers(0, 3),
    gaps=st.integers(0, 3),
    long_gaps=st.integers(0, 2),
)
def test_incremental_equals_batch_on_any_series(
    seed: int, n: int, price: float, halts: int, gaps: int, long_gaps: int
) -> None:
    """Hypothesis: any length, price scale, halts and gaps — the engines agree."""
    times, ohlcv = random_series(
        seed, n, price=price, halts=halts, bridged_gaps=gaps, long_gaps=long_gaps
    )
    ohlcv[:4] = np.maximum(ohlcv[:4], 0.01)
    inc, ref = both_engines(times, ohlcv)
    assert_equal_rows(SPEC, inc, ref)


def test_rows_are_unchanged_when_later_candles_are_appended() -> None:
    """Causality: a row computed on a prefix equals the same row computed on the whole series."""
    times, ohlcv = random_series(3, 3_000, halts=2, bridged_gaps=2)
    full = batch.compute(SPEC, times, ohlcv, MINUTE)[list(SPEC.names)].to_numpy()
    for cut in (1, 17, 661, 1_234, 2_999):
        prefix = batch.compute(SPEC, times[:cut], ohlcv[:, :cut], MINUTE)[list(SPEC.names)]
        np.testing.assert_array_equal(prefix.to_numpy(), full[:cut])


def test_a_feature_that_peeks_at_the_next_candle_is_caught_by_the_causality_check() -> None:
    """The causality check fails for a column shifted from the future, so it can fail at all."""
    times, ohlcv = random_series(4, 500)
    leaky = ohlcv.copy()
    leaky[3, :-1] = ohlcv[3, 1:]  # close of t+1 in place of close of t
    full = batch.compute(SPEC, times, leaky, MINUTE)["ret_1"].to_numpy()
    prefix = batch.compute(SPEC, times[:300], ohlcv[:, :300], MINUTE)["ret_1"].to_numpy()
    assert not np.array_equal(prefix[1:], full[1:300])


def test_the_row_is_ready_exactly_at_the_spec_warmup() -> None:
    """is_ready turns true at the spec's warm-up, never before, and no ready row has a NaN."""
    times, ohlcv = random_series(5, SPEC.warmup + 50)
    engine = SeriesEngine(SPEC, MINUTE)
    ready = []
    for t, values in zip(times.tolist(), ohlcv.T.tolist(), strict=True):
        row = engine.update(t, *values)
        assert row is not None
        ready.append(engine.is_ready)
        assert not engine.is_ready or all(math.isfinite(x) for x in row)
    assert ready.index(True) == SPEC.warmup - 1
    assert all(ready[SPEC.warmup - 1 :])


def test_each_column_appears_no_later_than_its_declared_warmup() -> None:
    """Every column's declared warm-up is an upper bound the engine meets."""
    times, ohlcv = random_series(6, SPEC.warmup + 10)
    rows = incremental_rows(SeriesEngine(SPEC, MINUTE), times, ohlcv)
    for j, column in enumerate(SPEC.columns):
        assert np.isfinite(rows[column.warmup - 1 :, j]).all(), column.name


@pytest.mark.parametrize(
    ("field", "value"),
    [(3, math.nan), (3, math.inf), (3, 0.0), (1, -5.0), (4, -1.0), (4, math.nan), (2, 1e9)],
)
def test_an_impossible_candle_raises_and_resets_only_its_series(field: int, value: float) -> None:
    """NaN, inf, non-positive prices, negative volume, low above high: error, then warm-up again."""
    times, ohlcv = random_series(7, 900)
    bad = ohlcv.copy()
    bad[field, 800] = value
    engine = SeriesEngine(SPEC, MINUTE)
    other = SeriesEngine(SPEC, MINUTE)
    rows = incremental_rows(engine, times, bad)
    clean = incremental_rows(other, times, ohlcv)
    assert np.isnan(rows[800]).all()
    assert engine.count == 99  # counting again from the candle after the bad one
    np.testing.assert_array_equal(rows[:800], clean[:800])
    assert np.isnan(rows[801]).any()
    assert np.isfinite(clean[801:]).all()
    with pytest.raises(DataIntegrityError, match="candle at"):
        SeriesEngine(SPEC, MINUTE).update(int(times[0]), *bad[:, 800].tolist())


def test_a_candle_seen_before_is_skipped() -> None:
    """Duplicates and stale candles return None and leave the state alone."""
    times, ohlcv = random_series(8, 50)
    engine = SeriesEngine(SPEC, MINUTE)
    incremental_rows(engine, times, ohlcv)
    before = engine.snapshot()
    assert engine.update(int(times[-1]), *ohlcv[:, -1].tolist()) is None
    assert engine.update(int(times[10]), *ohlcv[:, 10].tolist()) is None
    assert engine.snapshot() == before


def test_a_gap_longer_than_the_spec_bridges_restarts_the_warmup() -> None:
    """A hole of more than max_bridged_gap candles resets; a shorter one does not."""
    times, ohlcv = random_series(9, 1_000)
    engine = SeriesEngine(SPEC, MINUTE)
    incremental_rows(engine, times[:900], ohlcv[:, :900])
    engine.update(int(times[900]) + SPEC.max_bridged_gap * MINUTE, *ohlcv[:, 900].tolist())
    assert engine.count == 901
    engine.update(
        int(times[901]) + (2 * SPEC.max_bridged_gap + 2) * MINUTE, *ohlcv[:, 901].tolist()
    )
    assert engine.count == 1


def test_a_halt_produces_defined_values_not_nan_or_inf() -> None:
    """A long flat zero-volume stretch: oscillators at their documented neutral values."""
    times, ohlcv = random_series(10, 2_000)
    ohlcv[:4, 1_000:] = ohlcv[3, 999]
    ohlcv[4, 1_000:] = 0.0
    rows = incremental_rows(SeriesEngine(SPEC, MINUTE), times, ohlcv)
    last = dict(zip(SPEC.names, rows[-1], strict=True))
    assert np.isfinite(rows[SPEC.warmup :]).all()
    assert last["bb_pctb_20_2"] == 0.5
    assert last["bb_width_20_2"] == 0.0
    assert last["stoch_k_14_3"] == 50.0
    assert last["willr_14"] == -50.0
    assert last["vol_ratio_20"] == 1.0
    assert last["obv_flow_20"] == 0.0
    assert last["vwap_20"] == ohlcv[3, -1]
    assert last["volatility_20"] == 0.0
    assert last["ema_cross_12_26"] == 0.0


def test_a_restored_snapshot_continues_exactly_like_the_original() -> None:
    """snapshot() then restore() into a new engine: the following rows are identical."""
    times, ohlcv = random_series(11, 2_000, halts=1)
    engine = SeriesEngine(SPEC, MINUTE)
    incremental_rows(engine, times[:1_200], ohlcv[:, :1_200])
    copy = SeriesEngine(SPEC, MINUTE)
    copy.restore(engine.snapshot())
    rest = (times[1_200:], ohlcv[:, 1_200:])
    np.testing.assert_array_equal(incremental_rows(copy, *rest), incremental_rows(engine, *rest))


def test_a_snapshot_from_another_spec_is_refused() -> None:
    """A state with other parameters or another shape raises instead of loading."""
    other = FeatureSpec(SPEC.indicators[:-1])
    engine = SeriesEngine(other, MINUTE)
    times, ohlcv = random_series(12, 100)
    incremental_rows(engine, times, ohlcv)
    with pytest.raises(DataIntegrityError, match="number of indicators"):
        SeriesEngine(SPEC, MINUTE).restore(engine.snapshot())
    state = SeriesEngine(SPEC, MINUTE).snapshot()
    state["steps"][0]["n"] = 11
    with pytest.raises(DataIntegrityError, match="spec says"):
        SeriesEngine(SPEC, MINUTE).restore(state)


def test_the_spec_hash_changes_with_parameters_and_version() -> None:
    """Names, parameters, the gap rule and the implementation version all enter the hash."""
    base = SPEC.version_hash
    assert FeatureSpec(SPEC.indicators).version_hash == base
    assert FeatureSpec(SPEC.indicators[:-1]).version_hash != base
    assert FeatureSpec(SPEC.indicators, max_bridged_gap=5).version_hash != base
    assert FeatureSpec(SPEC.indicators, implementation_version=99).version_hash != base


def test_model_inputs_are_scale_free() -> None:
    """The same market at 1/20 the price gives the same model inputs."""
    times, ohlcv = random_series(13, 1_500, price=60_000.0)
    scaled = ohlcv.copy()
    scaled[:4] /= 20.0
    a = batch.compute(SPEC, times, ohlcv, MINUTE)
    b = batch.compute(SPEC, times, scaled, MINUTE)
    inputs = list(SPEC.model_inputs)
    np.testing.assert_allclose(a[inputs].to_numpy(), b[inputs].to_numpy(), rtol=1e-7, atol=1e-9)
    assert not np.allclose(a["sma_20"], b["sma_20"], equal_nan=True)
    assert len(SPEC.names) == len(set(SPEC.names))
