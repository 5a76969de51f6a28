"""Whether a retrained model replaces the current one: a contest on the most recent data.

The candidate is trained on everything except the most recent ``fraction`` of instants (and a
purge before them); then the candidate and the current model both predict that held-out
window, and the candidate is promoted only if its ensemble (equal weights, as a new version
starts) has a lower log loss there. The current model may have been trained on part of that
window, which favours it: a candidate must be clearly better to win. With no usable current
model, or one trained on another label rule, the candidate is promoted and the reason says so.
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from paper_trader.domain import Interval
from paper_trader.errors import ModelError
from paper_trader.features.spec import FeatureSpec
from paper_trader.prediction import metrics
from paper_trader.prediction.dataset import Dataset
from paper_trader.prediction.folds import split_recent
from paper_trader.prediction.models import Calibrated
from paper_trader.prediction.registry import ModelRegistry


@dataclass(frozen=True, slots=True, kw_only=True)
class Contest:
    """The held-out window and both models' scores on it."""

    samples: int
    start_ms: int
    end_ms: int
    candidate_log_loss: float
    current_version: str | None
    current_log_loss: float | None
    promoted: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        """Return the contest as recorded in the candidate's metadata."""
        return asdict(self)


def hold_out_recent(data: Dataset, fraction: float, gap_ms: int) -> tuple[Dataset, Dataset]:
    """Return (earlier samples, the last ``fraction`` of instants) with a purge between."""
    earlier, recent = split_recent(data.open_times_ms, fraction, gap_ms)
    return data.take(earlier), data.take(recent)


def _log_loss(labels: np.ndarray, per_model: dict[str, np.ndarray]) -> float:
    value = metrics.scores(labels, metrics.equal_average(per_model))["log_loss"]
    assert value is not None
    return value


def contest(
    candidate: dict[str, Calibrated],
    recent: Dataset,
    registry: ModelRegistry,
    spec: FeatureSpec,
    interval: Interval,
) -> Contest:
    """Score the candidate and the current model on ``recent``; decide the promotion."""
    mine = _log_loss(
        recent.labels, {n: m.predict_proba(recent.features) for n, m in candidate.items()}
    )
    window: dict[str, Any] = {
        "samples": len(recent),
        "start_ms": int(recent.open_times_ms.min()),
        "end_ms": int(recent.open_times_ms.max()),
        "candidate_log_loss": mine,
    }
    try:
        current = registry.load(spec, interval)
    except ModelError as exc:
        return Contest(
            **window,
            current_version=None,
            current_log_loss=None,
            promoted=True,
            reason=f"no usable current model ({exc})",
        )
    if current.metadata.get("label") != recent.rule.to_json():
        return Contest(
            **window,
            current_version=current.version,
            current_log_loss=None,
            promoted=True,
            reason="the label rule changed since the current model",
        )
    theirs = _log_loss(recent.labels, current.predict(recent.features))
    better = mine < theirs
    return Contest(
        **window,
        current_version=current.version,
        current_log_loss=theirs,
        promoted=better,
        reason=(
            f"log loss {mine:.4f} vs {theirs:.4f} on the last {len(recent)} samples: "
            + ("the candidate is better" if better else "the current model stays")
        ),
    )
