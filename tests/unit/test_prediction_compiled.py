"""Compiled models reproduce the libraries' probabilities with numpy alone."""

import functools
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from paper_trader.errors import ModelError
from paper_trader.prediction.compiled import CompiledLinear, CompiledTrees

ROWS, FEATURES = 3_000, 12
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


@functools.cache
def dataset(n_classes: int, *, missing: bool = False) -> tuple[FloatArray, IntArray]:
    """Return fixed synthetic training data with some signal in the first four features."""
    rng = np.random.default_rng(100 + n_classes)
    x = rng.normal(size=(ROWS, FEATURES))
    signal = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] - 0.3 * x[:, 3] + rng.normal(scale=0.8, size=ROWS)
    y = np.digitize(signal, [-0.6, 0.6] if n_classes == 3 else [0.0])
    if missing:
        x = with_nans(x, seed=n_classes)
    return x, y


def with_nans(x: FloatArray, *, seed: int, fraction: float = 0.1) -> FloatArray:
    """Return a copy of ``x`` with about ``fraction`` of its values replaced by NaN."""
    out = x.copy()
    out[np.random.default_rng(seed).random(out.shape) < fraction] = np.nan
    return out


def on_thresholds(features: IntArray, values: FloatArray, *, seed: int) -> FloatArray:
    """Return random rows in which one feature sits exactly on a split value."""
    rows = np.random.default_rng(seed).normal(size=(len(features), FEATURES))
    rows[np.arange(len(features)), features] = values
    return rows


def unseen(seed: int) -> FloatArray:
    """Return rows the models were not fitted on: enough to span several prediction chunks."""
    return np.random.default_rng(seed).normal(scale=1.5, size=(4_600, FEATURES))


def queries(seed: int, *splits: tuple[IntArray, FloatArray]) -> FloatArray:
    """Return unseen rows, rows with NaN, and rows on the given (features, values) splits."""
    rows = unseen(seed)
    edges = [on_thresholds(f[:400], v[:400], seed=seed + 1) for f, v in splits]
    return np.concatenate([rows, with_nans(rows[:500], seed=seed + 2), *edges])


def assert_matches(got: FloatArray, want: FloatArray, tolerance: float) -> None:
    """Assert same shape, rows summing to one and probabilities within ``tolerance``."""
    assert got.shape == want.shape
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.max(np.abs(got - want)) <= tolerance


def forest_splits(forest: Any) -> tuple[IntArray, FloatArray]:
    """Return the (feature, threshold) pairs of the first tree's internal nodes."""
    tree = forest.estimators_[0].tree_
    internal = tree.children_left >= 0
    return tree.feature[internal], tree.threshold[internal]


def xgboost_splits(booster: xgboost.Booster) -> tuple[IntArray, FloatArray]:
    """Return the (feature, condition) pairs of the booster's first trees' internal nodes."""
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    pairs = [
        (feature, condition)
        for tree in trees[:20]
        for feature, condition, left in zip(
            tree["split_indices"], tree["split_conditions"], tree["left_children"], strict=True
        )
        if left >= 0
    ]
    features, conditions = zip(*pairs, strict=True)
    return np.array(features), np.array(conditions, dtype=np.float32).astype(np.float64)


@pytest.mark.parametrize("kind", [ExtraTreesClassifier, RandomForestClassifier])
@pytest.mark.parametrize("max_depth", [6, None])
@pytest.mark.parametrize("n_classes", [3, 2])
def test_forest_matches_sklearn_predict_proba(
    kind: Any, max_depth: int | None, n_classes: int
) -> None:
    """Every tree walked in lock-step gives sklearn's mean leaf distribution, NaN included."""
    x, y = dataset(n_classes)
    forest = kind(n_estimators=20, max_depth=max_depth, random_state=1).fit(x, y)
    compiled = CompiledTrees.from_sklearn_forest(forest)
    rows = queries(7, forest_splits(forest))
    assert (compiled.n_features, compiled.n_classes) == (FEATURES, n_classes)
    assert_matches(compiled.predict_proba(rows), forest.predict_proba(rows), 1e-9)


def test_forest_trained_with_missing_values_sends_nan_the_learned_way() -> None:
    """A forest fitted on NaN sends NaN to the child sklearn chose for each node."""
    x, y = dataset(3, missing=True)
    forest = RandomForestClassifier(n_estimators=20, max_depth=8, random_state=2).fit(x, y)
    rows = with_nans(queries(8), seed=9, fraction=0.3)
    assert_matches(
        CompiledTrees.from_sklearn_forest(forest).predict_proba(rows),
        forest.predict_proba(rows),
        1e-9,
    )


@pytest.mark.parametrize("n_classes", [3, 2])
@pytest.mark.parametrize("early_stopping", [None, 5])
def test_xgboost_matches_xgbclassifier_predict_proba(
    n_classes: int, early_stopping: int | None
) -> None:
    """Softprob and logistic models agree with XGBoost, NaN and early stopping included."""
    x, y = dataset(n_classes, missing=True)
    model = xgboost.XGBClassifier(
        n_estimators=60 if early_stopping is None else 200,
        max_depth=4,
        tree_method="hist",
        early_stopping_rounds=early_stopping,
        n_jobs=1,
    ).fit(x[:2_400], y[:2_400], eval_set=[(x[2_400:], y[2_400:])], verbose=False)
    booster = model.get_booster()
    if early_stopping is not None:
        assert model.best_iteration + 1 < booster.num_boosted_rounds()
    compiled = CompiledTrees.from_xgboost(booster)
    rows = queries(10, xgboost_splits(booster))
    assert (compiled.n_features, compiled.n_classes) == (FEATURES, n_classes)
    assert_matches(compiled.predict_proba(rows), model.predict_proba(rows), 1e-6)


def test_xgboost_iterations_keep_only_the_first_rounds() -> None:
    """``iterations=k`` uses the trees of rounds [0, k), like ``iteration_range=(0, k)``."""
    x, y = dataset(3, missing=True)
    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "nthread": 1},
        xgboost.DMatrix(x, y),
        num_boost_round=30,
    )
    rows = queries(11)
    want = booster.predict(xgboost.DMatrix(rows), iteration_range=(0, 12))
    got = CompiledTrees.from_xgboost(booster, iterations=12).predict_proba(rows)
    assert_matches(got, want.astype(np.float64), 1e-6)


def test_xgboost_reloaded_booster_keeps_its_best_iteration() -> None:
    """A booster saved in XGBoost's format and loaded back still stops at its best round."""
    x, y = dataset(3, missing=True)
    model = xgboost.XGBClassifier(
        n_estimators=200, max_depth=4, early_stopping_rounds=5, n_jobs=1
    ).fit(x[:2_400], y[:2_400], eval_set=[(x[2_400:], y[2_400:])], verbose=False)
    reloaded = xgboost.Booster()
    reloaded.load_model(model.get_booster().save_raw("ubj"))
    rows = queries(12)
    got = CompiledTrees.from_xgboost(reloaded).predict_proba(rows)
    assert_matches(got, model.predict_proba(rows), 1e-6)


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "multi:softmax", "num_class": 3},
        {"objective": "reg:squarederror"},
        {"objective": "binary:logistic", "booster": "gblinear"},
    ],
)
def test_xgboost_rejects_unsupported_models(params: dict[str, Any]) -> None:
    """Objectives without class probabilities and non-tree boosters are refused."""
    x, y = dataset(3)
    labels = y if "num_class" in params else (y == 2).astype(np.float64)
    booster = xgboost.train({**params, "nthread": 1}, xgboost.DMatrix(x, labels), 2)
    with pytest.raises(ModelError, match="unsupported"):
        CompiledTrees.from_xgboost(booster)


@pytest.mark.parametrize("iterations", [0, 4])
def test_xgboost_rejects_iterations_out_of_range(iterations: int) -> None:
    """Asking for no round, or more rounds than were trained, is refused."""
    x, y = dataset(2)
    booster = xgboost.train(
        {"objective": "binary:logistic", "nthread": 1}, xgboost.DMatrix(x, y), 3
    )
    with pytest.raises(ModelError, match="iterations"):
        CompiledTrees.from_xgboost(booster, iterations=iterations)


def test_xgboost_rejects_a_split_on_a_feature_the_model_lacks() -> None:
    """A tree feature index outside the model's features is refused at compile time."""
    x, y = dataset(2)
    booster = xgboost.train(
        {"objective": "binary:logistic", "nthread": 1}, xgboost.DMatrix(x, y), 3
    )
    document = json.loads(booster.save_raw("json"))
    document["learner"]["gradient_booster"]["model"]["trees"][1]["split_indices"][0] = FEATURES
    tampered = xgboost.Booster()
    tampered.load_model(bytearray(json.dumps(document).encode()))
    with pytest.raises(ModelError, match="feature outside"):
        CompiledTrees.from_xgboost(tampered)


@pytest.mark.parametrize("n_classes", [3, 2])
@pytest.mark.parametrize(
    "scaler",
    [StandardScaler(), StandardScaler(with_mean=False), StandardScaler(with_std=False)],
    ids=["scaled", "no_mean", "no_std"],
)
def test_pipeline_matches_sklearn_predict_proba(n_classes: int, scaler: StandardScaler) -> None:
    """Standardising then softmax (or sigmoid for two classes) equals sklearn's pipeline."""
    x, y = dataset(n_classes)
    shifted = x * np.linspace(0.5, 5.0, FEATURES) + 3.0
    shifted[:, 5] = 3.0  # a zero-variance column: sklearn keeps its scale at 1
    pipeline = make_pipeline(scaler, LogisticRegression(max_iter=1_000)).fit(shifted, y)
    rows = unseen(13) * np.linspace(0.5, 5.0, FEATURES) + 3.0
    compiled = CompiledLinear.from_pipeline(pipeline)
    assert (compiled.n_features, compiled.n_classes) == (FEATURES, n_classes)
    assert_matches(compiled.predict_proba(rows), pipeline.predict_proba(rows), 1e-9)


@pytest.mark.parametrize("n_classes", [3, 2])
def test_bare_logistic_matches_sklearn_predict_proba(n_classes: int) -> None:
    """An unscaled logistic regression (a calibrator) equals sklearn's probabilities."""
    x, y = dataset(n_classes)
    model = LogisticRegression(C=10.0, max_iter=1_000).fit(x[:, :3], y)
    rows = unseen(14)[:, :3] * 20.0  # large scores probe the stable sigmoid and softmax
    assert_matches(
        CompiledLinear.from_logistic(model).predict_proba(rows), model.predict_proba(rows), 1e-9
    )


@functools.cache
def compiled_models() -> list[CompiledTrees | CompiledLinear]:
    """Return one small compiled model of each kind, fitted on the 3-class data."""
    x, y = dataset(3)
    return [
        CompiledTrees.from_sklearn_forest(ExtraTreesClassifier(n_estimators=3).fit(x, y)),
        CompiledTrees.from_xgboost(
            xgboost.XGBClassifier(n_estimators=3, n_jobs=1).fit(x, y).get_booster()
        ),
        CompiledLinear.from_pipeline(
            make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
        ),
    ]


@pytest.mark.parametrize(
    "shape", [(FEATURES,), (4, FEATURES - 1), (4, FEATURES + 1), (2, 2, FEATURES)]
)
def test_predict_proba_rejects_inputs_of_the_wrong_shape(shape: tuple[int, ...]) -> None:
    """Anything but a 2-D array with the model's number of columns raises ``ValueError``."""
    for model in compiled_models():
        with pytest.raises(ValueError, match=f"expected shape \\(n, {FEATURES}\\), got"):
            model.predict_proba(np.zeros(shape))


def test_predict_proba_of_no_rows_is_empty() -> None:
    """Zero rows in give zero rows of probabilities out."""
    for model in compiled_models():
        assert model.predict_proba(np.zeros((0, FEATURES))).shape == (0, 3)


def test_constructors_reject_unsupported_or_unfitted_estimators() -> None:
    """Wrong estimator types, unfitted ones and multi-output forests raise ``ModelError``."""
    x, y = dataset(3)
    logistic = LogisticRegression().fit(x, y)
    two_outputs = RandomForestClassifier(n_estimators=2).fit(x, np.stack([y, y], axis=1))
    attempts: list[Callable[[], object]] = [
        lambda: CompiledTrees.from_sklearn_forest(logistic),
        lambda: CompiledTrees.from_sklearn_forest(ExtraTreesClassifier()),
        lambda: CompiledTrees.from_sklearn_forest(two_outputs),
        lambda: CompiledTrees.from_xgboost(logistic),
        lambda: CompiledLinear.from_pipeline(make_pipeline(LogisticRegression()).fit(x, y)),
        lambda: CompiledLinear.from_pipeline(
            make_pipeline(MinMaxScaler(), LogisticRegression()).fit(x, y)
        ),
        lambda: CompiledLinear.from_pipeline(make_pipeline(StandardScaler(), LogisticRegression())),
        lambda: CompiledLinear.from_logistic(LogisticRegression()),
        lambda: CompiledLinear.from_logistic(two_outputs),
    ]
    for attempt in attempts:
        with pytest.raises(ModelError):
            attempt()
