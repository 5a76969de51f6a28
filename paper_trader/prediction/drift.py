"""Feature distribution shift between training data and live inputs (PSI).

At training time each model input is cut into quantile bins and the training share of every
bin is recorded (``FeatureReference``). Live, ``LiveDistribution`` keeps the bins of the last
``window`` feature rows and scores each feature with the Population Stability Index,
Σ (a - e)·ln(a / e) over bins. Rules of thumb: below 0.1 stable, 0.1 to 0.25 a moderate shift,
above 0.25 a large one.

A value ``v`` falls in bin ``np.searchsorted(edges, v, side="right")``: bin 0 is everything
below the first edge and the last bin everything at or above the last edge. When the top
training quantile equals the training maximum (a constant or discrete feature), the top bin
would hold both that point mass and every larger value, so a live move upwards would go
unseen; ``reference_from`` then adds one more edge just above the maximum, giving values beyond
anything seen in training a bin of their own with a training share of zero.
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROPORTION_TOLERANCE = 1e-6
MIN_WINDOW = 10
PSI_EPSILON = 1e-4
_JSON_KEYS = frozenset({"names", "edges", "proportions"})


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureReference:
    """Training bin edges and bin shares of every model input, in model input order."""

    names: tuple[str, ...]
    edges: tuple[tuple[float, ...], ...]  # per feature: strictly increasing inner edges
    proportions: tuple[tuple[float, ...], ...]  # per feature: len(edges) + 1 shares, sum 1

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("a feature reference needs at least one feature")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature names must be unique: {list(self.names)}")
        if not len(self.names) == len(self.edges) == len(self.proportions):
            raise ValueError(
                f"{len(self.names)} names but {len(self.edges)} edge lists and "
                f"{len(self.proportions)} proportion lists"
            )
        for name, edges, shares in zip(self.names, self.edges, self.proportions, strict=True):
            _check_feature(name, edges, shares)

    def to_json(self) -> dict[str, object]:
        """Return the reference as plain JSON types (floats round-trip exactly)."""
        return {
            "names": list(self.names),
            "edges": [list(edges) for edges in self.edges],
            "proportions": [list(shares) for shares in self.proportions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> "FeatureReference":
        """Return the reference recorded by ``to_json``; raise ``ValueError`` if malformed."""
        if set(data) != _JSON_KEYS:
            raise ValueError(
                f"a feature reference has exactly the keys {sorted(_JSON_KEYS)}, not {sorted(data)}"
            )
        names = data["names"]
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError("'names' must be a list of strings")
        return cls(
            names=tuple(names),
            edges=_float_rows(data["edges"], "edges"),
            proportions=_float_rows(data["proportions"], "proportions"),
        )

    @property
    def bins(self) -> tuple[int, ...]:
        """Return the number of bins of each feature."""
        return tuple(len(shares) for shares in self.proportions)


def _check_feature(name: str, edges: tuple[float, ...], shares: tuple[float, ...]) -> None:
    """Raise ``ValueError`` unless one feature's edges and shares are consistent."""
    if len(shares) != len(edges) + 1:
        raise ValueError(
            f"feature {name!r}: {len(edges)} edges make {len(edges) + 1} bins, "
            f"but {len(shares)} proportions are given"
        )
    if not all(math.isfinite(edge) for edge in edges):
        raise ValueError(f"feature {name!r}: edges must be finite, not {list(edges)}")
    if any(low >= high for low, high in itertools.pairwise(edges)):
        raise ValueError(f"feature {name!r}: edges must strictly increase, not {list(edges)}")
    if not all(math.isfinite(share) and 0.0 <= share <= 1.0 for share in shares):
        raise ValueError(f"feature {name!r}: proportions must lie in [0, 1], not {list(shares)}")
    if abs(math.fsum(shares) - 1.0) > PROPORTION_TOLERANCE:
        raise ValueError(f"feature {name!r}: proportions must sum to 1, not {math.fsum(shares)!r}")


def _float_rows(value: object, key: str) -> tuple[tuple[float, ...], ...]:
    """Return a JSON list of lists of numbers as nested tuples of floats."""
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise ValueError(f"{key!r} must be a list of lists of numbers")
    rows = []
    for row in value:
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in row):
            raise ValueError(f"{key!r} must hold only numbers, not {row!r}")
        rows.append(tuple(float(x) for x in row))
    return tuple(rows)


def reference_from(features: FloatArray, names: Sequence[str], bins: int = 10) -> FeatureReference:
    """Return the quantile bins of each column of ``features`` (rows = samples).

    Inner edges are the distinct quantiles 1/bins … (bins - 1)/bins of the column, plus one
    edge just above the maximum when the top quantile equals it (see the module docstring).
    Non-finite values are ignored column by column. Raises ``ValueError`` when there is no
    row, the names do not match the columns, or a column has no finite value.
    """
    data = np.asarray(features, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"features must be a non-empty 2-D array, not shape {data.shape}")
    if len(names) != data.shape[1]:
        raise ValueError(f"{len(names)} names for {data.shape[1]} feature columns")
    if bins < 2:
        raise ValueError(f"at least two bins, not {bins}")
    levels = np.arange(1, bins) / bins
    all_edges, all_shares = [], []
    for name, column in zip(names, data.T, strict=True):
        values = column[np.isfinite(column)]
        if values.size == 0:
            raise ValueError(f"feature {name!r} has no finite training value")
        edges = np.unique(np.quantile(values, levels))
        top = float(values.max())
        if edges[-1] >= top:
            edges = np.append(edges, np.nextafter(top, math.inf))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        all_edges.append(tuple(float(edge) for edge in edges))
        all_shares.append(tuple(float(share) for share in counts / values.size))
    return FeatureReference(
        names=tuple(names), edges=tuple(all_edges), proportions=tuple(all_shares)
    )


def psi(
    expected: Sequence[float] | FloatArray,
    actual: Sequence[float] | FloatArray,
    epsilon: float = PSI_EPSILON,
) -> float:
    """Return the Population Stability Index Σ (a - e)·ln(a / e) of two bin distributions.

    Both shares are clipped below at ``epsilon`` so that an empty bin gives a large but finite
    term. They are deliberately not renormalised afterwards: identical inputs then score
    exactly 0, and bins that are not empty keep their true shares rather than all shrinking a
    little to make room for the clipped ones.
    """
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.ndim != 1 or e.shape != a.shape:
        raise ValueError(f"two 1-D distributions of equal length, not {e.shape} and {a.shape}")
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be positive, not {epsilon}")
    e = np.maximum(e, epsilon)
    a = np.maximum(a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


class LiveDistribution:
    """The bins of the last ``window`` live feature rows, scored against a reference.

    Each row's bin indices sit in a ring buffer and per-feature bin counts are kept up to date,
    so adding a row costs O(features · bins) with no dependence on the window. A NaN counts
    nothing for its feature (index -1 in the ring); infinities fall in the end bins.
    """

    def __init__(self, reference: FeatureReference, window: int) -> None:
        if window < MIN_WINDOW:
            raise ValueError(f"the window must hold at least {MIN_WINDOW} rows, not {window}")
        self._reference = reference
        self._window = window
        features = len(reference.names)
        self._bins = np.array(reference.bins, dtype=np.int64)
        width = max(1, int(self._bins.max()) - 1)
        self._edges = np.full((features, width), np.inf)
        for j, edges in enumerate(reference.edges):
            self._edges[j, : len(edges)] = edges
        self._counts = np.zeros((features, int(self._bins.max())), dtype=np.int64)
        self._totals = np.zeros(features, dtype=np.int64)
        self._ring = np.full((window, features), -1, dtype=np.int64)
        self._columns = np.arange(features)
        by_bins: dict[int, list[int]] = {}
        for j, shares in enumerate(reference.proportions):
            by_bins.setdefault(len(shares), []).append(j)
        self._groups = {
            bins: (
                np.array(members, dtype=np.int64),
                np.array([reference.proportions[j] for j in members], dtype=np.float64),
            )
            for bins, members in by_bins.items()
        }
        self._head = 0
        self._size = 0

    @property
    def reference(self) -> FeatureReference:
        """Return the training reference the window is scored against."""
        return self._reference

    @property
    def size(self) -> int:
        """Return the number of rows currently in the window."""
        return self._size

    def add(self, row: FloatArray | Sequence[float]) -> None:
        """Add one feature row (model input order), evicting the oldest when the window is full."""
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (len(self._columns),):
            raise ValueError(f"a row of {len(self._columns)} features, not shape {values.shape}")
        self._add_part(values[None, :])

    def add_many(self, rows: FloatArray) -> None:
        """Add feature rows (n, features) in order, as ``add`` would one at a time."""
        values = np.asarray(rows, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self._columns):
            raise ValueError(f"rows of {len(self._columns)} features, not shape {values.shape}")
        for start in range(0, len(values), self._window):
            self._add_part(values[start : start + self._window])

    def _add_part(self, values: FloatArray) -> None:
        """Add at most a window of rows: each slot they take is evicted once, then refilled."""
        size = len(values)
        slots = (self._head + np.arange(size)) % self._window
        # A slot never written holds -1 (nothing), so evicting every slot taken is exact
        # whether or not the window was full. Counts are integers: the order does not matter.
        self._count(self._ring[slots], -1)
        # Padding edges are +inf, so min() keeps v = +inf in the feature's own last bin.
        index = np.minimum(
            (self._edges[None, :, :] <= values[:, :, None]).sum(axis=2), self._bins - 1
        )
        index[np.isnan(values)] = -1
        self._count(index, 1)
        self._ring[slots] = index
        self._head = int((self._head + size) % self._window)
        self._size = min(self._size + size, self._window)

    def _count(self, index: IntArray, step: int) -> None:
        """Add ``step`` to the count of each bin in rows of ``index`` (-1: nothing)."""
        counted = index >= 0
        if len(index) == 1:  # one row names each feature once: a plain fancy add is exact
            self._counts[self._columns[counted[0]], index[0][counted[0]]] += step
            self._totals[counted[0]] += step
            return
        features, width = self._counts.shape
        flat = (self._columns * width + index)[counted]
        self._counts += step * np.bincount(flat, minlength=features * width).reshape(
            features, width
        )
        self._totals += step * counted.sum(axis=0)

    def psi(self) -> FloatArray:
        """Return each feature's PSI against the reference (NaN if it counted no value).

        Features with the same number of bins are scored together, one row each: the very
        terms ``psi`` sums, each row summed on its own, so the values are ``psi``'s exactly.
        """
        out = np.full(len(self._columns), np.nan)
        for bins, (features, shares) in self._groups.items():
            seen = self._totals[features] > 0
            rows = features[seen]
            actual = self._counts[rows, :bins] / self._totals[rows, None]
            e = np.maximum(shares[seen], PSI_EPSILON)
            a = np.maximum(actual, PSI_EPSILON)
            out[rows] = np.sum((a - e) * np.log(a / e), axis=1)
        return out

    def worst(self, k: int = 3) -> list[tuple[str, float]]:
        """Return the ``k`` highest PSIs as (name, psi), highest first, skipping NaN."""
        if k < 0:
            raise ValueError(f"k cannot be negative, not {k}")
        scores = self.psi()
        ranked = sorted(
            (
                (name, float(score))
                for name, score in zip(self._reference.names, scores, strict=True)
                if not math.isnan(score)
            ),
            key=lambda item: item[1],
            reverse=True,
        )
        return ranked[:k]
