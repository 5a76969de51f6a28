"""The candle data-quality gate: reject impossible candles, flag suspicious ones, score series.

Over 400 lines (466): the rules, the per-series state (with its codec, for a start to resume
from) and the monitor that applies them are one gate, kept together.

Every closed candle goes through `QualityMonitor.assess` before it is stored or used. An
impossible candle (broken OHLC relations; a negative, zero-priced or non-finite value; an open
time off the interval grid or not closed yet) is rejected whatever the configuration, so garbage
is never stored. A suspicious one (a move far beyond recent volatility, a zero-volume flat
candle such as an exchange halt) is flagged but kept: it is real data. Each series
(venue, symbol, interval) has a quality score over its last ``window`` candles; below
``min_score`` it is not tradable until the score is back at ``min_score + recover_margin``.
Time is candle time throughout: the monitor never reads the wall clock.
"""

import enum
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from paper_trader.domain import (
    Candle,
    ComponentHealth,
    Event,
    EventKind,
    EventSource,
    HealthStatus,
    Interval,
    Severity,
    Venue,
)
from paper_trader.market.volatility import JumpDetector
from paper_trader.runtime.logs import get_logger

log = get_logger("data_quality")

_CODEC = msgspec.msgpack.Encoder()
LOGGED_KEYS_LIMIT = 10_000
"""How many (candle, reason) keys are remembered as already logged; the oldest are forgotten."""

_SeriesKey = tuple[Venue, str, Interval]
_LogKey = tuple[Venue, str, Interval, int, str]


class Reason(enum.StrEnum):
    """Why a candle was rejected or flagged: stable codes for logs and metrics."""

    NOT_FINITE = "not_finite"
    NEGATIVE_VALUE = "negative_value"
    ZERO_PRICE = "zero_price"
    HIGH_BELOW_LOW = "high_below_low"
    HIGH_BELOW_OPEN_CLOSE = "high_below_open_close"
    LOW_ABOVE_OPEN_CLOSE = "low_above_open_close"
    MISALIGNED_OPEN_TIME = "misaligned_open_time"
    IN_FUTURE = "in_future"
    PRICE_JUMP = "price_jump"
    ZERO_VOLUME_FLAT = "zero_volume_flat"


class Verdict(enum.StrEnum):
    """What happens to a candle: used as is, used but counted as suspicious, or dropped."""

    ACCEPTED = "accepted"
    FLAGGED = "flagged"
    REJECTED = "rejected"


# Score penalties in half units (accepted 0, flagged 0.5, rejected or missing 1.0), so that
# the running sum is an exact integer.
_FULL_PENALTY = 2
_PENALTY = {Verdict.ACCEPTED: 0, Verdict.FLAGGED: 1, Verdict.REJECTED: _FULL_PENALTY}
_GAP_PENALTY = _FULL_PENALTY


@dataclass(frozen=True, slots=True, kw_only=True)
class QualityConfig:
    """Settings of the data-quality gate.

    ``enabled`` (ENABLE_DATA_QUALITY_CHECKS) turns the flags and the score gate on; impossible
    candles are rejected either way. ``min_score`` (MIN_DATA_QUALITY, 0-100): below it a series
    is not tradable, until its score is at least ``min_score + recover_margin``. ``window``:
    candles in the rolling score window, and log returns in the volatility window. A candle is
    a ``price_jump`` when its close-to-close log return or its high-low range in log units
    exceeds ``jump_multiple`` times the recent volatility (root mean square of log returns),
    checked once the series has ``jump_history`` returns.
    """

    enabled: bool = True
    min_score: float = 80.0
    window: int = 120
    jump_multiple: float = 10.0
    jump_history: int = 30
    recover_margin: float = 5.0

    def __post_init__(self) -> None:
        """Raise ValueError naming every setting that is out of range."""
        rules = (
            (0 <= self.min_score <= 100, f"min_score must be within 0..100, got {self.min_score}"),
            (self.window >= 1, f"window must be at least 1 candle, got {self.window}"),
            (
                math.isfinite(self.jump_multiple) and self.jump_multiple > 0,
                f"jump_multiple must be a positive number, got {self.jump_multiple}",
            ),
            (
                2 <= self.jump_history <= self.window,
                f"jump_history must be within 2..window ({self.window}), got {self.jump_history}",
            ),
            (
                0 <= self.recover_margin <= 100 - self.min_score,
                f"recover_margin must be within 0..{100 - self.min_score} (min_score + "
                f"recover_margin must not exceed 100), got {self.recover_margin}",
            ),
        )
        problems = [message for is_valid, message in rules if not is_valid]
        if problems:
            raise ValueError("invalid data-quality settings: " + "; ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class Assessment:
    """The verdict on one candle and the state of its series right after it.

    ``transition`` is the SYMBOL_NOT_TRADABLE or SYMBOL_TRADABLE event when this candle changed
    whether the series is tradable.
    """

    verdict: Verdict
    reasons: tuple[Reason, ...]
    score: float
    tradable: bool
    transition: Event | None = None

    @property
    def is_usable(self) -> bool:
        """Return whether the candle may be stored and used (accepted or flagged)."""
        return self.verdict is not Verdict.REJECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesQuality:
    """A snapshot of one series' quality and counters."""

    venue: Venue
    symbol: str
    interval: Interval
    score: float
    tradable: bool
    accepted: int
    flagged: int
    rejected: int
    gaps: int


def _values(candle: Candle) -> tuple[Decimal, ...]:
    return (candle.open, candle.high, candle.low, candle.close, candle.volume)


# Checked in order; each rule may assume the earlier ones passed (comparing a NaN raises).
_IMPOSSIBLE: tuple[tuple[Reason, Callable[[Candle, int], bool]], ...] = (
    (Reason.NOT_FINITE, lambda c, _now: not all(v.is_finite() for v in _values(c))),
    (Reason.NEGATIVE_VALUE, lambda c, _now: any(v < 0 for v in _values(c))),
    (Reason.ZERO_PRICE, lambda c, _now: min(c.open, c.high, c.low, c.close) == 0),
    (Reason.HIGH_BELOW_LOW, lambda c, _now: c.high < c.low),
    (Reason.HIGH_BELOW_OPEN_CLOSE, lambda c, _now: c.high < max(c.open, c.close)),
    (Reason.LOW_ABOVE_OPEN_CLOSE, lambda c, _now: c.low > min(c.open, c.close)),
    (Reason.MISALIGNED_OPEN_TIME, lambda c, _now: c.open_time_ms % c.interval.ms != 0),
    (Reason.IN_FUTURE, lambda c, now_ms: c.close_time_ms > now_ms),
)


def check_candle(candle: Candle, *, now_ms: int) -> Reason | None:
    """Return why ``candle`` cannot be real, or None when it can.

    ``now_ms`` is the exchange's clock (its latest event time), not the local one: a candle
    that has not closed by then is ``in_future``. Prices must be positive and volume
    non-negative.
    """
    if _possible(candle, now_ms):
        return None
    for reason, is_impossible in _IMPOSSIBLE:
        if is_impossible(candle, now_ms):
            return reason
    return None


def _possible(c: Candle, now_ms: int) -> bool:
    """Return True when no rule of ``_IMPOSSIBLE`` applies, in one expression (the common
    case, on every candle); False sends the candle through the rules to find the reason."""
    o, high, low, close, volume = c.open, c.high, c.low, c.close, c.volume
    return (
        o.is_finite()
        and high.is_finite()
        and low.is_finite()
        and close.is_finite()
        and volume.is_finite()
        and low > 0
        and volume >= 0
        and high >= o
        and high >= close
        and low <= o
        and low <= close
        and c.open_time_ms % c.interval.ms == 0
        and c.close_time_ms <= now_ms
    )


def _is_zero_volume_flat(candle: Candle) -> bool:
    return candle.volume == 0 and candle.open == candle.high == candle.low == candle.close


class _Series:
    """Mutable state of one (venue, symbol, interval) series."""

    __slots__ = (
        "gaps",
        "jumps",
        "last_open_ms",
        "penalties",
        "penalty_sum",
        "tradable",
        "verdicts",
    )

    def __init__(self, config: QualityConfig) -> None:
        self.penalties: deque[int] = deque(maxlen=config.window)
        self.penalty_sum = 0
        self.tradable = True
        self.verdicts: Counter[Verdict] = Counter()
        self.gaps = 0
        self.last_open_ms: int | None = None  # the last candle judged, rejected ones included
        self.jumps = JumpDetector(
            window=config.window, min_history=config.jump_history, multiple=config.jump_multiple
        )

    @property
    def score(self) -> float:
        if not self.penalties:
            return 100.0
        return 100.0 * (1.0 - self.penalty_sum / (_FULL_PENALTY * len(self.penalties)))

    def state(self) -> dict[str, object]:
        """Return the series' whole state, exactly (``restore`` takes it back)."""
        return {
            "penalties": bytes(self.penalties),
            "penalty_sum": self.penalty_sum,
            "tradable": self.tradable,
            "verdicts": [self.verdicts[v] for v in Verdict],
            "gaps": self.gaps,
            "last_open_ms": self.last_open_ms,
            "jumps": self.jumps.state(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``state()``; raise ``ValueError`` if it does not fit this series."""
        penalties = bytes(state["penalties"])
        size = self.penalties.maxlen or 0
        if len(penalties) > size or sum(penalties) != int(state["penalty_sum"]):
            raise ValueError(f"a score window of another size, or inconsistent (size {size})")
        self.jumps.restore(state["jumps"])
        self.penalties = deque(penalties, maxlen=size)
        self.penalty_sum, self.tradable = int(state["penalty_sum"]), bool(state["tradable"])
        self.verdicts = Counter(dict(zip(Verdict, map(int, state["verdicts"]), strict=True)))
        self.gaps = int(state["gaps"])
        last = state["last_open_ms"]
        self.last_open_ms = None if last is None else int(last)

    def push(self, penalty: int, times: int = 1) -> None:
        for _ in range(min(times, self.penalties.maxlen or 0)):
            if len(self.penalties) == self.penalties.maxlen:
                self.penalty_sum -= self.penalties[0]
            self.penalties.append(penalty)
            self.penalty_sum += penalty


class QualityMonitor:
    """Judge every closed candle, score each series, and say which series are tradable.

    One per daemon, keyed per series (venue, symbol, interval). Synchronous and O(1) amortised
    per candle; memory is bounded by the number of series and `LOGGED_KEYS_LIMIT`.
    """

    def __init__(self, config: QualityConfig, *, source: str = "data_quality") -> None:
        self._config = config
        self._source = source
        self._event_source = EventSource(source)
        self._series: dict[_SeriesKey, _Series] = {}
        self._counts: Counter[str] = Counter()
        self._logged: OrderedDict[_LogKey, None] = OrderedDict()

    def assess(self, candle: Candle, *, now_ms: int) -> Assessment:
        """Judge ``candle`` against the exchange's clock ``now_ms``; never use a rejected one."""
        key = (candle.venue, candle.symbol, candle.interval)
        series = self._series_for(key)
        series.last_open_ms = candle.open_time_ms
        reason = check_candle(candle, now_ms=now_ms)
        reasons: tuple[Reason, ...]
        if reason is not None:
            verdict, reasons = Verdict.REJECTED, (reason,)
        else:
            reasons = self._flags(series, candle) if self._config.enabled else ()
            verdict = Verdict.FLAGGED if reasons else Verdict.ACCEPTED
        series.verdicts[verdict] += 1
        for each in reasons:
            self._report(candle, verdict, each)
        transition = None
        if self._config.enabled:
            series.push(_PENALTY[verdict])
            transition = self._update_tradable(key, series, at_ms=candle.close_time_ms)
        return Assessment(
            verdict=verdict,
            reasons=reasons,
            score=series.score,
            tradable=series.tradable,
            transition=transition,
        )

    def note_gap(
        self, venue: Venue, symbol: str, interval: Interval, missing: int, *, at_ms: int
    ) -> Event | None:
        """Count ``missing`` candles the exchange could not provide; each weighs as a rejection.

        ``at_ms`` is the event time of a resulting transition (candle time, e.g. the close
        time of the candle after the gap). Return that SYMBOL_NOT_TRADABLE event, if any.
        """
        if missing < 0:
            raise ValueError(f"missing must be a non-negative number of candles, got {missing}")
        key = (venue, symbol, interval)
        series = self._series_for(key)
        series.gaps += missing
        if not self._config.enabled or missing == 0:
            return None
        series.push(_GAP_PENALTY, missing)
        return self._update_tradable(key, series, at_ms=at_ms)

    def states(self, keys: Iterable[_SeriesKey]) -> list[tuple[_SeriesKey, bytes]]:
        """Return the state of each series of ``keys`` it has seen (MessagePack), for a
        start to ``restore``: every later verdict, score and tradable flag as if no stop."""
        return [(k, _CODEC.encode(self._series[k].state())) for k in keys if k in self._series]

    def restore(self, key: _SeriesKey, data: bytes) -> None:
        """Take back a series' ``states()``; raise ``ValueError`` (the series starts anew) if
        it is not one of this configuration's."""
        series = _Series(self._config)
        try:
            series.restore(msgspec.msgpack.decode(data))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a data-quality state of this configuration: {exc}") from None
        self._series[key] = series

    def last_seen(self, key: _SeriesKey) -> int | None:
        """Return the open time of the series' last candle judged (rejected ones included)."""
        series = self._series.get(key)
        return None if series is None else series.last_open_ms

    def is_tradable(self, venue: Venue, symbol: str, interval: Interval) -> bool:
        """Return whether the series' data is good enough to trade on (unknown series are)."""
        series = self._series.get((venue, symbol, interval))
        return series is None or series.tradable

    def counts(self) -> Mapping[str, int]:
        """Return how many candles were rejected or flagged, by reason, across all series."""
        return dict(self._counts)

    def series(self) -> tuple[SeriesQuality, ...]:
        """Return a snapshot of every series seen so far, in order of first appearance."""
        return tuple(
            SeriesQuality(
                venue=venue,
                symbol=symbol,
                interval=interval,
                score=state.score,
                tradable=state.tradable,
                accepted=state.verdicts[Verdict.ACCEPTED],
                flagged=state.verdicts[Verdict.FLAGGED],
                rejected=state.verdicts[Verdict.REJECTED],
                gaps=state.gaps,
            )
            for (venue, symbol, interval), state in self._series.items()
        )

    def health(self) -> ComponentHealth:
        """Return OK when every series is tradable, else DEGRADED naming the others."""
        if not self._config.enabled:
            return ComponentHealth(
                component=self._source, status=HealthStatus.OK, detail="checks disabled"
            )
        untradable = [s for s in self.series() if not s.tradable]
        if not untradable:
            detail = f"{len(self._series)} series tradable"
            return ComponentHealth(component=self._source, status=HealthStatus.OK, detail=detail)
        names = ", ".join(
            f"{s.symbol} {s.interval} on {s.venue} (score {s.score:.1f})" for s in untradable
        )
        return ComponentHealth(
            component=self._source, status=HealthStatus.DEGRADED, detail=f"not tradable: {names}"
        )

    def _series_for(self, key: _SeriesKey) -> _Series:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self._config)
        return series

    def _flags(self, series: _Series, candle: Candle) -> tuple[Reason, ...]:
        # A halted market's flat candles say nothing about volatility: keep them out of it.
        is_flat = _is_zero_volume_flat(candle)
        is_jump = series.jumps.observe(candle, learn=not is_flat)
        hits = ((Reason.PRICE_JUMP, is_jump), (Reason.ZERO_VOLUME_FLAT, is_flat))
        return tuple(reason for reason, is_hit in hits if is_hit)

    def _report(self, candle: Candle, verdict: Verdict, reason: Reason) -> None:
        """Count every occurrence; log each (candle, reason) once while it is remembered."""
        self._counts[reason.value] += 1
        key = (candle.venue, candle.symbol, candle.interval, candle.open_time_ms, reason.value)
        if key in self._logged:
            self._logged.move_to_end(key)
            return
        self._logged[key] = None
        if len(self._logged) > LOGGED_KEYS_LIMIT:
            self._logged.popitem(last=False)
        log.warning(
            "candle_rejected" if verdict is Verdict.REJECTED else "candle_flagged",
            venue=candle.venue.value,
            symbol=candle.symbol,
            interval=candle.interval.value,
            open_time_ms=candle.open_time_ms,
            reason=reason.value,
        )

    def _update_tradable(self, key: _SeriesKey, series: _Series, *, at_ms: int) -> Event | None:
        """Flip the series' tradable state when its score crossed a threshold; return the event."""
        score, threshold = series.score, self._config.min_score
        if series.tradable and score < threshold:
            series.tradable = False
        elif not series.tradable and score >= threshold + self._config.recover_margin:
            series.tradable = True
        else:
            return None
        return self._transition_event(key, series, at_ms=at_ms)

    def _transition_event(self, key: _SeriesKey, series: _Series, *, at_ms: int) -> Event:
        venue, symbol, interval = key
        score, threshold = series.score, self._config.min_score
        context: dict[str, str | int | float] = {
            "venue": venue.value,
            "symbol": symbol,
            "interval": interval.value,
            "score": score,
            "threshold": threshold,
            "recover_at": threshold + self._config.recover_margin,
        }
        name = f"{symbol} {interval} on {venue}"
        if series.tradable:
            log.info("symbol_tradable", **context)
            kind, severity = EventKind.SYMBOL_TRADABLE, Severity.INFO
            message = f"{name} tradable again: data quality {score:.1f}"
        else:
            log.warning("symbol_not_tradable", **context)
            kind, severity = EventKind.SYMBOL_NOT_TRADABLE, Severity.WARNING
            message = f"{name} not tradable: data quality {score:.1f} < {threshold:.1f}"
        return self._event_source.event(kind, severity, message, at_ms=at_ms, data=context)
