"""Exit rules: entry levels, the protective stop and target, the trailing stop, time and signal.

All prices are ``Decimal``; config floats enter through ``config.exact`` so that every level is
exact and the same on replay. Nothing is quantized: Decimal's default 28-digit context is the
only rounding.

A position is entered at the close of its entry candle, and its levels are placed from its
fill price (the close plus slippage), not from the decision close: the stop lies the stop
distance against the fill, the target the reward distance beyond it, and the trail activates
and trails from the fill and the best price since. So a take-profit always earns its target
distance before fees, however much the entry slipped.

``protective_exit`` is called for every later candle with the levels as they stood before that
candle, and checks them in a fixed, conservative order, because the path of the price inside a
candle is unknown. For a long (a short is the mirror image: open ≥ stop, high ≥ stop, low ≤
target):

1. a short's candle opens at or beyond its margin call (``broker/margin.py``): the gap went
   past its collateral; exit at the open (``margin_call``, ``stop_gap_open``);
2. open ≤ active stop: the candle gapped through the stop; exit at the open (``stop_gap_open``);
3. low ≤ active stop: exit at the stop (``stop_touch``), even when the same candle also reached
   the target: with both in one candle we assume the stop came first;
4. a target is set and high ≥ target: exit at the target (``target_limit``), also when the
   candle opened beyond it, since a resting limit order fills at its limit price.

The active stop is the tightest of the initial stop, the trailing stop and the margin call
(which an entry keeps beyond the stop, so it binds only on a gap).

When nothing triggers, ``advance`` ratchets the best price and the trailing stop with this
candle's range; the new trail is first tested on the next candle. The time exit and the
opposite-signal exit are decided at a candle's close and fill at that close (``market_close``).
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from paper_trader.domain.candle import Candle
from paper_trader.domain.signal import Strength
from paper_trader.domain.trading import ExitReason, FillModel, Position, Rejection, Side
from paper_trader.risk.config import ExitConfig, exact

_OPPOSITE_STRONG = {Side.LONG: Strength.STRONG_SELL, Side.SHORT: Strength.STRONG_BUY}


@dataclass(frozen=True, slots=True, kw_only=True)
class Levels:
    """The protective levels of a new position.

    ``take_profit`` is None when there is no target (a risk/reward of 0, or a short's target
    that would not be above zero); ``risk_per_unit`` is ``|entry - stop|``.
    """

    stop: Decimal
    take_profit: Decimal | None
    risk_per_unit: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitSignal:
    """A decision to close: why, at which raw trigger price (before slippage), and how it fills."""

    reason: ExitReason
    price: Decimal
    fill_model: FillModel


def stop_distance(atr: Decimal, config: ExitConfig) -> Decimal | Rejection:
    """Return the stop distance ``stop_loss_atr_multiplier * atr`` (what sizing risks per
    unit), or ``Rejection("stop_distance")`` for a non-finite or non-positive ATR or distance."""
    if not atr.is_finite() or atr <= 0:
        return Rejection(
            rule="stop_distance",
            detail=f"the ATR must be positive to place a stop, not {atr}",
            observed=float(atr),
            limit=0.0,
        )
    distance = exact(config.stop_loss_atr_multiplier) * atr
    if distance <= 0:
        return Rejection(
            rule="stop_distance",
            detail=f"a stop multiplier of {config.stop_loss_atr_multiplier:g} ATR places the "
            "stop at the entry",
            observed=float(distance),
            limit=0.0,
        )
    return distance


def entry_levels(
    side: Side, price: Decimal, atr: Decimal, config: ExitConfig
) -> Levels | Rejection:
    """Return the stop and target for an entry filled at ``price``, or why it has no valid stop.

    The stop lies ``stop_distance`` against the position; the target lies
    ``take_profit_risk_reward`` stop-distances in its favour; ``risk_per_unit`` is that stop
    distance, the very figure sizing risked. A non-finite or non-positive ATR, a stop that is
    not strictly on the losing side of the entry, or a long stop at or below zero gives
    ``Rejection("stop_distance")``.
    """
    risk_per_unit = stop_distance(atr, config)
    if isinstance(risk_per_unit, Rejection):
        return risk_per_unit
    stop = price - side.sign * risk_per_unit
    if side.sign * (price - stop) <= 0 or stop <= 0:
        return Rejection(
            rule="stop_distance",
            detail=f"the stop {stop} for an entry at {price} is not a usable price",
            observed=float(stop),
            limit=0.0,
        )
    reward = exact(config.take_profit_risk_reward)
    target = price + side.sign * reward * risk_per_unit if reward > 0 else None
    if target is not None and target <= 0:
        target = None
    return Levels(stop=stop, take_profit=target, risk_per_unit=risk_per_unit)


def active_stop(position: Position) -> tuple[Decimal, ExitReason]:
    """Return the binding stop and its reason: the tightest of the initial stop, the trailing
    stop and a short's margin call.

    A trailing stop or a margin call binds only when it is strictly tighter; on a tie the
    initial stop (``STOP_LOSS``) is reported.
    """
    sign = position.side.sign
    stop, reason = position.stop_price, ExitReason.STOP_LOSS
    trailing = position.trailing_stop_price
    if trailing is not None and sign * (trailing - stop) > 0:
        stop, reason = trailing, ExitReason.TRAILING_STOP
    margin_call = position.margin_call_price
    if margin_call is not None and sign * (margin_call - stop) > 0:
        stop, reason = margin_call, ExitReason.MARGIN_CALL
    return stop, reason


def protective_exit(position: Position, candle: Candle) -> ExitSignal | None:
    """Return the stop or target exit this candle triggers, checked in the conservative order.

    Call it for every candle after the entry candle, with the position's levels as they stood
    before this candle; see the module docstring for the order.
    """
    sign = position.side.sign
    adverse, favourable = (
        (candle.low, candle.high) if position.side is Side.LONG else (candle.high, candle.low)
    )
    margin_call = position.margin_call_price
    if margin_call is not None and sign * (candle.open - margin_call) <= 0:
        return ExitSignal(
            reason=ExitReason.MARGIN_CALL, price=candle.open, fill_model=FillModel.STOP_GAP_OPEN
        )
    stop, reason = active_stop(position)
    if sign * (candle.open - stop) <= 0:
        return ExitSignal(reason=reason, price=candle.open, fill_model=FillModel.STOP_GAP_OPEN)
    if sign * (adverse - stop) <= 0:
        return ExitSignal(reason=reason, price=stop, fill_model=FillModel.STOP_TOUCH)
    target = position.take_profit_price
    if target is not None and sign * (favourable - target) >= 0:
        return ExitSignal(
            reason=ExitReason.TAKE_PROFIT, price=target, fill_model=FillModel.TARGET_LIMIT
        )
    return None


def advance(position: Position, candle: Candle, config: ExitConfig) -> Position:
    """Return the position with its best price and trailing stop moved by this candle.

    Call it only when ``protective_exit`` found nothing. The trail activates once the best price
    is ``trailing_activation_r`` stop-distances beyond the entry, sits ``trailing_atr_multiplier``
    entry ATRs behind the best price, and never loosens. Returns ``position`` itself when
    nothing changed.
    """
    sign = position.side.sign
    if position.side is Side.LONG:
        extreme = max(position.extreme_price, candle.high)
    else:
        extreme = min(position.extreme_price, candle.low)
    trailing = position.trailing_stop_price
    activation = exact(config.trailing_activation_r) * position.risk_per_unit
    if config.trailing_stop and sign * (extreme - position.entry_price) >= activation:
        candidate = extreme - sign * exact(config.trailing_atr_multiplier) * position.atr
        if trailing is None or sign * (candidate - trailing) > 0:
            trailing = candidate
    if extreme == position.extreme_price and trailing == position.trailing_stop_price:
        return position
    return replace(position, extreme_price=extreme, trailing_stop_price=trailing)


def time_exit(position: Position, candle: Candle, config: ExitConfig) -> ExitSignal | None:
    """Return a close-price exit once the position has been held ``max_holding_ms`` (if > 0).

    Entered at the close of the candle opened at ``opened_candle_ms``, at the close of
    ``candle`` it has been held ``candle.open_time_ms - opened_candle_ms``.
    """
    if config.max_holding_ms <= 0:
        return None
    if candle.open_time_ms - position.opened_candle_ms < config.max_holding_ms:
        return None
    return ExitSignal(
        reason=ExitReason.MAX_HOLDING, price=candle.close, fill_model=FillModel.MARKET_CLOSE
    )


def signal_exit(
    position: Position, strength: Strength, candle: Candle, config: ExitConfig
) -> ExitSignal | None:
    """Return a close-price exit on a strong signal against the position, when enabled.

    Only STRONG_SELL closes a long and only STRONG_BUY closes a short; a plain SELL or BUY
    does not.
    """
    if not config.exit_on_opposite_signal or strength is not _OPPOSITE_STRONG[position.side]:
        return None
    return ExitSignal(
        reason=ExitReason.OPPOSITE_SIGNAL, price=candle.close, fill_model=FillModel.MARKET_CLOSE
    )
