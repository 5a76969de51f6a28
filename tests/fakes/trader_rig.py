"""The trading step's rig: the standard rules, a fresh trader, one instant at a time, and a
trader rebuilt from what it persisted.

The standard rules (``CONFIG``): 10,000 cash, fee 0.1 %, a flat 5 bps of slippage (no volume
impact), fixed fractional sizing risking 1 % of equity, full size from a confidence of 0.5,
stops 2 ATR away, targets at 2R, a trail from 1R at 1.5 ATR, and no spacing or cooldown
between entries. The standard entry is a BUY on BTC at a close of 100 with an ATR of 2:

- quantity 10000 * 0.01 / (2 * 2) = 25, filled at 100 * 1.0005 = 100.05;
- stop 100.05 - 4 = 96.05, risk per unit 4, target 100.05 + 2 * 4 = 108.05 (from the fill);
- fee 25 * 100.05 * 0.001 = 2.50125; cash 10000 - 2501.25 - 2.50125 = 7496.24875.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from fakes.trading import MINUTE, T0, candle, signal
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.broker.config import FillConfig
from paper_trader.broker.ledger import Ledger
from paper_trader.domain import Candle, Signal, Strength
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.trading.trader import InstantResult, MarketInput, Trader, TraderConfig

D = Decimal
CASH = D(10_000)
ENTRY_CASH = D("7496.24875")
QUIET = "100 100.5 99.5 100"
CONFIG = TraderConfig(
    breakers=BreakerConfig(
        max_daily_loss=0.5,
        max_drawdown=0.5,
        min_time_between_trades_ms=0,
        stop_loss_cooldown_ms=0,
    ),
    limits=LimitsConfig(max_position_size=0.5, max_total_exposure=1.0),
    sizing=SizingConfig(risk_per_trade=0.01, confidence_full_size=0.5),
    exits=ExitConfig(),
    fills=FillConfig(fee_rate=D("0.001"), slippage_bps=D(5), impact_bps=D(0)),
)
# The standard rules with shorts allowed and loss breakers that trip only at 99 %.
SHORTS_CONFIG = replace(
    CONFIG,
    breakers=replace(CONFIG.breakers, max_daily_loss=0.99, max_drawdown=0.99),
    limits=replace(CONFIG.limits, allow_short=True),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instant:
    """One decision instant of a random walk: its minute, markets, signals and block."""

    minute: int
    markets: tuple[MarketInput, ...]
    signals: tuple[Signal, ...]
    entries_blocked: str | None = None


def walk_prices(
    draw: DrawFn, start: Decimal, move: Callable[[Decimal, int], Decimal]
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Draw the open, high, low and close of a random walk's next candle from ``start``:
    ``move(price, points)`` moves a price by basis points (up to 1 % to the open, 3 % on to
    the close, 2 % beyond them to the high and the low)."""
    open_ = move(start, draw(st.integers(-100, 100)))
    close = move(open_, draw(st.integers(-300, 300)))
    high = move(max(open_, close), draw(st.integers(0, 200)))
    low = move(min(open_, close), -draw(st.integers(0, 200)))
    return open_, high, low, close


def walk_markets(
    draw: DrawFn,
    symbols: Sequence[str],
    closes: dict[str, Decimal],
    bar: Callable[[str, Decimal], st.SearchStrategy[MarketInput]],
    confidences: Sequence[float],
) -> tuple[list[MarketInput], list[Signal]]:
    """Draw the next candle of each symbol's walk, ``bar(symbol, last close)`` (``closes``
    keeps the new close), and a signal of any strength and one of ``confidences`` on it."""
    markets, signals = [], []
    for symbol in symbols:
        drawn = draw(bar(symbol, closes[symbol]))
        closes[symbol] = drawn.candle.close
        markets.append(drawn)
        strength = draw(st.sampled_from(Strength))
        signals.append(signal(drawn.candle, strength, draw(st.sampled_from(confidences))))
    return markets, signals


def market(bar: Candle, atr: str | Decimal | None = "2", **flags: bool) -> MarketInput:
    """Return ``bar`` as the trading step sees it, with an ATR of ``atr`` (2 % of 100)."""
    atr_pct = None if atr is None else float(D(atr) / bar.close * 100)
    return MarketInput(candle=bar, atr=None if atr is None else D(atr), atr_pct=atr_pct, **flags)


def make_trader(config: TraderConfig = CONFIG, *, cash: Decimal = CASH, **changes: Any) -> Trader:
    """Return a fresh trader with ``cash``; ``changes`` replace whole parts of ``config``."""
    return Trader(replace(config, **changes), Ledger(cash))


def step(
    trader: Trader,
    minute: int,
    markets: Sequence[MarketInput],
    signals: Sequence[Signal] = (),
    *,
    entries_blocked: str | None = None,
) -> InstantResult:
    """Run the instant ``minute`` minutes after T0."""
    by_symbol = {s.symbol: s for s in signals}
    return trader.on_instant(
        T0 + minute * MINUTE, markets, by_symbol, entries_blocked=entries_blocked
    )


def enter(trader: Trader, ohlc: str = "100 101 99 100") -> InstantResult:
    """Run the standard entry: a BUY on BTC at minute 0, closing at 100 with an ATR of 2."""
    bar = candle(0, ohlc)
    return step(trader, 0, [market(bar)], [signal(bar)])


def restart(trader: Trader, recent: Sequence[Candle] = ()) -> Trader:
    """Return a trader rebuilt from what is persisted: state JSON, ledger, history, marks,
    and the stored candles that rebuild the rolling returns."""
    ledger = Ledger(
        trader.ledger.cash,
        positions=dict(trader.ledger.positions),
        next_fill_id=trader.ledger.next_fill_id,
    )
    return Trader(
        trader.config,
        ledger,
        state=json.loads(trader.state_json()),
        history=tuple(trader.history),
        last_candle_ms=trader.last_candle_ms,
        marks=dict(trader.last_candles),
        recent=recent,
    )
