"""The risk picture for the operator: breakers, limits, exposure and value at risk.

Value at risk is historical: the equity curve is sampled at the last snapshot of each hour (or
UTC day) of candle time, the returns between consecutive samples are sorted, and the loss at
the 5th percentile (linear interpolation between order statistics) times the current equity is
the 95 % VaR of one hour (or one day): "on 95 % of past hours the equity fell by less than
this". With fewer than ``MIN_RETURNS`` returns there is not enough history and it is None.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import aiosqlite

from paper_trader.domain.trading import DAY_MS, BreakerTransition, TradingState
from paper_trader.storage.equity import equity_closes
from paper_trader.trading.stage import TradingStage

HOUR_MS = 3_600_000
VAR_LEVEL = 0.95
MIN_RETURNS = 10
HOURLY_LOOKBACK_MS = 30 * DAY_MS
DAILY_LOOKBACK_MS = 365 * DAY_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueAtRisk:
    """Historical VaR of one ``horizon`` ("1h", "1d") at ``level``, from ``samples`` returns;
    ``loss`` (currency at today's equity) and ``share`` are None without enough history."""

    horizon: str
    level: float
    samples: int
    share: float | None
    loss: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskReport:
    """Breakers, limits and exposure now; fractions are of equity (0.05 is 5 %)."""

    state: TradingState
    tripped: tuple[BreakerTransition, ...]
    breakers_enabled: bool
    equity: Decimal
    exposure: Decimal
    exposure_share: float
    open_positions: int
    max_positions: int
    max_position_size: float
    max_total_exposure: float
    max_daily_loss: float
    daily_loss_share: float
    max_drawdown: float
    drawdown_share: float
    consecutive_losses: int
    max_consecutive_losses: int
    var: tuple[ValueAtRisk, ...]


def historical_var(returns: Sequence[float], level: float = VAR_LEVEL) -> float | None:
    """Return the loss share not exceeded on ``level`` of the ``returns`` (None if too few).

    A positive value is a loss (0.02: equity 2 % lower); 0 when even the tail gained.
    """
    clean = sorted(r for r in returns if math.isfinite(r))
    if len(clean) < MIN_RETURNS:
        return None
    rank = (1 - level) * (len(clean) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(clean) - 1)
    quantile = clean[low] + (clean[high] - clean[low]) * (rank - low)
    return max(0.0, -quantile)


def returns_of(equities: Sequence[Decimal]) -> list[float]:
    """Return the simple returns between consecutive positive equities."""
    return [float(b / a - 1) for a, b in itertools.pairwise(equities) if a > 0]


async def risk_report(stage: TradingStage, reader: aiosqlite.Connection) -> RiskReport:
    """Return the breakers, limits, exposure and the hourly and daily VaR of ``stage``."""
    async with stage.lock:
        trader = stage.trader
        config = trader.config
        equity = trader.ledger.equity(trader.marks)
        exposure = trader.ledger.exposure(trader.marks)
        breakers = trader.breakers
        snapshot = breakers.snapshot(windows=False)
        peak = breakers.peak_equity or equity
        state, tripped = breakers.state, breakers.tripped()
        end = trader.last_candle_ms
        held = len(trader.ledger.positions)
    day_start = Decimal(str(snapshot.get("day_start_equity") or equity))
    losses = snapshot.get("consecutive_losses", 0)
    var = await _value_at_risk(reader, end, equity)
    return RiskReport(
        state=state,
        tripped=tripped,
        breakers_enabled=config.breakers.enabled,
        equity=equity,
        exposure=exposure,
        exposure_share=float(exposure / equity) if equity > 0 else 0.0,
        open_positions=held,
        max_positions=config.limits.max_positions,
        max_position_size=config.limits.max_position_size,
        max_total_exposure=config.limits.max_total_exposure,
        max_daily_loss=config.breakers.max_daily_loss,
        daily_loss_share=max(0.0, float((day_start - equity) / day_start))
        if day_start > 0
        else 0.0,
        max_drawdown=config.breakers.max_drawdown,
        drawdown_share=max(0.0, float((peak - equity) / peak)) if peak > 0 else 0.0,
        consecutive_losses=int(losses) if isinstance(losses, int) else 0,
        max_consecutive_losses=config.breakers.max_consecutive_losses,
        var=var,
    )


async def _value_at_risk(
    reader: aiosqlite.Connection, end: int | None, equity: Decimal
) -> tuple[ValueAtRisk, ...]:
    out = []
    for horizon, bucket, lookback in (
        ("1h", HOUR_MS, HOURLY_LOOKBACK_MS),
        ("1d", DAY_MS, DAILY_LOOKBACK_MS),
    ):
        closes = (
            []
            if end is None
            else await equity_closes(reader, since_ms=end - lookback, bucket_ms=bucket)
        )
        returns = returns_of([c.equity for c in closes])
        share = historical_var(returns)
        out.append(
            ValueAtRisk(
                horizon=horizon,
                level=VAR_LEVEL,
                samples=len(returns),
                share=share,
                loss=None if share is None else equity * Decimal(str(round(share, 8))),
            )
        )
    return tuple(out)
