"""The ensemble weighs models by live log loss, combines them and turns rows into signals."""

import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import log_loss

from paper_trader.domain import Interval, Signal, Strength, Venue
from paper_trader.prediction.ensemble import Ensemble, FloatArray, SignalThresholds
from paper_trader.prediction.scorecard import Scorecard, WeightPolicy, adaptive_weights

MODELS = ("xgboost", "forest", "logistic")
POLICY = WeightPolicy(window=50, min_resolved=10, temperature=0.02, floor=0.2)
KEY = (Venue.BINANCE, "BTC-USDT", Interval.M5)


def make(models: tuple[str, ...] = MODELS, policy: WeightPolicy = POLICY) -> Ensemble:
    """Return an ensemble over ``models`` with default thresholds."""
    return Ensemble(
        models,
        model_version="v7",
        spec_hash="abc123",
        thresholds=SignalThresholds(),
        policy=policy,
    )


def sure(label: int, p: float = 0.9) -> list[float]:
    """Return a row putting ``p`` on ``label`` and the rest evenly on the other classes."""
    row = [(1.0 - p) / 2.0] * 3
    row[label] = p
    return row


def feed(ens: Ensemble, count: int, is_good: Callable[[str], bool]) -> None:
    """Resolve ``count`` rows: good models back the label, the others the next class."""
    for i in range(count):
        label = i % 3
        ens.resolve(
            {m: sure(label) if is_good(m) else sure((label + 1) % 3) for m in ens.models}, label
        )


def dirichlet(rng: np.random.Generator, n: int) -> FloatArray:
    """Return n random probability rows."""
    return rng.dirichlet(np.ones(3), size=n)


def test_weights_are_equal_until_every_model_has_min_resolved() -> None:
    """Below min_resolved for any one model, every model weighs 1/n."""
    ens = make()
    assert ens.weights() == dict.fromkeys(sorted(MODELS), 1.0 / 3.0)
    feed(ens, POLICY.min_resolved - 1, lambda m: m == "xgboost")
    assert ens.weights() == dict.fromkeys(sorted(MODELS), 1.0 / 3.0)
    for _ in range(100):
        ens.scorecard.add("xgboost", sure(0), 0)
        ens.scorecard.add("forest", sure(1), 0)
    assert ens.scorecard.count("logistic") == POLICY.min_resolved - 1
    assert ens.weights() == dict.fromkeys(sorted(MODELS), 1.0 / 3.0)
    ens.scorecard.add("logistic", sure(1), 0)
    assert ens.weights()["xgboost"] > ens.weights()["forest"]


def test_the_better_model_gains_weight_and_the_floor_bounds_the_worst() -> None:
    """A clearly worse model keeps exactly floor / n; the weights sum to 1."""
    ens = make(("good", "bad"))
    feed(ens, 20, lambda m: m == "good")
    weights = ens.weights()
    assert list(weights) == ["bad", "good"]
    assert weights["bad"] == POLICY.floor / 2
    assert weights["good"] > weights["bad"]
    assert math.fsum(weights.values()) == pytest.approx(1.0, abs=1e-12)


def test_adaptive_weights_follow_the_formula() -> None:
    """w_i = floor/n + (1 - floor) * softmax(-(L_i - min L) / temperature)."""
    losses = {"c": 0.6, "a": 0.5, "b": 0.52}
    got = adaptive_weights(losses, POLICY)
    raw = np.exp(-np.array([0.0, 0.02, 0.1]) / POLICY.temperature)
    want = POLICY.floor / 3 + (1 - POLICY.floor) * raw / raw.sum()
    assert list(got) == ["a", "b", "c"]
    assert list(got.values()) == pytest.approx(want.tolist(), rel=1e-12)
    assert min(got.values()) >= POLICY.floor / 3
    assert math.fsum(got.values()) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="'b'"):
        adaptive_weights({"a": 0.5, "b": math.nan}, POLICY)
    with pytest.raises(ValueError, match="no model"):
        adaptive_weights({}, POLICY)


def test_a_model_that_turns_good_regains_weight_after_a_window() -> None:
    """The scorecard keeps only the last `window` resolutions, so old failures are forgotten."""
    ens = make(("a", "b"))
    feed(ens, POLICY.window, lambda m: m == "a")
    before = ens.weights()
    assert before["a"] > before["b"]
    feed(ens, 20, lambda m: m == "b")
    assert ens.weights()["a"] > ens.weights()["b"]
    feed(ens, POLICY.window - 20, lambda m: m == "b")
    after = ens.weights()
    assert after["b"] == pytest.approx(before["a"], rel=1e-12)
    assert after["a"] == pytest.approx(before["b"], rel=1e-12)


@pytest.mark.parametrize("checkpoint", [1, 36, 37, 38, 100, 501])
def test_scorecard_metrics_equal_a_recomputation_over_the_last_window(checkpoint: int) -> None:
    """Count, log loss, Brier and accuracy match numpy/sklearn over the window's rows."""
    rng = np.random.default_rng(7)
    window = 37
    probs = dirichlet(rng, checkpoint)
    labels = rng.integers(0, 3, size=checkpoint)
    card = Scorecard(["m"], window)
    assert card.log_loss("m") is None
    assert card.snapshot() == {"m": {"count": 0, "log_loss": None, "brier": None, "accuracy": None}}
    for row, label in zip(probs, labels, strict=True):
        card.add("m", row.tolist(), int(label))
    p, y = probs[-window:], labels[-window:]
    onehot = np.eye(3)[y]
    want = {
        "count": len(y),
        "log_loss": log_loss(y, p, labels=[0, 1, 2]),
        "brier": float(np.sum((p - onehot) ** 2, axis=1).mean()),
        "accuracy": float((p.argmax(axis=1) == y).mean()),
    }
    assert card.snapshot() == {"m": pytest.approx(want, rel=1e-12)}
    assert card.count("m") == want["count"]
    assert card.log_loss("m") == pytest.approx(want["log_loss"], rel=1e-12)
    assert card.brier("m") == pytest.approx(want["brier"], rel=1e-12)
    assert card.accuracy("m") == pytest.approx(want["accuracy"], rel=1e-12)


def test_scorecard_rejects_unknown_models_bad_labels_and_bad_rows() -> None:
    """Unknown name -> KeyError naming it; label outside 0..2 or not 3 numbers -> ValueError."""
    card = Scorecard(["a", "b"], 10)
    with pytest.raises(KeyError, match="'svm'"):
        card.add("svm", sure(0), 0)
    with pytest.raises(KeyError, match="'svm'"):
        card.log_loss("svm")
    for label in (3, -1, 1.5):
        with pytest.raises(ValueError, match="label"):
            card.add("a", sure(0), label)  # type: ignore[arg-type]  # the wrong type is the test
    with pytest.raises(ValueError, match="'a'"):
        card.add("a", [0.5, 0.5], 0)
    with pytest.raises(ValueError, match="'a'"):
        card.add("a", [math.nan, 0.5, 0.5], 0)
    assert card.count("a") == 0
    with pytest.raises(ValueError, match="unique"):
        Scorecard(["a", "a"], 10)


def test_a_prediction_of_zero_for_what_happened_costs_a_bounded_loss() -> None:
    """p[label] = 0 is clipped at 1e-15, so the loss is finite."""
    card = Scorecard(["a"], 10)
    card.add("a", [1.0, 0.0, 0.0], 2)
    assert card.log_loss("a") == pytest.approx(-math.log(1e-15))
    assert card.brier("a") == pytest.approx(2.0)
    assert card.accuracy("a") == 0.0


def test_combine_with_equal_weights_is_the_mean_and_confidence_the_margin() -> None:
    """All models agree: confidence equals the ensemble's top-minus-second margin."""
    ens = make(("a", "b"))
    a = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    b = np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    probs, confidence = ens.combine({"a": a, "b": b})
    np.testing.assert_allclose(probs, [[0.15, 0.25, 0.6], [0.55, 0.35, 0.1]], rtol=1e-12)
    np.testing.assert_allclose(confidence, [0.35, 0.2], rtol=1e-12)


def test_combine_with_adapted_weights_matches_a_hand_computation() -> None:
    """Rows are the weight-averaged rows, renormalised; agreement sums the agreeing weights."""
    ens = make()
    feed(ens, 30, lambda m: m != "logistic")
    weights = ens.weights()
    assert len(set(weights.values())) == 2
    rng = np.random.default_rng(3)
    per_model = {m: dirichlet(rng, 40) for m in MODELS}
    probs, confidence = ens.combine(per_model)
    mixed = sum(weights[m] * per_model[m] for m in MODELS)
    assert isinstance(mixed, np.ndarray)
    mixed = mixed / mixed.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, mixed, rtol=1e-12)
    for i in range(40):
        top = int(np.argmax(mixed[i]))
        agreement = sum(weights[m] for m in MODELS if int(np.argmax(per_model[m][i])) == top)
        second, first = np.sort(mixed[i])[-2:]
        assert confidence[i] == pytest.approx(agreement * (first - second), rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("rows", [1, 3, 100])
def test_combine_is_bit_for_bit_the_weighted_tensor_product(rows: int) -> None:
    """The mixture is exactly ``np.tensordot(weights, stacked, axes=1)`` renormalised and the
    confidence exactly ``np.clip``'s: the signals (and so the ledger) of an older version."""
    ens = make()
    feed(ens, 30, lambda m: m != "logistic")
    weights = np.array([ens.weights()[m] for m in ens.models])
    rng = np.random.default_rng(rows)
    for _ in range(50):
        per_model = {m: dirichlet(rng, rows) for m in MODELS}
        stacked = np.stack([per_model[m] for m in ens.models])
        probs, confidence = ens.combine(per_model)
        mixed = np.tensordot(weights, stacked, axes=1)
        mixed /= mixed.sum(axis=1, keepdims=True)
        ordered = np.sort(mixed, axis=1)
        agreement = weights @ (stacked.argmax(axis=2) == mixed.argmax(axis=1)).astype(float)
        want = np.clip(agreement * (ordered[:, -1] - ordered[:, -2]), 0.0, 1.0)
        assert np.array_equal(probs, mixed)
        assert np.array_equal(confidence, want)


def test_an_even_split_with_no_margin_has_no_confidence() -> None:
    """Two equally weighted models pointing opposite ways leave a tie: confidence 0."""
    ens = make(("a", "b"))
    probs, confidence = ens.combine(
        {"a": np.array([[0.1, 0.2, 0.7]]), "b": np.array([[0.7, 0.2, 0.1]])}
    )
    np.testing.assert_allclose(probs, [[0.4, 0.2, 0.4]])
    assert confidence[0] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    ("score", "strength"),
    [
        (1.0, Strength.STRONG_BUY),
        (0.3, Strength.STRONG_BUY),
        (0.2999, Strength.BUY),
        (0.1, Strength.BUY),
        (0.0999, Strength.HOLD),
        (0.0, Strength.HOLD),
        (-0.0999, Strength.HOLD),
        (-0.1, Strength.SELL),
        (-0.2999, Strength.SELL),
        (-0.3, Strength.STRONG_SELL),
        (-1.0, Strength.STRONG_SELL),
    ],
)
def test_strength_thresholds_include_their_boundaries(score: float, strength: Strength) -> None:
    """A score exactly at buy or strong (either sign) reaches that strength."""
    assert SignalThresholds(buy=0.1, strong=0.3).strength(score) is strength


@pytest.mark.parametrize(("buy", "strong"), [(0.0, 0.3), (0.3, 0.3), (0.4, 0.3), (0.1, 1.1)])
def test_signal_thresholds_reject_an_impossible_order(buy: float, strong: float) -> None:
    """0 < buy < strong <= 1, and the error names both values."""
    with pytest.raises(ValueError, match=rf"buy={buy}.*strong={strong}"):
        SignalThresholds(buy=buy, strong=strong)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"min_resolved": 0},
        {"window": 10, "min_resolved": 11},
        {"temperature": 0.0},
        {"temperature": math.inf},
        {"floor": 1.0},
        {"floor": -0.1},
    ],
)
def test_weight_policy_rejects_impossible_settings(kwargs: dict[str, float]) -> None:
    """Window, min_resolved, temperature and floor are checked at construction."""
    with pytest.raises(ValueError):
        WeightPolicy(**kwargs)  # type: ignore[arg-type]  # the mixed value types are the test


def test_signals_record_version_weights_and_each_models_row_as_python_floats() -> None:
    """Each signal carries model_version, spec_hash, sorted weights and the models' rows."""
    ens = make()
    feed(ens, 30, lambda m: m == "forest")
    per_model = {
        "xgboost": np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]),
        "forest": np.array([[0.2, 0.2, 0.6], [0.5, 0.4, 0.1]]),
        "logistic": np.array([[0.3, 0.4, 0.3], [0.3, 0.4, 0.3]]),
    }
    other = (Venue.KRAKEN, "ETH-EUR", Interval.H1)
    signals = ens.signals([KEY, other], [1_000, 2_000], per_model)
    probs, confidence = ens.combine(per_model)
    weights = tuple(sorted(ens.weights().items()))
    assert [name for name, _ in weights] == ["forest", "logistic", "xgboost"]
    for i, signal in enumerate(signals):
        assert isinstance(signal, Signal)
        assert (signal.venue, signal.symbol, signal.interval) == [KEY, other][i]
        assert signal.open_time_ms == [1_000, 2_000][i]
        assert (signal.model_version, signal.spec_hash) == ("v7", "abc123")
        assert signal.weights == weights
        assert signal.model_probabilities == tuple(
            (m, tuple(per_model[m][i].tolist())) for m in sorted(MODELS)
        )
        assert signal.probabilities == tuple(probs[i].tolist())
        assert signal.score == signal.probabilities[2] - signal.probabilities[0]
        assert signal.confidence == float(confidence[i])
        floats = [signal.score, signal.confidence, *signal.probabilities]
        floats += [w for _, w in signal.weights]
        floats += [p for _, row in signal.model_probabilities for p in row]
        assert all(type(x) is float for x in floats)
    assert [s.strength for s in signals] == [Strength.STRONG_BUY, Strength.STRONG_SELL]


def test_signals_take_one_open_time_for_the_whole_batch() -> None:
    """An int open time applies to every row; the strength follows the score."""
    ens = make(("a",))
    rows = np.array([[0.2, 0.4, 0.4], [0.4, 0.4, 0.2], [0.3, 0.4, 0.3]])
    signals = ens.signals([KEY] * 3, np.int64(5_000), {"a": rows})  # type: ignore[arg-type]
    assert [s.open_time_ms for s in signals] == [5_000] * 3
    assert all(type(s.open_time_ms) is int for s in signals)
    assert [s.strength for s in signals] == [Strength.BUY, Strength.SELL, Strength.HOLD]
    with pytest.raises(ValueError, match="2 keys for 3 rows"):
        ens.signals([KEY] * 2, 5_000, {"a": rows})
    with pytest.raises(ValueError, match="2 open times for 3 rows"):
        ens.signals([KEY] * 3, [1, 2], {"a": rows})
    assert ens.signals([], 5_000, {"a": np.empty((0, 3))}) == []


def test_two_ensembles_fed_the_same_sequence_give_identical_weights() -> None:
    """No hidden state, clock or randomness: a replay reproduces weights and signals exactly."""
    rng = np.random.default_rng(11)
    batches = [({m: dirichlet(rng, 4) for m in MODELS}, rng.integers(0, 3, 4)) for _ in range(60)]
    first, second = make(), make(tuple(reversed(MODELS)))
    for ens in (first, second):
        for per_model, labels in batches:
            ens.signals([KEY] * 4, 0, per_model)
            for i, label in enumerate(labels):
                ens.resolve({m: per_model[m][i].tolist() for m in MODELS}, int(label))
    assert first.weights() == second.weights()
    assert len(set(first.weights().values())) == 3
    assert first.scorecard.snapshot() == second.scorecard.snapshot()
    last = batches[-1][0]
    assert first.signals([KEY] * 4, 9, last) == second.signals([KEY] * 4, 9, last)


def _good_batch() -> dict[str, FloatArray]:
    return {m: np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]) for m in MODELS}


def _with(name: str, value: object) -> dict[str, object]:
    batch: dict[str, object] = dict(_good_batch())
    batch[name] = value
    return batch


BAD_BATCHES = {
    "missing": ({m: v for m, v in _good_batch().items() if m != "logistic"}, "logistic"),
    "extra": (_with("svm", np.array([[0.2, 0.3, 0.5]] * 2)), "svm"),
    "two columns": (_with("logistic", np.array([[0.5, 0.5]] * 2)), "logistic"),
    "one dimension": (_with("logistic", np.array([0.2, 0.3, 0.5])), "logistic"),
    "row count": (_with("logistic", np.array([[0.2, 0.3, 0.5]] * 3)), "logistic"),
    "nan": (_with("logistic", np.array([[0.2, np.nan, 0.5], [0.2, 0.3, 0.5]])), "logistic"),
    "sum": (_with("logistic", np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.5]])), "logistic"),
    "negative": (_with("logistic", np.array([[0.2, 0.3, 0.5], [-0.1, 0.6, 0.5]])), "logistic"),
    "text": (_with("logistic", [["a", "b", "c"]] * 2), "logistic"),
}


@pytest.mark.parametrize("case", BAD_BATCHES)
def test_bad_batches_are_refused_naming_the_model(case: str) -> None:
    """combine and signals refuse a batch that is not exactly the models' valid (n, 3) rows."""
    batch, name = BAD_BATCHES[case]
    ens = make()
    with pytest.raises(ValueError, match=f"'{name}'"):
        ens.combine(batch)  # type: ignore[arg-type]  # the bad input is the test
    with pytest.raises(ValueError, match=f"'{name}'"):
        ens.signals([KEY] * 2, 0, batch)  # type: ignore[arg-type]  # the bad input is the test


@pytest.mark.parametrize(
    ("row", "label", "match"),
    [
        ([0.5, 0.5], 0, "'logistic'"),
        ([np.nan, 0.5, 0.5], 0, "'logistic'"),
        ([0.5, 0.5, 0.5], 0, "'logistic'"),
        ([0.2, 0.3, 0.5], 3, "label"),
    ],
)
def test_resolve_refuses_bad_rows_and_records_nothing(
    row: list[float], label: int, match: str
) -> None:
    """A bad row or label leaves every model's scorecard untouched."""
    ens = make()
    per_model = {"xgboost": sure(0), "forest": sure(1), "logistic": row}
    with pytest.raises(ValueError, match=match):
        ens.resolve(per_model, label)
    with pytest.raises(ValueError, match="'logistic'"):
        ens.resolve({"xgboost": sure(0), "forest": sure(1)}, 0)
    assert all(ens.scorecard.count(m) == 0 for m in MODELS)
