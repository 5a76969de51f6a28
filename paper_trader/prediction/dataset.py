"""Labels and training sets, built from the batch feature reference only.

The target of candle t is the forward return over ``horizon`` candles, c[t+H] / c[t] - 1,
classified up / flat / down against a fee-aware threshold: a move smaller than a round trip's
fees plus slippage is *flat*, because trading it loses money. A label exists only where the
candle exactly H intervals later exists in the same segment (no gap in between, no reset), and
a sample exists only where every model input is ready. Features at t use candles ≤ t (the
batch reference is causal, see ``features/spec.py``); only the label looks ahead, by design.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paper_trader.errors import DataIntegrityError
from paper_trader.features.spec import FeatureSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Label(enum.IntEnum):
    """The three classes, in the column order of every model's probabilities."""

    DOWN = 0
    FLAT = 1
    UP = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRule:
    """How a forward return becomes a class."""

    horizon: int
    fee_rate: float  # per side, as a fraction (0.001 = 0.1 %)
    slippage_bps: float  # per side

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"the horizon must be at least one candle, not {self.horizon}")
        if self.fee_rate < 0 or self.slippage_bps < 0:
            raise ValueError("fees and slippage cannot be negative")

    @property
    def threshold(self) -> float:
        """Return the smallest move that pays a round trip: twice fee plus slippage."""
        return 2.0 * (self.fee_rate + self.slippage_bps / 10_000.0)

    def to_json(self) -> dict[str, object]:
        """Return the rule as recorded with a model."""
        return {
            "target": "forward_return",
            "horizon": self.horizon,
            "fee_rate": self.fee_rate,
            "slippage_bps": self.slippage_bps,
            "threshold": self.threshold,
            "classes": [label.name.lower() for label in Label],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset:
    """Samples of one or more series: model inputs, labels, and where they came from."""

    features: FloatArray  # (samples, inputs)
    labels: IntArray
    forward_returns: FloatArray
    past_labels: IntArray  # class of the return over the H candles up to t (known at t), -1 if none
    open_times_ms: IntArray
    series: IntArray  # index into ``series_names``
    series_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    spec_hash: str
    rule: LabelRule

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: IntArray) -> "Dataset":
        """Return the samples at ``index`` (in that order), with the same metadata."""
        return Dataset(
            features=self.features[index],
            labels=self.labels[index],
            forward_returns=self.forward_returns[index],
            past_labels=self.past_labels[index],
            open_times_ms=self.open_times_ms[index],
            series=self.series[index],
            series_names=self.series_names,
            feature_names=self.feature_names,
            spec_hash=self.spec_hash,
            rule=self.rule,
        )


def forward_returns(
    open_time_ms: IntArray, close: FloatArray, horizon: int, interval_ms: int, segment: IntArray
) -> FloatArray:
    """Return c[t+H] / c[t] - 1 where candle t+H is exactly H intervals later, else NaN."""
    out = np.full(len(close), np.nan)
    if len(close) <= horizon:
        return out
    ahead = slice(horizon, None)
    here = slice(None, len(close) - horizon)
    exact = (open_time_ms[ahead] - open_time_ms[here] == horizon * interval_ms) & (
        segment[ahead] == segment[here]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = close[ahead] / close[here] - 1.0
    out[here] = np.where(exact, ret, np.nan)
    return out


def past_labels(forward: FloatArray, horizon: int, threshold: float) -> IntArray:
    """Return the class of the return that ended at t (the forward return of t - H), or -1.

    That return is known when candle t closes, so it is what a persistence forecast uses.
    """
    out = np.full(len(forward), -1, dtype=np.int64)
    if len(forward) > horizon:
        earlier = forward[:-horizon]
        known = np.isfinite(earlier)
        out[horizon:][known] = classify(earlier[known], threshold)
    return out


def classify(returns: FloatArray, threshold: float) -> IntArray:
    """Return the class of each return; the caller drops NaN returns first."""
    labels = np.full(len(returns), int(Label.FLAT), dtype=np.int64)
    labels[returns > threshold] = int(Label.UP)
    labels[returns < -threshold] = int(Label.DOWN)
    return labels


def segment_ids(
    spec: FeatureSpec, open_time_ms: IntArray, ohlcv: FloatArray, interval_ms: int
) -> IntArray:
    """Return each candle's segment (-1 for an impossible candle), as the engines cut them."""
    from paper_trader.features import batch  # noqa: PLC0415 -- pandas: training, not the daemon

    ids = np.full(len(open_time_ms), -1, dtype=np.int64)
    gap_ms = (spec.max_bridged_gap + 1) * interval_ms
    for number, part in enumerate(batch.segments(open_time_ms, batch.invalid_rows(ohlcv), gap_ms)):
        ids[part] = number
    return ids


def series_samples(
    spec: FeatureSpec,
    open_time_ms: npt.ArrayLike,
    ohlcv: npt.ArrayLike,
    interval_ms: int,
    rule: LabelRule,
) -> tuple[FloatArray, IntArray, FloatArray, IntArray, IntArray]:
    """Return (inputs, labels, forward returns, past labels, open times) of usable candles."""
    from paper_trader.features import batch  # noqa: PLC0415 -- as in segment_ids

    t = np.asarray(open_time_ms, dtype=np.int64)
    values = np.asarray(ohlcv, dtype=np.float64).reshape(5, -1)
    frame = batch.compute(spec, t, values, interval_ms)
    inputs = frame[list(spec.model_inputs)].to_numpy(dtype=np.float64)
    fwd = forward_returns(
        t, values[3], rule.horizon, interval_ms, segment_ids(spec, t, values, interval_ms)
    )
    usable = np.isfinite(inputs).all(axis=1) & np.isfinite(fwd)
    past = past_labels(fwd, rule.horizon, rule.threshold)
    labels = classify(fwd[usable], rule.threshold)
    return inputs[usable], labels, fwd[usable], past[usable], t[usable]


def build_dataset(
    spec: FeatureSpec,
    series: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    interval_ms: int,
    rule: LabelRule,
) -> Dataset:
    """Build the samples of every series (name → (open times, (5, n) OHLCV)), time-ordered.

    Raises ``DataIntegrityError`` if no candle of any series yields a sample.
    """
    parts = []
    for number, (times, ohlcv) in enumerate(series.values()):
        x, y, fwd, past, t = series_samples(spec, times, ohlcv, interval_ms, rule)
        parts.append((x, y, fwd, past, t, np.full(len(y), number, dtype=np.int64)))
    if not parts or sum(len(p[1]) for p in parts) == 0:
        raise DataIntegrityError(
            f"no usable samples: each series needs more than {spec.warmup + rule.horizon} "
            "candles without a long gap"
        )
    x, y, fwd, past, t, s = (np.concatenate([p[i] for p in parts]) for i in range(6))
    order = np.lexsort((s, t))  # by time, then series: folds cut across symbols at one instant
    return Dataset(
        features=x[order],
        labels=y[order],
        forward_returns=fwd[order],
        past_labels=past[order],
        open_times_ms=t[order],
        series=s[order],
        series_names=tuple(series),
        feature_names=spec.model_inputs,
        spec_hash=spec.version_hash,
        rule=rule,
    )
