"""The risk layer's settings, as plain values (``app/configs.py`` builds them from settings)."""

from dataclasses import dataclass
from decimal import Decimal

from paper_trader.domain.trading import SizingMethod


def exact(value: float) -> Decimal:
    """Return a config float as the Decimal it reads as (0.05 -> Decimal("0.05")), so that
    every level, size and limit computed from it is exact and the same on every run."""
    return Decimal(str(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerConfig:
    """Circuit breakers; durations are milliseconds of candle time.

    ``volatility_multiple``: the volatility breaker trips a symbol when its ATR % exceeds this
    multiple of the median ATR % of its last ``volatility_window`` candles (once at least
    ``volatility_min_samples`` are known), and resets below ``volatility_reset`` of that level.
    ``fault_clean_candles``: a symbol quarantined after an error on one of its candles takes
    entries again after this many clean candles.
    """

    enabled: bool = True
    max_daily_loss: float = 0.05
    max_drawdown: float = 0.15
    max_consecutive_losses: int = 5
    losing_streak_cooldown_ms: int = 3_600_000
    min_time_between_trades_ms: int = 300_000
    stop_loss_cooldown_ms: int = 1_800_000
    volatility_multiple: float = 3.0
    volatility_window: int = 1440
    volatility_min_samples: int = 120
    volatility_reset: float = 0.8
    fault_clean_candles: int = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """Entry limits. Fractions are of current equity; ``min_notional`` is in quote currency.

    ``correlation_window`` rolling returns are compared; fewer than half of them in common
    with an open position's symbol and the correlation rule is not applied to that pair.
    ``short_margin`` is the fraction of a short's notional held out of free cash beyond its
    proceeds (``broker/margin.py``). ``min_edge_cost_multiple``: an entry's target must lie
    more than this multiple of its round trip's costs away from the fill (rule ``cost_edge``;
    0 turns the rule off).
    """

    max_positions: int = 3
    max_position_size: float = 0.25
    max_total_exposure: float = 0.75
    min_notional: Decimal = Decimal(10)
    min_confidence: float = 0.05
    correlation_limit: float = 0.7
    correlation_window: int = 100
    allow_short: bool = False
    short_margin: Decimal = Decimal("0.5")
    min_edge_cost_multiple: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SizingConfig:
    """Position sizing.

    - fixed fractional: risk ``risk_per_trade`` of equity between entry and stop;
    - half-Kelly: risk half the Kelly fraction of the last ``kelly_window`` closed trades
      (at least ``kelly_min_trades`` of them, else fixed fractional), at most ``kelly_cap``;
    - volatility: hold the quantity whose one-ATR move is ``volatility_target`` of equity.

    The result is scaled by ``min(1, confidence / confidence_full_size)``.
    """

    method: SizingMethod = SizingMethod.FIXED_FRACTIONAL
    risk_per_trade: float = 0.01
    kelly_min_trades: int = 30
    kelly_window: int = 100
    kelly_cap: float = 0.05
    volatility_target: float = 0.005
    confidence_full_size: float = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitConfig:
    """Exit rules. ``take_profit_risk_reward`` of 2 puts the target two stop-distances away.

    The trailing stop activates once the best price is ``trailing_activation_r`` stop-distances
    in profit and then trails ``trailing_atr_multiplier`` ATRs (at entry) behind the best price.
    ``max_holding_ms`` of 0 disables the time exit.
    """

    stop_loss_atr_multiplier: float = 2.0
    take_profit_risk_reward: float = 2.0
    trailing_stop: bool = True
    trailing_activation_r: float = 1.0
    trailing_atr_multiplier: float = 1.5
    max_holding_ms: int = 14_400_000
    exit_on_opposite_signal: bool = True
