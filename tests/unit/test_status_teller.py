"""What the status feed is told of a committed batch, and in which order."""

import json
from decimal import Decimal

from fakes.trading import bar, closed_trade, open_position, signal

from paper_trader.app.status import Teller
from paper_trader.domain import Interval, Venue
from paper_trader.domain.trading import EquitySnapshot, Fill, FillModel, OrderSide
from paper_trader.interfaces.status.hub import StatusHub
from paper_trader.trading.values import InstantResult, Reported

T = 60_000


def fill(fill_id: int, side: OrderSide, reason: str) -> Fill:
    return Fill(
        fill_id=fill_id,
        venue=Venue.BINANCE,
        symbol="BTC-USDT",
        interval=Interval.M1,
        side=side,
        quantity=Decimal(1),
        price=Decimal(100),
        fee=Decimal(0),
        candle_time_ms=T,
        reason=reason,
        fill_model=FillModel.MARKET_CLOSE,
        slippage_bps=Decimal(0),
    )


def told(reported: Reported) -> list[tuple[str, int | None]]:
    hub = StatusHub("run")
    Teller(hub).reported(reported)
    frames = hub.since(0) or []
    return [(f.type, json.loads(f.text)["candle_ms"]) for f in frames]


def test_an_instant_is_told_candles_signals_then_each_fill_with_its_trade_then_equity() -> None:
    """A stop and a new entry on one symbol at one instant: the exit and its trade first."""
    candle = bar("BTC-USDT", T)
    snapshot = EquitySnapshot(
        candle_time_ms=T,
        cash=Decimal(100),
        positions_value=Decimal(100),
        equity=Decimal(200),
        peak_equity=Decimal(250),
        open_positions=1,
    )
    result = InstantResult(
        candle_time_ms=T,
        fills=[fill(2, OrderSide.SELL, "stop_loss"), fill(3, OrderSide.BUY, "entry")],
        positions={"BTC-USDT": open_position(entry_fill_id=3)},
        trades=[closed_trade(-1)],  # entry fill 1, exit fill 2
        snapshot=snapshot,
    )
    kinds = told(Reported([candle], [signal(candle)], [result], ()))
    assert kinds == [
        ("candle", T), ("signal", T), ("fill", T), ("trade_closed", T),
        ("fill", T), ("trade_opened", T), ("equity", T),
    ]  # fmt: skip


def test_instants_are_told_in_time_order_each_whole() -> None:
    first, second = bar("BTC-USDT", T), bar("BTC-USDT", 2 * T)
    results = [InstantResult(candle_time_ms=2 * T), InstantResult(candle_time_ms=T)]
    kinds = told(Reported([second, first], [signal(second), signal(first)], results, ()))
    assert kinds == [("candle", T), ("signal", T), ("candle", 2 * T), ("signal", 2 * T)]
