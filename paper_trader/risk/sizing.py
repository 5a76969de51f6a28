"""Position sizing: the quantity a new entry wants before the entry limits cap it.

Three methods (``SizingConfig``): fixed fractional risks a set fraction of equity between entry
and stop; half-Kelly risks half the Kelly fraction of the recent closed trades, at most
``kelly_cap``; volatility holds the quantity whose one-ATR move is ``volatility_target`` of
equity. The result is scaled by ``min(1, confidence / confidence_full_size)`` and rounded down
to ``QUANTITY_STEP``. Money stays ``Decimal``; the config's float fractions enter it through
``config.exact`` so that results are exact and the same on every run. A refused entry is a
``Rejection`` value, never an exception.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal, localcontext

from paper_trader.domain.trading import ClosedTrade, Rejection, SizingMethod, plain
from paper_trader.risk.config import SizingConfig, exact

QUANTITY_STEP = Decimal("0.00000001")

# Wide enough that rounding huge quantities to the step never runs out of digits.
_WIDE = Context(prec=60)
_SHOWN_STEP = Decimal("1E-12")


def round_quantity(quantity: Decimal) -> Decimal:
    """Return ``quantity`` rounded down to a multiple of ``QUANTITY_STEP``."""
    with localcontext(_WIDE):
        return quantity.quantize(QUANTITY_STEP, rounding=ROUND_FLOOR)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizing:
    """A sized entry: the quantity before the limits' caps, and how it was found.

    ``method`` is the method actually used (half-Kelly falls back to fixed fractional on a
    short history); ``risk_fraction`` is the fraction of equity lost if the stop is hit at the
    unscaled quantity; ``scale`` is ``min(1, confidence / confidence_full_size)``.
    """

    quantity: Decimal
    method: SizingMethod
    risk_fraction: float
    scale: float
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Inputs:
    """What every sizing method may use."""

    equity: Decimal
    stop_distance: Decimal
    atr: Decimal
    history: Sequence[ClosedTrade]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Unscaled:
    """A method's quantity before the confidence scale and the rounding."""

    quantity: Decimal
    method: SizingMethod
    risk_fraction: float
    detail: str


def size_position(
    config: SizingConfig,
    *,
    equity: Decimal,
    price: Decimal,
    stop_distance: Decimal,
    atr: Decimal,
    confidence: float,
    history: Sequence[ClosedTrade],
) -> Sizing | Rejection:
    """Size a new entry with ``config.method``, scaled by confidence, rounded down to the step.

    ``history`` is the closed trades, oldest first (half-Kelly reads its tail); ``price`` is
    the expected entry price and only reported. Return a ``Rejection`` with rule ``kelly``
    when the recent trades have no edge, and rule ``sizing`` when an input is not positive or
    the quantity rounds down to zero.
    """
    invalid = _check_inputs(equity, price, stop_distance, confidence)
    if invalid is not None:
        return invalid
    inputs = _Inputs(equity=equity, stop_distance=stop_distance, atr=atr, history=history)
    unscaled = _METHODS[config.method](config, inputs)
    if isinstance(unscaled, Rejection):
        return unscaled
    scale = _confidence_scale(confidence, config.confidence_full_size)
    scaled = unscaled.quantity * exact(scale)
    quantity = round_quantity(scaled)
    if quantity <= 0:
        return Rejection(
            rule="sizing",
            detail=f"{unscaled.detail}; scaled by {scale:g} to {_shown(scaled)}, "
            f"which rounds down to 0 at the step {QUANTITY_STEP:f}",
            observed=float(scaled),
            limit=float(QUANTITY_STEP),
        )
    return Sizing(
        quantity=quantity,
        method=unscaled.method,
        risk_fraction=unscaled.risk_fraction,
        scale=scale,
        detail=f"{unscaled.detail}; scaled by {scale:g} to {plain(quantity)} "
        f"(notional {plain(quantity * price)} at {plain(price)})",
    )


def _check_inputs(
    equity: Decimal, price: Decimal, stop_distance: Decimal, confidence: float
) -> Rejection | None:
    """Refuse inputs that every method needs positive."""
    for name, value in (("equity", equity), ("price", price), ("stop distance", stop_distance)):
        if value <= 0:
            return _not_positive(name, value)
    if not confidence > 0:
        return Rejection(
            rule="sizing", detail=f"confidence {confidence:g} is not positive", observed=confidence
        )
    return None


def _confidence_scale(confidence: float, full_size: float) -> float:
    """Return ``min(1, confidence / full_size)``: full size at or above ``full_size``."""
    if confidence >= full_size:
        return 1.0
    return confidence / full_size


def _fixed_fractional(config: SizingConfig, inputs: _Inputs) -> _Unscaled:
    """Risk ``risk_per_trade`` of equity between entry and stop."""
    fraction = exact(config.risk_per_trade)
    quantity = inputs.equity * fraction / inputs.stop_distance
    return _Unscaled(
        quantity=quantity,
        method=SizingMethod.FIXED_FRACTIONAL,
        risk_fraction=float(fraction),
        detail=f"fixed fractional: {_risked(fraction, inputs, quantity)}",
    )


def _half_kelly(config: SizingConfig, inputs: _Inputs) -> _Unscaled | Rejection:
    """Risk half the Kelly fraction of the last ``kelly_window`` trades, at most the cap."""
    sample = list(inputs.history)[-config.kelly_window :] if config.kelly_window > 0 else []
    if len(sample) < config.kelly_min_trades:
        fallback = _fixed_fractional(config, inputs)
        reason = f"half-Kelly needs {config.kelly_min_trades} closed trades, has {len(sample)}"
        return _Unscaled(
            quantity=fallback.quantity,
            method=fallback.method,
            risk_fraction=fallback.risk_fraction,
            detail=f"{reason}; {fallback.detail}",
        )
    kelly = _kelly_fraction(sample)
    if isinstance(kelly, Rejection):
        return kelly
    full, figures = kelly
    cap = exact(config.kelly_cap)
    capped = f", capped at {plain(cap)}" if full / 2 > cap else ""
    fraction = min(full / 2, cap)
    quantity = inputs.equity * fraction / inputs.stop_distance
    return _Unscaled(
        quantity=quantity,
        method=SizingMethod.HALF_KELLY,
        risk_fraction=float(fraction),
        detail=f"half-Kelly: {figures}{capped}; {_risked(fraction, inputs, quantity)}",
    )


def _kelly_fraction(sample: Sequence[ClosedTrade]) -> tuple[Decimal, str] | Rejection:
    """Return the full Kelly fraction K = W - (1 - W) / R of ``sample`` and its figures.

    W is the share of winners (net PnL above 0), R the mean winner's return over the mean
    loser's; break-even trades count in n but are neither. Without losers K is taken as 1.
    """
    n = len(sample)
    win_returns = [trade.return_pct for trade in sample if trade.net_pnl > 0]
    loss_returns = [trade.return_pct for trade in sample if trade.net_pnl < 0]
    if not win_returns:
        return Rejection(
            rule="kelly",
            detail=f"no winning trade among the last {n} closed trades: K=-inf (W=0, R=0, n={n})",
            limit=0.0,
        )
    win_rate = Decimal(len(win_returns)) / n
    if not loss_returns:
        kelly, payoff = Decimal(1), "inf"
    else:
        ratio = _mean(win_returns) / abs(_mean(loss_returns))
        kelly, payoff = win_rate - (1 - win_rate) / ratio, f"{ratio:.4f}"
    figures = f"K={kelly:.4f} (W={win_rate:.4f}, R={payoff}, n={n})"
    if kelly <= 0:
        return Rejection(
            rule="kelly",
            detail=f"Kelly fraction {figures} is not positive",
            observed=float(kelly),
            limit=0.0,
        )
    return kelly, figures


def _volatility(config: SizingConfig, inputs: _Inputs) -> _Unscaled | Rejection:
    """Hold the quantity whose one-ATR move is ``volatility_target`` of equity."""
    if inputs.atr <= 0:
        return _not_positive("ATR", inputs.atr)
    target = exact(config.volatility_target)
    quantity = inputs.equity * target / inputs.atr
    risk_fraction = target * inputs.stop_distance / inputs.atr
    return _Unscaled(
        quantity=quantity,
        method=SizingMethod.VOLATILITY,
        risk_fraction=float(risk_fraction),
        detail=f"volatility: {plain(target)} of equity {plain(inputs.equity)} per ATR "
        f"{plain(inputs.atr)} = {_shown(quantity)}, risking "
        f"{risk_fraction:.4f} of equity at stop distance {plain(inputs.stop_distance)}",
    )


_METHODS: dict[SizingMethod, Callable[[SizingConfig, _Inputs], _Unscaled | Rejection]] = {
    SizingMethod.FIXED_FRACTIONAL: _fixed_fractional,
    SizingMethod.HALF_KELLY: _half_kelly,
    SizingMethod.VOLATILITY: _volatility,
}


def _risked(fraction: Decimal, inputs: _Inputs, quantity: Decimal) -> str:
    """Describe ``equity * fraction / stop distance = quantity``."""
    return (
        f"risk {fraction:.4g} of equity {plain(inputs.equity)} over stop distance "
        f"{plain(inputs.stop_distance)} = {_shown(quantity)}"
    )


def _not_positive(name: str, value: Decimal) -> Rejection:
    """Refuse an input that must be positive."""
    return Rejection(
        rule="sizing", detail=f"{name} {plain(value)} is not positive", observed=float(value)
    )


def _mean(values: Sequence[Decimal]) -> Decimal:
    """Return the arithmetic mean of a non-empty sequence."""
    return sum(values, Decimal(0)) / len(values)


def _shown(quantity: Decimal) -> str:
    """Format an unrounded quantity to 12 decimals, enough to show what rounds to zero."""
    with localcontext(_WIDE):
        return plain(quantity.quantize(_SHOWN_STEP, rounding=ROUND_FLOOR))
