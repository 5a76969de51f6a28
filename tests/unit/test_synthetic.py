"""Tests for the seeded synthetic market: determinism, candle consistency and regimes."""

import dataclasses
import itertools
import math
from decimal import Decimal
from pathlib import Path
from statistics import mean

import pytest

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.simulator.synthetic import (
    DEFAULT_REGIMES,
    MarketParams,
    Regime,
    SyntheticBar,
    generate_bars,
    generate_candles,
    write_csv,
)

START_MS = 1_672_531_200_000


def _only(regime: Regime) -> MarketParams:
    """Return market parameters that stay in ``regime`` for ever."""
    stay = dataclasses.replace(dict(DEFAULT_REGIMES)[regime], exits=())
    return MarketParams(regimes=((regime, stay),), start_regime=regime)


def _mean_range(candles: list[Candle]) -> float:
    return mean(float((c.high - c.low) / c.open) for c in candles)


def _log_returns(candles: list[Candle]) -> list[float]:
    return [math.log(c.close / c.open) for c in candles]


def test_the_same_seed_gives_the_same_candles_and_another_seed_does_not() -> None:
    """Generation is a pure function of the seed and parameters."""
    first = list(generate_candles(count=500, seed=11))
    again = list(generate_candles(count=500, seed=11))
    other = list(generate_candles(count=500, seed=12))
    assert first == again
    assert first != other


def test_candles_are_consistent_aligned_and_continuous() -> None:
    """High/low bound open and close, times step by the interval, each open is the last close."""
    candles = list(
        generate_candles(count=3000, seed=5, interval=Interval.M5, start_ms=START_MS + 123)
    )
    assert candles[0].open_time_ms == START_MS
    for previous, current in itertools.pairwise(candles):
        assert current.open_time_ms == previous.open_time_ms + Interval.M5.ms
        assert current.open == previous.close
    for c in candles:
        assert c.open_time_ms % Interval.M5.ms == 0
        assert c.high >= max(c.open, c.close) >= min(c.open, c.close) >= c.low > 0
        assert c.volume > 0
        assert (c.venue, c.symbol, c.interval) == (Venue.BINANCE, "BTCUSDT", Interval.M5)


def test_the_regime_chain_visits_every_regime_and_stays_a_while() -> None:
    """A long run switches regimes, but far less often than every candle."""
    bars = list(generate_bars(count=20_000, seed=3))
    regimes = [bar.regime for bar in bars]
    switches = sum(a != b for a, b in itertools.pairwise(regimes))
    assert set(regimes) == set(Regime)
    assert 10 < switches < 1000


def test_generate_candles_yields_the_candles_of_generate_bars() -> None:
    """The candle API is the bar API without the regimes."""
    bars = list(generate_bars(count=300, seed=9, symbol="ETHUSDT"))
    assert all(isinstance(bar, SyntheticBar) for bar in bars)
    assert [bar.candle for bar in bars] == list(
        generate_candles(count=300, seed=9, symbol="ETHUSDT")
    )


def test_turbulent_regime_is_far_more_volatile_and_busier_than_calm_range() -> None:
    """The regime multiplies volatility (range and returns) and volume."""
    calm = list(generate_candles(count=3000, seed=1, params=_only(Regime.CALM_RANGE)))
    wild = list(generate_candles(count=3000, seed=1, params=_only(Regime.TURBULENT)))
    calm_sd = math.sqrt(mean(r * r for r in _log_returns(calm)))
    wild_sd = math.sqrt(mean(r * r for r in _log_returns(wild)))
    assert wild_sd > 2.5 * calm_sd
    assert _mean_range(wild) > 2.5 * _mean_range(calm)
    assert mean(float(c.volume) for c in wild) > 2 * mean(float(c.volume) for c in calm)


def test_trending_regimes_drift_in_their_direction() -> None:
    """Trending up ends higher and trending down ends lower than they started, on average."""
    ups = [
        math.log(c[-1].close / c[0].open)
        for seed in range(5)
        if (c := list(generate_candles(count=1000, seed=seed, params=_only(Regime.TRENDING_UP))))
    ]
    downs = [
        math.log(c[-1].close / c[0].open)
        for seed in range(5)
        if (c := list(generate_candles(count=1000, seed=seed, params=_only(Regime.TRENDING_DOWN))))
    ]
    assert mean(ups) > 0.05
    assert mean(downs) < -0.05


def test_calm_range_reverts_toward_where_it_started() -> None:
    """A calm range stays within a few percent of its anchor over a long run."""
    candles = list(generate_candles(count=5000, seed=4, params=_only(Regime.CALM_RANGE)))
    start = candles[0].open
    assert max(abs(c.close / start - 1) for c in candles) < Decimal("0.05")


def test_volatility_clusters_within_the_default_market() -> None:
    """Big moves follow big moves: absolute returns are positively autocorrelated."""
    returns = [abs(r) for r in _log_returns(list(generate_candles(count=20_000, seed=8)))]
    m = mean(returns)
    centred = [r - m for r in returns]
    lag1 = sum(a * b for a, b in itertools.pairwise(centred))
    assert lag1 / sum(c * c for c in centred) > 0.1


def test_an_unknown_start_regime_is_refused() -> None:
    """The start regime must be one of the configured regimes."""
    params = MarketParams(regimes=DEFAULT_REGIMES[:1], start_regime=Regime.TURBULENT)
    with pytest.raises(ValueError, match="start_regime"):
        next(generate_candles(count=1, seed=1, params=params))


def test_written_csv_reads_back_as_the_same_candles(tmp_path: Path) -> None:
    """`write_csv` output passes `CandleCsv` validation with the exact values."""
    candles = list(generate_candles(count=250, seed=2))
    out = tmp_path / "candles.csv"
    assert write_csv(iter(candles), out) == 250
    csv = CandleCsv(out, venue=Venue.BINANCE, symbol="BTCUSDT", interval=Interval.M1)
    assert csv.validate() == 250
    assert [c for chunk in csv.chunks(100) for c in chunk] == candles
