"""Walk-forward folds with a purge and an embargo between training and test.

Samples are ordered by time. Each fold tests on the next block of time and trains only on what
ends well before it: a training sample at t is kept only if its label window [t, t + H] closes
more than ``embargo`` candles before the fold's first test sample, so no label used for
training overlaps, or sits right next to, the period it is scored on. ``expanding`` training
windows start at the beginning; rolling ones keep the last ``train_candles``.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paper_trader.errors import DataIntegrityError

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fold:
    """Sample indices to train on and to test on."""

    number: int
    train: IntArray
    test: IntArray


@dataclass(frozen=True, slots=True, kw_only=True)
class FoldPlan:
    """How to cut the samples."""

    folds: int
    horizon: int
    embargo: int  # candles, at least the horizon
    interval_ms: int
    min_train: int = 500
    train_candles: int | None = None  # None: expanding

    @property
    def gap_ms(self) -> int:
        """Return the purge plus the embargo between training labels and tested samples."""
        return (self.horizon + self.embargo) * self.interval_ms

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ValueError(f"at least one fold, not {self.folds}")
        if self.embargo < self.horizon:
            raise ValueError(f"the embargo ({self.embargo}) must be at least the horizon")


def walk_forward(open_times_ms: IntArray, plan: FoldPlan) -> list[Fold]:
    """Return the folds over time-ordered samples.

    The samples' times are cut into ``folds + 1`` equal blocks of distinct instants; fold k
    tests on block k + 1. Raises ``DataIntegrityError`` when a fold would train on fewer than
    ``min_train`` samples or test on none: the data is too short for the plan.
    """
    instants = np.unique(open_times_ms)
    edges = np.linspace(0, len(instants), plan.folds + 2).astype(np.int64)
    gap_ms = plan.gap_ms
    folds = []
    for number in range(plan.folds):
        start, end = (
            instants[edges[number + 1]],
            instants[min(edges[number + 2], len(instants)) - 1],
        )
        test = np.flatnonzero((open_times_ms >= start) & (open_times_ms <= end))
        keep = open_times_ms < start - gap_ms
        if plan.train_candles is not None:
            keep &= open_times_ms >= start - gap_ms - plan.train_candles * plan.interval_ms
        train = np.flatnonzero(keep)
        if len(train) < plan.min_train or len(test) == 0:
            raise DataIntegrityError(
                f"too little data for {plan.folds} walk-forward folds: fold {number + 1} would "
                f"train on {len(train)} samples (at least {plan.min_train} needed) and test on "
                f"{len(test)}"
            )
        folds.append(Fold(number=number + 1, train=train, test=test))
    return folds


def split_recent(times: IntArray, fraction: float, gap_ms: int) -> tuple[IntArray, IntArray]:
    """Return (earlier, recent) sample indices: the last ``fraction`` of instants, and what
    ends ``gap_ms`` before them."""
    instants = np.unique(times)
    start = instants[min(len(instants) - 1, int(len(instants) * (1.0 - fraction)))]
    return np.flatnonzero(times < start - gap_ms), np.flatnonzero(times >= start)
