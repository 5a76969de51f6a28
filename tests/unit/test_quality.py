"""The candle data-quality gate: impossible candles, suspicious ones, scores and tradability."""

import math
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import structlog
from fakes.candles import candle
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.domain import Candle, EventKind, HealthStatus, Interval, Severity, Venue
from paper_trader.market.quality import (
    LOGGED_KEYS_LIMIT,
    QualityConfig,
    QualityMonitor,
    Reason,
    Verdict,
    check_candle,
)
from paper_trader.market.volatility import RollingRms

NOW = 10**13
BTC = (Venue.BINANCE, "BTCUSDT", Interval.M1)


def bar(index: int, *, open_: str, close: str, volume: str = "5") -> Candle:
    """Return a possible 1m BTCUSDT candle with a range just wider than open..close."""
    first, last = Decimal(open_), Decimal(close)
    return replace(
        candle(index),
        open=first,
        high=max(first, last) + Decimal("0.01"),
        low=min(first, last) - Decimal("0.01"),
        close=last,
        volume=Decimal(volume),
    )


def calm(count: int, *, start: int = 0) -> list[Candle]:
    """Return ``count`` candles whose close swings between 99.8 and 100.2 (about 0.4%)."""
    closes = ["99.8", "100.2"]
    return [
        bar(i, open_=closes[(i + 1) % 2], close=closes[i % 2]) for i in range(start, start + count)
    ]


def impossible(index: int) -> Candle:
    """Return a candle whose high is below its low."""
    return replace(candle(index), high=Decimal(90), low=Decimal(95))


def assess_all(monitor: QualityMonitor, candles: list[Candle]) -> list[Verdict]:
    """Assess candles in order; return the verdicts."""
    return [monitor.assess(c, now_ms=NOW).verdict for c in candles]


def logged(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    """Return the captured log entries named ``event``."""
    return [entry for entry in logs if entry["event"] == event]


# -- impossible candles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"high": Decimal("100.1")}, Reason.HIGH_BELOW_OPEN_CLOSE),
        ({"open": Decimal(102)}, Reason.HIGH_BELOW_OPEN_CLOSE),
        ({"low": Decimal("100.1")}, Reason.LOW_ABOVE_OPEN_CLOSE),
        ({"close": Decimal(99)}, Reason.LOW_ABOVE_OPEN_CLOSE),
        ({"high": Decimal(98), "low": Decimal(99)}, Reason.HIGH_BELOW_LOW),
        ({"low": Decimal(-1)}, Reason.NEGATIVE_VALUE),
        ({"volume": Decimal("-0.5")}, Reason.NEGATIVE_VALUE),
        ({"low": Decimal(0)}, Reason.ZERO_PRICE),
        ({"open_time_ms": 60_001}, Reason.MISALIGNED_OPEN_TIME),
        ({"interval": Interval.H1, "open_time_ms": 30 * 60_000}, Reason.MISALIGNED_OPEN_TIME),
    ],
)
def test_impossible_candle_is_rejected_with_its_reason(
    changes: dict[str, Any], reason: Reason
) -> None:
    """Broken OHLC relations, negative values, a zero price or an off-grid time are rejected."""
    assert check_candle(replace(candle(0), **changes), now_ms=NOW) == reason


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize("value", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity"])
def test_non_finite_value_is_rejected(field: str, value: str) -> None:
    """Decimal NaN, signalling NaN and infinities in any field are ``not_finite``."""
    changes: dict[str, Any] = {field: Decimal(value)}
    bad = replace(candle(0), **changes)

    assert check_candle(bad, now_ms=NOW) == Reason.NOT_FINITE


def test_candle_not_closed_by_the_exchange_clock_is_in_future() -> None:
    """A candle is possible once its close time is reached, and in the future a ms before."""
    closed_at = candle(5).close_time_ms

    assert check_candle(candle(5), now_ms=closed_at) is None
    assert check_candle(candle(5), now_ms=closed_at - 1) == Reason.IN_FUTURE


@pytest.mark.parametrize("interval", list(Interval))
def test_valid_candles_are_accepted(interval: Interval) -> None:
    """Ordinary candles on every interval pass the check and the monitor accepts them."""
    monitor = QualityMonitor(QualityConfig())
    candles = [candle(i, interval=interval, start_ms=interval.ms * 1000) for i in range(50)]

    assert all(check_candle(c, now_ms=NOW) is None for c in candles)
    assert set(assess_all(monitor, candles)) == {Verdict.ACCEPTED}


def test_flat_candle_with_volume_is_possible_and_accepted() -> None:
    """open == high == low == close with trades is unusual but real: accepted, not flagged."""
    flat = bar(0, open_="100", close="100")
    flat = replace(flat, high=flat.open, low=flat.open)

    assessment = QualityMonitor(QualityConfig()).assess(flat, now_ms=NOW)

    assert assessment.verdict is Verdict.ACCEPTED
    assert assessment.reasons == ()


def test_impossible_candle_is_rejected_even_when_checks_are_disabled() -> None:
    """With checks disabled garbage is still rejected and counted, but never gates trading."""
    monitor = QualityMonitor(QualityConfig(enabled=False, window=10, jump_history=2))

    verdicts = assess_all(monitor, [impossible(i) for i in range(20)])

    assert set(verdicts) == {Verdict.REJECTED}
    assert monitor.counts() == {"high_below_low": 20}
    assert monitor.is_tradable(*BTC)
    [series] = monitor.series()
    assert (series.score, series.tradable, series.rejected) == (100.0, True, 20)
    assert monitor.health().status is HealthStatus.OK


def test_disabled_checks_flag_nothing_and_ignore_gaps() -> None:
    """Disabled: jumps and halts are plain accepted candles; a gap changes no score."""
    monitor = QualityMonitor(QualityConfig(enabled=False))
    halted = replace(bar(40, open_="500", close="500", volume="0"), high=Decimal(500))
    halted = replace(halted, low=Decimal(500))

    verdicts = assess_all(monitor, [*calm(40), halted])

    assert set(verdicts) == {Verdict.ACCEPTED}
    assert monitor.note_gap(*BTC, 1000, at_ms=NOW) is None
    assert monitor.series()[0].score == 100.0


# -- suspicious candles -----------------------------------------------------------------------


def test_price_jump_is_flagged_after_enough_calm_history() -> None:
    """A 6% move after 40 candles swinging 0.4% is flagged, and still usable."""
    monitor = QualityMonitor(QualityConfig())
    assess_all(monitor, calm(40))

    assessment = monitor.assess(bar(40, open_="100.2", close="106"), now_ms=NOW)

    assert assessment.verdict is Verdict.FLAGGED
    assert assessment.reasons == (Reason.PRICE_JUMP,)
    assert assessment.is_usable


def test_price_jump_is_not_flagged_without_enough_history() -> None:
    """Before jump_history returns are known, no move counts as a jump."""
    monitor = QualityMonitor(QualityConfig(jump_history=30))
    assess_all(monitor, calm(10))

    assessment = monitor.assess(bar(10, open_="100.2", close="106"), now_ms=NOW)

    assert assessment.verdict is Verdict.ACCEPTED


def test_wide_high_low_range_is_flagged_as_a_jump() -> None:
    """A wick far outside recent volatility is a jump even when the close barely moved."""
    monitor = QualityMonitor(QualityConfig())
    assess_all(monitor, calm(40))
    wick = replace(bar(40, open_="100.2", close="99.8"), high=Decimal(112))

    assert monitor.assess(wick, now_ms=NOW).reasons == (Reason.PRICE_JUMP,)


def test_move_across_a_gap_is_judged_against_volatility_scaled_to_the_gap() -> None:
    """A 6% move over 100 missing minutes is within 10 sigma * sqrt(100): not a jump."""
    monitor = QualityMonitor(QualityConfig())
    assess_all(monitor, calm(40))

    assessment = monitor.assess(bar(140, open_="106", close="106"), now_ms=NOW)

    assert assessment.verdict is Verdict.ACCEPTED


def test_zero_volume_flat_candle_is_flagged() -> None:
    """open == high == low == close with no volume (an exchange halt) is flagged."""
    monitor = QualityMonitor(QualityConfig())
    halted = replace(candle(0), high=Decimal(100), low=Decimal(100), close=Decimal(100))

    assessment = monitor.assess(replace(halted, volume=Decimal(0)), now_ms=NOW)

    assert assessment.verdict is Verdict.FLAGGED
    assert assessment.reasons == (Reason.ZERO_VOLUME_FLAT,)
    assert monitor.counts() == {"zero_volume_flat": 1}


def test_halt_candles_do_not_shrink_the_volatility_used_for_jumps() -> None:
    """After a long flat halt, resuming with an ordinary move is not a jump."""
    monitor = QualityMonitor(QualityConfig())
    assess_all(monitor, calm(40))
    halt = [
        replace(bar(i, open_="99.8", close="99.8", volume="0"), high=Decimal("99.8"))
        for i in range(40, 200)
    ]
    halt = [replace(c, low=Decimal("99.8")) for c in halt]

    assert set(assess_all(monitor, halt)) == {Verdict.FLAGGED}
    assert monitor.assess(bar(200, open_="99.8", close="100.2"), now_ms=NOW).reasons == ()


def test_rejected_candle_is_not_used_as_the_previous_close() -> None:
    """An impossible candle at 1000 teaches nothing: the next calm candle is not a jump."""
    monitor = QualityMonitor(QualityConfig())
    assess_all(monitor, calm(40))
    garbage = replace(bar(40, open_="100", close="1000"), high=Decimal(101))

    assert monitor.assess(garbage, now_ms=NOW).verdict is Verdict.REJECTED
    assert monitor.assess(calm(1, start=41)[0], now_ms=NOW).verdict is Verdict.ACCEPTED


# -- score and tradability --------------------------------------------------------------------


def test_score_weighs_flagged_half_and_rejected_fully_over_the_window() -> None:
    """8 accepted, 1 flagged, 1 rejected in a window of 10 scores 85; an empty window 100."""
    monitor = QualityMonitor(
        QualityConfig(window=10, jump_history=2, min_score=0, recover_margin=0)
    )
    assert monitor.series() == ()
    flat = replace(candle(8), high=Decimal(100), low=Decimal(100), close=Decimal(100))
    flat = replace(flat, open=Decimal(100), volume=Decimal(0))

    assess_all(monitor, [candle(i) for i in range(8)])
    assess_all(monitor, [flat, impossible(9)])

    [series] = monitor.series()
    assert series.score == pytest.approx(85.0)
    assert (series.accepted, series.flagged, series.rejected) == (8, 1, 1)


def test_score_forgets_candles_that_left_the_window() -> None:
    """After 10 rejections, 10 good candles in a window of 10 bring the score back to 100."""
    monitor = QualityMonitor(
        QualityConfig(window=10, jump_history=2, min_score=0, recover_margin=0)
    )

    assess_all(monitor, [impossible(i) for i in range(10)])
    assert monitor.series()[0].score == 0.0
    assess_all(monitor, [candle(i) for i in range(10, 1010)])

    assert monitor.series()[0].score == 100.0


def test_missing_candles_weigh_as_rejections_bounded_by_the_window() -> None:
    """3 missing then 7 accepted score 70; 1000 missing fill the window of 10 and score 0."""
    monitor = QualityMonitor(
        QualityConfig(window=10, jump_history=2, min_score=0, recover_margin=0)
    )

    assert monitor.note_gap(*BTC, 3, at_ms=NOW) is None
    assert monitor.series()[0].score == 0.0
    assess_all(monitor, [candle(i) for i in range(3, 10)])
    assert monitor.series()[0].score == pytest.approx(70.0)
    monitor.note_gap(*BTC, 1000, at_ms=NOW)
    assess_all(monitor, [candle(1010)])

    [series] = monitor.series()
    assert series.score == pytest.approx(10.0)
    assert series.gaps == 1003


def test_negative_gap_is_refused() -> None:
    """note_gap with a negative count raises ValueError."""
    with pytest.raises(ValueError, match="non-negative"):
        QualityMonitor(QualityConfig()).note_gap(*BTC, -1, at_ms=NOW)


def test_series_is_marked_not_tradable_when_score_drops_below_minimum() -> None:
    """Score 80 at min_score 80 stays tradable; at 70 a WARNING event at the candle's close."""
    monitor = QualityMonitor(QualityConfig(window=10, jump_history=2, min_score=80))
    assess_all(monitor, [candle(i) for i in range(9)])

    at_80 = [monitor.assess(impossible(i), now_ms=NOW) for i in (9, 10)]
    crossing = monitor.assess(impossible(11), now_ms=NOW)

    assert [a.transition for a in at_80] == [None, None]
    assert at_80[-1].tradable
    assert not crossing.tradable
    assert not monitor.is_tradable(*BTC)
    event = crossing.transition
    assert event is not None
    assert event.kind is EventKind.SYMBOL_NOT_TRADABLE
    assert event.severity is Severity.WARNING
    assert event.at_ms == impossible(11).close_time_ms
    assert event.source == "data_quality"
    assert dict(event.data) == {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "score": pytest.approx(70.0),
        "threshold": 80.0,
        "recover_at": 85.0,
    }


def test_series_recovers_only_past_the_hysteresis_margin() -> None:
    """Not tradable at 70; still not at 80 (< 80 + 10); tradable again at 90 with an INFO event."""
    config = QualityConfig(window=10, jump_history=2, min_score=80, recover_margin=10)
    monitor = QualityMonitor(config)
    assess_all(monitor, [candle(i) for i in range(7)])
    assess_all(monitor, [impossible(i) for i in range(7, 10)])
    assert not monitor.is_tradable(*BTC)

    steps = [monitor.assess(candle(i), now_ms=NOW) for i in range(10, 19)]

    assert [round(a.score) for a in steps[-3:]] == [70, 80, 90]
    assert [a.tradable for a in steps[-3:]] == [False, False, True]
    assert [a.transition for a in steps[:-1]] == [None] * 8
    event = steps[-1].transition
    assert event is not None
    assert event.kind is EventKind.SYMBOL_TRADABLE
    assert event.severity is Severity.INFO
    assert event.at_ms == candle(18).close_time_ms
    assert monitor.is_tradable(*BTC)


def test_gap_can_make_a_series_not_tradable_at_the_given_time() -> None:
    """A gap that pulls the score under the minimum returns the event stamped with at_ms."""
    monitor = QualityMonitor(QualityConfig(window=10, jump_history=2), source="feed_quality")
    assess_all(monitor, [candle(i) for i in range(10)])

    event = monitor.note_gap(*BTC, 5, at_ms=1_234_000)

    assert event is not None
    assert event.kind is EventKind.SYMBOL_NOT_TRADABLE
    assert event.at_ms == 1_234_000
    assert event.source == "feed_quality"
    assert not monitor.is_tradable(*BTC)


def test_series_are_scored_independently() -> None:
    """Rejections on ETHUSDT leave BTCUSDT and BTCUSDT on another interval tradable."""
    monitor = QualityMonitor(QualityConfig(window=10, jump_history=2))
    eth = [replace(impossible(i), symbol="ETHUSDT") for i in range(10)]

    assess_all(monitor, [*eth, candle(0), candle(0, interval=Interval.M5)])

    assert not monitor.is_tradable(Venue.BINANCE, "ETHUSDT", Interval.M1)
    assert monitor.is_tradable(*BTC)
    assert monitor.is_tradable(Venue.BINANCE, "BTCUSDT", Interval.M5)
    assert monitor.is_tradable(Venue.KRAKEN, "never-seen", Interval.H1)
    assert [s.symbol for s in monitor.series()] == ["ETHUSDT", "BTCUSDT", "BTCUSDT"]


def test_health_is_degraded_naming_untradable_series_and_their_scores() -> None:
    """health() is OK while all series are tradable, DEGRADED listing the ones that are not."""
    monitor = QualityMonitor(QualityConfig(window=10, jump_history=2))
    assess_all(monitor, [candle(i) for i in range(10)])
    assert monitor.health().status is HealthStatus.OK

    assess_all(monitor, [impossible(i) for i in range(10, 13)])
    health = monitor.health()

    assert health.component == "data_quality"
    assert health.status is HealthStatus.DEGRADED
    assert health.detail == "not tradable: BTCUSDT 1m on binance (score 70.0)"


# -- logging and counting ---------------------------------------------------------------------


def test_rejection_is_logged_once_per_key_but_counted_every_time() -> None:
    """The same bad candle delivered three times logs one warning and counts three."""
    monitor = QualityMonitor(QualityConfig(window=100, jump_history=2))

    with structlog.testing.capture_logs() as logs:
        assess_all(monitor, [impossible(0)] * 3 + [impossible(1)])

    entries = logged(logs, "candle_rejected")
    assert [e["open_time_ms"] for e in entries] == [0, 60_000]
    assert entries[0]["log_level"] == "warning"
    assert entries[0]["reason"] == "high_below_low"
    assert entries[0]["symbol"] == "BTCUSDT"
    assert monitor.counts() == {"high_below_low": 4}
    assert monitor.series()[0].rejected == 4


def test_flag_is_logged_once_per_key_as_candle_flagged() -> None:
    """A re-delivered halt candle logs one candle_flagged warning; counts follow each delivery."""
    monitor = QualityMonitor(QualityConfig())
    halted = replace(candle(0), high=Decimal(100), low=Decimal(100), close=Decimal(100))
    halted = replace(halted, volume=Decimal(0))

    with structlog.testing.capture_logs() as logs:
        assess_all(monitor, [halted, halted])

    [entry] = logged(logs, "candle_flagged")
    assert entry["reason"] == "zero_volume_flat"
    assert monitor.counts() == {"zero_volume_flat": 2}


def test_transitions_are_logged() -> None:
    """Losing and regaining tradability log symbol_not_tradable and symbol_tradable."""
    monitor = QualityMonitor(QualityConfig(window=10, jump_history=2))

    with structlog.testing.capture_logs() as logs:
        assess_all(monitor, [impossible(i) for i in range(3)])
        assess_all(monitor, [candle(i) for i in range(3, 13)])

    assert [e["log_level"] for e in logged(logs, "symbol_not_tradable")] == ["warning"]
    assert [e["score"] for e in logged(logs, "symbol_tradable")] == [pytest.approx(90.0)]


def test_logged_keys_are_bounded_and_the_oldest_is_forgotten() -> None:
    """Past LOGGED_KEYS_LIMIT keys the oldest is forgotten (logged again); recent ones are not."""
    monitor = QualityMonitor(QualityConfig(window=10, jump_history=2))
    with structlog.testing.capture_logs() as first_pass:
        assess_all(monitor, [impossible(i) for i in range(LOGGED_KEYS_LIMIT + 1)])
    assert len(logged(first_pass, "candle_rejected")) == LOGGED_KEYS_LIMIT + 1

    with structlog.testing.capture_logs() as logs:
        assess_all(monitor, [impossible(LOGGED_KEYS_LIMIT), impossible(0)])

    assert [e["open_time_ms"] for e in logged(logs, "candle_rejected")] == [0]
    assert monitor.counts() == {"high_below_low": LOGGED_KEYS_LIMIT + 3}


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_score": 101}, "min_score must be within 0..100"),
        ({"min_score": math.nan}, "min_score must be within 0..100"),
        ({"window": 0}, "window must be at least 1"),
        ({"jump_multiple": 0}, "jump_multiple must be a positive number"),
        ({"jump_multiple": math.inf}, "jump_multiple must be a positive number"),
        ({"window": 10}, "jump_history must be within 2..window (10), got 30"),
        ({"jump_history": 1}, "jump_history must be within 2..window"),
        ({"recover_margin": -1}, "recover_margin must be within 0..20"),
        ({"min_score": 99, "recover_margin": 5}, "must not exceed 100"),
    ],
)
def test_invalid_config_is_refused_with_a_clear_message(
    changes: dict[str, Any], message: str
) -> None:
    """Out-of-range settings raise ValueError naming the setting."""
    with pytest.raises(ValueError, match="invalid data-quality settings") as caught:
        QualityConfig(**changes)
    assert message in str(caught.value)


# -- properties -------------------------------------------------------------------------------

SPECIAL = st.sampled_from([Decimal(v) for v in ("NaN", "sNaN", "Infinity", "-Infinity", "0", "-1")])
PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**6), places=4)
ANY_DECIMAL = st.one_of(PRICES, SPECIAL, st.decimals(allow_nan=True, allow_infinity=True))


@st.composite
def candles(draw: DrawFn) -> Candle:
    """Draw a candle that is often possible and often impossible in one or more ways."""
    values = draw(st.lists(st.one_of(PRICES, ANY_DECIMAL), min_size=5, max_size=5))
    if draw(st.booleans()) and all(v.is_finite() for v in values[:4]):
        low, first, last, high = sorted(values[:4])
        values[:4] = [first, high, low, last]
    interval = draw(st.sampled_from(list(Interval)))
    slot = draw(st.integers(min_value=0, max_value=10**5))
    offset = draw(st.one_of(st.just(0), st.integers(min_value=1, max_value=interval.ms - 1)))
    return Candle(
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        interval=interval,
        open_time_ms=slot * interval.ms + offset,
        open=values[0],
        high=values[1],
        low=values[2],
        close=values[3],
        volume=values[4],
    )


def is_possible(c: Candle, now_ms: int) -> bool:
    """State the rules independently of the implementation."""
    values = (c.open, c.high, c.low, c.close, c.volume)
    if not all(v.is_finite() for v in values):
        return False
    return (
        min(c.open, c.high, c.low, c.close) > 0
        and c.volume >= 0
        and c.high >= max(c.open, c.close, c.low)
        and c.low <= min(c.open, c.close)
        and c.open_time_ms % c.interval.ms == 0
        and c.open_time_ms + c.interval.ms <= now_ms
    )


@given(candles(), st.integers(min_value=0, max_value=10**5 * Interval.D1.ms))
def test_check_candle_accepts_exactly_the_possible_candles(c: Candle, now_ms: int) -> None:
    """check_candle returns None iff values are finite, non-negative, ordered, aligned, closed."""
    reason = check_candle(c, now_ms=now_ms)

    assert (reason is None) == is_possible(c, now_ms)


OPS = st.lists(
    st.one_of(st.sampled_from(["ok", "flat", "bad"]), st.integers(min_value=0, max_value=30)),
    max_size=80,
)


def steady(index: int, *, volume: str = "1", spread: str = "0.001") -> Candle:
    """Return a candle at 100 with a tiny range (none with ``spread="0"``)."""
    half = Decimal(spread)
    return Candle(
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        interval=Interval.M1,
        open_time_ms=index * Interval.M1.ms,
        open=Decimal(100),
        high=Decimal(100) + half,
        low=Decimal(100) - half,
        close=Decimal(100),
        volume=Decimal(volume),
    )


@given(OPS, st.integers(min_value=2, max_value=25))
def test_score_stays_within_bounds_and_matches_a_naive_recount(ops: list[Any], window: int) -> None:
    """After any mix of candles and gaps, score is in 0..100 and equals the window's recount."""
    monitor = QualityMonitor(QualityConfig(window=window, jump_history=2))
    kinds: dict[str, tuple[Callable[[int], Candle], float]] = {
        "ok": (steady, 0.0),
        "flat": (lambda i: steady(i, volume="0", spread="0"), 0.5),
        "bad": (impossible, 1.0),
    }
    penalties: list[float] = []
    for index, op in enumerate(ops):
        if isinstance(op, int):
            monitor.note_gap(*BTC, op, at_ms=NOW)
            penalties += [1.0] * op
        else:
            make, penalty = kinds[op]
            monitor.assess(make(index), now_ms=NOW)
            penalties.append(penalty)
        recent = penalties[-window:]
        expected = 100.0 * (1 - sum(recent) / len(recent)) if recent else 100.0
        score = monitor.series()[0].score
        assert 0.0 <= score <= 100.0
        assert score == pytest.approx(expected)


@given(st.lists(st.floats(min_value=-1, max_value=1), max_size=300), st.integers(1, 40))
@example(values=[1.0, 8.142660017808383e-06, 0.0, 0.0], size=3)  # a spike leaves, calm stays
def test_rolling_rms_equals_the_rms_of_the_last_values(values: list[float], size: int) -> None:
    """The incremental root mean square matches a recount over the window."""
    rolling = RollingRms(size)
    for value in values:
        rolling.push(value)

    recent = values[-size:]
    expected = math.sqrt(math.fsum(v * v for v in recent) / len(recent)) if recent else 0.0
    assert len(rolling) == len(recent)
    assert rolling.rms() == pytest.approx(expected, abs=1e-12)
