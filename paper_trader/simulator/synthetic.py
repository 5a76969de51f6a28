"""A seeded synthetic market: regimes, volatility clustering, wicks and volume.

A seeded Markov chain moves the market between regimes (calm range, trending up, trending
down, turbulent), each with its own drift, volatility and volume level. Within a regime, log
returns follow a GARCH(1,1)-like variance process, so calm and turbulent stretches alternate as
in real markets and a regime change fades in over a few candles. Each candle is built from a
short intra-candle path (its high and low are that path's extremes, sometimes stretched by a
wick) and its volume grows with the size of the move and follows a daily cycle. The same seed
always gives the same candles. Run ``python -m paper_trader.simulator.synthetic --help``.
"""

import argparse
import enum
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from paper_trader.domain import Candle, Interval, Venue

_STEPS_PER_CANDLE = 8
_DAY_MS = 86_400_000


class Regime(enum.StrEnum):
    """A state of the synthetic market's Markov chain."""

    CALM_RANGE = "calm_range"
    TRENDING_UP = "trending_up"
    TRENDING_DOWN = "trending_down"
    TURBULENT = "turbulent"


@dataclass(frozen=True, slots=True, kw_only=True)
class RegimeParams:
    """How the market behaves in one regime and where it goes next.

    ``drift`` is the per-candle log drift in units of the base volatility; ``reversion`` pulls
    the price back toward where the regime started (a range); ``exits`` weights the regimes that
    may follow when this one ends, which happens on average after ``mean_candles`` candles.
    """

    drift: float = 0.0
    volatility: float = 1.0
    volume: float = 1.0
    reversion: float = 0.0
    mean_candles: float = 240.0
    exits: tuple[tuple[Regime, float], ...] = ()


DEFAULT_REGIMES: tuple[tuple[Regime, RegimeParams], ...] = (
    (
        Regime.CALM_RANGE,
        RegimeParams(
            volatility=0.6,
            volume=0.7,
            reversion=0.02,
            mean_candles=360.0,
            exits=((Regime.TRENDING_UP, 0.4), (Regime.TRENDING_DOWN, 0.4), (Regime.TURBULENT, 0.2)),
        ),
    ),
    (
        Regime.TRENDING_UP,
        RegimeParams(
            drift=0.12,
            volatility=1.0,
            volume=1.2,
            mean_candles=180.0,
            exits=(
                (Regime.CALM_RANGE, 0.6),
                (Regime.TURBULENT, 0.25),
                (Regime.TRENDING_DOWN, 0.15),
            ),
        ),
    ),
    (
        Regime.TRENDING_DOWN,
        RegimeParams(
            drift=-0.14,
            volatility=1.3,
            volume=1.4,
            mean_candles=150.0,
            exits=((Regime.CALM_RANGE, 0.5), (Regime.TURBULENT, 0.35), (Regime.TRENDING_UP, 0.15)),
        ),
    ),
    (
        Regime.TURBULENT,
        RegimeParams(
            volatility=2.6,
            volume=2.5,
            mean_candles=60.0,
            exits=(
                (Regime.CALM_RANGE, 0.6),
                (Regime.TRENDING_DOWN, 0.25),
                (Regime.TRENDING_UP, 0.15),
            ),
        ),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketParams:
    """Shape of the synthetic market (per candle, in log-return units)."""

    start_price: float = 30_000.0
    base_volatility: float = 0.0012
    persistence: float = 0.94  # GARCH beta: how long turbulence lasts
    reaction: float = 0.05  # GARCH alpha: how strongly a shock raises volatility
    base_volume: float = 40.0
    price_decimals: int = 2
    volume_decimals: int = 5
    regimes: tuple[tuple[Regime, RegimeParams], ...] = DEFAULT_REGIMES
    start_regime: Regime = Regime.CALM_RANGE
    wick_probability: float = 0.15  # chance per side of a wick beyond the intra-candle path
    daily_volume_swing: float = 0.3  # volume is this much higher at the busiest hour


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticBar:
    """A generated candle and the regime the market was in while it formed."""

    candle: Candle
    regime: Regime


class _Walk:
    """The state of the random walk between two candles."""

    def __init__(self, params: MarketParams, seed: int) -> None:
        self.p = params
        self.rng = random.Random(seed)  # noqa: S311 -- reproducible simulation, not cryptography
        self.regimes = dict(params.regimes)
        if params.start_regime not in self.regimes:
            raise ValueError(f"start_regime {params.start_regime} has no RegimeParams")
        self.regime = params.start_regime
        self.anchor = math.log(params.start_price)
        self.price = params.start_price
        self.variance = (params.base_volatility * self.regimes[self.regime].volatility) ** 2
        self.price_q = Decimal(1).scaleb(-params.price_decimals)
        self.volume_q = Decimal(1).scaleb(-params.volume_decimals)

    def switch_regime(self) -> None:
        """Leave the current regime with probability 1/mean_candles, by its exit weights."""
        current = self.regimes[self.regime]
        if not current.exits or self.rng.random() >= 1.0 / max(current.mean_candles, 1.0):
            return
        targets = [r for r, _ in current.exits if r in self.regimes]
        weights = [w for r, w in current.exits if r in self.regimes]
        if targets:
            self.regime = self.rng.choices(targets, weights=weights)[0]
            self.anchor = math.log(self.price)

    def path(self) -> list[float]:
        """Walk one candle's intra-candle path from the current price."""
        regime = self.regimes[self.regime]
        drift = regime.drift * self.p.base_volatility
        drift -= regime.reversion * (math.log(self.price) - self.anchor)
        step_drift = drift / _STEPS_PER_CANDLE
        step_sd = math.sqrt(self.variance / _STEPS_PER_CANDLE)
        path = [self.price]
        for _ in range(_STEPS_PER_CANDLE):
            path.append(path[-1] * math.exp(step_drift + self.rng.gauss(0.0, step_sd)))
        shock = math.log(path[-1] / path[0]) - drift
        long_run = (self.p.base_volatility * regime.volatility) ** 2
        omega = long_run * (1 - self.p.persistence - self.p.reaction)
        self.variance = omega + self.p.reaction * shock**2 + self.p.persistence * self.variance
        return path

    def wick(self, step_sd: float) -> float:
        """Return a log-distance for a wick beyond the path (0 most of the time)."""
        if self.rng.random() >= self.p.wick_probability:
            return 0.0
        return step_sd * self.rng.expovariate(1.0 / 1.5)

    def volume(self, path: list[float], open_time: int) -> float:
        """Return the candle's volume: regime level, move size, daily cycle and noise."""
        regime = self.regimes[self.regime]
        move = abs(math.log(path[-1] / path[0])) / self.p.base_volatility
        phase = 2 * math.pi * (open_time % _DAY_MS) / _DAY_MS
        daily = 1 + self.p.daily_volume_swing * math.sin(phase - math.pi / 2)
        noise = math.exp(self.rng.gauss(0.0, 0.4))
        return self.p.base_volume * regime.volume * daily * noise * (1 + move)

    def bar(self, *, venue: Venue, symbol: str, interval: Interval, open_time: int) -> SyntheticBar:
        """Advance the walk by one candle and return it."""
        self.switch_regime()
        step_sd = math.sqrt(self.variance / _STEPS_PER_CANDLE)
        path = self.path()
        high = max(path) * math.exp(self.wick(step_sd))
        low = min(path) * math.exp(-self.wick(step_sd))
        candle = Candle(
            venue=venue,
            symbol=symbol,
            interval=interval,
            open_time_ms=open_time,
            open=Decimal(path[0]).quantize(self.price_q),
            high=Decimal(high).quantize(self.price_q),
            low=Decimal(low).quantize(self.price_q),
            close=Decimal(path[-1]).quantize(self.price_q),
            volume=Decimal(self.volume(path, open_time)).quantize(self.volume_q),
        )
        self.price = float(candle.close)
        return SyntheticBar(candle=candle, regime=self.regime)


def generate_bars(
    *,
    count: int,
    seed: int,
    symbol: str = "BTCUSDT",
    interval: Interval = Interval.M1,
    start_ms: int = 1_672_531_200_000,  # 2023-01-01T00:00Z
    venue: Venue = Venue.BINANCE,
    params: MarketParams | None = None,
) -> Iterator[SyntheticBar]:
    """Yield ``count`` consecutive candles with their regimes, from ``start_ms`` (aligned down)."""
    walk = _Walk(params or MarketParams(), seed)
    open_time = start_ms - start_ms % interval.ms
    for _ in range(count):
        yield walk.bar(venue=venue, symbol=symbol, interval=interval, open_time=open_time)
        open_time += interval.ms


def generate_candles(
    *,
    count: int,
    seed: int,
    symbol: str = "BTCUSDT",
    interval: Interval = Interval.M1,
    start_ms: int = 1_672_531_200_000,  # 2023-01-01T00:00Z
    venue: Venue = Venue.BINANCE,
    params: MarketParams | None = None,
) -> Iterator[Candle]:
    """Yield ``count`` consecutive candles starting at ``start_ms`` (aligned down)."""
    bars = generate_bars(
        count=count,
        seed=seed,
        symbol=symbol,
        interval=interval,
        start_ms=start_ms,
        venue=venue,
        params=params,
    )
    for bar in bars:
        yield bar.candle


def write_csv(candles: Iterator[Candle], out: Path) -> int:
    """Write candles as ``timestamp_ms,open,high,low,close,volume``; return the row count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        handle.write("timestamp_ms,open,high,low,close,volume\n")
        for c in candles:
            handle.write(f"{c.open_time_ms},{c.open},{c.high},{c.low},{c.close},{c.volume}\n")
            rows += 1
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write a synthetic candle CSV."""
    parser = argparse.ArgumentParser(
        prog="python -m paper_trader.simulator.synthetic",
        description="Write a seeded synthetic candle CSV: timestamp_ms,open,high,low,close,volume",
    )
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--candles", type=int, default=5000, help="number of candles (5000)")
    parser.add_argument(
        "--interval", type=Interval, default=Interval.M1, help="candle interval (1m)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    parser.add_argument("--start-price", type=float, default=30_000.0, help="first open (30000)")
    parser.add_argument("--start-ms", type=int, default=1_672_531_200_000, help="first open time")
    args = parser.parse_args(argv)
    if args.candles < 1 or args.start_price <= 0:
        parser.error("--candles and --start-price must be positive")
    candles = generate_candles(
        count=args.candles,
        seed=args.seed,
        interval=args.interval,
        start_ms=args.start_ms,
        params=MarketParams(start_price=args.start_price),
    )
    rows = write_csv(candles, args.out)
    print(f"wrote {rows} candles to {args.out}")  # noqa: T201 -- command output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
