"""The incremental feature engine: per series, O(1) work per closed candle.

``SeriesEngine`` folds one series' candles into fixed-size state (ring buffers and running
sums, see ``rolling.py``) and returns one row per candle with every column of the spec, NaN
until that column's warm-up. ``series_set.FeatureEngine`` holds every series, in these or in
the column-wise ``block.SeriesBlock``.

The state is plain numbers and lists, so ``snapshot()`` and ``restore()`` can save it to the
feature cache and rebuild an identical engine from it: a restart resumes mid-series.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.errors import DataIntegrityError
from paper_trader.features.indicators import (
    Atr,
    Bollinger,
    EmaCross,
    EmaLevel,
    HigherTimeframe,
    Macd,
    Momentum,
    Range,
    RateOfChange,
    Return,
    Rsi,
    Sma,
    Step,
    Stochastic,
    Volatility,
    WilliamsR,
)
from paper_trader.features.rolling import History
from paper_trader.features.spec import FeatureSpec, Indicator
from paper_trader.features.volume import ObvFlow, VolumeChange, VolumeRatio, Vwap

SeriesKey = tuple[Venue, str, Interval]
_STATE_TYPES = (int, float, str)

Factory = Callable[[int, Indicator, int, History], Step]


FACTORIES: dict[str, Factory] = {
    "sma": lambda at, ind, _ms, hist: Sma(at, ind.params[0], hist),
    "ema": lambda at, ind, _ms, _hist: EmaLevel(at, *ind.params),
    "vwap": lambda at, ind, _ms, _hist: Vwap(at, *ind.params),
    "ret": lambda at, ind, _ms, hist: Return(at, ind.params[0], hist),
    "roc": lambda at, ind, _ms, hist: RateOfChange(at, ind.params[0], hist),
    "mom": lambda at, ind, _ms, hist: Momentum(at, ind.params[0], hist),
    "range": lambda at, _ind, _ms, _hist: Range(at),
    "bbands": lambda at, ind, _ms, _hist: Bollinger(at, *ind.params),
    "rsi": lambda at, ind, _ms, _hist: Rsi(at, *ind.params),
    "macd": lambda at, ind, _ms, _hist: Macd(at, *ind.params),
    "stoch": lambda at, ind, _ms, _hist: Stochastic(at, *ind.params),
    "willr": lambda at, ind, _ms, _hist: WilliamsR(at, *ind.params),
    "atr": lambda at, ind, _ms, _hist: Atr(at, *ind.params),
    "obv_flow": lambda at, ind, _ms, _hist: ObvFlow(at, *ind.params),
    "vol_chg": lambda at, ind, _ms, _hist: VolumeChange(at, *ind.params),
    "vol_ratio": lambda at, ind, _ms, _hist: VolumeRatio(at, *ind.params),
    "ema_cross": lambda at, ind, _ms, _hist: EmaCross(at, *ind.params),
    "volatility": lambda at, ind, _ms, _hist: Volatility(at, *ind.params),
    "htf": lambda at, ind, ms, _hist: HigherTimeframe(at, *ind.params, interval_ms=ms),
}


def _build(spec: FeatureSpec, interval_ms: int) -> tuple[History, list[Step]]:
    history = History()
    steps: list[Step] = []
    at = 0
    for indicator in spec.indicators:
        steps.append(FACTORIES[indicator.kind](at, indicator, interval_ms, history))
        at += len(indicator.columns)
    return history, steps


def candle_values(candle: Candle) -> tuple[float, float, float, float, float]:
    """Return a candle's open, high, low, close and volume as the floats the engines use."""
    return (
        float(candle.open),
        float(candle.high),
        float(candle.low),
        float(candle.close),
        float(candle.volume),
    )


def invalid_reason(o: float, h: float, l: float, c: float, v: float) -> str | None:
    """Return why a candle cannot enter the engine, or None when it can."""
    for name, price in (("open", o), ("high", h), ("low", l), ("close", c)):
        if not (math.isfinite(price) and price > 0.0):
            return f"{name} is {price!r}"
    if not (math.isfinite(v) and v >= 0.0):
        return f"volume is {v!r}"
    if h < l:
        return f"high {h!r} is below low {l!r}"
    return None


class SeriesEngine:
    """The features of one series, updated one closed candle at a time."""

    __slots__ = (
        "_blank",
        "_gap_ms",
        "_history",
        "_interval_ms",
        "_steps",
        "_warmup",
        "count",
        "last_candle",
        "last_open_ms",
        "spec",
    )

    def __init__(self, spec: FeatureSpec, interval_ms: int) -> None:
        self.spec = spec
        self._interval_ms = interval_ms
        self._gap_ms = (spec.max_bridged_gap + 1) * interval_ms
        self._blank = [math.nan] * len(spec.names)
        self._warmup = spec.warmup  # a derived property: read once, not per candle
        self._history, self._steps = _build(spec, interval_ms)
        self.count = 0
        self.last_open_ms: int | None = None
        self.last_candle: tuple[float, ...] = ()

    @property
    def is_ready(self) -> bool:
        """Return whether every column has a value (the warm-up is over)."""
        return self.count >= self._warmup

    def reset(self) -> None:
        """Forget everything but the last candle time: the warm-up starts again."""
        self._history, self._steps = _build(self.spec, self._interval_ms)
        self.count = 0

    def update(
        self,
        open_time_ms: int,
        o: float,
        h: float,
        l: float,
        c: float,
        v: float,
    ) -> list[float] | None:
        """Fold in the next candle and return its row; None for a candle already seen.

        Raises ``DataIntegrityError`` for an impossible candle, after resetting the series.
        """
        last = self.last_open_ms
        if last is not None:
            if open_time_ms <= last:
                return None
            if open_time_ms - last > self._gap_ms:
                self.reset()
        self.last_open_ms = open_time_ms
        if not (
            0.0 < l <= h < math.inf
            and 0.0 < o < math.inf
            and 0.0 < c < math.inf
            and 0.0 <= v < math.inf
        ):
            self._refuse(open_time_ms, o, h, l, c, v)
        self.count += 1
        self.last_candle = (o, h, l, c, v)
        self._history.push(c)
        row = self._blank[:]
        for step in self._steps:
            step.step(open_time_ms, h, l, c, v, row)
        return row

    def _refuse(self, t: int, o: float, h: float, l: float, c: float, v: float) -> NoReturn:
        self.reset()
        reason = invalid_reason(o, h, l, c, v) or "a value is not a number"
        raise DataIntegrityError(f"candle at {t}: {reason}")

    def snapshot(self) -> dict[str, Any]:
        """Return the whole state as JSON-ready numbers and lists."""
        return {
            "count": self.count,
            "last_open_ms": self.last_open_ms,
            "last_candle": list(self.last_candle),
            "history": _dump(self._history),
            "steps": [_dump(step) for step in self._steps],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a ``snapshot()``; raise ``DataIntegrityError`` if it does not fit this spec."""
        history, steps = _build(self.spec, self._interval_ms)
        _load(history, state.get("history"), path="History")
        saved = state.get("steps")
        if not isinstance(saved, list) or len(saved) != len(steps):
            raise DataIntegrityError("the saved state has a different number of indicators")
        for step, data in zip(steps, saved, strict=True):
            _load(step, data, path=type(step).__name__)
        count, last = state.get("count"), state.get("last_open_ms")
        if not isinstance(count, int) or count < 0:
            raise DataIntegrityError("the saved state has no candle count")
        if not isinstance(last, int):
            raise DataIntegrityError("the saved state has no last candle time")
        candle = state.get("last_candle")
        if not isinstance(candle, list) or not all(isinstance(x, float) for x in candle):
            raise DataIntegrityError("the saved state has no last candle")
        self._history, self._steps = history, steps
        self.count = count
        self.last_open_ms = last
        self.last_candle = tuple(candle)


def _slots(obj: object) -> list[str]:
    return [name for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())]


def _dump(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _slots(obj):
        value = getattr(obj, name)
        if isinstance(value, History):
            continue  # shared by the steps; saved once with the engine
        if isinstance(value, list):
            value = list(value)
        elif not isinstance(value, _STATE_TYPES):
            value = _dump(value)
        out[name] = value
    return out


def _load(obj: object, data: object, *, path: str) -> None:
    """Set obj's slots from data, checking each against the freshly built value's shape."""
    names = [n for n in _slots(obj) if not isinstance(getattr(obj, n), History)]
    if not isinstance(data, dict) or set(data) != set(names):
        raise DataIntegrityError(f"the saved state of {path} has other fields")
    for name in names:
        fresh, saved = getattr(obj, name), data[name]
        where = f"{path}.{name}"
        if isinstance(fresh, list):
            if not isinstance(saved, list) or len(saved) != len(fresh):
                raise DataIntegrityError(f"the saved {where} has another length")
            if not all(isinstance(x, float) for x in saved):
                raise DataIntegrityError(f"the saved {where} holds a non-number")
            setattr(obj, name, saved)
        elif isinstance(fresh, str):
            if saved != fresh:
                raise DataIntegrityError(f"the saved {where} is {saved!r}, not {fresh!r}")
        elif isinstance(fresh, (float, int)):
            if isinstance(saved, bool) or not isinstance(saved, (int, float)):
                raise DataIntegrityError(f"the saved {where} is not a number")
            if isinstance(fresh, int) and not isinstance(saved, int):
                raise DataIntegrityError(f"the saved {where} is not a whole number")
            if fresh != saved and name in ("n", "k", "at", "bucket_ms", "alpha", "d"):
                raise DataIntegrityError(f"the saved {where} is {saved}, the spec says {fresh}")
            setattr(obj, name, float(saved) if isinstance(fresh, float) else saved)
        else:
            _load(fresh, saved, path=where)


class FeatureRow:
    """One candle's features: every column of the spec, in its order; immutable.

    ``array`` is a read-only numpy row (from the engine, a view into the matrix of its
    instant: stacking the rows of an instant costs no per-value work); ``values`` the same
    numbers as a tuple of Python floats, made on first use. Either can be given.
    """

    __slots__ = ("_array", "_values", "interval", "is_ready", "open_time_ms", "symbol", "venue")
    venue: Venue
    symbol: str
    interval: Interval
    open_time_ms: int
    is_ready: bool
    _array: "npt.NDArray[np.float64] | None"
    _values: tuple[float, ...] | None

    def __init__(
        self,
        *,
        venue: Venue,
        symbol: str,
        interval: Interval,
        open_time_ms: int,
        values: "npt.NDArray[np.float64] | Sequence[float]",
        is_ready: bool,
    ) -> None:
        init = object.__setattr__
        init(self, "venue", venue)
        init(self, "symbol", symbol)
        init(self, "interval", interval)
        init(self, "open_time_ms", open_time_ms)
        init(self, "is_ready", is_ready)
        if isinstance(values, np.ndarray):
            init(self, "_array", values)
            init(self, "_values", None)
        else:
            init(self, "_array", None)
            kept = values if isinstance(values, tuple) else tuple(float(x) for x in values)
            init(self, "_values", kept)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FeatureRow is immutable: cannot set {name}")

    @property
    def values(self) -> tuple[float, ...]:
        """Return the row as Python floats."""
        if self._values is None:
            assert self._array is not None
            object.__setattr__(self, "_values", tuple(self._array.tolist()))
        assert self._values is not None
        return self._values

    @property
    def array(self) -> "npt.NDArray[np.float64]":
        """Return the row as a read-only numpy array."""
        if self._array is None:
            row = np.array(self._values, dtype=np.float64)
            row.flags.writeable = False
            object.__setattr__(self, "_array", row)
        assert self._array is not None
        return self._array

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureRow):
            return NotImplemented
        return (
            self.venue,
            self.symbol,
            self.interval,
            self.open_time_ms,
            self.is_ready,
        ) == (
            other.venue,
            other.symbol,
            other.interval,
            other.open_time_ms,
            other.is_ready,
        ) and np.array_equal(self.array, other.array, equal_nan=True)

    __hash__ = None  # type: ignore[assignment]  # a row holds an array: not hashable

    def __repr__(self) -> str:
        return (
            f"FeatureRow(venue={self.venue!r}, symbol={self.symbol!r}, "
            f"interval={self.interval!r}, open_time_ms={self.open_time_ms}, "
            f"is_ready={self.is_ready}, values={list(self.array)!r})"
        )
