"""Levels from the fill, and no trade that cannot pay its costs: stops and targets are placed
from the fill price, and an entry whose target cannot pay its round trip is refused
(``cost_edge``). Unless a test says otherwise the rules are ``SHORTS_CONFIG`` of
``fakes.trader_rig`` (fee 0.1 %, a flat 5 bps of slippage, stops 2 ATR away, targets at 2R)."""

import random
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

import pytest
from fakes.candles import candle_of
from fakes.trader_rig import CASH, SHORTS_CONFIG, make_trader, market, step
from fakes.trading import BTC, ETH, MINUTE, T0, candle, signal

from paper_trader.broker.config import FillConfig
from paper_trader.broker.ledger import Ledger
from paper_trader.domain import Candle
from paper_trader.domain.trading import Action, ClosedTrade, ExitReason
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.trading.trader import MarketInput, Trader, TraderConfig

D = Decimal


# levels from the fill, and the cost edge


def test_levels_are_placed_from_the_fill_price() -> None:
    """Filled at 100.05: stop 96.05, target 108.05 (not 96 and 108 from the close 100)."""
    trader = make_trader(SHORTS_CONFIG)
    bar = candle(0, "100 101 99 100")
    step(trader, 0, [market(bar)], [signal(bar)])
    position = trader.ledger.positions[BTC]
    assert (position.entry_price, position.stop_price, position.take_profit_price) == (
        D("100.05"),
        D("96.05"),
        D("108.05"),
    )
    assert position.risk_per_unit == D(4)


ETH_CLOSE = "1873.00"
ETH_FILLS = FillConfig(fee_rate=D("0.001"), slippage_bps=D("7.5"), impact_bps=D(0))


def test_an_entry_whose_target_cannot_pay_its_costs_is_refused_with_the_numbers() -> None:
    """The real ETH trade: close 1873.00, filled 7.5 bps higher at 1874.40475, ATR 0.3075.

    Its target from the close (1874.23) lay below the fill: a take-profit that lost money.
    From the fill the target is 1874.40475 + 4 * 0.3075 = 1875.63475, 1.23 away, while the
    round trip costs 1.40475 + 1.87440475 + 1.87563475 + 1.40672606 = 6.56151556 per unit.
    """
    trader = make_trader(SHORTS_CONFIG, fills=ETH_FILLS)
    bar = candle(0, f"1873.2 1873.5 1872.8 {ETH_CLOSE}", symbol=ETH)
    result = step(trader, 0, [market(bar, "0.3075")], [signal(bar)])
    (decision,) = result.decisions
    assert (decision.action, decision.rule) == (Action.REJECTED, "cost_edge")
    assert decision.detail == (
        "target distance 1.23 (target 1875.63475 from the fill 1874.40475) does not exceed "
        "2 x the round trip's costs of 6.561516 per unit = 13.123031 (entry slippage 1.40475, "
        "entry fee 1.874405, exit fee 1.875635, exit slippage 1.406726)"
    )
    assert result.fills == []


def test_with_the_cost_edge_off_a_take_profit_still_earns_its_distance() -> None:
    """With the rule off the same entry is taken; its target lies above the fill."""
    trader = make_trader(
        SHORTS_CONFIG,
        fills=ETH_FILLS,
        limits=replace(SHORTS_CONFIG.limits, min_edge_cost_multiple=0.0),
    )
    bar = candle(0, f"1873.2 1873.5 1872.8 {ETH_CLOSE}", symbol=ETH)
    step(trader, 0, [market(bar, "0.3075")], [signal(bar)])
    position = trader.ledger.positions[ETH]
    assert position.take_profit_price == D("1875.63475")
    (trade,) = step(trader, 1, [market(candle(1, "1874.5 1876 1874.3 1875", symbol=ETH))]).trades
    assert trade.exit_reason is ExitReason.TAKE_PROFIT
    assert trade.gross_pnl > 0


def quiet_candles(seed: int, count: int, *, lively: bool = False) -> list[Candle]:
    """Return ``count`` quiet, real-like 1m BTC candles: a random walk of ~1 bp a minute
    around 30,000, ranges of a few bps, 20 to 200 BTC a minute. ``lively`` makes every other
    stretch of 100 minutes fifteen times as volatile."""
    rng = random.Random(seed)
    close, out = 30_000.0, []
    for minute in range(count):
        sigma = 0.0015 if lively and (minute // 100) % 2 else 0.0001
        open_ = close
        close = open_ * (1 + rng.gauss(0, sigma))
        high = max(open_, close) * (1 + abs(rng.gauss(0, sigma / 2)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, sigma / 2)))
        prices = (D(f"{p:.2f}") for p in (open_, high, low, close))
        volume = D(f"{rng.uniform(20, 200):.4f}")
        out.append(candle_of(T0 + minute * MINUTE, *prices, volume, symbol=BTC))
    return out


def wilder_atr(candles: Sequence[Candle], period: int = 14) -> list[Decimal | None]:
    """Return the ATR(14) after each candle (None until warm), as the features compute it."""
    atr: float | None = None
    out: list[Decimal | None] = []
    previous: float | None = None
    for i, bar in enumerate(candles):
        high, low = float(bar.high), float(bar.low)
        true_range = high - low
        if previous is not None:
            true_range = max(true_range, abs(high - previous), abs(low - previous))
        previous = float(bar.close)
        atr = true_range if atr is None else (atr * (period - 1) + true_range) / period
        out.append(D(repr(atr)) if i >= period else None)
    return out


QUIET_CONFIG = TraderConfig(
    breakers=BreakerConfig(min_time_between_trades_ms=0, stop_loss_cooldown_ms=0),
    limits=LimitsConfig(),
    sizing=SizingConfig(),
    exits=ExitConfig(),
    fills=FillConfig(),  # Binance: 0.1 % fee, 5 bps + 10 bps per 1 % of the volume
)


def run_quiet(seed: int) -> tuple[list[ClosedTrade], list[tuple[str | None, str]]]:
    """Buy on every candle of a quiet walk; return the trades and the decisions' rules."""
    candles = quiet_candles(seed, 600)
    trader = Trader(QUIET_CONFIG, Ledger(CASH))
    trades: list[ClosedTrade] = []
    rules: list[tuple[str | None, str]] = []
    for bar, atr in zip(candles, wilder_atr(candles), strict=True):
        inputs = [MarketInput(candle=bar, atr=atr, atr_pct=None)]
        result = trader.on_instant(bar.open_time_ms, inputs, {BTC: signal(bar)})
        trades.extend(result.trades)
        rules.extend((d.rule, d.detail) for d in result.decisions)
    return trades, rules


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_candles_give_no_take_profit_that_loses_before_fees(seed: int) -> None:
    """Ten hours of quiet 1m candles, a BUY on each: no take-profit exit has a negative gross
    PnL, and the entries whose target could not pay the round trip are refused as cost_edge."""
    trades, rules = run_quiet(seed)
    assert all(t.gross_pnl > 0 for t in trades if t.exit_reason is ExitReason.TAKE_PROFIT)
    refused = [detail for rule, detail in rules if rule == "cost_edge"]
    assert refused
    assert all(" does not exceed 2 x the round trip's costs of " in d for d in refused)


def test_the_cost_edge_lets_through_only_entries_that_can_pay_their_costs() -> None:
    """Quiet stretches and lively ones: the positions opened (on the lively ones) have targets
    more than twice their round trip's costs away from the fill."""
    candles = quiet_candles(4, 600, lively=True)
    trader = Trader(QUIET_CONFIG, Ledger(CASH))
    fee, checked = QUIET_CONFIG.fills.fee_rate, 0
    for bar, atr in zip(candles, wilder_atr(candles), strict=True):
        inputs = [MarketInput(candle=bar, atr=atr, atr_pct=None)]
        result = trader.on_instant(bar.open_time_ms, inputs, {BTC: signal(bar)})
        for fill in result.fills:
            if fill.reason != "entry":
                continue
            position = result.positions[BTC]
            target = position.take_profit_price
            assert target is not None
            costs = (
                (fill.price - bar.close)
                + fill.price * fee
                + target * fee
                + target * fill.slippage_bps / 10_000
            )
            assert target - fill.price > 2 * costs
            checked += 1
    assert checked > 0
