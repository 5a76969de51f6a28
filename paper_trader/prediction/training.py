"""Walk-forward evaluation, then the final fit on every sample.

Each fold fits and calibrates all models on its training samples (see ``models.fit``) and
scores them, their equal-weight average (the ensemble before any live weighting) and the two
baselines on its test samples, which the fold never saw: the purge and embargo of ``folds.py``
sit between them. The out-of-sample probabilities are kept, so every reported figure can be
recomputed from what is saved with the model. The final models are fitted the same way on all
samples; their quality is the walk-forward figures, never a score on data they were fitted on.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from paper_trader.prediction import metrics
from paper_trader.prediction.dataset import Dataset
from paper_trader.prediction.folds import Fold, FoldPlan, walk_forward
from paper_trader.prediction.models import MODEL_NAMES, Calibrated, ModelConfig, fit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Progress = Callable[[int, int, str], None]  # (steps done, steps in all, what was just done)
BASELINES = ("prior", "persistence")
ENSEMBLE = "ensemble"
SCORED = (*MODEL_NAMES, ENSEMBLE, *BASELINES)


def _no_progress(_done: int, _total: int, _what: str) -> None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class FoldReport:
    """One fold: what it trained and tested on, and every score."""

    number: int
    train_samples: int
    test_samples: int
    train_end_ms: int
    test_start_ms: int
    test_end_ms: int
    scores: dict[str, metrics.Scores]

    def to_json(self) -> dict[str, object]:
        """Return the fold as recorded in ``metadata.json``."""
        return {
            "fold": self.number,
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
            "train_end_ms": self.train_end_ms,
            "test_start_ms": self.test_start_ms,
            "test_end_ms": self.test_end_ms,
            "scores": self.scores,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Walk-forward results: per fold, their mean, and the out-of-sample predictions."""

    folds: list[FoldReport]
    predictions: dict[str, npt.NDArray[np.generic]] = field(repr=False)

    def summary(self) -> dict[str, metrics.Scores]:
        """Return each scored name's metrics averaged over the folds."""
        return {name: metrics.mean_scores([f.scores[name] for f in self.folds]) for name in SCORED}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingResult:
    """The final models and the evidence of how well models trained this way do."""

    models: dict[str, Calibrated]
    evaluation: Evaluation
    samples: int


def _fold_probabilities(
    data: Dataset, fold: Fold, config: ModelConfig, gap_ms: int, step: Callable[[str], None]
) -> dict[str, FloatArray]:
    train, test = fold.train, fold.test
    fitted = fit(
        data.features[train],
        data.labels[train],
        data.open_times_ms[train],
        config=config,
        gap_ms=gap_ms,
        on_fitted=step,
    )
    with threadpool_limits(limits=1, user_api="blas"):  # as in ``models.fit``
        probs = {n: model.predict_proba(data.features[test]) for n, model in fitted.items()}
    probs[ENSEMBLE] = metrics.equal_average({n: probs[n] for n in MODEL_NAMES})
    probs["prior"] = metrics.prior(data.labels[train], len(test))
    probs["persistence"] = metrics.persistence(
        data.past_labels[train], data.labels[train], data.past_labels[test]
    )
    return probs


def evaluate(
    data: Dataset, plan: FoldPlan, config: ModelConfig, progress: Progress = _no_progress
) -> Evaluation:
    """Run the walk-forward folds; ``progress`` is told after each model is fitted.

    Raises ``DataIntegrityError`` if the data is too short for the plan or a fold lacks a class.
    """
    folds = walk_forward(data.open_times_ms, plan)
    total = (len(folds) + 1) * len(MODEL_NAMES)
    gap_ms = plan.gap_ms
    reports: list[FoldReport] = []
    kept: list[tuple[Fold, dict[str, FloatArray]]] = []
    for fold in folds:

        def step(name: str, number: int = fold.number) -> None:
            progress(
                len(reports) * len(MODEL_NAMES) + MODEL_NAMES.index(name) + 1,
                total,
                f"fold {number}: {name}",
            )

        probs = _fold_probabilities(data, fold, config, gap_ms, step)
        labels = data.labels[fold.test]
        reports.append(
            _report(data, fold, {n: metrics.scores(labels, p) for n, p in probs.items()})
        )
        kept.append((fold, probs))
    return Evaluation(folds=reports, predictions=_stack(data, kept))


def _report(data: Dataset, fold: Fold, scores: dict[str, metrics.Scores]) -> FoldReport:
    times = data.open_times_ms
    return FoldReport(
        number=fold.number,
        train_samples=len(fold.train),
        test_samples=len(fold.test),
        train_end_ms=int(times[fold.train].max()),
        test_start_ms=int(times[fold.test].min()),
        test_end_ms=int(times[fold.test].max()),
        scores=scores,
    )


def _stack(
    data: Dataset, kept: list[tuple[Fold, dict[str, FloatArray]]]
) -> dict[str, npt.NDArray[np.generic]]:
    """Return the out-of-sample rows of every fold as flat arrays, saved with the model."""
    index = np.concatenate([fold.test for fold, _ in kept])
    out: dict[str, npt.NDArray[np.generic]] = {
        "fold": np.concatenate([np.full(len(f.test), f.number) for f, _ in kept]),
        "open_time_ms": data.open_times_ms[index],
        "series": data.series[index],
        "label": data.labels[index],
    }
    for name in SCORED:
        out[f"proba_{name}"] = np.concatenate([probs[name] for _, probs in kept])
    return out


def train(
    data: Dataset, plan: FoldPlan, config: ModelConfig, progress: Progress = _no_progress
) -> TrainingResult:
    """Evaluate walk-forward, then fit the final models on every sample."""
    evaluation = evaluate(data, plan, config, progress)
    done = len(evaluation.folds) * len(MODEL_NAMES)
    total = done + len(MODEL_NAMES)
    models = fit(
        data.features,
        data.labels,
        data.open_times_ms,
        config=config,
        gap_ms=plan.gap_ms,
        on_fitted=lambda name: progress(
            done + MODEL_NAMES.index(name) + 1, total, f"final: {name}"
        ),
    )
    return TrainingResult(models=models, evaluation=evaluation, samples=len(data))
