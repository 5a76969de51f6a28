"""Money that cannot crash: an entry capped by the cash is fitted with the fee exactly as
the fill charges it; a short holds collateral and is force-closed at its margin call, and
a gap beyond everything leaves a deficit that halts trading; along any path with any gap
the books balance.

Unless a test says otherwise the rules are ``SHORTS_CONFIG`` of ``fakes.trader_rig``: the
standard ones with shorts allowed and loss breakers only at 99 %. The standard entry is at
a close of 100 with an ATR of 2: 25 units, filled at 100.05 (long) or 99.95 (short)."""

import functools
from dataclasses import replace
from decimal import Decimal

import pytest
from fakes.candles import candle_of
from fakes.trader_rig import (
    CASH,
    SHORTS_CONFIG,
    Instant,
    make_trader,
    market,
    restart,
    step,
    walk_markets,
    walk_prices,
)
from fakes.trading import BTC, ETH, MINUTE, T0, candle, signal
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.broker.config import FillConfig
from paper_trader.broker.ledger import Ledger
from paper_trader.domain import Signal, Strength
from paper_trader.domain.trading import (
    Action,
    ExitReason,
    FillModel,
    Side,
    SizingMethod,
    TradingState,
)
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.trading.trader import InstantResult, MarketInput, Trader, TraderConfig

D = Decimal
TICK = D("1e-10")


def open_cost(trader: Trader) -> Decimal:
    """Return the cost of the open positions: their signed entry value and entry fee."""
    return sum(
        (
            p.side.sign * p.quantity * p.entry_price + p.entry_fee
            for p in trader.ledger.positions.values()
        ),
        D(0),
    )


# the cash cap and the rounded fee


@pytest.mark.parametrize(
    ("fills", "volume", "fill_price"),
    [
        # no slippage at all: the fill is the close
        (FillConfig(fee_rate=D("0.0026"), slippage_bps=D(0), impact_bps=D(0)), "1000", "1873.37"),
        # a candle without volume: both the sizing and the fill price are at the 200 bps cap
        (FillConfig(fee_rate=D("0.0026")), "0", "1910.8374"),
    ],
)
def test_an_entry_capped_by_the_cash_never_outruns_it_by_the_rounded_fee(
    fills: FillConfig, volume: str, fill_price: str
) -> None:
    """The cash buys 1.23456789 at the exact fee, but the fill rounds the fee up: one step less.

    Sized far above it, the entry is capped by the position size (all the equity at the
    price), then by the cash.

    Before, the cap used the exact fee, the ledger charged the rounded one, cash went below
    zero by ~1e-13 and the trading step raised ``FatalError``.
    """
    quantity, price, fee_rate = D("1.23456789"), D(fill_price), fills.fee_rate
    cash = quantity * price * (1 + fee_rate)  # 14 decimals: the fee rounds up
    trader = make_trader(
        SHORTS_CONFIG,
        cash=cash,
        limits=replace(SHORTS_CONFIG.limits, max_position_size=1.0, max_total_exposure=1.0),
        sizing=replace(SHORTS_CONFIG.sizing, risk_per_trade=0.1),
        fills=fills,
    )
    bar = candle(0, "1873.37 1880 1870 1873.37", volume=volume)
    result = step(trader, 0, [market(bar, "50")], [signal(bar)])
    assert [(d.action, d.detail) for d in result.decisions] == [
        (Action.ENTERED, "entered (capped by max_position_size, cash)")
    ]
    (fill,) = result.fills
    assert (fill.quantity, fill.price) == (quantity - D("1e-8"), price)
    assert trader.ledger.cash >= 0
    assert cash - trader.ledger.cash == fill.quantity * fill.price + fill.fee


@st.composite
def cash_bound_entries(draw: DrawFn) -> tuple[Trader, MarketInput, Signal, Decimal]:
    """Draw an entry whose cash cap binds to within a rounding digit of its exact cost."""
    side = draw(st.sampled_from([Side.LONG, Side.SHORT]))
    close = draw(st.decimals(min_value=D("0.0001"), max_value=D(100_000), places=4))
    fee_rate = draw(st.decimals(min_value=D(0), max_value=D("0.01"), places=5))
    base = draw(st.decimals(min_value=D(0), max_value=D(50), places=2))
    impact = draw(st.decimals(min_value=D(0), max_value=D(50), places=2))
    cap = draw(st.decimals(min_value=D(0), max_value=D(500), places=1))
    volume = draw(st.sampled_from([D(0), D("0.5"), D(1000), D(10**7)]))
    margin = draw(st.decimals(min_value=D("0.05"), max_value=D(2), places=3))
    fills = FillConfig(
        fee_rate=fee_rate, slippage_bps=base, impact_bps=impact, max_slippage_bps=cap
    )
    # Hold what some quantity would cost at the base slippage, give or take a few digits.
    quantity = draw(st.integers(min_value=1, max_value=10**10)) * D("1e-8")
    bps = min(base, cap) if volume > 0 else cap
    price = (close * (1 + side.sign * bps / 10_000)).quantize(TICK)
    notional = quantity * price
    principal = notional if side is Side.LONG else (notional * margin)
    # to 1e-13, as a real cash balance is (it moves by fills of 18 decimals at most)
    exact = (principal + notional * fee_rate).quantize(D("1e-13"))
    cash = exact + draw(st.integers(-3, 3)) * D("1e-13")
    config = replace(
        SHORTS_CONFIG,
        limits=replace(
            SHORTS_CONFIG.limits,
            max_position_size=1.0,
            max_total_exposure=1.0,
            min_notional=D(0),
            short_margin=margin,
            min_edge_cost_multiple=0.0,
        ),
        sizing=SizingConfig(
            method=draw(st.sampled_from(SizingMethod)),
            risk_per_trade=0.1,
            volatility_target=0.1,
            confidence_full_size=0.5,
        ),
        fills=fills,
    )
    bar = candle_of(T0, close, close, close, close, volume)
    atr = max((close / 1000).quantize(D("1e-8")), D("1e-8"))
    strength = Strength.BUY if side is Side.LONG else Strength.SELL
    trader = Trader(config, Ledger(max(cash, D("1e-12"))))
    return trader, market(bar, atr), signal(bar, strength), trader.ledger.cash


@settings(max_examples=300, deadline=None)
@given(cash_bound_entries())
def test_an_approved_entry_never_leaves_free_cash_below_zero(
    drawn: tuple[Trader, MarketInput, Signal, Decimal],
) -> None:
    """Any price, fee, slippage, impact, cap, volume (none too), side and sizing method."""
    trader, bar, entry_signal, cash = drawn
    result = trader.on_instant(T0, [bar], {BTC: entry_signal})
    event(" ".join(f"{d.action}:{d.rule or d.detail}" for d in result.decisions))
    assert trader.ledger.free_cash >= 0
    for fill in result.fills:
        position = trader.ledger.positions[BTC]
        spent = fill.quantity * fill.price + fill.fee
        if position.side is Side.SHORT:
            spent = position.collateral - fill.quantity * fill.price + fill.fee
        assert cash - trader.ledger.free_cash == spent
        assert spent <= cash


# shorts: collateral, margin call, deficit


def short_entry(trader: Trader) -> InstantResult:
    """Sell 25 at 99.95 (a close of 100, ATR 2): stop 103.95, target 91.95."""
    bar = candle(0, "100 101 99 100")
    return step(trader, 0, [market(bar)], [signal(bar, Strength.SELL)])


def test_a_short_holds_its_proceeds_and_margin_out_of_free_cash() -> None:
    """Proceeds 2498.75 plus a margin of 0.5 of them: 3748.125 held, free cash 10000 less
    the margin 1249.375 and the fee 2.49875. The margin call is where buying back at 200 bps
    of slippage and the fee would cost all of it: 3748.125 / (25 * 1.02 * 1.001)."""
    trader = make_trader(SHORTS_CONFIG)
    short_entry(trader)
    position = trader.ledger.positions[BTC]
    assert (position.entry_price, position.stop_price) == (D("99.95"), D("103.95"))
    assert position.collateral == D("3748.125")
    assert position.margin_call_price == D("146.8384556619")
    assert trader.ledger.cash == D("12496.25125")
    assert trader.ledger.free_cash == D("8748.12625")


def test_a_short_that_gaps_beyond_everything_is_a_deficit_and_a_halt_not_a_crash() -> None:
    """Opened at 1000 (10x): bought back at 1000.5 for 25,012.5 plus 25.0125 of fee.

    Cash 12,496.25125 - 25,037.5125 = -12,541.26125: a deficit, recorded as such; the
    account_deficit breaker halts trading and the next BUY is refused. Before, the ledger
    raised ``FatalError`` and the stored candle crashed every restart again.
    """
    trader = make_trader(SHORTS_CONFIG)
    short_entry(trader)
    bar = candle(1, "1000 1010 990 1000")
    result = step(trader, 1, [market(bar)], [signal(bar)])
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.MARGIN_CALL,
        FillModel.STOP_GAP_OPEN,
        D("1000.5"),
    )
    assert trade.net_pnl == D("-22541.26125")  # 25 * (99.95 - 1000.5) - 2.49875 - 25.0125
    assert trader.ledger.cash == D("-12541.26125")
    assert trader.ledger.cash - CASH == trade.net_pnl
    deficit, *others = result.transitions
    assert (deficit.breaker, deficit.tripped, deficit.state) == (
        "account_deficit",
        True,
        TradingState.HALTED,
    )
    assert deficit.reason.startswith("cash is -12541.26, below zero: a short was bought back")
    assert [t.breaker for t in others] == ["daily_loss", "max_drawdown"]
    assert trader.breakers.state is TradingState.HALTED
    assert [(d.action, d.rule) for d in result.decisions] == [(Action.REJECTED, "trading_state")]
    assert result.snapshot is not None
    assert result.snapshot.equity == D("-12541.26125")
    # The persisted state (negative cash included) restores and keeps running.
    copy = restart(trader)
    later = candle(2, "1000 1001 999 1000")
    again = step(copy, 2, [market(later)], [signal(later)])
    assert [(d.action, d.rule) for d in again.decisions] == [(Action.REJECTED, "trading_state")]
    assert copy.breakers.state is TradingState.HALTED
    assert copy.ledger.cash == D("-12541.26125")


def test_a_short_gapping_past_its_margin_call_is_force_closed_at_the_open() -> None:
    """Open 150 is beyond the margin call 146.83: reason margin_call, at 150 * 1.0005.

    The loss (25 * 50.125 + fees) exceeds the margin but not the cash: no deficit.
    """
    trader = make_trader(SHORTS_CONFIG)
    short_entry(trader)
    bar = candle(1, "150 151 149 150")
    result = step(trader, 1, [market(bar)])
    (trade,) = result.trades
    assert (trade.exit_reason, trade.exit_fill_model, trade.exit_price) == (
        ExitReason.MARGIN_CALL,
        FillModel.STOP_GAP_OPEN,
        D("150.075"),
    )
    assert trader.ledger.cash == CASH + trade.net_pnl
    assert trader.ledger.cash > 0
    assert result.transitions == []
    assert trader.breakers.state is TradingState.ACTIVE


def test_a_short_gapping_between_its_stop_and_margin_call_is_a_stop_loss() -> None:
    """Open 120 is through the stop 103.95 but inside the margin call: a stop-loss gap."""
    trader = make_trader(SHORTS_CONFIG)
    short_entry(trader)
    (trade,) = step(trader, 1, [market(candle(1, "120 121 119 120"))]).trades
    assert (trade.exit_reason, trade.exit_fill_model) == (
        ExitReason.STOP_LOSS,
        FillModel.STOP_GAP_OPEN,
    )


def test_a_short_whose_stop_lies_beyond_its_margin_call_is_refused() -> None:
    """A margin of 0.05 puts the margin call at 99.95 * 1.05 / (1.02 * 1.001) = 102.787,
    inside the stop 103.95: rule short_margin, nothing filled."""
    trader = make_trader(
        SHORTS_CONFIG, limits=replace(SHORTS_CONFIG.limits, short_margin=D("0.05"))
    )
    result = short_entry(trader)
    (decision,) = result.decisions
    assert (decision.action, decision.rule) == (Action.REJECTED, "short_margin")
    assert decision.detail.startswith(
        "the margin call at 102.7869189633 is not above the stop 103.95: a margin of 0.05"
    )
    assert result.fills == []


# any path, any gap: never a crash, the books always balance


SYMBOLS = (BTC, ETH)
CENT = D("0.01")
GAPS = [D("0.001"), D("0.05"), D("0.5"), D(2), D(10), D(100)]


def bps(value: Decimal, points: int) -> Decimal:
    """Return ``value`` moved by ``points`` basis points, to the cent, within [0.01, 1e7]."""
    return min(max((value * (10_000 + points) / 10_000).quantize(CENT), CENT), D(10**7))


@st.composite
def gap_bar(draw: DrawFn, symbol: str, previous: Decimal, minute: int) -> MarketInput:
    """Draw the next candle of a walk from ``previous``; one in six gaps by up to 100x."""
    start = previous
    if draw(st.integers(0, 5)) == 0:
        start = bps(previous * draw(st.sampled_from(GAPS)), 0)
    open_, high, low, close = walk_prices(draw, start, bps)
    atr_bps = draw(st.integers(20, 800))
    high, low = max(high, open_, close), min(low, open_, close)
    volume = D(draw(st.sampled_from([0, 1, 50, 5_000])))
    bar = candle_of(T0 + minute * MINUTE, open_, high, low, close, volume, symbol=symbol)
    atr = max((close * atr_bps / 10_000).quantize(D("0.0001")), D("0.0001"))
    return MarketInput(candle=bar, atr=atr, atr_pct=atr_bps / 100)


@st.composite
def gap_walks(draw: DrawFn) -> tuple[TraderConfig, list[Instant]]:
    """Draw random costs, margins and sizing, and up to 30 instants of two gapping walks."""
    fills = FillConfig(
        fee_rate=draw(st.decimals(min_value=D(0), max_value=D("0.01"), places=4)),
        slippage_bps=draw(st.decimals(min_value=D(0), max_value=D(50), places=1)),
        impact_bps=draw(st.decimals(min_value=D(0), max_value=D(50), places=1)),
        max_slippage_bps=draw(st.decimals(min_value=D(0), max_value=D(2000), places=0)),
    )
    config = TraderConfig(
        breakers=BreakerConfig(
            enabled=draw(st.booleans()),
            min_time_between_trades_ms=0,
            stop_loss_cooldown_ms=MINUTE,
            volatility_min_samples=5,
        ),
        limits=LimitsConfig(
            allow_short=True,
            max_position_size=1.0,
            max_total_exposure=1.0,
            min_notional=D(1),
            min_confidence=0.0,
            short_margin=draw(st.decimals(min_value=D("0.05"), max_value=D(3), places=2)),
            min_edge_cost_multiple=draw(st.sampled_from([0.0, 0.0, 2.0])),
        ),
        sizing=SizingConfig(
            method=draw(st.sampled_from(SizingMethod)),
            risk_per_trade=0.1,
            kelly_min_trades=5,
            kelly_cap=0.5,
            volatility_target=0.1,
        ),
        exits=ExitConfig(max_holding_ms=5 * MINUTE),
        fills=fills,
    )
    closes = {BTC: D(100), ETH: D(50)}
    instants, minute = [], 0
    for _ in range(draw(st.integers(1, 30))):
        minute += draw(st.integers(1, 2))
        present = draw(st.sampled_from([SYMBOLS, SYMBOLS, (BTC,), (ETH,)]))
        bars = functools.partial(gap_bar, minute=minute)
        markets, signals = walk_markets(draw, present, closes, bars, [0.3, 0.9])
        instants.append(Instant(minute=minute, markets=tuple(markets), signals=tuple(signals)))
    return config, instants


def check_books(trader: Trader, net: Decimal) -> None:
    """Assert the ledger identity and the collateral held out of free cash."""
    ledger = trader.ledger
    assert ledger.cash - CASH == net - open_cost(trader)
    held = sum((p.collateral for p in ledger.positions.values()), D(0))
    assert ledger.free_cash == ledger.cash - held
    for position in ledger.positions.values():
        if position.side is Side.LONG:
            assert (position.collateral, position.margin_call_price) == (0, None)
        else:
            assert position.margin_call_price is not None
            assert position.margin_call_price > position.stop_price


@settings(max_examples=150, deadline=None)
@given(gap_walks())
def test_any_path_with_any_gap_never_raises_and_the_books_balance(
    drawn: tuple[TraderConfig, list[Instant]],
) -> None:
    """Longs and shorts, every sizing method, random fees and slippage caps, gaps up to 100x
    either way: no instant raises, cash - initial = Σ net PnL - cost of the open positions,
    and a trader restored from its persisted state continues identically."""
    config, instants = drawn
    trader = Trader(config, Ledger(CASH))
    net = D(0)
    for number, instant in enumerate(instants):
        signals = {s.symbol: s for s in instant.signals}
        result = trader.on_instant(T0 + instant.minute * MINUTE, instant.markets, signals)
        net += sum((t.net_pnl for t in result.trades), D(0))
        check_books(trader, net)
        assert all(
            t.gross_pnl > 0 for t in result.trades if t.exit_reason is ExitReason.TAKE_PROFIT
        )
        if number == len(instants) // 2:
            trader = restart(trader)
    if trader.ledger.cash < 0:
        assert trader.breakers.state is TradingState.HALTED
