"""Published model versions load exactly as trained, and anything else is refused clearly."""

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import xgboost as xgb
from fakes.models import publish_model

from paper_trader.domain import Interval
from paper_trader.errors import ModelError
from paper_trader.features.spec import default_spec
from paper_trader.prediction import metrics
from paper_trader.prediction.models import log_probabilities
from paper_trader.prediction.registry import POINTER, ModelRegistry

SPEC = default_spec()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One published version, shared read-only by the tests that do not damage it."""
    models = tmp_path_factory.mktemp("registry") / "models"
    return models, publish_model(models).version


def copy_of(published: tuple[Path, str], tmp_path: Path) -> tuple[ModelRegistry, Path]:
    """A private copy of the published version, for tests that alter it."""
    source, version = published
    target = tmp_path / "models"
    target.mkdir()
    (target / version).mkdir()
    for path in (source / version).iterdir():
        (target / version / path.name).write_bytes(path.read_bytes())
    (target / POINTER).write_text(version + "\n")
    return ModelRegistry(target), target / version


def test_a_published_version_is_current_and_has_its_record(published: tuple[Path, str]) -> None:
    """metadata.json holds the spec, inputs, label, range, metrics, libraries and file hashes."""
    models, version = published
    registry = ModelRegistry(models)
    assert registry.current_version() == version
    meta = registry.metadata(version)
    assert meta["spec_hash"] == SPEC.version_hash
    assert tuple(meta["feature_names"]) == SPEC.model_inputs
    assert meta["interval"] == "1m"
    assert meta["label"]["horizon"] == 5
    assert meta["training"]["start_ms"] < meta["training"]["end_ms"]
    assert {"xgboost", "forest", "logistic", "ensemble", "prior", "persistence"} <= set(
        meta["metrics"]["summary"]
    )
    assert {"numpy", "scikit-learn", "xgboost-cpu", "skops"} <= set(meta["libraries"])
    assert set(meta["files"]) == {
        "xgboost.ubj",
        "forest.skops",
        "logistic.skops",
        "calibrators.skops",
        "predictions.npz",
        "compiled.npz",
    }
    assert not any(p.name.startswith(".staging") for p in models.iterdir())


def test_the_loaded_model_predicts_what_the_libraries_predict(
    published: tuple[Path, str],
) -> None:
    """The compiled members equal XGBoost's and scikit-learn's own calibrated probabilities."""
    models, version = published
    bundle = ModelRegistry(models).load(SPEC, Interval.M1)
    folder = models / version
    calibrators = sio.load(folder / "calibrators.skops", trusted=[])
    x = np.random.default_rng(1).normal(size=(64, len(SPEC.model_inputs)))
    booster = xgb.Booster(model_file=str(folder / "xgboost.ubj"))
    raw = {
        "xgboost": booster.inplace_predict(x),
        "forest": sio.load(
            folder / "forest.skops", trusted=["sklearn.tree._tree.Tree"]
        ).predict_proba(x),
        "logistic": sio.load(folder / "logistic.skops", trusted=[]).predict_proba(x),
    }
    got = bundle.predict(x)
    for name, probs in raw.items():
        want = calibrators[name].predict_proba(log_probabilities(np.asarray(probs, float)))
        np.testing.assert_allclose(got[name], want, atol=1e-5, err_msg=name)


def test_the_saved_predictions_reproduce_the_recorded_metrics(
    published: tuple[Path, str],
) -> None:
    """Every per-fold score in metadata.json is recomputed from predictions.npz."""
    models, version = published
    meta = ModelRegistry(models).metadata(version)
    kept = np.load(models / version / "predictions.npz")
    for fold in meta["metrics"]["folds"]:
        rows = kept["fold"] == fold["fold"]
        for name, recorded in fold["scores"].items():
            again = metrics.scores(kept["label"][rows], kept[f"proba_{name}"][rows])
            assert again == pytest.approx(recorded), (fold["fold"], name)


def test_a_changed_file_is_refused_by_its_hash(published: tuple[Path, str], tmp_path: Path) -> None:
    """One flipped byte in a model file: refused before it is deserialised."""
    registry, folder = copy_of(published, tmp_path)
    blob = bytearray((folder / "forest.skops").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / "forest.skops").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match=r"forest.skops has SHA-256 .* damaged or altered"):
        registry.load(SPEC, Interval.M1)


@pytest.mark.parametrize("name", ["xgboost.ubj", "metadata.json"])
def test_a_missing_or_empty_file_is_refused(
    published: tuple[Path, str], tmp_path: Path, name: str
) -> None:
    """No silent fallback: the error names the file."""
    registry, folder = copy_of(published, tmp_path)
    (folder / name).write_bytes(b"")
    with pytest.raises(ModelError, match=name.replace(".", r"\.")):
        registry.load(SPEC, Interval.M1)
    (folder / name).unlink()
    with pytest.raises(ModelError, match=name.replace(".", r"\.")):
        registry.load(SPEC, Interval.M1)


def test_a_model_of_another_spec_is_refused_naming_both_hashes(
    published: tuple[Path, str], tmp_path: Path
) -> None:
    """Never padded or truncated to fit."""
    registry, folder = copy_of(published, tmp_path)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["spec_hash"] = "0" * 64
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError) as caught:
        registry.load(SPEC, Interval.M1)
    assert "0" * 64 in str(caught.value)
    assert SPEC.version_hash in str(caught.value)


def test_a_model_of_another_interval_is_refused(published: tuple[Path, str]) -> None:
    """A 1m model is not used on 5m candles."""
    models, _ = published
    with pytest.raises(ModelError, match="trained on 1m candles, but INTERVAL is 5m"):
        ModelRegistry(models).load(SPEC, Interval.M5)


def test_no_model_and_no_directory_are_clear_errors(tmp_path: Path) -> None:
    """An empty MODELS_DIR says to train; a missing one says it is missing."""
    with pytest.raises(ModelError, match=r"no trained model .* run `train`"):
        ModelRegistry(tmp_path).load(SPEC, Interval.M1)
    with pytest.raises(ModelError, match=r"MODELS_DIR .* does not exist"):
        ModelRegistry(tmp_path / "absent").require_root()


def test_a_pointer_to_a_missing_version_is_refused(tmp_path: Path) -> None:
    """`current` names a version that is not there."""
    (tmp_path / POINTER).write_text("20260101T000000Z-deadbeef\n")
    with pytest.raises(ModelError, match=r"metadata\.json is missing"):
        ModelRegistry(tmp_path).load(SPEC, Interval.M1)


def test_only_the_newest_versions_are_kept_and_never_the_current_one_deleted(
    published: tuple[Path, str], tmp_path: Path
) -> None:
    """Pruning keeps `keep` versions; a current pointer to an old one protects it."""
    registry, folder = copy_of(published, tmp_path)
    oldest = folder.name
    for n in range(3):
        clone = folder.parent / f"29990101T00000{n}Z-0000000{n}"
        clone.mkdir()
        for path in folder.iterdir():
            (clone / path.name).write_bytes(path.read_bytes())
    small = ModelRegistry(registry.root, keep=2)
    removed = small.prune()
    assert oldest not in removed  # it is current
    assert small.versions() == sorted(
        [oldest, "29990101T000001Z-00000001", "29990101T000002Z-00000002"]
    )
