"""Trading circuit breakers and the state machine ACTIVE → REDUCING → HALTED.

Over 400 lines on purpose: one state machine whose breakers share ``_switch``, one snapshot and
the rule list below; split apart, each rule would lose sight of the state it changes.

Global breakers set the trading state, the most severe of those tripped wins: ``daily_loss``,
``losing_streak`` and ``manual_pause`` allow exits only (REDUCING); ``account_deficit``,
``max_drawdown`` and ``emergency_stop`` allow nothing new (HALTED; the caller flattens open
positions). Per-symbol breakers (``stop_loss_cooldown``, ``volatility``, ``symbol_error``)
only block entries on their symbol.

Every time is a candle's ``open_time_ms``; the UTC day is ``t // DAY_MS``. Trips and resets are
returned as ``BreakerTransition`` values; tripping a tripped breaker returns nothing.

- ``daily_loss`` resets at the first mark of a later UTC day. That day starts from the last
  equity marked before it (the very first mark starts from its own equity).
- ``max_drawdown`` stays until ``resume()``, which sets the peak to the given equity (else to
  the last marked one): otherwise the next mark would trip it again at once. Resuming without a
  drawdown trip leaves the peak alone, so a pause cannot forgive a drawdown.
- ``losing_streak`` resets, with the count, once its cooldown of candle time has passed since
  the trade that tripped it; a trade with a net PnL of exactly zero leaves the count unchanged.
- ``stop_loss_cooldown`` starts at an exit that stopped the position out at the market's
  doing: a stop-loss, a margin call, or a trailing stop that lost money (net).
- ``account_deficit`` is tripped exactly while cash is below zero (a short bought back beyond
  its collateral and every other asset, ``broker/margin.py``): ``on_cash`` trips and resets it
  after every exit, whatever ``enabled`` says, and ``resume()`` does not clear it.
- ``volatility`` compares a symbol's new ATR % with the median of its previous window (the new
  value excluded); it never trips on a zero median, and non-finite values are ignored.
- With ``enabled`` off no automatic breaker trips but ``account_deficit``; the manual controls
  and the minimum time between entries still apply, and trips restored from a snapshot still
  reset by their rules.
- ``symbol_error`` trips when a stage of the decision task failed on one of the symbol's
  candles (the symbol is quarantined: its candles are still stored, marked and exited, but
  nothing new is entered on it); it resets after ``fault_clean_candles`` later candles of the
  symbol went through without an error, or when the operator resumes; a new error restarts
  the count.
- Manual breakers carry no numbers: their ``threshold`` and ``observed`` are empty.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from paper_trader.domain.trading import (
    DAY_MS,
    BreakerTransition,
    ClosedTrade,
    ExitReason,
    Rejection,
    TradingState,
    plain,
)
from paper_trader.errors import ConfigError
from paper_trader.risk.config import BreakerConfig, exact
from paper_trader.risk.rolling import RollingMedian

DAILY_LOSS = "daily_loss"
MAX_DRAWDOWN = "max_drawdown"
LOSING_STREAK = "losing_streak"
MANUAL_PAUSE = "manual_pause"
EMERGENCY_STOP = "emergency_stop"
ACCOUNT_DEFICIT = "account_deficit"
STOP_LOSS_COOLDOWN = "stop_loss_cooldown"
VOLATILITY = "volatility"
SYMBOL_ERROR = "symbol_error"

# The state each global breaker imposes, in display order.
_GLOBAL_STATES = {
    ACCOUNT_DEFICIT: TradingState.HALTED,
    EMERGENCY_STOP: TradingState.HALTED,
    MAX_DRAWDOWN: TradingState.HALTED,
    DAILY_LOSS: TradingState.REDUCING,
    LOSING_STREAK: TradingState.REDUCING,
    MANUAL_PAUSE: TradingState.REDUCING,
}
_SYMBOL_BREAKERS = (STOP_LOSS_COOLDOWN, VOLATILITY, SYMBOL_ERROR)
_STOPPED_OUT = frozenset({ExitReason.STOP_LOSS, ExitReason.MARGIN_CALL})
_SNAPSHOT_VERSION = 1


class TradingBreakers:
    """Trip and reset the trading breakers on candle time; answer whether an entry may go."""

    def __init__(self, config: BreakerConfig, snapshot: Mapping[str, object] | None = None) -> None:
        self._config = config
        self._global: dict[str, BreakerTransition] = {}
        self._symbol: dict[str, dict[str, BreakerTransition]] = {b: {} for b in _SYMBOL_BREAKERS}
        self._peak: Decimal | None = None
        self._day: int | None = None
        self._day_start: Decimal | None = None
        self._last_equity: Decimal | None = None
        self._losses = 0
        self._cooldown_until: dict[str, int] = {}
        self._last_entry: tuple[str, int] | None = None
        self._windows: dict[str, RollingMedian] = {}
        self._vol_levels: dict[str, tuple[float, float]] = {}  # tripped symbol: (ATR %, limit)
        self._clean_left: dict[str, int] = {}  # quarantined symbol: clean candles still due
        if snapshot is not None:
            self._restore(snapshot)

    @property
    def state(self) -> TradingState:
        """Return the most severe state imposed by a tripped global breaker (else ACTIVE)."""
        return _state_of(self._global)

    @property
    def peak_equity(self) -> Decimal | None:
        """Return the peak equity the drawdown is measured from (None before the first mark)."""
        return self._peak

    def tripped(self) -> tuple[BreakerTransition, ...]:
        """Return the transitions that tripped the current trips: global, then per symbol."""
        trips = [self._global[n] for n in _GLOBAL_STATES if n in self._global]
        for breaker in _SYMBOL_BREAKERS:
            trips += [self._symbol[breaker][s] for s in sorted(self._symbol[breaker])]
        return tuple(trips)

    def mark(self, candle_time_ms: int, equity: Decimal) -> list[BreakerTransition]:
        """Mark the equity once per decision instant, after exits; trip and reset what is due."""
        out = self._roll_day(candle_time_ms, equity)
        out += self.on_time(candle_time_ms)
        if self._peak is None or equity > self._peak:
            self._peak = equity
        self._last_equity = equity
        if self._config.enabled:
            out += self._check_daily_loss(candle_time_ms, equity)
            out += self._check_drawdown(candle_time_ms, equity)
        return out

    def on_time(self, candle_time_ms: int) -> list[BreakerTransition]:
        """Reset the losing streak and the stop-loss cooldowns whose time has passed."""
        t, out = candle_time_ms, list[BreakerTransition]()
        streak = self._global.get(LOSING_STREAK)
        wait = self._config.losing_streak_cooldown_ms
        if streak is not None and t - streak.candle_time_ms >= wait:
            self._losses = 0
            reason = f"losing streak cooldown of {_duration(wait)} has passed"
            elapsed = str(t - streak.candle_time_ms)
            out += self._switch(LOSING_STREAK, t, False, reason, str(wait), elapsed)
        wait = self._config.stop_loss_cooldown_ms
        for symbol, until in sorted(self._cooldown_until.items()):
            if t >= until:
                del self._cooldown_until[symbol]
                reason = f"{symbol} stop-loss cooldown of {_duration(wait)} has passed"
                elapsed = str(t - (until - wait))
                out += self._switch(
                    STOP_LOSS_COOLDOWN, t, False, reason, str(wait), elapsed, symbol
                )
        return out

    def on_volatility(
        self, symbol: str, candle_time_ms: int, atr_pct: float
    ) -> list[BreakerTransition]:
        """Feed a candle's ATR % for ``symbol``; trip or reset its volatility breaker."""
        if not math.isfinite(atr_pct):
            return []
        window = self._windows.get(symbol)
        if window is None:
            window = self._windows[symbol] = RollingMedian(self._config.volatility_window)
        out = self._check_volatility(symbol, candle_time_ms, atr_pct, window)
        window.push(atr_pct)
        return out

    def on_trade_closed(self, trade: ClosedTrade) -> list[BreakerTransition]:
        """Count a closed trade towards the losing streak; start a stop-loss cooldown after a
        stop-loss, a margin call or a losing trailing stop."""
        out = self._count_loss(trade)
        wait = self._config.stop_loss_cooldown_ms
        if self._config.enabled and _is_stopped_out(trade) and wait > 0:
            symbol, closed = trade.symbol, trade.closed_candle_ms
            until = max(closed + wait, self._cooldown_until.get(symbol, closed))
            self._cooldown_until[symbol] = until
            how = "" if trade.exit_reason is ExitReason.STOP_LOSS else f" ({trade.exit_reason})"
            reason = (
                f"{symbol} stopped out{how} at {_money(trade.exit_price)}; "
                f"entries blocked for {_duration(wait)}, until candle time {until}"
            )
            out += self._switch(STOP_LOSS_COOLDOWN, closed, True, reason, str(wait), "0", symbol)
        return out

    def on_fault(self, symbol: str, candle_time_ms: int, error: str) -> list[BreakerTransition]:
        """Quarantine ``symbol`` after an error on its candle (again: restart the count)."""
        needed = self._config.fault_clean_candles
        self._clean_left[symbol] = needed
        reason = (
            f"{symbol}: {error}; no entries until {needed} clean candles or the operator resumes"
        )
        return self._switch(SYMBOL_ERROR, candle_time_ms, True, reason, str(needed), "0", symbol)

    def on_clean(self, symbol: str, candle_time_ms: int) -> list[BreakerTransition]:
        """Count a candle of ``symbol`` that went through without an error."""
        left = self._clean_left.get(symbol)
        if left is None:
            return []
        if left > 1:
            self._clean_left[symbol] = left - 1
            return []
        del self._clean_left[symbol]
        needed = self._config.fault_clean_candles
        reason = f"{symbol}: {needed} clean candles since the last error"
        return self._switch(
            SYMBOL_ERROR, candle_time_ms, False, reason, str(needed), str(needed), symbol
        )

    def on_cash(self, candle_time_ms: int, cash: Decimal) -> list[BreakerTransition]:
        """Trip ``account_deficit`` (HALTED) while ``cash`` is below zero, reset it once not."""
        shown, observed = plain(cash.quantize(Decimal("0.01"))), format(cash, "f")
        if cash < 0:
            reason = (
                f"cash is {shown}, below zero: a short was bought back beyond its collateral "
                "and the account's other cash; nothing new can be paid for"
            )
            return self._switch(ACCOUNT_DEFICIT, candle_time_ms, True, reason, "0", observed)
        reason = f"cash is back at {shown}, not below zero"
        return self._switch(ACCOUNT_DEFICIT, candle_time_ms, False, reason, "0", observed)

    def on_entry(self, symbol: str, candle_time_ms: int) -> None:
        """Remember an entry: the next one on any symbol must wait the minimum time."""
        self._last_entry = (symbol, candle_time_ms)

    def entry_block(self, symbol: str, candle_time_ms: int) -> Rejection | None:
        """Return why an entry on ``symbol`` is refused now, or None if it may go."""
        checks = (self._state_block, self._fault_block, self._cooldown_block)
        for check in (*checks, self._spacing_block, self._volatility_block):
            rejection = check(symbol, candle_time_ms)
            if rejection is not None:
                return rejection
        return None

    def pause(self, candle_time_ms: int, reason: str) -> list[BreakerTransition]:
        """Allow exits only until ``resume()``."""
        return self._switch(MANUAL_PAUSE, candle_time_ms, True, f"paused by the operator: {reason}")

    def emergency_stop(self, candle_time_ms: int, reason: str) -> list[BreakerTransition]:
        """Halt trading until ``resume()``; the caller flattens the open positions."""
        return self._switch(EMERGENCY_STOP, candle_time_ms, True, f"emergency stop: {reason}")

    def resume(self, candle_time_ms: int, equity: Decimal | None) -> list[BreakerTransition]:
        """Clear the manual breakers and the drawdown halt, moving the peak to ``equity``.

        ``daily_loss`` and ``losing_streak`` stay tripped until their own resets.
        """
        t = candle_time_ms
        out = self._switch(EMERGENCY_STOP, t, False, "emergency stop cleared by the operator")
        if MAX_DRAWDOWN in self._global:
            new_peak = equity if equity is not None else self._last_equity
            self._peak = new_peak if new_peak is not None else self._peak
            reason = f"drawdown halt cleared by the operator; peak equity set to {_money(new_peak)}"
            limit = format(exact(self._config.max_drawdown), "f")
            out += self._switch(MAX_DRAWDOWN, t, False, reason, limit, "0")
        for symbol in sorted(self._clean_left):
            del self._clean_left[symbol]
            reason = f"{symbol}: quarantine after an error lifted by the operator"
            out += self._switch(SYMBOL_ERROR, t, False, reason, symbol=symbol)
        return out + self._switch(MANUAL_PAUSE, t, False, "pause lifted by the operator")

    def windows_snapshot(self) -> dict[str, list[float]]:
        """Return the volatility windows (the bulky part of the state) as JSON values."""
        return {s: w.values() for s, w in self._windows.items()}

    def snapshot(self, *, windows: bool = True) -> dict[str, object]:
        """Return every piece of state as JSON-serialisable values (Decimals as text).

        Without ``windows`` the volatility windows are left out: a caller that persists
        them less often than the rest stores ``windows_snapshot()`` separately and puts it
        back under ``volatility_windows`` before restoring.
        """
        symbol_trips = [t for b in _SYMBOL_BREAKERS for t in self._symbol[b].values()]
        return {
            "version": _SNAPSHOT_VERSION,
            "global_trips": [_transition_json(t) for t in self._global.values()],
            "symbol_trips": [_transition_json(t) for t in symbol_trips],
            "peak_equity": _money(self._peak),
            "day": self._day,
            "day_start_equity": _money(self._day_start),
            "last_equity": _money(self._last_equity),
            "consecutive_losses": self._losses,
            "cooldown_until": dict(self._cooldown_until),
            "last_entry": None if self._last_entry is None else list(self._last_entry),
            **({"volatility_windows": self.windows_snapshot()} if windows else {}),
            "volatility_levels": {s: list(v) for s, v in self._vol_levels.items()},
            "clean_candles_left": dict(self._clean_left),
        }

    def _roll_day(self, candle_time_ms: int, equity: Decimal) -> list[BreakerTransition]:
        """Start a new UTC day at its first mark, resetting the daily loss breaker."""
        day = candle_time_ms // DAY_MS
        if self._day is None:
            self._day, self._day_start = day, equity
            return []
        if day <= self._day:
            return []
        self._day = day
        self._day_start = equity if self._last_equity is None else self._last_equity
        loss = self._daily_loss(equity)
        limit = format(exact(self._config.max_daily_loss), "f")
        reason = f"a new UTC day began from equity {_money(self._day_start)}; daily loss reset"
        observed = "n/a" if loss is None else _ratio(loss)
        return self._switch(DAILY_LOSS, candle_time_ms, False, reason, limit, observed)

    def _daily_loss(self, equity: Decimal) -> Decimal | None:
        """Return the fraction lost since the day's start (None without a positive start)."""
        start = self._day_start
        if start is None or start <= 0:
            return None
        return (start - equity) / start

    def _check_daily_loss(self, candle_time_ms: int, equity: Decimal) -> list[BreakerTransition]:
        """Trip ``daily_loss`` when the day's loss reached its limit."""
        loss = self._daily_loss(equity)
        limit = exact(self._config.max_daily_loss)
        if DAILY_LOSS in self._global or loss is None or loss < limit:
            return []
        reason = (
            f"daily loss of {_pct(loss)} reached the {_pct(limit)} limit (equity "
            f"{_money(equity)}, {_money(self._day_start)} at the start of the UTC day)"
        )
        threshold = format(limit, "f")
        return self._switch(DAILY_LOSS, candle_time_ms, True, reason, threshold, _ratio(loss))

    def _check_drawdown(self, candle_time_ms: int, equity: Decimal) -> list[BreakerTransition]:
        """Trip ``max_drawdown`` when equity fell its limit below the peak."""
        peak = self._peak
        if MAX_DRAWDOWN in self._global or peak is None or peak <= 0:
            return []
        drawdown = (peak - equity) / peak
        limit = exact(self._config.max_drawdown)
        if drawdown < limit:
            return []
        reason = (
            f"drawdown of {_pct(drawdown)} reached the {_pct(limit)} limit "
            f"(equity {_money(equity)}, peak {_money(peak)})"
        )
        threshold, observed = format(limit, "f"), _ratio(drawdown)
        return self._switch(MAX_DRAWDOWN, candle_time_ms, True, reason, threshold, observed)

    def _count_loss(self, trade: ClosedTrade) -> list[BreakerTransition]:
        """Update the consecutive loss count; trip ``losing_streak`` at its limit."""
        if trade.net_pnl > 0:
            self._losses = 0
        elif trade.net_pnl < 0:
            self._losses += 1
        limit, count = self._config.max_consecutive_losses, self._losses
        if not self._config.enabled or limit < 1 or count < limit:
            return []
        reason = (
            f"{count} consecutive losing trades (limit {limit}), "
            f"the last on {trade.symbol} netting {_money(trade.net_pnl)}"
        )
        t = trade.closed_candle_ms
        return self._switch(LOSING_STREAK, t, True, reason, str(limit), str(count))

    def _check_volatility(
        self, symbol: str, candle_time_ms: int, atr_pct: float, window: RollingMedian
    ) -> list[BreakerTransition]:
        """Compare ``atr_pct`` with the window's median; trip or reset ``symbol``."""
        if len(window) < max(1, self._config.volatility_min_samples):
            return []
        median, multiple, t = window.median(), self._config.volatility_multiple, candle_time_ms
        limit = multiple * median
        if symbol in self._symbol[VOLATILITY]:
            level = self._config.volatility_reset * multiple * median
            if atr_pct >= level:
                self._vol_levels[symbol] = (atr_pct, limit)
                return []
            del self._vol_levels[symbol]
            reason = f"{symbol} ATR {atr_pct:.6g} % fell below the reset level {level:.6g} %"
            return self._switch(
                VOLATILITY, t, False, reason, f"{level:.6g}", f"{atr_pct:.6g}", symbol
            )
        if not self._config.enabled or median <= 0 or atr_pct <= limit:
            return []
        self._vol_levels[symbol] = (atr_pct, limit)
        reason = (
            f"{symbol} ATR {atr_pct:.6g} % is above {limit:.6g} % ({multiple:g} times "
            f"the median {median:.6g} % of the previous {len(window)} candles)"
        )
        return self._switch(VOLATILITY, t, True, reason, f"{limit:.6g}", f"{atr_pct:.6g}", symbol)

    def _state_block(self, symbol: str, candle_time_ms: int) -> Rejection | None:
        """Refuse every entry unless trading is ACTIVE."""
        if not self._global:
            return None
        reasons = "; ".join(self._global[n].reason for n in _GLOBAL_STATES if n in self._global)
        return Rejection(rule="trading_state", detail=f"trading is {self.state}: {reasons}")

    def _fault_block(self, symbol: str, candle_time_ms: int) -> Rejection | None:
        """Refuse an entry on a symbol quarantined after an error on one of its candles."""
        trip = self._symbol[SYMBOL_ERROR].get(symbol)
        if trip is None:
            return None
        left = self._clean_left[symbol]
        detail = f"{trip.reason} ({left} clean candles to go)"
        return Rejection(rule=SYMBOL_ERROR, detail=detail, observed=float(left), limit=0.0)

    def _cooldown_block(self, symbol: str, candle_time_ms: int) -> Rejection | None:
        """Refuse an entry on a symbol still cooling down after a stop-loss."""
        until = self._cooldown_until.get(symbol)
        if until is None or candle_time_ms >= until:
            return None
        left, wait = until - candle_time_ms, self._config.stop_loss_cooldown_ms
        detail = (
            f"{symbol} is cooling down after a stop-loss: {left} ms ({_duration(left)}) "
            f"left of {wait} ms ({_duration(wait)})"
        )
        return Rejection(
            rule=STOP_LOSS_COOLDOWN, detail=detail, observed=float(left), limit=float(wait)
        )

    def _spacing_block(self, symbol: str, candle_time_ms: int) -> Rejection | None:
        """Refuse an entry too soon after the last one on any symbol."""
        if self._last_entry is None:
            return None
        (last_symbol, last_ms), minimum = self._last_entry, self._config.min_time_between_trades_ms
        elapsed = candle_time_ms - last_ms
        if elapsed >= minimum:
            return None
        detail = (
            f"the last entry ({last_symbol}) was {elapsed} ms ago; "
            f"entries must be {minimum} ms ({_duration(minimum)}) apart"
        )
        return Rejection(
            rule="min_time_between_trades",
            detail=detail,
            observed=float(elapsed),
            limit=float(minimum),
        )

    def _volatility_block(self, symbol: str, candle_time_ms: int) -> Rejection | None:
        """Refuse an entry on a symbol whose volatility breaker is tripped."""
        if symbol not in self._symbol[VOLATILITY]:
            return None
        atr_pct, limit = self._vol_levels[symbol]
        detail = f"{symbol} is too volatile: ATR {atr_pct:.6g} % is above {limit:.6g} %"
        return Rejection(rule=VOLATILITY, detail=detail, observed=atr_pct, limit=limit)

    def _switch(  # noqa: PLR0917 - every call site passes the same six facts in this order
        self,
        breaker: str,
        candle_time_ms: int,
        trip: bool,
        reason: str,
        threshold: str = "",
        observed: str = "",
        symbol: str | None = None,
    ) -> list[BreakerTransition]:
        """Trip or reset ``breaker``; return the transition, or nothing if it is already so."""
        trips = self._global if symbol is None else self._symbol[breaker]
        key = breaker if symbol is None else symbol
        if (key in trips) is trip:
            return []
        after = set(self._global) ^ ({breaker} if symbol is None else set())
        transition = BreakerTransition(
            breaker=breaker,
            tripped=trip,
            state=_state_of(after),
            reason=reason,
            threshold=threshold,
            observed=observed,
            candle_time_ms=candle_time_ms,
            symbol=symbol,
        )
        if trip:
            trips[key] = transition
        else:
            del trips[key]
        return [transition]

    def _restore(self, snapshot: Mapping[str, object]) -> None:
        """Load the state written by ``snapshot()``; raise ConfigError if it is malformed."""
        data: Any = snapshot  # shape checked by the conversions and the consistency test below
        if data.get("version") != _SNAPSHOT_VERSION:
            raise ConfigError(f"breaker snapshot: unknown version {data.get('version')!r}")
        try:
            for item in data["global_trips"]:
                self._global[item["breaker"]] = _transition(item)
            for item in data["symbol_trips"]:
                self._symbol[item["breaker"]][item["symbol"]] = _transition(item)
            self._peak = _optional_decimal(data["peak_equity"])
            self._day = None if data["day"] is None else int(data["day"])
            self._day_start = _optional_decimal(data["day_start_equity"])
            self._last_equity = _optional_decimal(data["last_equity"])
            self._losses = int(data["consecutive_losses"])
            self._cooldown_until = {str(s): int(u) for s, u in data["cooldown_until"].items()}
            if data["last_entry"] is not None:
                self._last_entry = (str(data["last_entry"][0]), int(data["last_entry"][1]))
            size, windows = self._config.volatility_window, data.get("volatility_windows", {})
            self._windows = {str(s): RollingMedian(size, _floats(v)) for s, v in windows.items()}
            for symbol, (atr_pct, limit) in data["volatility_levels"].items():
                self._vol_levels[str(symbol)] = (float(atr_pct), float(limit))
            left = data.get("clean_candles_left", {})  # absent before quarantines existed
            self._clean_left = {str(s): int(n) for s, n in left.items()}
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            raise ConfigError(f"breaker snapshot is malformed: {exc!r}") from exc
        if (
            not set(self._global) <= set(_GLOBAL_STATES)
            or set(self._symbol[STOP_LOSS_COOLDOWN]) != set(self._cooldown_until)
            or set(self._symbol[VOLATILITY]) != set(self._vol_levels)
            or set(self._symbol[SYMBOL_ERROR]) != set(self._clean_left)
        ):
            raise ConfigError("breaker snapshot: the trips and their data disagree")


def _is_stopped_out(trade: ClosedTrade) -> bool:
    """Return whether ``trade`` ended at a stop, a margin call, or a trailing stop at a loss."""
    reason = trade.exit_reason
    return reason in _STOPPED_OUT or (reason is ExitReason.TRAILING_STOP and trade.net_pnl < 0)


def _state_of(global_trips: Iterable[str]) -> TradingState:
    """Return the most severe state the named global breakers impose (ACTIVE if none)."""
    states = (_GLOBAL_STATES[name] for name in global_trips)
    return max(states, key=lambda state: state.rank, default=TradingState.ACTIVE)


def _transition_json(transition: BreakerTransition) -> dict[str, object]:
    """Return a transition as JSON values."""
    return {**dataclasses.asdict(transition), "state": transition.state.value}


def _transition(item: Mapping[str, Any]) -> BreakerTransition:
    """Return the transition ``_transition_json`` wrote into a snapshot."""
    return BreakerTransition(**{**item, "state": TradingState(item["state"])})


def _optional_decimal(text: object) -> Decimal | None:
    """Return snapshot money text as a finite Decimal, keeping None."""
    if text is None:
        return None
    value = Decimal(str(text))
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite amount")
    return value


def _floats(values: list[Any]) -> list[float]:
    """Return snapshot numbers as finite floats."""
    floats = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(floats) != len(values) or not all(math.isfinite(v) for v in floats):
        raise ValueError(f"volatility windows hold finite numbers only, not {values!r}")
    return floats


def _money(value: Decimal | None) -> str | None:
    """Return money with all its digits and no exponent, keeping None."""
    return None if value is None else format(value, "f")


def _ratio(value: Decimal) -> str:
    """Return a fraction rounded to six places, without trailing zeros (0.061200 → 0.0612)."""
    return plain(value.quantize(Decimal("1e-6")))


def _pct(value: Decimal) -> str:
    """Return a fraction as a percentage with two places at most (0.0612 → 6.12 %)."""
    return plain((value * 100).quantize(Decimal("0.01"))) + " %"


def _duration(ms: int) -> str:
    """Return milliseconds as minutes (1_800_000 → 30 min)."""
    return f"{ms / 60_000:g} min"
