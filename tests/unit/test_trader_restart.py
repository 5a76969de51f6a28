"""A trader rebuilt from what it persisted continues identically, and random walks keep the
ledger consistent and the trading step deterministic (the rules of ``fakes.trader_rig``
unless a test says otherwise)."""

import functools
from dataclasses import replace
from decimal import Decimal

from fakes.candles import candle_of
from fakes.trader_rig import (
    CONFIG,
    QUIET,
    Instant,
    enter,
    make_trader,
    market,
    restart,
    step,
    walk_markets,
    walk_prices,
)
from fakes.trading import BTC, ETH, MINUTE, T0, candle, signal
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

from paper_trader.broker.config import FillConfig
from paper_trader.domain import Candle
from paper_trader.domain.trading import Action, ExitReason
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.trading.trader import InstantResult, MarketInput, Trader, TraderConfig

D = Decimal


# restart


def test_a_trader_rebuilt_from_its_persisted_state_continues_identically() -> None:
    """The entry spacing, the trail and the peak survive a restart: both copies act the same."""
    config = replace(
        CONFIG,
        breakers=replace(
            CONFIG.breakers, min_time_between_trades_ms=5 * MINUTE, stop_loss_cooldown_ms=MINUTE
        ),
    )
    original = make_trader(config)
    btc, eth = candle(0, "100 101 99 100"), candle(0, "50 50.5 49.5 50", symbol=ETH)
    first = step(original, 0, [market(btc), market(eth, "1")], [signal(btc), signal(eth)])
    assert [d.rule for d in first.decisions] == [None, "min_time_between_trades"]
    step(
        original,
        1,
        [market(candle(1, "100 105 99.5 104.5")), market(candle(1, QUIET, symbol=ETH), "1")],
    )
    copy = restart(original)
    assert copy.state_json() == original.state_json()
    following = [
        (2, "104 104.5 101.5 102", "50 50.5 49.5 50"),
        (3, QUIET, "50 50.5 47 48"),
        (6, QUIET, "48 48.5 47.5 48"),
        (7, "100 100.5 95 96", "48 49 47.5 48.5"),
    ]
    outcomes = []
    for minute, btc_ohlc, eth_ohlc in following:
        btc, eth = candle(minute, btc_ohlc), candle(minute, eth_ohlc, symbol=ETH)
        inputs = ([market(btc), market(eth, "1")], [signal(btc), signal(eth)])
        expected = step(original, minute, *inputs)
        assert step(copy, minute, *inputs) == expected
        outcomes.append(
            [t.exit_reason for t in expected.trades]
            + [(d.symbol, d.rule or d.action) for d in expected.decisions]
        )
    assert outcomes == [
        [
            ExitReason.TRAILING_STOP,
            (BTC, "min_time_between_trades"),
            (ETH, "min_time_between_trades"),
        ],
        [(BTC, "min_time_between_trades"), (ETH, "min_time_between_trades")],
        [(BTC, Action.ENTERED), (ETH, "min_time_between_trades")],
        [ExitReason.STOP_LOSS, (BTC, "stop_loss_cooldown"), (ETH, "min_time_between_trades")],
    ]
    assert copy.state_json() == original.state_json()
    assert copy.ledger.cash == original.ledger.cash
    assert copy.ledger.positions == original.ledger.positions
    assert copy.ledger.next_fill_id == original.ledger.next_fill_id


def test_a_rebuilt_trader_keeps_refusing_an_entry_correlated_with_a_held_position() -> None:
    """ETH moves exactly with a held BTC: refused by the correlation rule, before and after."""
    original = make_trader(limits=replace(CONFIG.limits, correlation_window=6))
    enter(original)
    stored: list[Candle] = []
    for minute, close in enumerate(("101", "100.5", "102", "101", "103", "102.5"), start=1):
        half = str(D(close) / 2)
        btc = candle(minute, " ".join([close] * 4))
        eth = candle(minute, " ".join([half] * 4), symbol=ETH)
        step(original, minute, [market(btc), market(eth, "1")])
        stored.extend([btc, eth])
    copy = restart(original, stored)
    btc, eth = candle(7, "104 104 104 104"), candle(7, "52 52 52 52", symbol=ETH)
    inputs = ([market(btc), market(eth, "1")], [signal(eth)])
    expected = step(original, 7, *inputs)
    assert [(d.action, d.rule) for d in expected.decisions] == [(Action.REJECTED, "correlation")]
    assert step(copy, 7, *inputs) == expected


# properties


PROPERTY_CONFIG = TraderConfig(
    breakers=BreakerConfig(
        max_daily_loss=0.015,
        max_drawdown=0.02,
        max_consecutive_losses=3,
        losing_streak_cooldown_ms=10 * MINUTE,
        min_time_between_trades_ms=MINUTE,
        stop_loss_cooldown_ms=3 * MINUTE,
        volatility_window=20,
        volatility_min_samples=5,
    ),
    limits=LimitsConfig(allow_short=True, correlation_window=10),
    sizing=SizingConfig(),
    exits=ExitConfig(max_holding_ms=10 * MINUTE),
    fills=FillConfig(),
)
SYMBOLS = (BTC, ETH)
CENT = D("0.01")


def bps(value: Decimal, points: int) -> Decimal:
    """Return ``value`` moved by ``points`` basis points, to the cent and at least 0.01."""
    return max((value * (10_000 + points) / 10_000).quantize(CENT), CENT)


@st.composite
def walk_bar(draw: DrawFn, symbol: str, previous: Decimal, minute: int) -> MarketInput:
    """Draw the next candle of a random walk from ``previous`` close, and its ATR."""
    open_, high, low, close = walk_prices(draw, previous, bps)
    atr_bps = draw(st.integers(20, 500))
    volume = D(draw(st.integers(0, 5_000)))
    bar = candle_of(T0 + minute * MINUTE, open_, high, low, close, volume, symbol=symbol)
    stale = draw(st.integers(0, 9)) == 0
    return MarketInput(
        candle=bar,
        atr=(close * atr_bps / 10_000).quantize(D("0.0001")),
        atr_pct=atr_bps / 100,
        stale=stale,
        recovered=stale,
        tradable=draw(st.integers(0, 9)) > 0,
    )


@st.composite
def walks(draw: DrawFn) -> list[Instant]:
    """Draw up to 40 instants of two random walks with random signals."""
    closes = {BTC: D(100), ETH: D(50)}
    instants, minute = [], 0
    for _ in range(draw(st.integers(1, 40))):
        minute += draw(st.integers(1, 3))
        present = draw(st.sampled_from([SYMBOLS, SYMBOLS, SYMBOLS, (BTC,), (ETH,)]))
        bars = functools.partial(walk_bar, minute=minute)
        confidences = [0.0, 0.04, 0.1, 0.3, 0.5, 0.9]
        markets, signals = walk_markets(draw, present, closes, bars, confidences)
        blocked = draw(st.sampled_from([None, None, None, None, "no model"]))
        instants.append(
            Instant(
                minute=minute,
                markets=tuple(markets),
                signals=tuple(signals),
                entries_blocked=blocked,
            )
        )
    return instants


def check_instant(trader: Trader, result: InstantResult, held: set[str]) -> None:
    """Assert the invariants after one instant; ``held`` tracks open symbols from the fills."""
    ledger = trader.ledger
    assert ledger.cash >= 0
    for fill in result.fills:
        if fill.reason == "entry":
            assert fill.symbol not in held
            held.add(fill.symbol)
        else:
            held.remove(fill.symbol)
    assert held == set(ledger.positions)
    assert all(p.symbol == s for s, p in ledger.positions.items())
    for symbol, position in result.positions.items():
        assert ledger.positions[symbol] == position
    for trade in result.trades:
        assert trade.closed_candle_ms > trade.opened_candle_ms
    snapshot = result.snapshot
    assert snapshot is not None
    marks = trader.marks
    values = sum((p.value(marks[s]) for s, p in ledger.positions.items()), D(0))
    assert snapshot.cash == ledger.cash
    assert snapshot.positions_value == values
    assert snapshot.equity == snapshot.cash + snapshot.positions_value
    assert snapshot.open_positions == len(ledger.positions)


def run_walk(instants: list[Instant]) -> tuple[list[InstantResult], str]:
    """Run ``instants`` through a fresh trader, checking every instant; return what it did."""
    trader = make_trader(PROPERTY_CONFIG)
    held: set[str] = set()
    results = []
    for instant in instants:
        result = step(
            trader,
            instant.minute,
            instant.markets,
            instant.signals,
            entries_blocked=instant.entries_blocked,
        )
        check_instant(trader, result, held)
        results.append(result)
    return results, trader.state_json()


@settings(max_examples=80, deadline=None)
@given(instants=walks())
def test_random_walks_keep_the_ledger_consistent_and_deterministic(
    instants: list[Instant],
) -> None:
    """Two random walks with random signals: cash, equity and positions stay consistent.

    Running the same candles and signals again gives the same fills, trades and decisions.
    """
    first = run_walk(instants)
    assert run_walk(instants) == first
