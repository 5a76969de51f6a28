"""The entry path of the trading step: from a signal that passed the screens to a planned fill,
or the rule that refused it. Pure; nothing changes until the trader opens the plan.

The steps, in order:

1. the stop distance from the ATR (rule ``stop_distance``);
2. sizing, which risks that very distance per unit (rules ``sizing``, ``kelly``);
3. the limits' caps (``risk/limits.py``), fitted at the highest price the fill can have — for a
   buy the price at the sized quantity (a smaller one never slips more), for a sell the price
   without volume impact — and with what the fill takes out of free cash, fee (and a short's
   margin) rounded up exactly as charged, so the fill can never outrun the cash;
4. the fill: the close plus the slippage of the approved quantity, to the tick, fee rounded up;
5. the levels, placed from the fill price (``risk/exits.py``; rule ``stop_distance`` for a
   long whose stop would not be above zero);
6. a short's collateral and margin call (``broker/margin.py``): refused (rule
   ``short_margin``) unless the stop lies strictly inside the margin call;
7. the cost edge (``risk/edge.py``, rule ``cost_edge``): the target must pay for the round
   trip, the expected exit slippage being the entry's (the same quantity in a like candle).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from paper_trader.broker.config import FillConfig
from paper_trader.broker.fills import entry_execution, fill_execution
from paper_trader.broker.ledger import Entry, Execution
from paper_trader.broker.margin import margin_call_price, short_collateral
from paper_trader.domain import Candle
from paper_trader.domain.trading import (
    PRICE_STEP,
    ClosedTrade,
    FillModel,
    Rejection,
    Side,
    plain,
)
from paper_trader.risk.config import ExitConfig, LimitsConfig, SizingConfig
from paper_trader.risk.edge import RoundTrip, cost_edge
from paper_trader.risk.exits import Levels, entry_levels, stop_distance
from paper_trader.risk.limits import Approval, PortfolioView, fit_quantity
from paper_trader.risk.sizing import size_position


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRules:
    """The parts of the trading rules an entry passes through."""

    limits: LimitsConfig
    sizing: SizingConfig
    exits: ExitConfig
    fills: FillConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryPlan:
    """An entry ready to open: the position's terms, its fill, and how the limits sized it."""

    entry: Entry
    execution: Execution
    approval: Approval


def plan_entry(
    rules: EntryRules,
    *,
    candle: Candle,
    side: Side,
    atr: Decimal,
    confidence: float,
    view: PortfolioView,
    history: Sequence[ClosedTrade],
) -> EntryPlan | Rejection:
    """Size, fit and price an entry on ``candle``'s close; return the plan or the refusal."""
    distance = stop_distance(atr, rules.exits)
    if isinstance(distance, Rejection):
        return distance
    sizing = size_position(
        rules.sizing,
        equity=view.equity,
        price=candle.close,
        stop_distance=distance,
        atr=atr,
        confidence=confidence,
        history=history,
    )
    if isinstance(sizing, Rejection):
        return sizing
    approval = fit_quantity(
        rules.limits,
        side=side,
        quantity=sizing.quantity,
        price=_highest_price(rules.fills, side, candle, sizing.quantity),
        fee_rate=rules.fills.fee_rate,
        view=view,
    )
    if isinstance(approval, Rejection):
        return approval
    return _priced(rules, candle, side, atr, approval)


def _priced(
    rules: EntryRules, candle: Candle, side: Side, atr: Decimal, approval: Approval
) -> EntryPlan | Rejection:
    """Fill the approved quantity, place its levels from the fill, and check the short's
    margin and the cost edge (steps 4 to 7)."""
    quantity = approval.quantity
    price, bps = entry_execution(side, candle.close, quantity, candle.volume, rules.fills)
    execution = fill_execution(
        price, bps, quantity, FillModel.MARKET_CLOSE, candle.open_time_ms, rules.fills
    )
    levels = entry_levels(side, execution.price, atr, rules.exits)
    if isinstance(levels, Rejection):
        return levels
    trip = RoundTrip(
        side=side,
        reference=candle.close,
        fill_price=execution.price,
        target=levels.take_profit,
        fee_rate=rules.fills.fee_rate,
        exit_bps=bps,
    )
    collateral, margin_call = _collateral(rules, side, quantity, execution)
    refused = _short_margin(rules, margin_call, execution, levels) or cost_edge(
        trip, rules.limits.min_edge_cost_multiple
    )
    if refused is not None:
        return refused
    entry = Entry(
        venue=candle.venue,
        symbol=candle.symbol,
        interval=candle.interval,
        side=side,
        quantity=quantity,
        stop_price=levels.stop,
        take_profit_price=levels.take_profit,
        risk_per_unit=levels.risk_per_unit,
        atr=atr,
        collateral=collateral,
        margin_call_price=margin_call,
    )
    return EntryPlan(entry=entry, execution=execution, approval=approval)


def _highest_price(config: FillConfig, side: Side, candle: Candle, quantity: Decimal) -> Decimal:
    """Return the highest tick-rounded fill price of any quantity up to ``quantity``.

    Slippage grows with the quantity: a buy pays most at the whole ``quantity``, a sell gets
    most at none of it (the base slippage alone).
    """
    largest = quantity if side is Side.LONG else Decimal(0)
    price, _ = entry_execution(side, candle.close, largest, candle.volume, config)
    return max(price.quantize(PRICE_STEP), PRICE_STEP)


def _collateral(
    rules: EntryRules, side: Side, quantity: Decimal, execution: Execution
) -> tuple[Decimal, Decimal | None]:
    """Return a short's collateral and margin call from its fill (nothing for a long)."""
    if side is Side.LONG:
        return Decimal(0), None
    collateral = short_collateral(quantity * execution.price, rules.limits.short_margin)
    return collateral, margin_call_price(collateral, quantity, rules.fills)


def _short_margin(
    rules: EntryRules, margin_call: Decimal | None, execution: Execution, levels: Levels
) -> Rejection | None:
    """Refuse a short whose stop does not lie strictly inside its margin call."""
    if margin_call is None or margin_call > levels.stop:
        return None
    return Rejection(
        rule="short_margin",
        detail=f"the margin call at {plain(margin_call)} is not above the stop "
        f"{plain(levels.stop)}: a margin of {plain(rules.limits.short_margin)} of the notional "
        f"does not carry a stop {plain(levels.risk_per_unit)} above the fill "
        f"{plain(execution.price)} at the worst slippage of "
        f"{plain(rules.fills.max_slippage_bps)} bps and the fee; raise SHORT_MARGIN or tighten "
        "the stop",
        observed=float(margin_call),
        limit=float(levels.stop),
    )
