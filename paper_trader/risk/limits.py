"""Entry limits: whether a new entry may be made at all, and how much of it fits.

``screen_entry`` runs before sizing and refuses an entry outright (shorts disabled, low
confidence, a position already open in the symbol, too many positions, too correlated with an
open position). ``fit_quantity`` runs after sizing and caps the sized quantity by the largest
position, the total exposure and the cash, rounds it down to ``QUANTITY_STEP`` and refuses what
is left if it is below the minimum notional. Every refusal is a ``Rejection`` value whose
detail gives the numbers; nothing here raises.

Caps are computed exactly: the largest quantity under a cap is the whole number of steps that
fit (``Decimal`` integer division in a wide context), so an approval never exceeds a cap, not
even by a rounding digit. The cash cap is measured against *free* cash (``PortfolioView.cash``:
cash less the collateral the open shorts hold) with what the fill will really take out of it
(``entry_spend``): a long pays its notional plus the fee, a short holds its margin
(``short_margin`` of the notional) and pays the fee, each rounded up to ``MONEY_STEP`` exactly
as the broker charges it. The caller fits at the highest price the fill can have, so an
approved entry can never leave free cash below zero. Free cash can still fall below zero
afterwards only if a short is bought back beyond its collateral (a gap): ``broker/margin.py``.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

from paper_trader.domain.trading import (
    MONEY_STEP,
    Position,
    Rejection,
    Side,
    fee_amount,
    margin_amount,
    plain,
)
from paper_trader.risk.config import LimitsConfig, exact
from paper_trader.risk.sizing import QUANTITY_STEP, round_quantity

# Wide enough that price * (1 + fee) * step and the integer division by it are exact.
_WIDE = Context(prec=60)
_CENT = Decimal("0.01")
# entry_spend exceeds quantity * price * (principal + fee rate) by less than this: it rounds
# at most two amounts (fee, margin) up to MONEY_STEP.
_ROUNDING_SLACK = 2 * MONEY_STEP

# The correlation of two symbols' returns, or None when there is too little to measure.
PairCorrelation = Callable[[str, str], float | None]
# A symbol's correlation with each of several others, in their order: one vectorised step.
Correlations = Callable[[str, Sequence[str]], Sequence[float | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PortfolioView:
    """The portfolio as the limits see it.

    ``cash`` is the *free* cash: the cash less the collateral the open shorts hold.
    ``marks`` holds the latest close per symbol, at least for every open position; a position
    without a mark is valued at its entry price.
    """

    equity: Decimal
    cash: Decimal
    positions: Mapping[str, Position]
    marks: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """An entry that fits: its quantity and notional, and the caps that reduced it, in order."""

    quantity: Decimal
    notional: Decimal
    capped_by: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cap:
    """One cap on the new entry: the quote currency it leaves, and what a unit costs in it."""

    name: str
    room: Decimal
    unit_cost: Decimal
    observed: Decimal
    limit: Decimal
    detail: str
    spend: Callable[[Decimal], Decimal] | None = None  # the exact cost, when it rounds


def entry_spend(
    side: Side, quantity: Decimal, price: Decimal, fee_rate: Decimal, short_margin: Decimal
) -> Decimal:
    """Return the free cash an entry of ``quantity`` filled at ``price`` takes: a long's
    notional plus its fee, a short's margin plus its fee, rounded as the broker rounds them."""
    notional = quantity * price
    principal = notional if side is Side.LONG else margin_amount(notional, short_margin)
    return principal + fee_amount(notional, fee_rate)


def screen_entry(
    config: LimitsConfig,
    *,
    symbol: str,
    side: Side,
    confidence: float,
    view: PortfolioView,
    correlation: PairCorrelation | None = None,
    correlations: Correlations | None = None,
) -> Rejection | None:
    """Return why an entry in ``symbol`` on ``side`` may not be made at all, or None.

    Rules, in order: ``short_not_allowed``, ``min_confidence``, ``position_open`` (one
    position per symbol), ``max_positions``, ``correlation``. The correlations with the open
    positions come from ``correlations`` (all at once) or else ``correlation`` (pair by pair);
    one of them must be given.
    """
    if correlations is None:
        if correlation is None:
            raise TypeError("screen_entry needs correlation or correlations")
        correlations = _pairwise(correlation)
    if side is Side.SHORT and not config.allow_short:
        return Rejection(rule="short_not_allowed", detail="short entries are disabled")
    if not confidence >= config.min_confidence:
        return Rejection(
            rule="min_confidence",
            detail=f"confidence {confidence:.4g} below the minimum {config.min_confidence:g}",
            observed=confidence,
            limit=config.min_confidence,
        )
    held = view.positions.get(symbol)
    if held is not None:
        return Rejection(
            rule="position_open", detail=f"{symbol} already has an open {held.side} position"
        )
    if len(view.positions) >= config.max_positions:
        return Rejection(
            rule="max_positions",
            detail=f"{len(view.positions)} positions open, the maximum is {config.max_positions}",
            observed=float(len(view.positions)),
            limit=float(config.max_positions),
        )
    return _screen_correlation(config, symbol, side, view, correlations)


def fit_quantity(
    config: LimitsConfig,
    *,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    view: PortfolioView,
) -> Approval | Rejection:
    """Cap a sized ``quantity`` at ``price`` to what the portfolio allows, or refuse it.

    Caps, in order: ``max_position_size``, ``max_total_exposure``, ``cash`` (``entry_spend``
    against the free cash); the result, whole steps rounded down, is then checked against
    ``min_notional``. The quantity is rounded down before the caps and each cap allows whole
    steps only, which gives the same quantity as rounding after them. A cap that leaves no
    room for a single step refuses the entry under its own name. ``price`` must be the highest
    price the fill can have for any quantity up to ``quantity``.
    """
    invalid = _check_request(quantity, price, view)
    if invalid is not None:
        return invalid
    fitted = round_quantity(quantity)
    capped: list[str] = []
    for cap in _caps(config, side, fitted, price, fee_rate, view):
        allowed = _max_quantity(cap.room, cap.unit_cost, cap.spend)
        if allowed <= 0:
            return Rejection(
                rule=cap.name,
                detail=f"{cap.detail} leaves no room for the smallest quantity {QUANTITY_STEP:f}",
                observed=float(cap.observed),
                limit=float(cap.limit),
            )
        if fitted > allowed:
            fitted = allowed
            capped.append(cap.name)
    return _check_min_notional(config, fitted * price, fitted, capped)


def _screen_correlation(
    config: LimitsConfig,
    symbol: str,
    side: Side,
    view: PortfolioView,
    correlations: Correlations,
) -> Rejection | None:
    """Refuse an entry that would move with an open position more than the limit allows.

    A long against a held short counts the negated correlation: being long one symbol and
    short another that moves opposite to it is the same bet twice. The positions are judged
    in symbol order and the first one over the limit refuses.
    """
    held_symbols = sorted(view.positions)
    if not held_symbols:
        return None
    values = correlations(symbol, held_symbols)
    for other, value in zip(held_symbols, values, strict=True):
        if value is None:
            continue
        held = view.positions[other].side
        effective = value if held is side else -value
        if effective > config.correlation_limit:
            against = "" if held is side else f" (held {held}, so {effective:.4g} for a {side})"
            return Rejection(
                rule="correlation",
                detail=f"correlation {value:.4g} with {other}{against} above the limit "
                f"{config.correlation_limit:g}",
                observed=effective,
                limit=config.correlation_limit,
            )
    return None


def _pairwise(correlation: PairCorrelation) -> Correlations:
    """Return ``correlations`` made of a pairwise ``correlation``."""
    return lambda symbol, others: [correlation(symbol, other) for other in others]


def _check_request(quantity: Decimal, price: Decimal, view: PortfolioView) -> Rejection | None:
    """Refuse a request without equity, or whose quantity is not at least one step."""
    if view.equity <= 0:
        return Rejection(
            rule="equity",
            detail=f"equity {_money(view.equity)} is not positive",
            observed=float(view.equity),
            limit=0.0,
        )
    for name, value in (("quantity", quantity), ("price", price)):
        if value <= 0:
            detail = f"{name} {plain(value)} is not positive"
            return Rejection(rule="sizing", detail=detail, observed=float(value), limit=0.0)
    if round_quantity(quantity) <= 0:
        return Rejection(
            rule="sizing",
            detail=f"quantity {plain(quantity)} rounds down to 0 at the step {QUANTITY_STEP:f}",
            observed=float(quantity),
            limit=float(QUANTITY_STEP),
        )
    return None


def _caps(  # noqa: PLR0917 - the entry's facts, passed on from fit_quantity
    config: LimitsConfig,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    view: PortfolioView,
) -> tuple[_Cap, ...]:
    """Return the caps in the order they apply, with the figures a refusal reports."""
    return (
        _size_cap(config, quantity * price, price, view),
        _exposure_cap(config, price, view),
        _cash_cap(config, side, quantity, price, fee_rate, view),
    )


def _size_cap(config: LimitsConfig, notional: Decimal, price: Decimal, view: PortfolioView) -> _Cap:
    """Cap the notional at ``max_position_size`` of equity."""
    limit = exact(config.max_position_size) * view.equity
    return _Cap(
        name="max_position_size",
        room=limit,
        unit_cost=price,
        observed=notional,
        limit=limit,
        detail=f"position size limit {_money(limit)} "
        f"({config.max_position_size:g} of equity {_money(view.equity)})",
    )


def _exposure_cap(config: LimitsConfig, price: Decimal, view: PortfolioView) -> _Cap:
    """Cap the gross exposure after the entry at ``max_total_exposure`` of equity."""
    exposure = _exposure(view)
    limit = exact(config.max_total_exposure) * view.equity
    return _Cap(
        name="max_total_exposure",
        room=limit - exposure,
        unit_cost=price,
        observed=exposure,
        limit=limit,
        detail=f"exposure {_money(exposure)} against the limit {_money(limit)} "
        f"({config.max_total_exposure:g} of equity {_money(view.equity)})",
    )


def _cash_cap(  # noqa: PLR0917 - the entry's facts, passed on from fit_quantity
    config: LimitsConfig,
    side: Side,
    quantity: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    view: PortfolioView,
) -> _Cap:
    """Cap what the entry takes out of free cash (``entry_spend``) at the free cash."""
    margin = config.short_margin
    principal = Decimal(1) if side is Side.LONG else margin

    def spend(q: Decimal) -> Decimal:
        return entry_spend(side, q, price, fee_rate, margin)

    what = "" if side is Side.LONG else f" for a short's margin {plain(margin)}"
    return _Cap(
        name="cash",
        room=view.cash,
        unit_cost=price * (principal + fee_rate),
        observed=spend(quantity),
        limit=view.cash,
        detail=f"free cash {_money(view.cash)} at price {plain(price)}{what} plus fee rate "
        f"{plain(fee_rate)}",
        spend=spend,
    )


def _check_min_notional(
    config: LimitsConfig, notional: Decimal, quantity: Decimal, capped: list[str]
) -> Approval | Rejection:
    """Approve the fitted quantity unless its notional is below the minimum."""
    if notional < config.min_notional:
        after = f" after capping by {', '.join(capped)}" if capped else ""
        return Rejection(
            rule="min_notional",
            detail=f"notional {_money(notional)} below the minimum {_money(config.min_notional)}"
            f" (short by {_money(config.min_notional - notional)}){after}",
            observed=float(notional),
            limit=float(config.min_notional),
        )
    return Approval(quantity=quantity, notional=notional, capped_by=tuple(capped))


def _exposure(view: PortfolioView) -> Decimal:
    """Return the gross exposure: the sum of every position's absolute value at its mark."""
    return sum(
        (
            abs(position.value(view.marks.get(symbol, position.entry_price)))
            for symbol, position in view.positions.items()
        ),
        Decimal(0),
    )


def _max_quantity(
    room: Decimal, unit_cost: Decimal, spend: Callable[[Decimal], Decimal] | None = None
) -> Decimal:
    """Return the most whole steps of quantity whose cost fits in ``room``.

    The cost is ``quantity * unit_cost``, or ``spend(quantity)`` when given: that exact cost
    exceeds ``quantity * unit_cost`` by less than ``_ROUNDING_SLACK``, so the answer lies
    between the steps that fit ``room - _ROUNDING_SLACK`` and those that fit ``room`` at
    ``unit_cost``, and a bisection over that handful of steps finds it.
    """
    high = _steps(room, unit_cost)
    if spend is None or high <= 0 or spend(high * QUANTITY_STEP) <= room:
        return high * QUANTITY_STEP
    low = _steps(room - _ROUNDING_SLACK, unit_cost)  # spend(low) <= room, spend(high) > room
    while high - low > 1:
        middle = (low + high) // 2
        if spend(middle * QUANTITY_STEP) <= room:
            low = middle
        else:
            high = middle
    return low * QUANTITY_STEP


def _steps(room: Decimal, unit_cost: Decimal) -> Decimal:
    """Return how many whole steps of quantity cost at most ``room`` at ``unit_cost``."""
    if room <= 0 or unit_cost <= 0:
        return Decimal(0)
    with localcontext(_WIDE):
        return room // (unit_cost * QUANTITY_STEP)


def _money(value: Decimal) -> str:
    """Format quote currency to the cent, without trailing zeros (``7.10`` → ``7.1``)."""
    return plain(value.quantize(_CENT))
