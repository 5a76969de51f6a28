"""Walk-forward training reports what models really do out of sample."""

import numpy as np
import pytest
from fakes.feature_series import MINUTE, random_series
from sklearn.metrics import log_loss, roc_auc_score

from paper_trader.errors import DataIntegrityError
from paper_trader.features.spec import default_spec
from paper_trader.prediction import metrics
from paper_trader.prediction.dataset import Dataset, LabelRule, build_dataset, past_labels
from paper_trader.prediction.folds import FoldPlan, split_recent
from paper_trader.prediction.models import ModelConfig
from paper_trader.prediction.training import SCORED, evaluate, train

FAST = ModelConfig(xgb_trees=30, forest_trees=15, n_jobs=1)
RULE = LabelRule(horizon=5, fee_rate=0.001, slippage_bps=5.0)
PLAN = FoldPlan(folds=3, horizon=5, embargo=5, interval_ms=MINUTE)


def planted(n: int, *, seed: int, signal: float) -> Dataset:
    """Samples whose label depends on the first input by ``signal`` (0: pure noise)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    latent = signal * x[:, 0] + rng.normal(size=n)
    labels = np.digitize(latent, np.quantile(latent, [1 / 3, 2 / 3])).astype(np.int64)
    return Dataset(
        features=x,
        labels=labels,
        forward_returns=latent / 100,
        past_labels=np.full(n, -1, dtype=np.int64),
        open_times_ms=np.arange(n, dtype=np.int64) * MINUTE,
        series=np.zeros(n, dtype=np.int64),
        series_names=("X",),
        feature_names=tuple(f"f{i}" for i in range(6)),
        spec_hash="test",
        rule=RULE,
    )


def test_a_learnable_signal_is_found_and_beats_the_baselines() -> None:
    """With a real relation the models' AUC is far above 0.5 and their log loss below prior."""
    result = evaluate(planted(6_000, seed=1, signal=1.5), PLAN, FAST).summary()
    for name in ("xgboost", "forest", "logistic", "ensemble"):
        assert result[name]["roc_auc"] > 0.75, name
        assert result[name]["log_loss"] < result["prior"]["log_loss"] - 0.1, name


def test_shuffled_labels_give_an_auc_within_noise_of_one_half() -> None:
    """The same samples with their labels permuted: nothing to learn, and nothing reported."""
    data = planted(6_000, seed=2, signal=1.5)
    shuffled = np.random.default_rng(3).permutation(data.labels)
    noise = Dataset(**{**_fields(data), "labels": shuffled})
    result = evaluate(noise, PLAN, FAST).summary()
    for name in ("xgboost", "forest", "logistic", "ensemble"):
        assert abs(result[name]["roc_auc"] - 0.5) < 0.03, name
        assert result[name]["log_loss"] > result["prior"]["log_loss"] - 0.01, name


def test_calibration_is_fitted_on_later_samples_than_the_models_with_a_purge() -> None:
    """The calibration block is the last fifth of instants; the fit block ends a gap before."""
    times = np.arange(1_000, dtype=np.int64) * MINUTE
    fit_rows, cal_rows = split_recent(times, 0.2, gap_ms=10 * MINUTE)
    assert cal_rows[0] == 800
    assert cal_rows[-1] == 999
    assert times[fit_rows].max() < times[cal_rows].min() - 10 * MINUTE


def test_saved_predictions_reproduce_every_reported_metric() -> None:
    """Each fold's reported scores are recomputed from the kept out-of-sample rows."""
    result = evaluate(planted(4_000, seed=4, signal=0.8), PLAN, FAST)
    kept = result.predictions
    for fold in result.folds:
        rows = kept["fold"] == fold.number
        labels = kept["label"][rows]
        assert rows.sum() == fold.test_samples
        for name in SCORED:
            probs = kept[f"proba_{name}"][rows]
            assert metrics.scores(labels, probs) == fold.scores[name]
            assert fold.scores[name]["log_loss"] == pytest.approx(
                log_loss(labels, probs, labels=[0, 1, 2])
            )


def test_metrics_agree_with_scikit_learn() -> None:
    """Our AUC (macro one-vs-rest) and Brier match an independent computation."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 500)
    probs = rng.dirichlet([1, 1, 1], 500)
    got = metrics.scores(labels, probs)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))
    brier = np.mean(np.sum((probs - np.eye(3)[labels]) ** 2, axis=1))
    assert got["brier"] == pytest.approx(brier)
    assert got["accuracy"] == pytest.approx(np.mean(probs.argmax(axis=1) == labels))


def test_persistence_uses_what_the_last_return_was_on_the_training_set() -> None:
    """After an up move the baseline predicts the training frequency of what followed one."""
    past = np.array([2, 2, 2, 2, 0, 0, -1])
    labels = np.array([2, 2, 2, 0, 0, 1, 1])
    probs = metrics.persistence(past, labels, np.array([2, -1]))
    assert probs[0].tolist() == pytest.approx([2 / 7, 1 / 7, 4 / 7])
    assert probs[1].tolist() == pytest.approx(metrics.prior(labels, 1)[0].tolist())


def test_past_label_is_the_return_that_ended_at_t() -> None:
    """Sample t's past label is the class of c[t] / c[t-H] - 1, known when candle t closes."""
    times, ohlcv = random_series(61, 2_500)
    data = build_dataset(default_spec(), {"X": (times, ohlcv)}, MINUTE, RULE)
    index = np.searchsorted(times, data.open_times_ms)
    back = ohlcv[3, index] / ohlcv[3, index - RULE.horizon] - 1.0
    want = np.full(len(back), 1)
    want[back > RULE.threshold] = 2
    want[back < -RULE.threshold] = 0
    np.testing.assert_array_equal(data.past_labels, want)
    nan_forward = np.array([0.01, np.nan, -0.01, 0.0])
    assert past_labels(nan_forward, 1, 0.005).tolist() == [-1, 2, -1, 0]


def test_a_training_set_without_one_class_is_refused_with_advice() -> None:
    """No 'up' sample at all: a clear error rather than a two-class model."""
    data = planted(3_000, seed=6, signal=1.0)
    capped = Dataset(**{**_fields(data), "labels": np.minimum(data.labels, 1)})
    with pytest.raises(DataIntegrityError, match="no up label"):
        train(capped, PLAN, FAST)


def test_progress_counts_every_fit_to_the_end() -> None:
    """One step per model per fold and for the final fit, ending at the total."""
    seen: list[tuple[int, int, str]] = []
    train(planted(3_000, seed=7, signal=1.0), PLAN, FAST, lambda d, t, w: seen.append((d, t, w)))
    assert [d for d, _, _ in seen] == list(range(1, 13))
    assert {t for _, t, _ in seen} == {12}
    assert seen[-1][2] == "final: xgboost"


def _fields(data: Dataset) -> dict[str, object]:
    return {name: getattr(data, name) for name in Dataset.__dataclass_fields__}
