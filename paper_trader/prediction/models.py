"""The three models of the ensemble, and how each is fitted and calibrated.

- ``xgboost``: gradient-boosted trees, XGBoost's ``hist`` method, shallow and slow-learning;
- ``forest``: ExtraTrees with a bounded depth and a minimum leaf size (an unbounded forest is
  large and slow to evaluate, and memorises noise);
- ``logistic``: a multinomial logistic regression on standardised inputs.

Each model is fitted on the earlier part of its training samples and calibrated on the later
part: the samples of the last ``calibration_fraction`` of the instants, with a purge of
``gap_ms`` before them so no label of the fitting part overlaps them. The calibrator is a
multinomial logistic regression on the log of the model's probabilities (vector scaling).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from paper_trader.errors import DataIntegrityError
from paper_trader.prediction.compiled import CLASS_NAMES, MODEL_NAMES, log_probabilities
from paper_trader.prediction.folds import split_recent

__all__ = [
    "CLASS_NAMES",
    "MODEL_NAMES",
    "Calibrated",
    "ModelConfig",
    "build",
    "fit",
    "log_probabilities",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """Hyper-parameters; recorded with every model."""

    n_jobs: int = 2  # the forest's threads (and XGBoost's when xgb_threads is None)
    xgb_threads: int | None = 1  # one: no OpenMP barrier to wait at (see ``threads.py``)
    seed: int = 0
    xgb_trees: int = 200
    xgb_depth: int = 4
    xgb_learning_rate: float = 0.05
    forest_trees: int = 100
    forest_depth: int = 8
    forest_min_leaf: int = 50
    logistic_c: float = 0.1
    calibration_fraction: float = 0.2

    def to_json(self) -> dict[str, object]:
        """Return the configuration as recorded in ``metadata.json``."""
        return asdict(self)


def build(name: str, config: ModelConfig) -> Any:
    """Return the unfitted estimator called ``name``."""
    if name == "xgboost":
        return xgb.XGBClassifier(
            tree_method="hist",
            objective="multi:softprob",
            n_estimators=config.xgb_trees,
            max_depth=config.xgb_depth,
            learning_rate=config.xgb_learning_rate,
            min_child_weight=20,
            subsample=0.8,
            colsample_bytree=0.8,
            n_jobs=config.n_jobs if config.xgb_threads is None else config.xgb_threads,
            random_state=config.seed,
        )
    if name == "forest":
        return ExtraTreesClassifier(
            n_estimators=config.forest_trees,
            max_depth=config.forest_depth,
            min_samples_leaf=config.forest_min_leaf,
            max_features="sqrt",
            n_jobs=config.n_jobs,
            random_state=config.seed,
        )
    if name == "logistic":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=config.logistic_c, max_iter=1_000)),
            ]
        )
    raise ValueError(f"unknown model {name!r}; the models are {', '.join(MODEL_NAMES)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibrated:
    """A fitted model and the calibrator fitted on its held-out predictions."""

    name: str
    estimator: Any
    calibrator: LogisticRegression

    def raw(self, x: FloatArray) -> FloatArray:
        """Return the model's own probabilities."""
        return np.asarray(self.estimator.predict_proba(x), dtype=np.float64)

    def predict_proba(self, x: FloatArray) -> FloatArray:
        """Return calibrated probabilities (n, 3)."""
        calibrated = self.calibrator.predict_proba(log_probabilities(self.raw(x)))
        return np.asarray(calibrated, dtype=np.float64)


def _require_every_class(labels: IntArray, part: str) -> None:
    missing = [CLASS_NAMES[k] for k in range(3) if not (labels == k).any()]
    if missing:
        raise DataIntegrityError(
            f"the {part} samples have no {' or '.join(missing)} label: use more history, a "
            "longer PREDICTION_HORIZON or lower fees/slippage"
        )


def fit(
    x: FloatArray,
    y: IntArray,
    times: IntArray,
    *,
    config: ModelConfig,
    gap_ms: int,
    on_fitted: Callable[[str], None] = lambda _name: None,
) -> dict[str, Calibrated]:
    """Fit and calibrate every model on the given samples; ``on_fitted`` follows progress.

    Raises ``DataIntegrityError`` if the fitting or calibration part lacks a class.
    """
    fit_rows, cal_rows = split_recent(times, config.calibration_fraction, gap_ms)
    _require_every_class(y[fit_rows], "training")
    _require_every_class(y[cal_rows], "calibration")
    fitted = {}
    for name in MODEL_NAMES:
        estimator = build(name, config)
        # OpenBLAS's threads only contend on 2 cores (the logistic fit is twice as fast on
        # one), and beside a busy process they spin on the core the other one needs.
        with threadpool_limits(limits=1, user_api="blas"):
            estimator.fit(x[fit_rows], y[fit_rows])
            raw = np.asarray(estimator.predict_proba(x[cal_rows]), dtype=np.float64)
            calibrator = LogisticRegression(C=10.0, max_iter=1_000)
            calibrator.fit(log_probabilities(raw), y[cal_rows])
        fitted[name] = Calibrated(name=name, estimator=estimator, calibrator=calibrator)
        on_fitted(name)
    return fitted
