"""The paper broker's costs, as plain values (``app/configs.py`` builds them from settings)."""

from dataclasses import dataclass
from decimal import Decimal

from paper_trader.errors import ConfigError

_ALL_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class FillConfig:
    """The paper broker's costs: taker fee per side, and slippage in basis points.

    Slippage on a market or stop fill is ``slippage_bps`` plus ``impact_bps`` for every 1 % of
    the candle's volume the order takes, at most ``max_slippage_bps``.
    """

    fee_rate: Decimal = Decimal("0.001")
    slippage_bps: Decimal = Decimal(5)
    impact_bps: Decimal = Decimal(10)
    max_slippage_bps: Decimal = Decimal(200)

    def __post_init__(self) -> None:
        """Refuse costs that would price a fill at or below zero, or pay for a trade."""
        if not Decimal(0) <= self.fee_rate < 1:
            raise ConfigError(f"the fee rate must be from 0 to below 1, not {self.fee_rate}")
        for name in ("slippage_bps", "impact_bps", "max_slippage_bps"):
            value: Decimal = getattr(self, name)
            if not Decimal(0) <= value < _ALL_BPS:
                raise ConfigError(f"{name} must be from 0 to below 10000, not {value}")
