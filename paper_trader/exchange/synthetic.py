"""A seeded synthetic market: candles with volatility clustering, wicks and volume.

Log returns follow a GARCH(1,1)-like variance process, so calm and turbulent stretches
alternate as in real markets; each candle is built from a short intra-candle path (its high
and low are that path's extremes) and its volume grows with the size of the move. The same
seed always gives the same candles. Run ``python -m paper_trader.exchange.synthetic --help``.
"""

import argparse
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from paper_trader.domain import Candle, Interval, Venue

_STEPS_PER_CANDLE = 8


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
    p = params or MarketParams()
    rng = random.Random(seed)  # noqa: S311 -- reproducible simulation, not cryptography
    omega = p.base_volatility**2 * (1 - p.persistence - p.reaction)
    variance = p.base_volatility**2
    price = p.start_price
    open_time = start_ms - start_ms % interval.ms
    price_q = Decimal(1).scaleb(-p.price_decimals)
    volume_q = Decimal(1).scaleb(-p.volume_decimals)
    for _ in range(count):
        step_sd = math.sqrt(variance / _STEPS_PER_CANDLE)
        path = [price]
        for _ in range(_STEPS_PER_CANDLE):
            path.append(path[-1] * math.exp(rng.gauss(0.0, step_sd)))
        shock = math.log(path[-1] / price)
        variance = omega + p.reaction * shock**2 + p.persistence * variance
        volume = (
            p.base_volume * math.exp(rng.gauss(0.0, 0.4)) * (1 + abs(shock) / p.base_volatility)
        )
        yield Candle(
            venue=venue,
            symbol=symbol,
            interval=interval,
            open_time_ms=open_time,
            open=Decimal(path[0]).quantize(price_q),
            high=Decimal(max(path)).quantize(price_q),
            low=Decimal(min(path)).quantize(price_q),
            close=Decimal(path[-1]).quantize(price_q),
            volume=Decimal(volume).quantize(volume_q),
        )
        price = float(Decimal(path[-1]).quantize(price_q))
        open_time += interval.ms


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
        prog="python -m paper_trader.exchange.synthetic",
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
