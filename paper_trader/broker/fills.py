"""The paper broker's fill model: at what price a simulated order fills, and what it costs.

Prices are ``Decimal``; the model's prices are not quantized, ``fill_execution`` then rounds
the price to the tick ``PRICE_STEP`` (half-even, never below one tick) and the fee up to
``MONEY_STEP``, the same rounding the entry limits fit the cash with. Fixed steps keep every
ledger sum exact in Decimal's 28 digits (cash below 1e9), so replay and live give the same
ledger.

- **Entries** are market orders at the decision candle's close, plus slippage.
- **Exits** follow the exit rules' conservative order within a candle (``risk/exits.py``): a
  candle that opens through the active stop fills at its open (``stop_gap_open``); a candle
  whose range reaches the stop fills at the stop (``stop_touch``), and the stop wins when the
  same candle also reached the target; a candle that reaches the target fills at exactly the
  target (``target_limit``), even when it opened beyond it, with no slippage, as a resting limit
  order would. Time and signal exits fill at the close (``market_close``), commands at the last
  close (``market_last``).
- **Slippage** applies to every fill except ``target_limit`` and always goes against us: a buy
  pays more, a sell gets less. It is ``slippage_bps`` plus ``impact_bps`` for every 1 % of the
  candle's (base) volume the order takes, at most ``max_slippage_bps``; a candle without volume
  gives the maximum.
- **Fees** are charged on every fill, entry and exit, at the taker rate on the fill's notional
  (limit fills included: the model does not assume maker rebates).
"""

from decimal import Decimal
from typing import Protocol

from paper_trader.broker.config import FillConfig
from paper_trader.broker.ledger import Execution
from paper_trader.domain.trading import (
    PRICE_STEP,
    FillModel,
    OrderSide,
    Position,
    Side,
    closing_order,
    fee_amount,
    opening_order,
)

_BPS = Decimal(10_000)
_ORDER_SIGN = {OrderSide.BUY: 1, OrderSide.SELL: -1}


class ExitTrigger(Protocol):
    """What a fill needs of an exit decision; ``risk.exits.ExitSignal`` is one.

    A protocol rather than an import keeps the broker free of the risk layer's rules.
    """

    @property
    def price(self) -> Decimal:
        """Return the raw trigger price, before slippage."""
        ...

    @property
    def fill_model(self) -> FillModel:
        """Return how the exit fills."""
        ...


def slippage_bps(
    quantity: Decimal, price: Decimal, candle_volume: Decimal, config: FillConfig
) -> Decimal:
    """Return the slippage in basis points for an order of ``quantity`` in a candle's volume.

    ``slippage_bps + impact_bps * (100 * quantity / candle_volume)``, at most
    ``max_slippage_bps``; a volume at or below zero gives ``max_slippage_bps``. Quantity and
    volume are both in base units, so ``price`` (the reference price) does not change the
    share taken and is passed for the record of what the order was.
    """
    del price
    if candle_volume <= 0:
        return config.max_slippage_bps
    share_pct = 100 * quantity / candle_volume
    return min(config.slippage_bps + config.impact_bps * share_pct, config.max_slippage_bps)


def execution_price(side: OrderSide, reference: Decimal, bps: Decimal) -> Decimal:
    """Return ``reference`` moved ``bps`` basis points against the order (a buy pays more)."""
    return reference * (1 + _ORDER_SIGN[side] * bps / _BPS)


def taker_fee(notional: Decimal, config: FillConfig) -> Decimal:
    """Return the taker fee on ``notional``, in quote currency."""
    return notional * config.fee_rate


def exit_execution(
    position: Position, signal: ExitTrigger, candle_volume: Decimal, config: FillConfig
) -> tuple[Decimal, Decimal]:
    """Return the exit's fill price and the slippage in bps applied to it.

    A ``target_limit`` exit fills at its target with 0 bps; every other exit is the closing
    order at the signal's price, moved by the slippage of the position's whole quantity.
    """
    if signal.fill_model is FillModel.TARGET_LIMIT:
        return signal.price, Decimal(0)
    bps = slippage_bps(position.quantity, signal.price, candle_volume, config)
    return execution_price(closing_order(position.side), signal.price, bps), bps


def entry_execution(
    side: Side, reference: Decimal, quantity: Decimal, candle_volume: Decimal, config: FillConfig
) -> tuple[Decimal, Decimal]:
    """Return the entry's fill price (the opening order at ``reference`` plus slippage) and bps."""
    bps = slippage_bps(quantity, reference, candle_volume, config)
    return execution_price(opening_order(side), reference, bps), bps


def fill_execution(  # noqa: PLR0917 - the facts of the fill being priced
    price: Decimal,
    bps: Decimal,
    quantity: Decimal,
    model: FillModel,
    candle_time_ms: int,
    config: FillConfig,
) -> Execution:
    """Return an execution at ``price`` to the tick (at least one tick), with its taker fee
    rounded up to ``MONEY_STEP`` (``domain.trading.fee_amount``)."""
    price = max(price.quantize(PRICE_STEP), PRICE_STEP)
    return Execution(
        price=price,
        fee=fee_amount(quantity * price, config.fee_rate),
        slippage_bps=bps,
        fill_model=model,
        candle_time_ms=candle_time_ms,
    )
