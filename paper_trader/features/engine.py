"""The incremental feature engine: per series, O(1) work per closed candle.

``SeriesEngine`` folds one series' candles into fixed-size state (ring buffers and running
sums, see ``rolling.py``) and returns one row per candle with every column of the spec, NaN
until that column's warm-up. ``FeatureEngine`` keeps one per (venue, symbol, interval), turns a
bad candle into a logged, counted reset of that series only, and keeps the last rows of each
series in a bounded ring for whoever reads them (status, the predictor).

The state is plain numbers and lists, so ``snapshot()`` and ``restore()`` can save it to the
feature cache and rebuild an identical engine from it: a restart resumes mid-series.
"""

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

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


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureRow:
    """One candle's features: every column of the spec, in its order."""

    venue: Venue
    symbol: str
    interval: Interval
    open_time_ms: int
    values: tuple[float, ...]
    is_ready: bool


@dataclass(slots=True)
class EngineCounters:
    """What the feature engine has done since start."""

    rows: int = 0
    skipped: int = 0
    integrity_errors: int = 0
    gap_resets: int = 0


class FeatureEngine:
    """One ``SeriesEngine`` per series, isolation of bad input, recent rows per series."""

    def __init__(self, spec: FeatureSpec, *, keep_rows: int = 1) -> None:
        self.spec = spec
        self.keep_rows = max(1, keep_rows)
        self.counters = EngineCounters()
        self._series: dict[SeriesKey, SeriesEngine] = {}
        self._rows: dict[SeriesKey, deque[FeatureRow]] = {}

    def series(self, key: SeriesKey) -> SeriesEngine:
        """Return the engine of one series, creating it empty."""
        engine = self._series.get(key)
        if engine is None:
            engine = self._series[key] = SeriesEngine(self.spec, key[2].ms)
            self._rows[key] = deque(maxlen=self.keep_rows)
        return engine

    def series_keys(self) -> list[SeriesKey]:
        """Return the series the engine knows."""
        return list(self._series)

    def recent(self, key: SeriesKey) -> list[FeatureRow]:
        """Return the series' last rows, oldest first."""
        return list(self._rows.get(key, ()))

    def adopt(self, key: SeriesKey, engine: SeriesEngine, rows: list[FeatureRow]) -> None:
        """Install a series restored from the cache, with its recent rows."""
        self._series[key] = engine
        self._rows[key] = deque(rows, maxlen=self.keep_rows)

    def update(self, candle: Candle) -> FeatureRow | None:
        """Fold a closed candle into its series; None if seen before or impossible.

        An impossible candle raises ``DataIntegrityError`` after its series was reset and the
        error counted; other series are untouched.
        """
        key = (candle.venue, candle.symbol, candle.interval)
        engine = self.series(key)
        before = engine.count
        try:
            values = engine.update(candle.open_time_ms, *candle_values(candle))
        except DataIntegrityError:
            self.counters.integrity_errors += 1
            raise
        if values is None:
            self.counters.skipped += 1
            return None
        if engine.count <= before and before > 0:
            self.counters.gap_resets += 1
        row = FeatureRow(
            venue=candle.venue,
            symbol=candle.symbol,
            interval=candle.interval,
            open_time_ms=candle.open_time_ms,
            values=tuple(values),
            is_ready=engine.is_ready,
        )
        self.counters.rows += 1
        self._rows[key].append(row)
        return row
