"""The cost edge: refuse an entry whose target cannot pay for its round trip.

On quiet candles a stop and a target a few ATRs away can lie closer together than what the
round trip costs, and then even a take-profit loses money net of fees. ``cost_edge`` compares,
per unit of quantity and in price units:

- the **target distance**: how far the target lies from the fill price, in the position's
  favour (what a take-profit earns before fees);
- the **round trip's costs**: the entry slippage (the fill against the decision close), the
  entry fee (at the fill price), the exit fee (at the target) and the expected exit slippage
  (the exit's slippage, in bps, at the target: a market exit of the same quantity in a candle
  like the entry candle).

An entry whose target distance does not exceed ``min_edge_cost_multiple`` times those costs
is refused with rule ``cost_edge``, every figure in its detail. A multiple of 0 turns the rule
off, and an entry without a target (a risk/reward of 0) has no distance to weigh and passes.
"""

from dataclasses import dataclass
from decimal import Decimal

from paper_trader.domain.trading import Rejection, Side, plain
from paper_trader.risk.config import exact

_BPS = Decimal(10_000)
_SHOWN = Decimal("1e-6")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundTrip:
    """An entry as the cost edge sees it: where it was decided, filled and aims, and its costs.

    ``exit_bps`` is the slippage expected at the exit, in basis points.
    """

    side: Side
    reference: Decimal
    fill_price: Decimal
    target: Decimal | None
    fee_rate: Decimal
    exit_bps: Decimal


def cost_edge(trip: RoundTrip, multiple: float) -> Rejection | None:
    """Return ``Rejection("cost_edge")`` when the target distance does not exceed ``multiple``
    times the round trip's costs per unit, else None."""
    target = trip.target
    if target is None or multiple <= 0:
        return None
    sign = trip.side.sign
    distance = sign * (target - trip.fill_price)
    costs = {
        "entry slippage": sign * (trip.fill_price - trip.reference),
        "entry fee": trip.fill_price * trip.fee_rate,
        "exit fee": target * trip.fee_rate,
        "exit slippage": target * trip.exit_bps / _BPS,
    }
    total = sum(costs.values(), Decimal(0))
    needed = exact(multiple) * total
    if distance > needed:
        return None
    parts = ", ".join(f"{name} {_shown(value)}" for name, value in costs.items())
    return Rejection(
        rule="cost_edge",
        detail=f"target distance {_shown(distance)} (target {_shown(target)} from the fill "
        f"{_shown(trip.fill_price)}) does not exceed {multiple:g} x the round trip's costs of "
        f"{_shown(total)} per unit = {_shown(needed)} ({parts})",
        observed=float(distance),
        limit=float(needed),
    )


def _shown(value: Decimal) -> str:
    """Return a price-unit amount to six decimals, without trailing zeros."""
    return plain(value.quantize(_SHOWN))
