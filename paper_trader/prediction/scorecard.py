"""Live performance of the ensemble's models: rolling log loss, Brier score and hit rate per
model over its last resolved predictions, and the weights they earn.

Pure and synchronous, like the ensemble that keeps one: the same outcomes in the same order
give the same scores and weights, so a replay reproduces the live weights exactly.
"""

import math
import operator
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paper_trader.prediction.dataset import Label

CLASSES = len(Label)
LOG_LOSS_EPS = 1e-15  # a prediction of exactly zero for what happened costs -ln(1e-15), not inf


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightPolicy:
    """How live performance becomes model weights."""

    window: int = 200  # resolved predictions per model kept for the rolling score
    min_resolved: int = 30  # below this many for any model, all weights are equal
    temperature: float = 0.02  # log-loss units: this much worse gets 1/e of the softmax share
    floor: float = 0.2  # share of the total weight spread equally over all models

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"the scoring window must be at least 1, not {self.window}")
        if not 1 <= self.min_resolved <= self.window:
            raise ValueError(
                f"min_resolved must be between 1 and the window ({self.window}), "
                f"not {self.min_resolved}"
            )
        if not (math.isfinite(self.temperature) and self.temperature > 0.0):
            raise ValueError(f"the temperature must be positive, not {self.temperature}")
        if not 0.0 <= self.floor < 1.0:
            raise ValueError(f"the weight floor must be in [0, 1), not {self.floor}")


def check_label(label: int) -> int:
    try:
        index = operator.index(label)
    except TypeError:
        raise ValueError(f"a label is an integer class 0..{CLASSES - 1}, not {label!r}") from None
    if not 0 <= index < CLASSES:
        raise ValueError(f"a label is a class 0..{CLASSES - 1}, not {index}")
    return index


class _Track:
    """One model's last ``window`` outcomes, with running sums refreshed once per window."""

    __slots__ = ("_brier_sum", "_hits", "_loss_sum", "_outcomes", "_since_refresh")

    def __init__(self, window: int) -> None:
        self._outcomes: deque[tuple[float, float, bool]] = deque(maxlen=window)
        self._loss_sum = 0.0
        self._brier_sum = 0.0
        self._hits = 0
        self._since_refresh = 0

    def add(self, loss: float, brier: float, hit: bool) -> None:
        """Append one outcome, dropping the oldest once the window is full."""
        if len(self._outcomes) == self._outcomes.maxlen:
            old_loss, old_brier, old_hit = self._outcomes[0]
            self._loss_sum -= old_loss
            self._brier_sum -= old_brier
            self._hits -= old_hit
        self._outcomes.append((loss, brier, hit))
        self._loss_sum += loss
        self._brier_sum += brier
        self._hits += hit
        self._since_refresh += 1
        if self._since_refresh == self._outcomes.maxlen:
            # Re-sum exactly once per window: O(1) amortised, and no drift from the subtractions.
            self._loss_sum = math.fsum(o[0] for o in self._outcomes)
            self._brier_sum = math.fsum(o[1] for o in self._outcomes)
            self._since_refresh = 0

    @property
    def count(self) -> int:
        """Return how many outcomes are in the window."""
        return len(self._outcomes)

    def mean(self, metric: str) -> float | None:
        """Return the window's mean ``log_loss``, ``brier`` or ``accuracy``; None when empty."""
        if not self._outcomes:
            return None
        total = {"log_loss": self._loss_sum, "brier": self._brier_sum, "accuracy": self._hits}
        return float(total[metric]) / len(self._outcomes)


class Scorecard:
    """Rolling live performance per model over the last ``window`` resolved predictions."""

    def __init__(self, models: Sequence[str], window: int) -> None:
        if window < 1:
            raise ValueError(f"the scoring window must be at least 1, not {window}")
        self._tracks = {name: _Track(window) for name in model_names(models)}
        self.window = window

    @property
    def models(self) -> tuple[str, ...]:
        """Return the tracked model names, sorted."""
        return tuple(self._tracks)

    def add(self, model: str, probabilities: Sequence[float], label: int) -> None:
        """Record that ``model`` predicted ``probabilities`` and class ``label`` happened."""
        track = self._track(model)
        index = check_label(label)
        try:
            p = [float(x) for x in probabilities]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model {model!r}: probabilities are not numbers ({exc})") from exc
        if len(p) != CLASSES or not all(math.isfinite(x) for x in p):
            raise ValueError(f"model {model!r}: expected {CLASSES} finite probabilities, got {p}")
        loss = -math.log(max(p[index], LOG_LOSS_EPS))
        brier = math.fsum((x - (k == index)) ** 2 for k, x in enumerate(p))
        hit = max(range(CLASSES), key=p.__getitem__) == index  # first maximum, as np.argmax
        track.add(loss, brier, hit)

    def count(self, model: str) -> int:
        """Return how many resolved predictions of ``model`` are in the window."""
        return self._track(model).count

    def log_loss(self, model: str) -> float | None:
        """Return the mean of -ln(max(p[label], 1e-15)) over the window; None if empty."""
        return self._track(model).mean("log_loss")

    def brier(self, model: str) -> float | None:
        """Return the mean multi-class Brier score over the window; None if empty."""
        return self._track(model).mean("brier")

    def accuracy(self, model: str) -> float | None:
        """Return the share of the window whose most probable class happened; None if empty."""
        return self._track(model).mean("accuracy")

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        """Return count, log_loss, brier and accuracy per model, sorted by model name."""
        return {
            name: {
                "count": self.count(name),
                "log_loss": self.log_loss(name),
                "brier": self.brier(name),
                "accuracy": self.accuracy(name),
            }
            for name in self._tracks
        }

    def _track(self, model: str) -> _Track:
        try:
            return self._tracks[model]
        except KeyError:
            raise KeyError(
                f"unknown model {model!r}; the scorecard tracks {list(self._tracks)}"
            ) from None


def adaptive_weights(losses: Mapping[str, float], policy: WeightPolicy) -> dict[str, float]:
    """Return weights from log losses: a softmax at ``policy.temperature`` above a floor.

    w_i ∝ exp(-(L_i - min L) / temperature), then w_i = floor / n + (1 - floor) · w_i, so the
    weights sum to 1 and no model falls below floor / n. Keys come back sorted.
    """
    if not losses:
        raise ValueError("no model losses to weigh")
    names = sorted(losses)
    bad = [name for name in names if not math.isfinite(losses[name])]
    if bad:
        raise ValueError(f"log losses must be finite; not for {bad}")
    best = min(losses[name] for name in names)
    raw = [math.exp(-(losses[name] - best) / policy.temperature) for name in names]
    total = math.fsum(raw)
    even = policy.floor / len(names)
    return {
        name: even + (1.0 - policy.floor) * r / total for name, r in zip(names, raw, strict=True)
    }


def model_names(models: Sequence[str]) -> tuple[str, ...]:
    names = tuple(sorted(models))
    if not names:
        raise ValueError("an ensemble needs at least one model")
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {list(models)}")
    return names
