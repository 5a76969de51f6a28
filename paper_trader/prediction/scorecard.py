"""Live performance of the ensemble's models: rolling log loss, Brier score and hit rate per
model over its last resolved predictions, and the weights they earn.

Pure and synchronous, like the ensemble that keeps one: the same outcomes in the same order
give the same scores and weights, so a replay reproduces the live weights exactly, whether
they are added one at a time (``add``) or an instant's at once (``add_many``, ``add_models``).
"""

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from paper_trader.prediction.dataset import Label

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLASSES = len(Label)
_CODEC = msgspec.msgpack.Encoder()
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


def top_class(p: Sequence[float]) -> int:
    """Return the most probable of the three classes, the first on ties: ``np.argmax`` of a
    row of finite values, without making an array of it (a row at a time is the hot path)."""
    down, flat, up = p
    if down >= flat and down >= up:
        return 0
    return 1 if flat >= up else 2


def check_label(label: int) -> int:
    try:
        index = operator.index(label)
    except TypeError:
        raise ValueError(f"a label is an integer class 0..{CLASSES - 1}, not {label!r}") from None
    if not 0 <= index < CLASSES:
        raise ValueError(f"a label is a class 0..{CLASSES - 1}, not {index}")
    return index


class _Track:
    """One model's last ``window`` outcomes in numpy rings, with running sums refreshed once per
    window.

    ``add_many`` gives bit for bit the sums that as many ``add`` calls in the same order give:
    the running sum is the same chain of float additions (subtract the evicted outcome, add the
    new one), taken by ``np.cumsum``, which adds strictly left to right; the refresh is
    ``math.fsum``, exact and so independent of the order of the window.
    """

    __slots__ = (
        "_brier",
        "_brier_sum",
        "_count",
        "_head",
        "_hit",
        "_hits",
        "_loss",
        "_loss_sum",
        "_since_refresh",
        "window",
    )

    def __init__(self, window: int) -> None:
        self.window = window
        self._loss = np.zeros(window)
        self._brier = np.zeros(window)
        self._hit = np.zeros(window, dtype=np.int64)
        self._head = 0  # where the next outcome goes; the oldest when the window is full
        self._count = 0
        self._loss_sum = 0.0
        self._brier_sum = 0.0
        self._hits = 0
        self._since_refresh = 0

    def add(self, loss: float, brier: float, hit: bool) -> None:
        """Append one outcome, dropping the oldest once the window is full."""
        head = self._head
        if self._count == self.window:
            self._loss_sum -= float(self._loss[head])
            self._brier_sum -= float(self._brier[head])
            self._hits -= int(self._hit[head])
        else:
            self._count += 1
        self._loss[head], self._brier[head], self._hit[head] = loss, brier, hit
        self._loss_sum += loss
        self._brier_sum += brier
        self._hits += hit
        self._head = (head + 1) % self.window
        self._since_refresh += 1
        if self._since_refresh == self.window:
            self._refresh()

    def add_many(self, losses: FloatArray, briers: FloatArray, hits: IntArray) -> IntArray:
        """Append outcomes in order, as ``add`` would one by one; return the window's hit
        count after each of them."""
        out = np.empty(len(losses), dtype=np.int64)
        done = 0
        while done < len(losses):
            # Up to the next refresh, which is at most a window away (so no slot twice).
            size = min(len(losses) - done, self.window - self._since_refresh)
            part = slice(done, done + size)
            out[part] = self._add_part(losses[part], briers[part], hits[part])
            done += size
            self._since_refresh += size
            if self._since_refresh == self.window:
                self._refresh()
        return out

    def _add_part(self, losses: FloatArray, briers: FloatArray, hits: IntArray) -> IntArray:
        size = len(losses)
        slots = (self._head + np.arange(size)) % self.window
        # The first (window - count) outcomes fill free slots; the others evict what is there.
        evicts = np.arange(size) >= self.window - self._count
        self._loss_sum = _chain(self._loss_sum, self._loss[slots], losses, evicts)
        self._brier_sum = _chain(self._brier_sum, self._brier[slots], briers, evicts)
        running = self._hits + np.cumsum(hits - np.where(evicts, self._hit[slots], 0))
        self._hits = int(running[-1])
        self._loss[slots], self._brier[slots], self._hit[slots] = losses, briers, hits
        self._head = int((self._head + size) % self.window)
        self._count = min(self.window, self._count + size)
        return running

    def _refresh(self) -> None:
        # Re-sum exactly once per window: O(1) amortised, and no drift from the subtractions.
        self._loss_sum = math.fsum(self._loss.tolist())
        self._brier_sum = math.fsum(self._brier.tolist())
        self._since_refresh = 0

    def state(self) -> dict[str, object]:
        """Return everything the track holds, exactly: its rings as raw bytes, its sums."""
        return {
            "loss": self._loss.tobytes(),
            "brier": self._brier.tobytes(),
            "hit": self._hit.astype("<i8").tobytes(),
            "head": self._head,
            "count": self._count,
            "hits": self._hits,
            "since_refresh": self._since_refresh,
            "loss_sum": self._loss_sum,
            "brier_sum": self._brier_sum,
        }

    def restore(self, state: Mapping[str, object]) -> None:
        """Take back what ``state`` gave, bit for bit; raise ``ValueError`` if it does not fit
        this track's window (the track is unchanged then)."""
        w = self.window
        try:
            rings = [np.frombuffer(_typed(state, k, bytes), dtype=t) for k, t in _RINGS]
            head, count, hits, since = (_typed(state, k, int) for k in _COUNTERS)
            sums = [_typed(state, k, float) for k in ("loss_sum", "brier_sum")]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a scorecard track: {exc}") from None
        if any(r.shape != (w,) for r in rings) or not (
            0 <= head < w and 0 <= count <= w and 0 <= hits <= count and 0 <= since < w
        ):
            raise ValueError(f"a track of another window, or inconsistent (window {w})")
        self._loss, self._brier = rings[0].copy(), rings[1].copy()
        self._hit = rings[2].astype(np.int64)
        self._head, self._count, self._hits, self._since_refresh = head, count, hits, since
        self._loss_sum, self._brier_sum = sums

    @property
    def count(self) -> int:
        """Return how many outcomes are in the window."""
        return self._count

    def mean(self, metric: str) -> float | None:
        """Return the window's mean ``log_loss``, ``brier`` or ``accuracy``; None when empty."""
        if not self._count:
            return None
        total = {"log_loss": self._loss_sum, "brier": self._brier_sum, "accuracy": self._hits}
        return float(total[metric]) / self._count


_RINGS = (("loss", "<f8"), ("brier", "<f8"), ("hit", "<i8"))
_COUNTERS = ("head", "count", "hits", "since_refresh")
_STATE_FORMAT = 1
_V = TypeVar("_V", bytes, int, float)


def _typed(state: Mapping[str, object], key: str, kind: type[_V]) -> _V:
    value = state[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{key} is {type(value).__name__}, not {kind.__name__}")
    return value


def _chain(total: float, old: FloatArray, new: FloatArray, evicts: npt.NDArray[np.bool_]) -> float:
    """Return ``total`` after ``total -= old[k]`` (where ``evicts[k]``), ``total += new[k]``
    for each k in order: the same float operations, in the same order, as a Python loop."""
    steps = np.empty(2 * len(new) + 1)
    steps[0] = total
    steps[1::2] = np.where(evicts, -old, -0.0)  # x + -0.0 is x, so a free slot changes nothing
    steps[2::2] = new
    return float(np.cumsum(steps)[-1])


class Scorecard:
    """Rolling live performance per model over the last ``window`` resolved predictions."""

    def __init__(self, models: Sequence[str], window: int) -> None:
        if window < 1:
            raise ValueError(f"the scoring window must be at least 1, not {window}")
        self._tracks = {name: _Track(window) for name in model_names(models)}
        self.window = window
        self.added = 0  # (model, outcome) pairs recorded in all: when it moves, the state did

    def state(self) -> bytes:
        """Return the scorecard's whole state, exactly (MessagePack): ``restore`` of it gives a
        scorecard whose every later score and weight is bit for bit this one's."""
        tracks = {name: track.state() for name, track in self._tracks.items()}
        return _CODEC.encode(
            {"format": _STATE_FORMAT, "window": self.window, "added": self.added, "tracks": tracks}
        )

    def restore(self, data: bytes) -> None:
        """Take back a ``state()``; raise ``ValueError`` (changing nothing) if it is not one, or
        is another window's or other models'."""
        try:
            value = msgspec.msgpack.decode(data)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not a scorecard state: {exc}") from None
        if not isinstance(value, dict) or value.get("format") != _STATE_FORMAT:
            raise ValueError("not a scorecard state of this format")
        tracks = value.get("tracks")
        if value.get("window") != self.window or not isinstance(tracks, dict):
            raise ValueError(f"a scorecard of window {value.get('window')}, not {self.window}")
        if sorted(tracks) != list(self._tracks):
            raise ValueError(f"a scorecard of models {sorted(tracks)}, not {list(self._tracks)}")
        try:
            added = _typed(value, "added", int)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a scorecard state: {exc}") from None
        fresh = {name: _Track(self.window) for name in self._tracks}
        for name, track in fresh.items():
            track.restore(tracks[name])
        self._tracks, self.added = fresh, added

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
        if len(p) != CLASSES or not (
            math.isfinite(p[0]) and math.isfinite(p[1]) and math.isfinite(p[2])
        ):
            raise ValueError(f"model {model!r}: expected {CLASSES} finite probabilities, got {p}")
        loss = -math.log(max(p[index], LOG_LOSS_EPS))
        brier = math.fsum(
            [(p[0] - (index == 0)) ** 2, (p[1] - (index == 1)) ** 2, (p[2] - (index == 2)) ** 2]
        )
        track.add(loss, brier, top_class(p) == index)
        self.added += 1

    def add_many(self, model: str, probabilities: FloatArray, labels: IntArray) -> IntArray:
        """Record rows of ``probabilities`` (n, 3) against ``labels`` (n,), in row order, as
        ``add`` would one row at a time; return the window's hit count after each row.

        The log loss and the hit are bit for bit those of ``add``; the Brier score of a row is
        summed in numpy (``(p - onehot)**2`` added left to right, not ``math.fsum``), so it may
        differ from ``add``'s in the last bit. Refused rows raise before anything is recorded.
        """
        p = np.asarray(probabilities, dtype=np.float64)
        return self.add_models((model,), p[None], labels)[0]

    def add_models(
        self, models: Sequence[str], probabilities: FloatArray, labels: IntArray
    ) -> list[IntArray]:
        """``add_many`` for several models at once: ``probabilities`` is (models, n, 3), the
        rows of ``models[k]`` at ``[k]``, all against the same ``labels``."""
        tracks = [self._track(model) for model in models]
        p = np.asarray(probabilities, dtype=np.float64)
        index = np.asarray(labels)
        if p.ndim != 3 or p.shape[::2] != (len(models), CLASSES) or index.shape != p.shape[1:2]:
            raise ValueError(
                f"models {list(models)}: expected ({len(models)}, n, {CLASSES}) probabilities "
                f"and n labels, got {p.shape} and {index.shape}"
            )
        if not np.isfinite(p).all():
            raise ValueError(f"models {list(models)}: expected {CLASSES} finite probabilities")
        if index.size and not (
            np.issubdtype(index.dtype, np.integer) and index.min() >= 0 and index.max() < CLASSES
        ):
            raise ValueError(f"labels are integer classes 0..{CLASSES - 1}, not {index.tolist()}")
        chosen = np.maximum(p[:, np.arange(len(index)), index], LOG_LOSS_EPS)
        losses = np.array([-math.log(x) for x in chosen.ravel().tolist()])  # as add's math.log
        missed = p - (np.arange(CLASSES) == index[:, None])
        squares = missed * missed
        briers = squares[..., 0] + squares[..., 1] + squares[..., 2]
        hits = (p.argmax(axis=2) == index).astype(np.int64)
        losses = losses.reshape(hits.shape)
        self.added += hits.size
        return [track.add_many(losses[k], briers[k], hits[k]) for k, track in enumerate(tracks)]

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
