"""Labels are fee-aware and look exactly H candles ahead; folds keep train and test apart."""

import numpy as np
import pytest
from fakes.feature_series import MINUTE, random_series

from paper_trader.errors import DataIntegrityError
from paper_trader.features import batch
from paper_trader.features.spec import default_spec
from paper_trader.prediction.dataset import Label, LabelRule, build_dataset, classify
from paper_trader.prediction.folds import FoldPlan, walk_forward

SPEC = default_spec()
RULE = LabelRule(horizon=5, fee_rate=0.001, slippage_bps=5.0)


def test_a_move_smaller_than_a_round_trip_is_flat() -> None:
    """Threshold = 2 x (fee + slippage): inside it flat, beyond it up or down."""
    assert RULE.threshold == pytest.approx(0.003)
    got = classify(np.array([0.0031, 0.003, 0.0, -0.003, -0.0031]), RULE.threshold)
    assert got.tolist() == [Label.UP, Label.FLAT, Label.FLAT, Label.FLAT, Label.DOWN]


def test_samples_are_the_batch_rows_with_the_close_h_candles_later() -> None:
    """Inputs equal the batch reference's model inputs; each label uses close[t+H] exactly."""
    times, ohlcv = random_series(51, 3_000)
    data = build_dataset(SPEC, {"BTC-USDT": (times, ohlcv)}, MINUTE, RULE)
    frame = batch.compute(SPEC, times, ohlcv, MINUTE).set_index("open_time_ms")
    np.testing.assert_array_equal(
        data.features, frame.loc[data.open_times_ms, list(SPEC.model_inputs)].to_numpy()
    )
    index = np.searchsorted(times, data.open_times_ms)
    want = ohlcv[3, index + RULE.horizon] / ohlcv[3, index] - 1.0
    np.testing.assert_array_equal(data.forward_returns, want)
    np.testing.assert_array_equal(data.labels, classify(want, RULE.threshold))
    assert (
        data.open_times_ms[0] == times[SPEC.warmup - 1]
        or data.open_times_ms[0] < times[SPEC.warmup]
    )
    assert data.open_times_ms[-1] == times[-1 - RULE.horizon]
    assert set(np.unique(data.labels)) == {Label.DOWN, Label.FLAT, Label.UP}


def test_no_label_spans_a_gap_or_a_reset() -> None:
    """A candle whose t+H falls across a hole has no sample, bridged or not."""
    times, ohlcv = random_series(52, 3_000)
    times[2_000:] += 3 * MINUTE  # a bridged hole of three candles
    data = build_dataset(SPEC, {"X": (times, ohlcv)}, MINUTE, RULE)
    across = (data.open_times_ms < times[2_000]) & (
        data.open_times_ms >= times[2_000 - RULE.horizon]
    )
    assert not across.any()
    assert (data.open_times_ms == times[2_000 - RULE.horizon - 1]).any()


def test_a_sample_does_not_change_when_candles_after_its_label_change() -> None:
    """Inputs and label at t depend on candles up to t + H only."""
    times, ohlcv = random_series(53, 2_000)
    later = ohlcv.copy()
    later[:4, 1_500:] *= 1.5
    a = build_dataset(SPEC, {"X": (times, ohlcv)}, MINUTE, RULE)
    b = build_dataset(SPEC, {"X": (times, later)}, MINUTE, RULE)
    cut = times[1_500 - RULE.horizon]
    np.testing.assert_array_equal(
        a.features[a.open_times_ms < cut], b.features[b.open_times_ms < cut]
    )
    np.testing.assert_array_equal(a.labels[a.open_times_ms < cut], b.labels[b.open_times_ms < cut])


def test_samples_of_several_series_are_ordered_by_time() -> None:
    """Two symbols: one time-ordered sample list, each sample tagged with its series."""
    a = random_series(54, 1_500)
    b = random_series(55, 1_500, price=2_000.0)
    data = build_dataset(SPEC, {"BTC-USDT": a, "ETH-USDT": b}, MINUTE, RULE)
    assert np.all(np.diff(data.open_times_ms) >= 0)
    assert data.series_names == ("BTC-USDT", "ETH-USDT")
    assert np.bincount(data.series).tolist() == [len(data) // 2, len(data) // 2]


def test_too_few_candles_are_refused_with_what_is_needed() -> None:
    """Shorter than the warm-up plus the horizon: a clear error, not an empty model."""
    times, ohlcv = random_series(56, SPEC.warmup - 100)
    with pytest.raises(DataIntegrityError, match="no usable samples"):
        build_dataset(SPEC, {"X": (times, ohlcv)}, MINUTE, RULE)


@pytest.mark.parametrize("train_candles", [None, 800])
def test_folds_purge_and_embargo_every_boundary(train_candles: int | None) -> None:
    """Every training label window ends more than the embargo before its fold's test."""
    times = np.arange(6_000, dtype=np.int64) * MINUTE
    plan = FoldPlan(
        folds=4,
        horizon=5,
        embargo=10,
        interval_ms=MINUTE,
        train_candles=train_candles,
        min_train=300,
    )
    folds = walk_forward(times, plan)
    assert len(folds) == 4
    for fold in folds:
        last_label_end = times[fold.train].max() + plan.horizon * MINUTE
        assert last_label_end < times[fold.test].min() - plan.embargo * MINUTE
        assert (
            times[fold.train].max() + (plan.horizon + plan.embargo + 1) * MINUTE
            == times[fold.test].min()
        )
        if train_candles is not None:
            assert len(fold.train) == train_candles
    assert [len(f.test) for f in folds] == [1_200] * 4
    assert folds[-1].test.max() == len(times) - 1


def test_folds_refuse_data_too_short_for_the_plan() -> None:
    """Not enough history for the first fold: an error naming the numbers."""
    times = np.arange(400, dtype=np.int64) * MINUTE
    plan = FoldPlan(folds=3, horizon=5, embargo=5, interval_ms=MINUTE)
    with pytest.raises(DataIntegrityError, match="too little data for 3 walk-forward folds"):
        walk_forward(times, plan)


def test_an_embargo_shorter_than_the_horizon_is_refused() -> None:
    """The plan itself refuses a gap that would let labels overlap the test."""
    with pytest.raises(ValueError, match="at least the horizon"):
        FoldPlan(folds=2, horizon=10, embargo=5, interval_ms=MINUTE)
