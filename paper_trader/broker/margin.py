"""The paper broker's collateral model for shorts: what a short holds out of free cash, and
where it is force-closed.

A short sells what it does not own, so its proceeds are not the account's to spend. Opening a
short of notional ``N`` (quantity times fill price) credits cash with ``N - fee`` as before,
and the position holds ``collateral = N + margin`` out of *free cash*, where ``margin`` is
``SHORT_MARGIN * N`` rounded up to ``MONEY_STEP``. Free cash (cash minus the collateral of
every open short) is what the limits and the sizing see, so a short costs ``margin + fee`` of
free cash where a long costs ``N + fee``. Closing the short releases its collateral.

The **margin call** price is the price at which buying the short back, at the worst slippage
(``max_slippage_bps``) and with the taker fee, would cost the whole collateral:
``collateral / (quantity * (1 + max_slippage) * (1 + fee_rate))``, rounded down to the tick
(earlier, never later). The exit rules check it like a stop, in the same conservative order:
a candle that opens at or beyond it is closed at the open (``margin_call``, ``stop_gap_open``).
An entry whose stop is not strictly inside its margin call is refused (rule
``short_margin``), so a short's loss stays within its margin unless the market gaps; only a
gap beyond the collateral and all other cash can leave cash below zero, which the ledger
records as a deficit (and the ``account_deficit`` breaker halts trading) instead of failing.
"""

from decimal import ROUND_FLOOR, Decimal

from paper_trader.broker.config import FillConfig
from paper_trader.domain.trading import PRICE_STEP, margin_amount

_BPS = Decimal(10_000)


def short_collateral(notional: Decimal, margin: Decimal) -> Decimal:
    """Return what a short of ``notional`` holds out of free cash: its proceeds plus margin."""
    return notional + margin_amount(notional, margin)


def margin_call_price(collateral: Decimal, quantity: Decimal, config: FillConfig) -> Decimal:
    """Return the price at which buying ``quantity`` back would consume ``collateral``."""
    worst = (1 + config.max_slippage_bps / _BPS) * (1 + config.fee_rate)
    return (collateral / (quantity * worst)).quantize(PRICE_STEP, rounding=ROUND_FLOOR)
