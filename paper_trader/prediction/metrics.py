"""Out-of-sample scores of probability forecasts, and the baselines they must beat.

Every score is computed over the three classes DOWN, FLAT, UP (see ``dataset.Label``):

- accuracy and balanced accuracy (the mean of per-class recall over the classes present);
- ROC AUC, one class against the rest, averaged over the classes that occur in the sample
  (a class that never occurs has no AUC and is left out; with fewer than two, AUC is ``None``);
- log loss, with probabilities clipped to [1e-15, 1];
- Brier score, the mean over samples of sum over k of (p_k - [k = label])^2 (0 is perfect; always
  predicting 1/3 each scores 2/3).

Baselines: *prior* predicts the training set's class frequencies for every sample;
*persistence* predicts, from the class of the return that ended at t, the training set's
frequencies of the next class after it (the prior when that class is unknown).
"""

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CLASSES = 3
METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss", "brier")
Scores = dict[str, float | None]


def scores(labels: IntArray, probabilities: FloatArray) -> Scores:
    """Return every metric of ``probabilities`` (n, 3) against ``labels`` (n,)."""
    if len(labels) == 0:
        return dict.fromkeys(METRICS)
    predicted = probabilities.argmax(axis=1)
    onehot = np.eye(CLASSES)[labels]
    clipped = np.clip(probabilities[np.arange(len(labels)), labels], 1e-15, 1.0)
    return {
        "accuracy": float((predicted == labels).mean()),
        "balanced_accuracy": balanced_accuracy(labels, predicted),
        "roc_auc": roc_auc(labels, probabilities),
        "log_loss": float(-np.log(clipped).mean()),
        "brier": float(((probabilities - onehot) ** 2).sum(axis=1).mean()),
    }


def balanced_accuracy(labels: IntArray, predicted: IntArray) -> float:
    """Return the mean recall over the classes that occur in ``labels``."""
    present = np.unique(labels)
    return float(np.mean([(predicted[labels == k] == k).mean() for k in present]))


def roc_auc(labels: IntArray, probabilities: FloatArray) -> float | None:
    """Return the macro one-vs-rest AUC over the classes present, or None below two."""
    present = [k for k in range(CLASSES) if 0 < (labels == k).sum() < len(labels)]
    if len(present) < 2:
        return None
    return float(np.mean([roc_auc_score(labels == k, probabilities[:, k]) for k in present]))


def prior(train_labels: IntArray, n: int) -> FloatArray:
    """Return the training class frequencies (add-one smoothed), repeated for n samples."""
    counts = np.bincount(train_labels, minlength=CLASSES).astype(np.float64) + 1.0
    return np.tile(counts / counts.sum(), (n, 1))


def persistence(train_past: IntArray, train_labels: IntArray, test_past: IntArray) -> FloatArray:
    """Return P(label | class of the return that just ended), estimated on the training set."""
    table = np.ones((CLASSES, CLASSES))  # add-one smoothing
    known = train_past >= 0
    np.add.at(table, (train_past[known], train_labels[known]), 1.0)
    table /= table.sum(axis=1, keepdims=True)
    out = prior(train_labels, len(test_past))
    seen = test_past >= 0
    out[seen] = table[test_past[seen]]
    return out


def mean_scores(rows: list[Scores]) -> Scores:
    """Return each metric's mean over rows, ignoring ``None``; ``None`` if no row has it."""
    out: Scores = {}
    for name in METRICS:
        values = [r[name] for r in rows if r.get(name) is not None]
        out[name] = float(np.mean(values)) if values else None  # type: ignore[arg-type]
    return out


def equal_average(per_model: Mapping[str, FloatArray]) -> FloatArray:
    """Return the equal-weight average of the models' probabilities (the untrained ensemble)."""
    return np.asarray(np.mean(np.stack(list(per_model.values())), axis=0), dtype=np.float64)
