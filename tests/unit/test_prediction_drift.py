"""PSI scores a shift of the live feature window against the training bins."""

import json
import math

import numpy as np
import pytest

from paper_trader.prediction.drift import FeatureReference, LiveDistribution, psi, reference_from

NAMES = ("ret_1", "rsi_14", "vol_20", "spread")
MEANS = np.array([0.0, 50.0, 0.02, -3.0])
SCALES = np.array([1.0, 10.0, 0.005, 0.5])


def normal_rows(seed: int, rows: int) -> np.ndarray:
    """Return ``rows`` draws of the four features from their training distribution."""
    return np.random.default_rng(seed).normal(MEANS, SCALES, size=(rows, len(NAMES)))


@pytest.fixture(scope="module")
def reference() -> FeatureReference:
    """Decile reference of 20,000 training rows."""
    return reference_from(normal_rows(1, 20_000), NAMES)


def live(reference: FeatureReference, rows: np.ndarray, window: int = 2_000) -> LiveDistribution:
    """Return a live window that has seen ``rows``."""
    distribution = LiveDistribution(reference, window)
    for row in rows:
        distribution.add(row)
    return distribution


def from_scratch(reference: FeatureReference, rows: np.ndarray) -> np.ndarray:
    """Return each feature's PSI of ``rows`` computed directly with searchsorted."""
    out = []
    for j, (edges, shares) in enumerate(zip(reference.edges, reference.proportions, strict=True)):
        column = rows[:, j][~np.isnan(rows[:, j])]
        if column.size == 0:
            out.append(math.nan)
            continue
        bins = np.searchsorted(np.array(edges), column, side="right")
        counts = np.bincount(bins, minlength=len(shares))
        out.append(psi(shares, counts / column.size))
    return np.array(out)


def test_psi_equals_the_formula_on_a_hand_computed_example() -> None:
    """Σ (a - e)·ln(a/e): two bins swapping a quarter give 0.5·ln 2."""
    assert psi([0.25, 0.25, 0.5], [0.5, 0.25, 0.25]) == pytest.approx(0.5 * math.log(2))
    assert psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0.0


def test_psi_clips_empty_bins_at_epsilon_without_renormalising() -> None:
    """An empty bin counts as epsilon; the other shares are left as they are."""
    want = -0.25 * math.log(0.5) + (0.25 - 1e-4) * math.log(0.25 / 1e-4)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.25, 0.25]) == pytest.approx(want)
    assert psi([1.0, 0.0], [0.0, 1.0], epsilon=0.01) == pytest.approx(2 * 0.99 * math.log(100))


def test_psi_rejects_mismatched_distributions_and_a_bad_epsilon() -> None:
    """Lengths must match; epsilon must be positive."""
    with pytest.raises(ValueError, match="equal length"):
        psi([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="epsilon"):
        psi([0.5, 0.5], [0.5, 0.5], epsilon=0.0)


def test_reference_bins_are_deciles_of_the_training_data(reference: FeatureReference) -> None:
    """Nine inner edges per continuous feature, each bin holding a tenth of the data."""
    assert reference.names == NAMES
    for edges, shares in zip(reference.edges, reference.proportions, strict=True):
        assert len(edges) == 9
        assert list(edges) == sorted(edges)
        np.testing.assert_allclose(shares, 0.1, atol=1e-3)
    assert reference.edges[1][4] == pytest.approx(50.0, abs=0.5)


def test_the_same_distribution_scores_below_005(reference: FeatureReference) -> None:
    """A live window drawn from the training distribution shows no drift."""
    scores = live(reference, normal_rows(2, 2_000)).psi()
    assert scores.shape == (len(NAMES),)
    assert (scores < 0.05).all(), scores


def test_a_one_sd_mean_shift_and_a_doubled_scale_score_above_025(
    reference: FeatureReference,
) -> None:
    """Only the shifted and the widened features drift; the others stay small."""
    rows = normal_rows(3, 2_000)
    rows[:, 1] += SCALES[1]
    rows[:, 2] = MEANS[2] + 2.0 * (rows[:, 2] - MEANS[2])
    distribution = live(reference, rows)
    scores = distribution.psi()
    assert scores[1] > 0.25
    assert scores[2] > 0.25
    assert scores[0] < 0.05
    assert scores[3] < 0.05
    assert [name for name, _ in distribution.worst(2)] == sorted(
        ["rsi_14", "vol_20"], key=lambda name: -scores[NAMES.index(name)]
    )


def test_the_ring_evicts_the_oldest_rows_exactly(reference: FeatureReference) -> None:
    """After 3 x window rows the PSI equals a from-scratch PSI of the last window rows."""
    window = 50
    rows = normal_rows(4, 3 * window)
    rows[:60, 0] += 5.0  # drift that must have left the window
    rows[::7, 3] = np.nan
    distribution = live(reference, rows, window)
    assert distribution.size == window
    tail = rows[-window:]
    np.testing.assert_array_equal(distribution.psi(), from_scratch(reference, tail))
    np.testing.assert_array_equal(distribution.psi(), live(reference, tail, window).psi())


def test_the_size_grows_until_the_window_is_full(reference: FeatureReference) -> None:
    """Rows count up to the window and stay there."""
    distribution = LiveDistribution(reference, 10)
    for count, row in enumerate(normal_rows(5, 25), start=1):
        distribution.add(row)
        assert distribution.size == min(count, 10)


def test_a_constant_feature_detects_a_move_either_way() -> None:
    """A constant gets its own bin, so a live value above or below it is a drift."""
    training = normal_rows(6, 5_000)[:, :2]
    training[:, 1] = 3.0
    reference = reference_from(training, ["ret_1", "fixed"])
    assert reference.edges[1] == (3.0, np.nextafter(3.0, math.inf))
    assert reference.proportions[1] == (0.0, 1.0, 0.0)
    for value, drifted in ((3.0, False), (3.5, True), (2.5, True)):
        rows = normal_rows(7, 200)[:, :2]
        rows[:, 1] = value
        scores = live(reference, rows, 200).psi()
        assert bool(scores[1] > 0.25) is drifted, (value, scores)


def test_a_discrete_feature_gets_a_bin_above_its_maximum() -> None:
    """A 0/1 feature: values above 1 get a bin of their own with a training share of zero."""
    flags = np.zeros((1_001, 1))
    flags[:301] = 1.0
    reference = reference_from(flags, ["flag"])
    assert reference.edges[0] == (0.0, 1.0, np.nextafter(1.0, math.inf))
    assert reference.proportions[0] == pytest.approx((0.0, 700 / 1_001, 301 / 1_001, 0.0))
    distribution = LiveDistribution(reference, 10)
    for value in (0.0,) * 7 + (1.0,) * 3:
        distribution.add(np.array([value]))
    assert distribution.psi()[0] < 0.05
    for _ in range(3):
        distribution.add(np.array([2.0]))
    assert distribution.psi()[0] > 0.25


def test_training_nans_are_ignored_per_column() -> None:
    """A NaN removes a value from its own column's bins only."""
    rows = normal_rows(8, 1_000)
    with_nans = rows.copy()
    with_nans[:100, 0] = np.nan
    with_nans[500, 2] = np.inf
    got = reference_from(with_nans, NAMES)
    assert got.edges[0] == reference_from(rows[100:, :1], NAMES[:1]).edges[0]
    assert got.edges[1] == reference_from(rows, NAMES).edges[1]
    assert got.edges[2] == reference_from(np.delete(rows, 500, axis=0), NAMES).edges[2]


def test_live_nans_count_nothing_for_their_feature(reference: FeatureReference) -> None:
    """A feature that only saw NaN has a NaN PSI, which ``worst`` skips."""
    rows = normal_rows(9, 300)
    rows[:, 2] = np.nan
    rows[::2, 0] = np.nan
    distribution = live(reference, rows, 300)
    scores = distribution.psi()
    assert math.isnan(scores[2])
    np.testing.assert_array_equal(scores[[0, 1, 3]], from_scratch(reference, rows)[[0, 1, 3]])
    worst = distribution.worst(10)
    assert [name for name, _ in worst] == [NAMES[j] for j in np.argsort(-scores)[:3]]
    assert [score for _, score in worst] == sorted((s for s in scores if s == s), reverse=True)


def test_an_empty_window_scores_nan(reference: FeatureReference) -> None:
    """Nothing counted yet: every PSI is NaN and there is no worst feature."""
    distribution = LiveDistribution(reference, 10)
    assert distribution.size == 0
    assert np.isnan(distribution.psi()).all()
    assert distribution.worst() == []


def test_live_rejects_a_small_window_and_a_wrong_row(reference: FeatureReference) -> None:
    """The window holds at least ten rows; a row has one value per feature."""
    with pytest.raises(ValueError, match="at least 10"):
        LiveDistribution(reference, 9)
    with pytest.raises(ValueError, match="4 features"):
        LiveDistribution(reference, 10).add(np.zeros(3))
    with pytest.raises(ValueError, match="negative"):
        LiveDistribution(reference, 10).worst(-1)


def test_reference_from_rejects_bad_input() -> None:
    """Empty data, a name count mismatch or an all-NaN column are errors."""
    with pytest.raises(ValueError, match="non-empty"):
        reference_from(np.zeros((0, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="2 names for 3"):
        reference_from(np.zeros((5, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="no finite"):
        reference_from(np.full((5, 1), np.nan), ["a"])


def test_the_reference_round_trips_through_json(reference: FeatureReference) -> None:
    """to_json → json text → from_json gives an equal reference."""
    text = json.dumps(reference.to_json())
    assert FeatureReference.from_json(json.loads(text)) == reference


def good_json() -> dict[str, object]:
    """Return a valid two-feature reference as JSON."""
    return {
        "names": ["a", "b"],
        "edges": [[0.0, 1.0], [5]],
        "proportions": [[0.25, 0.5, 0.25], [0.4, 0.6]],
    }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("names", ["a"], "1 names but 2 edge lists"),
        ("names", ["a", "a"], "unique"),
        ("names", "ab", "list of strings"),
        ("edges", [[0.0, 1.0], [5.0, 6.0]], "3 bins"),
        ("edges", [[1.0, 0.0], [5.0]], "strictly increase"),
        ("edges", [[1.0, 1.0], [5.0]], "strictly increase"),
        ("edges", [[0.0, float("nan")], [5.0]], "finite"),
        ("edges", [[0.0, "1"], [5.0]], "only numbers"),
        ("edges", [[0.0, True], [5.0]], "only numbers"),
        ("edges", [0.0, 5.0], "list of lists"),
        ("proportions", [[0.25, 0.5, 0.2], [0.4, 0.6]], "sum to 1"),
        ("proportions", [[1.5, -0.5, 0.0], [0.4, 0.6]], r"\[0, 1\]"),
    ],
)
def test_from_json_rejects_malformed_data(key: str, value: object, message: str) -> None:
    """Wrong lengths, bad sums, unsorted edges and wrong types raise a clear ValueError."""
    data = good_json()
    data[key] = value
    with pytest.raises(ValueError, match=message):
        FeatureReference.from_json(data)


def test_from_json_requires_exactly_the_known_keys() -> None:
    """A missing or an unknown key is an error."""
    assert FeatureReference.from_json(good_json()).bins == (3, 2)
    missing = good_json()
    del missing["edges"]
    extra = {**good_json(), "bins": 10}
    for data in (missing, extra):
        with pytest.raises(ValueError, match="exactly the keys"):
            FeatureReference.from_json(data)
