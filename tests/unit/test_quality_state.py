"""The data-quality gate across a stop: a series' state as ``states()`` gives it and
``restore()`` takes it back, so every later verdict, score and tradable flag is the one of a
gate that never stopped (the ledger reads the flags)."""

import random
from dataclasses import replace
from decimal import Decimal

import pytest
from fakes.candles import candle

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.market.quality import QualityConfig, QualityMonitor

NOW = 10**13
BTC = (Venue.BINANCE, "BTCUSDT", Interval.M1)
CONFIG = QualityConfig(window=40, jump_history=10)


def market(seed: int, count: int) -> list[Candle]:
    """A random walk with a halt (zero-volume flat candles), jumps and impossible candles."""
    chance = random.Random(seed)
    price, out = Decimal(100), []
    for index in range(count):
        if 60 <= index < 90:  # a halt: flagged, the score falls, then recovers
            out.append(
                replace(candle(index), open=price, high=price, low=price, close=price,
                        volume=Decimal(0))
            )  # fmt: skip
            continue
        step = Decimal(str(round(chance.gauss(0, 0.002) * (30 if index % 53 == 0 else 1), 6)))
        close = (price * (1 + step)).quantize(Decimal("0.0001"))
        high, low = max(price, close) * Decimal("1.0005"), min(price, close) * Decimal("0.9995")
        bar = replace(candle(index), open=price, high=high, low=low, close=close)
        out.append(replace(bar, high=low - 1) if index % 71 == 5 else bar)  # some impossible
        price = close
    return out


def judge(monitor: QualityMonitor, candles: list[Candle]) -> list[tuple[object, ...]]:
    """Assess each candle, counting a gap first where one is missing; return the verdicts."""
    out = []
    for c in candles:
        seen = monitor.last_seen(BTC)
        if seen is not None and (missing := (c.open_time_ms - seen) // 60_000 - 1) > 0:
            monitor.note_gap(*BTC, missing, at_ms=c.close_time_ms)
        a = monitor.assess(c, now_ms=NOW)
        out.append((a.verdict, a.reasons, a.score, a.tradable, a.transition is not None))
    return out


@pytest.mark.parametrize("stop_at", [3, 75, 150])
def test_a_restored_series_judges_on_exactly_like_one_never_stopped(stop_at: int) -> None:
    """Stopped before the jump test has its history, inside a halt and after it: the same
    verdicts, scores, tradable flags and transitions, and the same counters."""
    candles = [c for c in market(stop_at, 220) if c.open_time_ms // 60_000 % 37 != 9]  # gaps
    never = QualityMonitor(CONFIG)
    expected = judge(never, candles)

    before = QualityMonitor(CONFIG)
    judged = judge(before, candles[:stop_at])
    [(key, data)] = before.states([BTC])
    after = QualityMonitor(CONFIG)
    after.restore(key, data)
    judged += judge(after, candles[stop_at:])

    assert judged == expected
    assert after.series() == never.series()
    assert {t for *_, t in expected} == {True, False}  # the series did change state
    assert after.last_seen(BTC) == candles[-1].open_time_ms


def test_a_state_of_another_window_or_garbage_is_refused_and_the_series_starts_anew() -> None:
    """A window of another size or bytes that are no state raise ValueError, changing nothing."""
    monitor = QualityMonitor(CONFIG)
    judge(monitor, market(1, 100))
    [(_, data)] = monitor.states([BTC])
    other = QualityMonitor(replace(CONFIG, window=20))
    for bad in (data, b"\xc1", b"\x93\x01\x02\x03"):
        with pytest.raises(ValueError, match="data-quality state"):
            other.restore(BTC, bad)
    assert other.series() == ()
    assert monitor.states([(Venue.KRAKEN, "XBT/USD", Interval.M1)]) == []  # never seen
