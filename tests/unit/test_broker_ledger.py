"""The portfolio ledger: cash moves by exactly notional and fee, and no fill breaks an invariant."""

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.broker.ledger import Entry, Execution, Ledger
from paper_trader.domain.candle import Interval, Venue
from paper_trader.domain.trading import (
    ClosedTrade,
    ExitReason,
    Fill,
    FillModel,
    OrderSide,
    Position,
    Side,
)
from paper_trader.errors import FatalError

D = Decimal
MINUTE = 60_000
BTC = "BTCUSDT"
ETH = "ETHUSDT"
STEP = D("0.00000001")


def entry(
    symbol: str = BTC, side: Side = Side.LONG, quantity: str = "2", collateral: str = "0"
) -> Entry:
    """Return an entry of ``quantity`` with a stop 4 away from 100 and a target 8 away."""
    long = side is Side.LONG
    return Entry(
        venue=Venue.BINANCE,
        symbol=symbol,
        interval=Interval.M1,
        side=side,
        quantity=D(quantity),
        stop_price=D(96) if long else D(104),
        take_profit_price=D(108) if long else D(92),
        risk_per_unit=D(4),
        atr=D(2),
        collateral=D(collateral),
        margin_call_price=None if long else D(150),
    )


def execution(price: str = "100", fee: str = "0.2", *, at: int = 0) -> Execution:
    """Return a market fill at ``price`` with ``fee``, on the candle ``at`` minutes in."""
    return Execution(
        price=D(price),
        fee=D(fee),
        slippage_bps=D(0),
        fill_model=FillModel.MARKET_CLOSE,
        candle_time_ms=at * MINUTE,
    )


def opened(side: Side = Side.LONG, cash: str = "10000") -> Ledger:
    """Return a ledger with 2 units of BTC opened at 100 for a fee of 0.2."""
    ledger = Ledger(D(cash))
    ledger.open(entry(side=side), execution())
    return ledger


# open


def test_opening_a_long_pays_the_notional_and_the_fee() -> None:
    """2 at 100 with a fee of 0.2 costs 200.2: cash 10000 becomes 9799.8."""
    ledger = Ledger(D(10_000))
    fill, position = ledger.open(entry(), execution())
    assert ledger.cash == D("9799.8")
    assert fill == Fill(
        fill_id=1,
        venue=Venue.BINANCE,
        symbol=BTC,
        interval=Interval.M1,
        side=OrderSide.BUY,
        quantity=D(2),
        price=D(100),
        fee=D("0.2"),
        candle_time_ms=0,
        reason="entry",
        fill_model=FillModel.MARKET_CLOSE,
        slippage_bps=D(0),
    )
    assert ledger.positions == {BTC: position}


def test_opening_a_short_receives_the_notional_less_the_fee() -> None:
    """Selling 2 at 100 with a fee of 0.2 brings in 199.8: cash 10000 becomes 10199.8."""
    ledger = Ledger(D(10_000))
    fill, position = ledger.open(entry(side=Side.SHORT), execution())
    assert ledger.cash == D("10199.8")
    assert fill.side is OrderSide.SELL
    assert position.side is Side.SHORT


def test_an_opened_position_carries_its_entry_fill_and_levels() -> None:
    """The position records the fill's price, fee and id, and the entry's levels."""
    ledger = Ledger(D(10_000))
    ledger.open(entry(ETH, quantity="1"), execution("50", "0.05", at=3))
    fill, position = ledger.open(entry(), execution("100", "0.2", at=3))
    assert position == Position(
        venue=Venue.BINANCE,
        symbol=BTC,
        interval=Interval.M1,
        side=Side.LONG,
        quantity=D(2),
        entry_price=D(100),
        entry_fee=D("0.2"),
        entry_fill_id=2,
        opened_candle_ms=3 * MINUTE,
        stop_price=D(96),
        take_profit_price=D(108),
        trailing_stop_price=None,
        extreme_price=D(100),
        risk_per_unit=D(4),
        atr=D(2),
    )
    assert fill.fill_id == 2
    assert ledger.next_fill_id == 3


# close


def test_closing_a_long_gives_exact_gross_and_net_pnl() -> None:
    """Long 2 from 100 sold at 110 (fee 0.22): gross 20, net 20 - 0.2 - 0.22 = 19.58."""
    ledger = opened()
    fill, trade = ledger.close(BTC, execution("110", "0.22", at=5), ExitReason.TAKE_PROFIT)
    assert ledger.cash == D("10019.58")  # 9799.8 + 220 - 0.22
    assert ledger.positions == {}
    assert fill.side is OrderSide.SELL
    assert fill.reason == "take_profit"
    assert trade == ClosedTrade(
        venue=Venue.BINANCE,
        symbol=BTC,
        interval=Interval.M1,
        side=Side.LONG,
        quantity=D(2),
        entry_price=D(100),
        exit_price=D(110),
        entry_fee=D("0.2"),
        exit_fee=D("0.22"),
        gross_pnl=D(20),
        net_pnl=D("19.58"),
        opened_candle_ms=0,
        closed_candle_ms=5 * MINUTE,
        exit_reason=ExitReason.TAKE_PROFIT,
        entry_fill_id=1,
        exit_fill_id=2,
        entry_fill_model=FillModel.MARKET_CLOSE,
        exit_fill_model=FillModel.MARKET_CLOSE,
        recovered=False,
    )


def test_closing_a_short_above_its_entry_loses_the_move_and_both_fees() -> None:
    """Short 2 from 100 bought back at 110 (fee 0.22): gross -20, net -20.42."""
    ledger = opened(Side.SHORT)
    fill, trade = ledger.close(BTC, execution("110", "0.22", at=5), ExitReason.STOP_LOSS)
    assert ledger.cash == D("9979.58")  # 10199.8 - 220 - 0.22
    assert fill.side is OrderSide.BUY
    assert (trade.gross_pnl, trade.net_pnl) == (D(-20), D("-20.42"))


def test_closing_a_short_below_its_entry_earns_the_move_less_the_fees() -> None:
    """Short 2 from 100 bought back at 90 (fee 0.18): gross 20, net 19.62."""
    ledger = opened(Side.SHORT)
    _, trade = ledger.close(BTC, execution("90", "0.18", at=5), ExitReason.TAKE_PROFIT)
    assert ledger.cash == D("10019.62")  # 10199.8 - 180 - 0.18
    assert (trade.gross_pnl, trade.net_pnl) == (D(20), D("19.62"))


def test_a_recovered_exit_is_marked_on_the_trade() -> None:
    """``recovered=True`` is carried to the closed trade."""
    ledger = opened()
    _, trade = ledger.close(BTC, execution("99"), ExitReason.STOP_LOSS, recovered=True)
    assert trade.recovered is True


def test_equity_marks_positions_and_values_unmarked_ones_at_entry() -> None:
    """Long 2 BTC marked at 105 and short 1 ETH unmarked (entry 50): 9849.75 + 210 - 50."""
    ledger = opened()
    ledger.open(entry(ETH, Side.SHORT, "1"), execution("50", "0.05"))
    assert ledger.cash == D("9849.75")  # 9799.8 + 50 - 0.05
    assert ledger.positions_value({BTC: D(105)}) == D(160)
    assert ledger.equity({BTC: D(105)}) == D("10009.75")
    assert ledger.exposure({BTC: D(105)}) == D(260)


# refusals


@pytest.mark.parametrize(
    ("price", "fee"),
    [("0", "0.2"), ("-1", "0.2"), ("NaN", "0.2"), ("Infinity", "0.2"), ("100", "-0.01")],
    ids=["zero_price", "negative_price", "nan_price", "infinite_price", "negative_fee"],
)
def test_an_impossible_entry_execution_is_fatal(price: str, fee: str) -> None:
    """A price that is not positive and finite, or a negative fee, never opens a position."""
    ledger = Ledger(D(10_000))
    with pytest.raises(FatalError, match="ledger invariant"):
        ledger.open(entry(), execution(price, fee))
    assert (ledger.cash, ledger.positions) == (D(10_000), {})


@pytest.mark.parametrize("quantity", ["0", "-2", "NaN"])
def test_an_entry_quantity_that_is_not_positive_is_fatal(quantity: str) -> None:
    """Zero, negative or NaN quantities are refused."""
    ledger = Ledger(D(10_000))
    with pytest.raises(FatalError, match="quantity"):
        ledger.open(entry(quantity=quantity), execution())
    assert (ledger.cash, ledger.positions) == (D(10_000), {})


@pytest.mark.parametrize("price", ["0", "NaN"])
def test_an_impossible_exit_price_is_fatal_and_keeps_the_position(price: str) -> None:
    """A close at a price of zero or NaN is refused; the position stays open."""
    ledger = opened()
    with pytest.raises(FatalError, match="price"):
        ledger.close(BTC, execution(price), ExitReason.STOP_LOSS)
    assert ledger.cash == D("9799.8")
    assert BTC in ledger.positions


@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_a_second_position_on_a_symbol_is_fatal(side: Side) -> None:
    """One position per symbol, whatever the side of the second one."""
    ledger = opened()
    with pytest.raises(FatalError, match="already open"):
        ledger.open(entry(side=side), execution())
    assert ledger.cash == D("9799.8")
    assert len(ledger.positions) == 1


def test_closing_a_symbol_without_a_position_is_fatal() -> None:
    """There is nothing to close on ETH."""
    ledger = opened()
    with pytest.raises(FatalError, match="no open position"):
        ledger.close(ETH, execution(), ExitReason.MANUAL)


def test_an_entry_the_cash_cannot_pay_is_fatal() -> None:
    """2 at 100 plus a fee of 0.2 is 200.2, more than the 200.1 held."""
    ledger = Ledger(D("200.1"))
    with pytest.raises(FatalError, match=r"would leave free cash at -0\.1 "):
        ledger.open(entry(), execution())
    assert (ledger.cash, ledger.positions) == (D("200.1"), {})


def test_a_short_holds_its_collateral_out_of_free_cash() -> None:
    """A short of 2 at 100 holding 300: cash 10199.8, free cash 9899.8; released at close."""
    ledger = Ledger(D(10_000))
    ledger.open(entry(side=Side.SHORT, collateral="300"), execution())
    assert ledger.positions[BTC].collateral == D(300)
    assert ledger.positions[BTC].margin_call_price == D(150)
    assert (ledger.cash, ledger.reserved, ledger.free_cash) == (D("10199.8"), D(300), D("9899.8"))
    ledger.close(BTC, execution("99", "0"), ExitReason.MANUAL)
    assert (ledger.cash, ledger.reserved, ledger.free_cash) == (D("10001.8"), D(0), D("10001.8"))


def test_an_entry_beyond_the_free_cash_left_by_a_short_is_fatal() -> None:
    """From 300, a short holding 300 leaves free cash 199.8: a long of 200.2 cannot be paid."""
    ledger = Ledger(D(300))
    ledger.open(entry(side=Side.SHORT, collateral="300"), execution())
    with pytest.raises(FatalError, match="free cash"):
        ledger.open(entry(ETH), execution())
    assert list(ledger.positions) == [BTC]


def test_a_short_whose_collateral_its_margin_cannot_pay_is_fatal() -> None:
    """From 50, a short holding 300 (proceeds 200, margin 100) would leave free cash -50.2."""
    ledger = Ledger(D(50))
    with pytest.raises(FatalError, match="free cash"):
        ledger.open(entry(side=Side.SHORT, collateral="300"), execution())
    assert (ledger.cash, ledger.positions) == (D(50), {})


@pytest.mark.parametrize(("collateral", "margin_call"), [("-1", "150"), ("300", "0")])
def test_an_impossible_collateral_or_margin_call_is_fatal(
    collateral: str, margin_call: str
) -> None:
    """A negative collateral or a margin call that is not a price is a broken invariant."""
    ledger = Ledger(D(10_000))
    bad = replace(
        entry(side=Side.SHORT), collateral=D(collateral), margin_call_price=D(margin_call)
    )
    with pytest.raises(FatalError, match=r"collateral|margin call"):
        ledger.open(bad, execution())
    assert (ledger.cash, ledger.positions) == (D(10_000), {})


def test_an_entry_that_spends_exactly_the_cash_is_allowed() -> None:
    """2 at 100 plus 0.2 from 200.2 leaves exactly 0."""
    ledger = Ledger(D("200.2"))
    ledger.open(entry(), execution())
    assert ledger.cash == D(0)


def test_buying_back_a_short_above_the_cash_leaves_a_deficit() -> None:
    """From no cash, a short of 2 at 100 brings 200; buying it back at 101 costs 202: cash
    -2, a loss recorded as a deficit, not a broken invariant."""
    ledger = Ledger(D(0))
    ledger.open(entry(side=Side.SHORT), execution("100", "0"))
    _, trade = ledger.close(BTC, execution("101", "0"), ExitReason.STOP_LOSS)
    assert (ledger.cash, trade.net_pnl) == (D(-2), D(-2))
    assert ledger.positions == {}


def test_a_ledger_restores_a_deficit() -> None:
    """Negative cash (a deficit left by a short) is a state to restore, not an impossible one."""
    assert Ledger(D("-12541.26125")).free_cash == D("-12541.26125")


@pytest.mark.parametrize("cash", ["NaN", "Infinity", "-Infinity"])
def test_a_ledger_cannot_start_with_impossible_cash(cash: str) -> None:
    """Non-finite cash is refused at construction."""
    with pytest.raises(FatalError, match="cash"):
        Ledger(D(cash))


# update


def test_update_moves_the_trailing_stop_and_the_best_price() -> None:
    """The levels may change; the position is replaced."""
    ledger = opened()
    moved = replace(
        ledger.positions[BTC],
        trailing_stop_price=D(102),
        extreme_price=D(105),
        stop_price=D(97),
        take_profit_price=None,
    )
    ledger.update(moved)
    assert ledger.positions[BTC] == moved
    assert ledger.cash == D("9799.8")


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": D(3)},
        {"entry_price": D(99)},
        {"entry_fee": D(0)},
        {"entry_fill_id": 7},
        {"side": Side.SHORT},
        {"opened_candle_ms": MINUTE},
        {"risk_per_unit": D(5)},
        {"atr": D(3)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_update_may_not_change_anything_but_the_levels(change: dict[str, Any]) -> None:
    """Any other field changed is a broken invariant; the held position is kept."""
    ledger = opened()
    held = ledger.positions[BTC]
    with pytest.raises(FatalError, match="only move the levels"):
        ledger.update(replace(held, trailing_stop_price=D(102), **change))
    assert ledger.positions[BTC] == held


def test_update_of_a_symbol_without_a_position_is_fatal() -> None:
    """ETH is not held."""
    ledger = opened()
    with pytest.raises(FatalError, match="no open position"):
        ledger.update(replace(ledger.positions[BTC], symbol=ETH))


# properties

SYMBOLS = (BTC, ETH, "SOLUSDT")
FEE_RATES = (D(0), D("0.0005"), D("0.001"), D("0.0025"), D("0.01"))
MAX_FEE_RATE = max(FEE_RATES)
# A short may be bought back at up to 1.9 times its entry price; it reserves twice its entry
# notional plus the largest fee, so that no sequence can drive the cash below zero.
MAX_SHORT_EXIT = D("1.9")
SHORT_RESERVE = 2 * (1 + MAX_FEE_RATE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One operation: open ``symbol`` if it is flat, else close it."""

    symbol: str
    side: Side
    price: Decimal  # the entry price of an open
    share: Decimal  # of the free cash an open may use
    exit_ratio: Decimal  # exit price over entry price, for a close
    fee_rate: Decimal


@st.composite
def steps(draw: DrawFn) -> Step:
    """Draw one operation with prices of 2 decimals, so that no Decimal sum ever rounds."""
    return Step(
        symbol=draw(st.sampled_from(SYMBOLS)),
        side=draw(st.sampled_from(Side)),
        price=D(draw(st.integers(100, 100_000))) / 100,
        share=D(draw(st.integers(1, 90))) / 100,
        exit_ratio=D(draw(st.integers(50, 190))) / 100,
        fee_rate=draw(st.sampled_from(FEE_RATES)),
    )


@dataclass(slots=True)
class Book:
    """What the test remembers of the ledger's history, to check it against the ledger."""

    initial: Decimal
    fills: list[Fill]
    trades: list[ClosedTrade]
    entry_fills: dict[str, int]


def cost(position: Position) -> Decimal:
    """Return what holding ``position`` took from the cash: its signed entry value and fee."""
    return position.side.sign * position.quantity * position.entry_price + position.entry_fee


def open_step(ledger: Ledger, book: Book, step: Step) -> None:
    """Open ``step.symbol`` with a quantity the free cash can carry (nothing if too little).

    A short's collateral is twice its notional plus the largest fee: with its proceeds
    credited that takes ``notional * (1 + 2 * MAX_FEE_RATE) + fee`` of free cash.
    """
    free = ledger.free_cash
    per_unit = step.price * (1 + step.fee_rate if step.side is Side.LONG else SHORT_RESERVE)
    quantity = (step.share * free / per_unit).quantize(STEP, rounding=ROUND_FLOOR)
    if quantity <= 0:
        return
    notional = quantity * step.price
    collateral = notional * SHORT_RESERVE if step.side is Side.SHORT else D(0)
    fill, position = ledger.open(
        entry(step.symbol, step.side, str(quantity), str(collateral)),
        execution(str(step.price), str(notional * step.fee_rate), at=len(book.fills)),
    )
    book.fills.append(fill)
    book.entry_fills[step.symbol] = fill.fill_id
    assert position.entry_fill_id == fill.fill_id
    assert position.collateral == collateral


def close_step(ledger: Ledger, book: Book, step: Step) -> None:
    """Close ``step.symbol`` at ``exit_ratio`` times its entry price, to the cent."""
    held = ledger.positions[step.symbol]
    ratio = min(step.exit_ratio, MAX_SHORT_EXIT) if held.side is Side.SHORT else step.exit_ratio
    price = max((held.entry_price * ratio).quantize(D("0.01"), rounding=ROUND_FLOOR), D("0.01"))
    fee = held.quantity * price * step.fee_rate
    fill, trade = ledger.close(
        step.symbol, execution(str(price), str(fee), at=len(book.fills)), ExitReason.MANUAL
    )
    book.fills.append(fill)
    book.trades.append(trade)
    assert trade.entry_fill_id == book.entry_fills.pop(step.symbol)
    assert trade.exit_fill_id == fill.fill_id


def check_invariants(ledger: Ledger, book: Book, marks: dict[str, Decimal]) -> None:
    """Assert every accounting identity of the ledger, exactly."""
    assert ledger.cash >= 0
    assert ledger.free_cash >= 0
    reserved = sum((p.collateral for p in ledger.positions.values()), D(0))
    assert ledger.free_cash == ledger.cash - reserved
    values = [p.side.sign * p.quantity * marks[s] for s, p in ledger.positions.items()]
    assert ledger.equity(marks) == ledger.cash + sum(values, D(0))
    net = sum((t.net_pnl for t in book.trades), D(0))
    held = sum((cost(p) for p in ledger.positions.values()), D(0))
    assert net == ledger.cash - book.initial + held
    gross = sum((t.gross_pnl for t in book.trades), D(0))
    fees = sum((t.entry_fee + t.exit_fee for t in book.trades), D(0))
    assert gross - fees == net
    assert {s: p.entry_fill_id for s, p in ledger.positions.items()} == book.entry_fills
    assert [f.fill_id for f in book.fills] == list(range(1, len(book.fills) + 1))
    assert ledger.next_fill_id == len(book.fills) + 1


@settings(max_examples=300, deadline=None)
@given(
    initial=st.integers(0, 1_000_000).map(lambda cents: D(cents) / 100),
    operations=st.lists(steps(), max_size=30),
    mark_ratios=st.lists(st.integers(1, 300), min_size=len(SYMBOLS), max_size=len(SYMBOLS)),
)
def test_any_history_of_fills_keeps_the_accounting_exact(
    initial: Decimal, operations: list[Step], mark_ratios: list[int]
) -> None:
    """Random opens and closes, long and short, keep cash, equity, PnL and fill ids consistent."""
    ledger = Ledger(initial)
    book = Book(initial=initial, fills=[], trades=[], entry_fills={})
    for step in operations:
        if step.symbol in ledger.positions:
            close_step(ledger, book, step)
        else:
            open_step(ledger, book, step)
        marks = {
            s: p.entry_price * ratio / 100
            for (s, p), ratio in zip(ledger.positions.items(), mark_ratios, strict=False)
        }
        check_invariants(ledger, book, marks)
