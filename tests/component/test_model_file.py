"""A version's compiled.npz: loaded with numpy alone, equal to the libraries' files, checked."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes.models import publish_model

from paper_trader.domain import Interval
from paper_trader.errors import ModelError
from paper_trader.features.spec import default_spec
from paper_trader.prediction.model_file import COMPILED_FILE
from paper_trader.prediction.registry import ModelRegistry, sha256

SPEC = default_spec()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    models = tmp_path_factory.mktemp("model-file") / "models"
    return models, publish_model(models).version


def copy_of(published: tuple[Path, str], tmp_path: Path) -> tuple[ModelRegistry, Path]:
    source, version = published
    shutil.copytree(source, tmp_path / "models")
    return ModelRegistry(tmp_path / "models"), tmp_path / "models" / version


def rewrite(folder: Path, arrays: dict[str, np.ndarray] | None, raw: bytes | None = None) -> None:
    """Replace compiled.npz (arrays, or raw bytes) and record its new hash, as if published so."""
    path = folder / COMPILED_FILE
    if arrays is not None:
        with path.open("wb") as out:
            np.savez(out, allow_pickle=False, **arrays)
    if raw is not None:
        path.write_bytes(raw)
    document = json.loads((folder / "metadata.json").read_text())
    document["files"][COMPILED_FILE] = sha256(path)
    (folder / "metadata.json").write_text(json.dumps(document))


def stored(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / COMPILED_FILE) as data:
        return {key: data[key] for key in data.files}


def test_the_compiled_file_predicts_exactly_what_the_libraries_files_compile_to(
    published: tuple[Path, str], tmp_path: Path
) -> None:
    """A version published before compiled.npz (the libraries' files only) predicts the same
    probabilities, bit for bit, as the compiled file of the same version."""
    registry, folder = copy_of(published, tmp_path)
    from_file = registry.load(SPEC, Interval.M1)
    (folder / COMPILED_FILE).unlink()
    document = json.loads((folder / "metadata.json").read_text())
    del document["files"][COMPILED_FILE]
    (folder / "metadata.json").write_text(json.dumps(document))
    from_libraries = registry.load(SPEC, Interval.M1)
    x = np.random.default_rng(3).normal(size=(200, len(SPEC.model_inputs)))
    x[::7, 3] = np.nan
    for name, probs in from_libraries.predict(x).items():
        np.testing.assert_array_equal(from_file.predict(x)[name], probs, err_msg=name)


def test_loading_a_model_imports_none_of_the_training_libraries(
    published: tuple[Path, str],
) -> None:
    """The daemon's load path (registry, prediction and trading stages) leaves scikit-learn,
    SciPy, XGBoost, skops and pandas out of the process: they cost it about 100 MB."""
    models, _ = published
    script = (
        "import sys, numpy as np\n"
        "import paper_trader.app.daemon, paper_trader.prediction.lifecycle\n"
        "from paper_trader.domain import Interval\n"
        "from paper_trader.features.spec import default_spec\n"
        "from paper_trader.prediction.registry import ModelRegistry\n"
        f"bundle = ModelRegistry(__import__('pathlib').Path({str(models)!r}))"
        ".load(default_spec(), Interval.M1)\n"
        "bundle.predict(np.zeros((2, len(default_spec().model_inputs))))\n"
        "heavy = {'sklearn', 'scipy', 'xgboost', 'skops', 'pandas'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_an_index_out_of_range_is_refused_at_load(
    published: tuple[Path, str], tmp_path: Path
) -> None:
    """A file whose hash was recorded but whose trees point outside their arrays."""
    registry, folder = copy_of(published, tmp_path)
    arrays = stored(folder)
    children = arrays["forest.model.children"].copy()
    children[5] = len(children)
    rewrite(folder, {**arrays, "forest.model.children": children})
    with pytest.raises(ModelError, match=r"compiled\.npz is not a compiled model .*children"):
        registry.load(SPEC, Interval.M1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"xgboost.model.link": np.asarray("tanh")}, "unknown output transform"),
        ({"logistic.model.weights": np.zeros((3, 2))}, "weights"),
        ({"forest.model.features": np.asarray([0.5])}, "features is float64"),
        ({"xgboost.calibrator.kind": np.asarray("trees")}, "calibrator must be linear"),
    ],
)
def test_a_foreign_array_is_refused_naming_it(
    published: tuple[Path, str], tmp_path: Path, change: dict[str, np.ndarray], message: str
) -> None:
    registry, folder = copy_of(published, tmp_path)
    rewrite(folder, {**stored(folder), **change})
    with pytest.raises(ModelError, match=message):
        registry.load(SPEC, Interval.M1)


def test_a_missing_array_and_a_file_that_is_not_npz_are_refused(
    published: tuple[Path, str], tmp_path: Path
) -> None:
    registry, folder = copy_of(published, tmp_path)
    arrays = stored(folder)
    del arrays["forest.calibrator.intercept"]
    rewrite(folder, arrays)
    with pytest.raises(ModelError, match=r"forest\.calibrator\.intercept is missing"):
        registry.load(SPEC, Interval.M1)
    rewrite(folder, None, raw=b"not a zip file at all")
    with pytest.raises(ModelError, match=r"compiled\.npz cannot be read"):
        registry.load(SPEC, Interval.M1)
