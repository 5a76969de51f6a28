"""Fitted models compiled into flat numpy arrays for fast, library-free inference.

Over 400 lines on purpose: the trees of both libraries compile into the one node layout their
walk needs, and the linear model shares their checks and output transforms; split apart,
each half would reach into the other's private helpers.

Models are stored in their libraries' formats (XGBoost native, skops) and compiled here once,
when they are published (``model_file.py`` keeps the arrays; the libraries are imported only
to compile). Prediction is then pure numpy and reproduces the library's ``predict_proba``:

* ``CompiledTrees`` holds every tree of an ensemble in one set of node arrays. All trees are
  walked for all rows at once, one level per step, with fancy indexing; leaves point to
  themselves, so every tree can be walked the depth of the deepest one. Rows go through in
  chunks so that the working arrays stay below ``_CHUNK_ELEMENTS`` elements.
* ``CompiledLinear`` holds a standardised logistic regression: mean, scale, weights, intercept.

Both trees libraries compare in float32: inputs are rounded to float32 first. A node sends a
row right when ``x > threshold`` (sklearn's rule, ``x <= threshold`` goes left); XGBoost's rule
(``x < condition`` goes left) is rewritten to it exactly by storing the largest float32 below
the condition. NaN goes the way the library recorded for the node.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from paper_trader.errors import ModelError

if TYPE_CHECKING:  # the libraries load only to compile their objects (``model_file.py``)
    import xgboost

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ArrayT = TypeVar("ArrayT", bound=np.ndarray[Any, Any])

MODEL_NAMES = ("forest", "logistic", "xgboost")
CLASS_NAMES = ("down", "flat", "up")
PROBABILITY_FLOOR = 1e-6
_CHUNK_ELEMENTS = 1 << 18  # rows x trees x outputs per chunk: a few MB of working arrays


def _softmax(z: FloatArray) -> FloatArray:
    """Return the row-wise softmax, shifted by the row maximum so that exp cannot overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


def log_probabilities(probabilities: FloatArray) -> FloatArray:
    """Return a calibrator's input: the log of probabilities floored at 1e-6."""
    return np.log(np.maximum(probabilities, PROBABILITY_FLOOR))


def _logistic_pair(z: FloatArray) -> FloatArray:
    """Return [1 - p, p] with p the sigmoid of the single score column, stable for any z."""
    score = z[:, 0]
    e = np.exp(-np.abs(score))
    p = np.where(score >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    return np.stack([1.0 - p, p], axis=1)


def _identity(z: FloatArray) -> FloatArray:
    """Return the probabilities unchanged (a forest's mean leaf distribution)."""
    return z


_XGBOOST_LINKS = {"multi:softprob": _softmax, "binary:logistic": _logistic_pair}
# Each output transform by the name a compiled model file records it under.
LINKS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "identity": _identity,
    "softmax": _softmax,
    "logistic": _logistic_pair,
}


def _checked(x: FloatArray, n_features: int) -> FloatArray:
    """Return ``x`` as an array; raise ``ValueError`` unless it has shape (n, n_features)."""
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[1] != n_features:
        raise ValueError(f"expected shape (n, {n_features}), got {array.shape}")
    return array


def _frozen(array: ArrayT) -> ArrayT:
    """Make ``array`` read-only and return it."""
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tree:
    """One tree in local node numbering: children -1 at leaves, go right iff x > threshold."""

    left: IntArray
    right: IntArray
    features: IntArray
    thresholds: FloatArray
    nan_right: BoolArray
    values: FloatArray  # (nodes, outputs); only the leaves' rows are used


def _linked(tree: _Tree, root: int) -> IntArray:
    """Return the flattened [left, right] pairs numbered from ``root``; leaves point to self."""
    own = np.arange(len(tree.left), dtype=np.int64)[:, np.newaxis] + root
    pairs = np.stack([tree.left, tree.right], axis=1) + root
    return np.where(pairs < root, own, pairs).ravel()


def _depth(tree: _Tree) -> int:
    """Return the number of levels below the root, walking one whole level per step."""
    frontier, depth = np.zeros(1, dtype=np.int64), 0
    while True:
        frontier = frontier[tree.left[frontier] >= 0]
        if not len(frontier):
            return depth
        frontier = np.concatenate([tree.left[frontier], tree.right[frontier]])
        depth += 1


def _validate(tree: _Tree, n_features: int) -> None:
    """Raise ``ModelError`` unless children follow their parent and features are in range."""
    size = len(tree.left)
    is_leaf = tree.left < 0
    if size == 0 or np.any(is_leaf != (tree.right < 0)):
        raise ModelError("a tree is empty or has a node with a single child")
    index = np.arange(size)[~is_leaf]
    for children in (tree.left[~is_leaf], tree.right[~is_leaf]):
        # Children after their parent: the tree has no cycle and the depth walk terminates.
        if np.any(children <= index) or np.any(children >= size):
            raise ModelError("a tree has a child index out of order or out of range")
    used = tree.features[~is_leaf]
    if np.any(used < 0) or np.any(used >= n_features):
        raise ModelError(f"a tree splits on a feature outside [0, {n_features})")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CompiledTrees:
    """A tree ensemble as flat arrays, evaluated level by level with numpy.

    Build it with ``from_sklearn_forest`` or ``from_xgboost``. Node ``i`` of the concatenated
    trees splits on ``features[i]`` and continues at ``children[2 * i + (x > thresholds[i])]``,
    or at ``children[2 * i + nan_right[i]]`` when the value is NaN; leaves are their own
    children. Probabilities are ``link(base + sum of the reached leaves' values / divisor)``.
    """

    n_features: int
    n_classes: int
    roots: IntArray  # (trees,)
    depth: int
    features: IntArray  # (nodes,)
    thresholds: FloatArray  # (nodes,)
    nan_right: BoolArray  # (nodes,)
    children: IntArray  # (2 * nodes,)
    leaf_values: FloatArray  # (outputs, nodes): one contiguous row per output
    base: FloatArray  # (outputs,)
    divisor: float
    link: Callable[[FloatArray], FloatArray]  # summed outputs -> probabilities

    @classmethod
    def from_sklearn_forest(cls, forest: Any) -> "CompiledTrees":
        """Compile a fitted ``RandomForestClassifier`` or ``ExtraTreesClassifier``.

        Probabilities are the mean over trees of each reached leaf's class distribution.
        """
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier  # noqa: PLC0415

        if not isinstance(forest, RandomForestClassifier | ExtraTreesClassifier):
            raise ModelError(f"not a random or extra-trees classifier: {type(forest).__name__}")
        if not getattr(forest, "estimators_", None):
            raise ModelError("the forest is not fitted")
        if forest.n_outputs_ != 1:
            raise ModelError(f"one output supported, the forest has {forest.n_outputs_}")
        n_classes, n_features = int(forest.n_classes_), int(forest.n_features_in_)
        trees = [_sklearn_tree(estimator.tree_, n_classes) for estimator in forest.estimators_]
        return cls._assemble(
            trees,
            n_features=n_features,
            n_classes=n_classes,
            base=np.zeros(n_classes),
            divisor=float(len(trees)),
            link=_identity,
        )

    @classmethod
    def from_xgboost(
        cls, booster: "xgboost.Booster", iterations: int | None = None
    ) -> "CompiledTrees":
        """Compile a ``multi:softprob`` or ``binary:logistic`` gbtree booster.

        ``iterations`` is the number of boosting rounds to use. ``None`` uses the booster's
        ``best_iteration`` + 1 when early stopping recorded one, else every round: the same
        trees as ``XGBClassifier.predict_proba`` (``Booster.predict`` uses every round unless
        given ``iteration_range``). Binary models return two columns, [1 - p, p].
        """
        import xgboost  # noqa: PLC0415

        if not isinstance(booster, xgboost.Booster):
            raise ModelError(f"not an xgboost Booster: {type(booster).__name__}")
        try:
            learner = json.loads(booster.save_raw("json"))["learner"]
            return cls._from_xgboost_learner(learner, iterations)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise ModelError(f"unexpected xgboost model JSON: missing or malformed {exc}") from exc

    @classmethod
    def _from_xgboost_learner(cls, learner: Any, iterations: int | None) -> "CompiledTrees":
        """Compile the ``learner`` object of an XGBoost JSON model."""
        objective = learner["objective"]["name"]
        if objective not in _XGBOOST_LINKS:
            raise ModelError(f"unsupported xgboost objective {objective!r}")
        if learner["gradient_booster"]["name"] != "gbtree":
            raise ModelError(f"unsupported xgboost booster {learner['gradient_booster']['name']!r}")
        param = learner["learner_model_param"]
        if int(param["num_target"]) != 1:
            raise ModelError("multi-target xgboost models are not supported")
        n_features = int(param["num_feature"])
        n_outputs = int(param["num_class"]) if objective == "multi:softprob" else 1
        model = learner["gradient_booster"]["model"]
        end = int(model["iteration_indptr"][_rounds(learner, iterations)])
        trees = [
            _xgboost_tree(tree, int(group), n_outputs)
            for tree, group in zip(model["trees"][:end], model["tree_info"][:end], strict=True)
        ]
        return cls._assemble(
            trees,
            n_features=n_features,
            n_classes=max(n_outputs, 2),
            base=_base_margin(param["base_score"], n_outputs, objective),
            divisor=1.0,
            link=_XGBOOST_LINKS[objective],
        )

    @classmethod
    def _assemble(
        cls,
        trees: Sequence[_Tree],
        *,
        n_features: int,
        n_classes: int,
        base: FloatArray,
        divisor: float,
        link: Callable[[FloatArray], FloatArray],
    ) -> "CompiledTrees":
        """Validate the trees and concatenate them, leaves pointing to themselves."""
        if not trees:
            raise ModelError("the ensemble has no trees")
        for tree in trees:
            _validate(tree, n_features)
        sizes = np.array([len(tree.left) for tree in trees], dtype=np.int64)
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        children = np.concatenate([_linked(t, r) for t, r in zip(trees, roots, strict=True)])
        is_leaf = np.concatenate([tree.left < 0 for tree in trees])
        return cls(
            n_features=n_features,
            n_classes=n_classes,
            roots=_frozen(roots),
            depth=max(_depth(tree) for tree in trees),
            features=_frozen(np.where(is_leaf, 0, np.concatenate([t.features for t in trees]))),
            thresholds=_frozen(np.concatenate([t.thresholds for t in trees])),
            nan_right=_frozen(np.concatenate([t.nan_right for t in trees]) & ~is_leaf),
            children=_frozen(children),
            leaf_values=_frozen(np.ascontiguousarray(np.concatenate([t.values for t in trees]).T)),
            base=_frozen(np.asarray(base, dtype=np.float64)),
            divisor=divisor,
            link=link,
        )

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Return probabilities of shape (n, n_classes) for ``x`` of shape (n, n_features)."""
        rows = _checked(x, self.n_features)
        step = max(1, _CHUNK_ELEMENTS // (len(self.roots) * len(self.leaf_values)))
        if len(rows) <= step:
            return self._predict_chunk(rows)
        return np.concatenate(
            [self._predict_chunk(rows[start : start + step]) for start in range(0, len(rows), step)]
        )

    def _predict_chunk(self, rows: FloatArray) -> FloatArray:
        """Return the probabilities of a chunk small enough for the working arrays."""
        # Both libraries compare in float32; comparing float64 copies of float32 values is exact.
        leaves = self._leaves(rows.astype(np.float32).astype(np.float64))
        total = np.take(self.leaf_values, leaves, axis=1).sum(axis=2).T
        return self.link(self.base + total / self.divisor)

    def _leaves(self, rows: FloatArray) -> IntArray:
        """Return the leaf every tree sends every row to, shape (rows, trees)."""
        flat = rows.ravel()
        offsets = np.arange(len(rows), dtype=np.int64)[:, np.newaxis] * self.n_features
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots)))
        has_nan = bool(np.isnan(flat).any())
        for _ in range(self.depth):
            value = flat[offsets + self.features[node]]
            right = value > self.thresholds[node]
            if has_nan:
                right |= np.isnan(value) & self.nan_right[node]
            node = self.children[2 * node + right]
        return np.asarray(node)


def _sklearn_tree(tree: Any, n_classes: int) -> _Tree:
    """Convert a fitted sklearn ``Tree``: left iff x <= threshold, leaf values normalised."""
    counts = np.asarray(tree.value, dtype=np.float64)[:, 0, :n_classes]
    totals = counts.sum(axis=1, keepdims=True)
    return _Tree(
        left=np.asarray(tree.children_left, dtype=np.int64),
        right=np.asarray(tree.children_right, dtype=np.int64),
        features=np.asarray(tree.feature, dtype=np.int64),
        thresholds=np.asarray(tree.threshold, dtype=np.float64),
        nan_right=np.asarray(tree.missing_go_to_left) == 0,
        values=counts / np.where(totals == 0.0, 1.0, totals),
    )


def _xgboost_tree(tree: Any, group: int, n_outputs: int) -> _Tree:
    """Convert one tree of XGBoost's JSON; its leaves add to output column ``group``."""
    if not 0 <= group < n_outputs:
        raise ModelError(f"an xgboost tree adds to output {group}, the model has {n_outputs}")
    if int(tree["tree_param"]["size_leaf_vector"]) > 1 or any(tree["split_type"]):
        raise ModelError("vector-leaf and categorical xgboost trees are not supported")
    left = np.asarray(tree["left_children"], dtype=np.int64)
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
    values = np.zeros((len(left), n_outputs))
    # In the JSON format a leaf's split_conditions entry holds the value the leaf adds.
    values[left < 0, group] = conditions[left < 0]
    return _Tree(
        left=left,
        right=np.asarray(tree["right_children"], dtype=np.int64),
        features=np.asarray(tree["split_indices"], dtype=np.int64),
        # x < c goes left; for float32 x that is x <= the largest float32 below c.
        thresholds=np.nextafter(conditions, np.float32(-np.inf)).astype(np.float64),
        nan_right=np.asarray(tree["default_left"], dtype=np.int64) == 0,
        values=values,
    )


def _rounds(learner: Any, iterations: int | None) -> int:
    """Return how many boosting rounds to use (see ``CompiledTrees.from_xgboost``)."""
    available = len(learner["gradient_booster"]["model"]["iteration_indptr"]) - 1
    if iterations is None:
        best = learner.get("attributes", {}).get("best_iteration")
        iterations = available if best is None else int(best) + 1
    if not 1 <= iterations <= available:
        raise ModelError(f"iterations must be in [1, {available}], not {iterations}")
    return iterations


def _base_margin(text: str, n_outputs: int, objective: str) -> FloatArray:
    """Parse ``base_score`` ("5E-1" or "[a,b,c]") into margins, one per output column.

    XGBoost 3 stores a vector of margins for ``multi:softprob`` but a probability for
    ``binary:logistic``, which is turned into its log-odds here.
    """
    values = np.array([float(part) for part in text.strip("[]").split(",")], dtype=np.float32)
    if len(values) not in {1, n_outputs}:
        raise ModelError(f"base_score has {len(values)} values for {n_outputs} outputs")
    margins = np.broadcast_to(values.astype(np.float64), (n_outputs,)).copy()
    if objective == "binary:logistic":
        if not 0.0 < margins[0] < 1.0:
            raise ModelError(f"binary:logistic base_score {margins[0]} is not a probability")
        margins = np.log(margins / (1.0 - margins))
    return margins


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CompiledLinear:
    """A (scaled) multinomial/binary logistic regression as plain arrays.

    Scores are ``((x - mean) / scale) @ weights.T + intercept``; three or more classes take
    their softmax (sklearn's multinomial model), two take [1 - p, p] with p the sigmoid.
    """

    n_features: int
    n_classes: int
    mean: FloatArray  # (features,)
    scale: FloatArray  # (features,)
    weights: FloatArray  # (classes, features), or (1, features) for two classes
    intercept: FloatArray  # (classes,) or (1,)

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> "CompiledLinear":
        """Compile a fitted ``Pipeline([StandardScaler, LogisticRegression])``."""
        from sklearn.pipeline import Pipeline  # noqa: PLC0415
        from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            raise ModelError("expected a two-step Pipeline of StandardScaler, LogisticRegression")
        scaler, model = pipeline.steps[0][1], pipeline.steps[1][1]
        if not isinstance(scaler, StandardScaler):
            raise ModelError(f"expected a StandardScaler first, not {type(scaler).__name__}")
        if not hasattr(scaler, "n_features_in_"):
            raise ModelError("the StandardScaler is not fitted")
        bare = cls.from_logistic(model)
        if int(scaler.n_features_in_) != bare.n_features:
            raise ModelError("the scaler and the logistic regression disagree on the features")
        mean = scaler.mean_ if scaler.with_mean else np.zeros(bare.n_features)
        scale = scaler.scale_ if scaler.with_std else np.ones(bare.n_features)
        return cls(
            n_features=bare.n_features,
            n_classes=bare.n_classes,
            mean=_frozen(np.array(mean, dtype=np.float64)),
            scale=_frozen(np.array(scale, dtype=np.float64)),
            weights=bare.weights,
            intercept=bare.intercept,
        )

    @classmethod
    def from_logistic(cls, model: Any) -> "CompiledLinear":
        """Compile a fitted, unscaled ``LogisticRegression`` (e.g. a probability calibrator)."""
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

        if not isinstance(model, LogisticRegression):
            raise ModelError(f"expected a LogisticRegression, not {type(model).__name__}")
        if not hasattr(model, "coef_"):
            raise ModelError("the LogisticRegression is not fitted")
        weights = np.array(model.coef_, dtype=np.float64)
        intercept = np.array(model.intercept_, dtype=np.float64)
        n_classes = len(model.classes_)
        rows = 1 if n_classes == 2 else n_classes
        if n_classes < 2 or weights.ndim != 2 or len(weights) != rows or intercept.shape != (rows,):
            raise ModelError(f"unexpected coefficients {weights.shape} for {n_classes} classes")
        n_features = weights.shape[1]
        return cls(
            n_features=n_features,
            n_classes=n_classes,
            mean=_frozen(np.zeros(n_features)),
            scale=_frozen(np.ones(n_features)),
            weights=_frozen(weights),
            intercept=_frozen(intercept),
        )

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Return probabilities of shape (n, n_classes) for ``x`` of shape (n, n_features)."""
        rows = _checked(x, self.n_features)
        scores = ((rows - self.mean) / self.scale) @ self.weights.T + self.intercept
        return _softmax(scores) if self.n_classes > 2 else _logistic_pair(scores)
