"""A version's compiled models in one numpy file, which the daemon loads without the libraries.

``train`` compiles the fitted models (``compiled.py``) when it publishes a version and writes
their arrays to ``compiled.npz`` beside the libraries' own files, its SHA-256 recorded in
``metadata.json`` like theirs. Loading that file needs numpy alone: the daemon never imports
scikit-learn, SciPy or XGBoost (about 100 MB of its resident memory), and a load is a read of
arrays instead of a deserialisation and a compilation. A version published before this file
existed is compiled from the libraries' files, as before.

Keys are ``<member>.<part>.<field>`` (part ``model`` or ``calibrator``); scalars are 0-d
arrays and a trees model's output transform is stored by name (``compiled.LINKS``). The file
is read with ``allow_pickle=False``, and every array is checked for the shape, type and index
range the evaluation relies on before it is used: a damaged or foreign file is a
``ModelError``, never an index error at the first prediction.
"""

import io
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from paper_trader.errors import ModelError
from paper_trader.prediction.bundle import Member
from paper_trader.prediction.compiled import LINKS, MODEL_NAMES, CompiledLinear, CompiledTrees

COMPILED_FILE = "compiled.npz"
MAX_DEPTH = 1024  # deeper than any tree we train by far; bounds the walk of a foreign file
Array = np.ndarray[Any, Any]
Get = Callable[[str], Array]


def write(path: Path, members: Mapping[str, Member]) -> None:
    """Write the members' arrays to ``path`` (not compressed: loading is a plain read)."""
    arrays: dict[str, Array] = {}
    for name, member in members.items():
        arrays |= _arrays(f"{name}.model", member.model)
        arrays |= _arrays(f"{name}.calibrator", member.calibrator)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    path.write_bytes(buffer.getvalue())


def read(path: Path, version: str) -> dict[str, Member]:
    """Return the members stored in ``path``; raise ``ModelError`` if it is not such a file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"model {version}: {path.name} cannot be read ({exc})") from exc
    try:
        return {
            name: Member(
                name=name,
                model=_model(_getter(arrays, f"{name}.model")),
                calibrator=_linear(_getter(arrays, f"{name}.calibrator")),
            )
            for name in MODEL_NAMES
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model {version}: {path.name} is not a compiled model ({exc})") from exc


def _arrays(prefix: str, model: CompiledTrees | CompiledLinear) -> dict[str, Array]:
    """Return one model's arrays under ``prefix``."""
    if isinstance(model, CompiledLinear):
        fields: dict[str, Any] = {
            "kind": "linear",
            **{k: getattr(model, k) for k in ("mean", "scale", "weights", "intercept")},
        }
    else:
        link = next(name for name, function in LINKS.items() if function is model.link)
        fields = {
            "kind": "trees",
            "link": link,
            "depth": model.depth,
            "divisor": model.divisor,
            **{k: getattr(model, k) for k in _TREE_ARRAYS},
        }
    fields |= {"n_features": model.n_features, "n_classes": model.n_classes}
    return {f"{prefix}.{key}": np.asarray(value) for key, value in fields.items()}


_TREE_ARRAYS = ("roots", "features", "thresholds", "nan_right", "children", "leaf_values", "base")


def _getter(arrays: Mapping[str, Array], prefix: str) -> Get:
    def get(key: str) -> Array:
        name = f"{prefix}.{key}"
        if name not in arrays:
            raise KeyError(f"{name} is missing")
        return arrays[name]

    return get


def _model(get: Get) -> CompiledTrees | CompiledLinear:
    kind = str(get("kind"))
    if kind == "linear":
        return _linear(get)
    if kind != "trees":
        raise ValueError(f"unknown model kind {kind!r}")
    return _trees(get)


def _typed(get: Get, key: str, kind: str, ndim: int) -> Array:
    """Return the array ``key``, read-only; ValueError unless of ``kind`` and ``ndim``."""
    array = get(key)
    if array.dtype.kind != kind or array.ndim != ndim:
        raise ValueError(f"{key} is {array.dtype}[{array.ndim}d], not {kind}[{ndim}d]")
    array = array.astype({"i": np.int64, "f": np.float64, "b": np.bool_}[kind], copy=False)
    array.setflags(write=False)
    return array


def _within(array: Array, low: int, high: int, what: str) -> None:
    if len(array) and (array.min() < low or array.max() >= high):
        raise ValueError(f"{what} outside [{low}, {high})")


def _trees(get: Get) -> CompiledTrees:
    """Rebuild a trees model, every index checked against the arrays it points into."""
    n_features, n_classes = int(get("n_features")), int(get("n_classes"))
    features = _typed(get, "features", "i", 1)
    nodes = len(features)
    children, roots = _typed(get, "children", "i", 1), _typed(get, "roots", "i", 1)
    thresholds, nan_right = _typed(get, "thresholds", "f", 1), _typed(get, "nan_right", "b", 1)
    leaf_values, base = _typed(get, "leaf_values", "f", 2), _typed(get, "base", "f", 1)
    depth, divisor, link = int(get("depth")), float(get("divisor")), str(get("link"))
    if nodes == 0 or len(roots) == 0 or len(children) != 2 * nodes:
        raise ValueError(f"{nodes} nodes, {len(roots)} trees, {len(children)} children")
    if len(thresholds) != nodes or len(nan_right) != nodes or leaf_values.shape[1] != nodes:
        raise ValueError("the node arrays differ in length")
    if base.shape != (leaf_values.shape[0],) or not 0 <= depth <= MAX_DEPTH or divisor <= 0:
        raise ValueError(f"base {base.shape}, depth {depth} or divisor {divisor} is impossible")
    for array, high, what in ((children, nodes, "children"), (roots, nodes, "roots")):
        _within(array, 0, high, what)
    _within(features, 0, n_features, "features")
    if link not in LINKS:
        raise ValueError(f"unknown output transform {link!r}")
    return CompiledTrees(
        n_features=n_features,
        n_classes=n_classes,
        roots=roots,
        depth=depth,
        features=features,
        thresholds=thresholds,
        nan_right=nan_right,
        children=children,
        leaf_values=leaf_values,
        base=base,
        divisor=divisor,
        link=LINKS[link],
    )


def _linear(get: Get) -> CompiledLinear:
    """Rebuild a linear model; its arrays must agree on the features and classes."""
    if str(get("kind")) != "linear":
        raise ValueError("a calibrator must be linear")
    n_features, n_classes = int(get("n_features")), int(get("n_classes"))
    mean, scale = _typed(get, "mean", "f", 1), _typed(get, "scale", "f", 1)
    weights, intercept = _typed(get, "weights", "f", 2), _typed(get, "intercept", "f", 1)
    rows = 1 if n_classes == 2 else n_classes
    if mean.shape != (n_features,) or scale.shape != (n_features,) or n_classes < 2:
        raise ValueError(f"mean {mean.shape} or scale {scale.shape} for {n_features} features")
    if not np.all(scale != 0.0):
        raise ValueError("a feature's scale is zero")
    if weights.shape != (rows, n_features) or intercept.shape != (rows,):
        raise ValueError(f"weights {weights.shape}, intercept {intercept.shape}")
    return CompiledLinear(
        n_features=n_features,
        n_classes=n_classes,
        mean=mean,
        scale=scale,
        weights=weights,
        intercept=intercept,
    )
