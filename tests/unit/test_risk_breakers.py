"""The trading breakers trip and reset on candle time and survive a snapshot round trip."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from fakes.trading import closed_trade
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_trader.domain.trading import (
    DAY_MS,
    BreakerTransition,
    ClosedTrade,
    ExitReason,
    FillModel,
    Rejection,
    TradingState,
)
from paper_trader.errors import ConfigError
from paper_trader.risk.breakers import TradingBreakers
from paper_trader.risk.config import BreakerConfig

T0 = 19_675 * DAY_MS  # 2023-11-14 00:00 UTC
MINUTE = 60_000
HOUR = 3_600_000
BTC = "BTC-USDT"
ETH = "ETH-USDT"
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def closed(
    net: str,
    at_ms: int,
    *,
    symbol: str = BTC,
    reason: ExitReason = ExitReason.MAX_HOLDING,
) -> ClosedTrade:
    """A one-unit long from 100 whose net PnL is ``net`` (no fees)."""
    return closed_trade(
        net,
        symbol=symbol,
        opened_ms=at_ms - MINUTE,
        reason=reason,
        exit_fill_model=FillModel.STOP_TOUCH,
    )


def rule_of(breakers: TradingBreakers, at_ms: int, symbol: str = BTC) -> str | None:
    """The rule that refuses an entry on ``symbol`` at ``at_ms``, if any."""
    rejection = breakers.entry_block(symbol, at_ms)
    return None if rejection is None else rejection.rule


def restored(breakers: TradingBreakers, config: BreakerConfig) -> TradingBreakers:
    """A new instance built from the JSON text of ``breakers``' snapshot."""
    return TradingBreakers(config, json.loads(json.dumps(breakers.snapshot())))


def test_daily_loss_trips_at_the_limit_with_exact_fractions() -> None:
    """10000 → 9501 (4.99 %) is allowed; 9388 (6.12 %) trips REDUCING."""
    breakers = TradingBreakers(BreakerConfig())
    assert breakers.mark(T0, Decimal(10000)) == []
    assert breakers.mark(T0 + MINUTE, Decimal(9501)) == []
    assert breakers.mark(T0 + 2 * MINUTE, Decimal(9388)) == [
        BreakerTransition(
            breaker="daily_loss",
            tripped=True,
            state=REDUCING,
            reason="daily loss of 6.12 % reached the 5 % limit "
            "(equity 9388, 10000 at the start of the UTC day)",
            threshold="0.05",
            observed="0.0612",
            candle_time_ms=T0 + 2 * MINUTE,
        )
    ]
    assert breakers.state is REDUCING
    assert breakers.mark(T0 + 3 * MINUTE, Decimal(9000)) == []  # already tripped


def test_daily_loss_resets_at_utc_midnight_of_candle_time() -> None:
    """Tripped at 23:59, reset by the 00:00 mark; the new day starts from the 23:59 equity."""
    breakers = TradingBreakers(BreakerConfig())
    breakers.mark(T0, Decimal(10000))
    [trip] = breakers.mark(T0 + DAY_MS - MINUTE, Decimal(9400))
    assert (trip.breaker, trip.observed) == ("daily_loss", "0.06")
    assert breakers.mark(T0 + DAY_MS - 1, Decimal(9400)) == []  # 23:59:59.999 is the same day
    # (9400 - 9300) / 9400 = 0.0106382… rounds to 0.010638.
    assert breakers.mark(T0 + DAY_MS, Decimal(9300)) == [
        BreakerTransition(
            breaker="daily_loss",
            tripped=False,
            state=ACTIVE,
            reason="a new UTC day began from equity 9400; daily loss reset",
            threshold="0.05",
            observed="0.010638",
            candle_time_ms=T0 + DAY_MS,
        )
    ]
    # 470 / 9400 = 0.05 exactly: the day measures from 9400, not from 10000 or 9300.
    [again] = breakers.mark(T0 + DAY_MS + MINUTE, Decimal(8930))
    assert (again.tripped, again.observed, again.state) == (True, "0.05", REDUCING)


def test_drawdown_halts_and_stays_across_days_until_resume() -> None:
    """Peak 11000 → 9350 is 15 %: HALTED through the next day, cleared only by resume."""
    config = BreakerConfig(max_daily_loss=0.5)
    breakers = TradingBreakers(config)
    breakers.mark(T0, Decimal(10000))
    breakers.mark(T0 + MINUTE, Decimal(11000))
    assert breakers.mark(T0 + 2 * MINUTE, Decimal(9351)) == []  # 1649 / 11000 = 0.1499…
    assert breakers.mark(T0 + 3 * MINUTE, Decimal(9350)) == [
        BreakerTransition(
            breaker="max_drawdown",
            tripped=True,
            state=HALTED,
            reason="drawdown of 15 % reached the 15 % limit (equity 9350, peak 11000)",
            threshold="0.15",
            observed="0.15",
            candle_time_ms=T0 + 3 * MINUTE,
        )
    ]
    assert breakers.mark(T0 + DAY_MS, Decimal(9400)) == []
    assert breakers.state is HALTED
    assert breakers.peak_equity == Decimal(11000)


def test_resume_resets_the_peak_so_drawdown_does_not_trip_again_at_once() -> None:
    """After resume at 9000 the peak is 9000; only 7650 (15 % below it) trips again."""
    breakers = TradingBreakers(BreakerConfig(max_daily_loss=0.5))
    breakers.mark(T0, Decimal(10000))
    breakers.mark(T0 + MINUTE, Decimal(8500))
    assert breakers.resume(T0 + 2 * MINUTE, Decimal(9000)) == [
        BreakerTransition(
            breaker="max_drawdown",
            tripped=False,
            state=ACTIVE,
            reason="drawdown halt cleared by the operator; peak equity set to 9000",
            threshold="0.15",
            observed="0",
            candle_time_ms=T0 + 2 * MINUTE,
        )
    ]
    assert breakers.peak_equity == Decimal(9000)
    assert breakers.mark(T0 + 2 * MINUTE, Decimal(9000)) == []
    assert breakers.mark(T0 + 3 * MINUTE, Decimal(7651)) == []
    [trip] = breakers.mark(T0 + 4 * MINUTE, Decimal(7650))
    assert (trip.breaker, trip.observed) == ("max_drawdown", "0.15")


def test_resume_without_equity_uses_the_last_marked_equity() -> None:
    """resume(None) moves the peak to the last mark, 8500."""
    breakers = TradingBreakers(BreakerConfig(max_daily_loss=0.5))
    breakers.mark(T0, Decimal(10000))
    breakers.mark(T0 + MINUTE, Decimal(8500))
    [reset] = breakers.resume(T0 + 2 * MINUTE, None)
    assert reset.reason == "drawdown halt cleared by the operator; peak equity set to 8500"
    assert breakers.peak_equity == Decimal(8500)


def test_halted_outranks_reducing_and_resume_falls_back_to_the_daily_loss() -> None:
    """Daily loss (REDUCING) then drawdown (HALTED) is HALTED; resume leaves REDUCING."""
    breakers = TradingBreakers(BreakerConfig())
    breakers.mark(T0, Decimal(10000))
    [daily] = breakers.mark(T0 + MINUTE, Decimal(9400))
    [drawdown] = breakers.mark(T0 + 2 * MINUTE, Decimal(8500))
    assert (daily.state, drawdown.state, breakers.state) == (REDUCING, HALTED, HALTED)
    assert breakers.tripped() == (drawdown, daily)
    assert breakers.entry_block(BTC, T0 + 2 * MINUTE) == Rejection(
        rule="trading_state",
        detail="trading is halted: drawdown of 15 % reached the 15 % limit "
        "(equity 8500, peak 10000); daily loss of 6 % reached the 5 % limit "
        "(equity 9400, 10000 at the start of the UTC day)",
    )
    [reset] = breakers.resume(T0 + 3 * MINUTE, Decimal(8500))
    assert (reset.breaker, reset.state, breakers.state) == ("max_drawdown", REDUCING, REDUCING)
    assert breakers.mark(T0 + 3 * MINUTE, Decimal(8500)) == []
    [next_day] = breakers.mark(T0 + DAY_MS, Decimal(8500))
    assert (next_day.breaker, next_day.tripped, next_day.state) == ("daily_loss", False, ACTIVE)


def test_pause_and_emergency_stop_combine_and_resume_clears_both() -> None:
    """Pause is REDUCING, an emergency stop on top is HALTED; resume returns ACTIVE."""
    breakers = TradingBreakers(BreakerConfig())
    [pause] = breakers.pause(T0, "maintenance")
    assert pause == BreakerTransition(
        breaker="manual_pause",
        tripped=True,
        state=REDUCING,
        reason="paused by the operator: maintenance",
        threshold="",
        observed="",
        candle_time_ms=T0,
    )
    assert breakers.pause(T0 + MINUTE, "again") == []
    [stop] = breakers.emergency_stop(T0 + MINUTE, "exchange outage")
    assert (stop.breaker, stop.state, stop.reason) == (
        "emergency_stop",
        HALTED,
        "emergency stop: exchange outage",
    )
    resets = breakers.resume(T0 + 2 * MINUTE, None)
    assert [(r.breaker, r.tripped, r.state) for r in resets] == [
        ("emergency_stop", False, REDUCING),
        ("manual_pause", False, ACTIVE),
    ]
    assert breakers.resume(T0 + 3 * MINUTE, None) == []


def test_losing_streak_trips_on_consecutive_losses_and_ignores_breakeven() -> None:
    """Loss, breakeven, loss, loss is a streak of three and trips REDUCING at the third."""
    breakers = TradingBreakers(BreakerConfig(max_consecutive_losses=3))
    assert breakers.on_trade_closed(closed("-5", T0)) == []
    assert breakers.on_trade_closed(closed("0", T0 + MINUTE)) == []
    assert breakers.on_trade_closed(closed("-5", T0 + 2 * MINUTE)) == []
    assert breakers.on_trade_closed(closed("-5", T0 + 3 * MINUTE)) == [
        BreakerTransition(
            breaker="losing_streak",
            tripped=True,
            state=REDUCING,
            reason="3 consecutive losing trades (limit 3), the last on BTC-USDT netting -5",
            threshold="3",
            observed="3",
            candle_time_ms=T0 + 3 * MINUTE,
        )
    ]


def test_a_win_resets_the_losing_count() -> None:
    """Loss, loss, win, loss, loss never reaches three in a row."""
    breakers = TradingBreakers(BreakerConfig(max_consecutive_losses=3))
    for i, net in enumerate(["-5", "-5", "0.01", "-5", "-5"]):
        assert breakers.on_trade_closed(closed(net, T0 + i * MINUTE)) == []
    assert breakers.state is ACTIVE


def test_losing_streak_resets_after_its_cooldown_of_candle_time() -> None:
    """Tripped at t, still tripped at t + 1 h - 1 ms, reset at t + 1 h with the count at 0."""
    breakers = TradingBreakers(BreakerConfig(max_consecutive_losses=2))
    breakers.on_trade_closed(closed("-1", T0))
    [trip] = breakers.on_trade_closed(closed("-1", T0 + MINUTE))
    assert breakers.on_time(T0 + MINUTE + HOUR - 1) == []
    assert breakers.mark(T0 + MINUTE + HOUR, Decimal(10000)) == [
        BreakerTransition(
            breaker="losing_streak",
            tripped=False,
            state=ACTIVE,
            reason="losing streak cooldown of 60 min has passed",
            threshold="3600000",
            observed="3600000",
            candle_time_ms=T0 + MINUTE + HOUR,
        )
    ]
    assert trip.candle_time_ms == T0 + MINUTE
    assert breakers.on_trade_closed(closed("-1", T0 + 2 * HOUR)) == []  # count restarted at 1


def test_stop_loss_cooldown_blocks_only_its_symbol_until_it_ends() -> None:
    """A BTC stop-out blocks BTC for 30 min; ETH and the global state are untouched."""
    breakers = TradingBreakers(BreakerConfig())
    assert breakers.on_trade_closed(closed("-5", T0, reason=ExitReason.STOP_LOSS)) == [
        BreakerTransition(
            breaker="stop_loss_cooldown",
            tripped=True,
            state=ACTIVE,
            reason=f"BTC-USDT stopped out at 95; entries blocked for 30 min, "
            f"until candle time {T0 + 1_800_000}",
            threshold="1800000",
            observed="0",
            candle_time_ms=T0,
            symbol=BTC,
        )
    ]
    assert breakers.state is ACTIVE
    assert breakers.entry_block(BTC, T0 + 10 * MINUTE) == Rejection(
        rule="stop_loss_cooldown",
        detail="BTC-USDT is cooling down after a stop-loss: 1200000 ms (20 min) left "
        "of 1800000 ms (30 min)",
        observed=1_200_000.0,
        limit=1_800_000.0,
    )
    assert breakers.entry_block(ETH, T0 + 10 * MINUTE) is None
    assert breakers.on_time(T0 + 30 * MINUTE - 1) == []
    [reset] = breakers.mark(T0 + 30 * MINUTE, Decimal(10000))
    assert (reset.breaker, reset.tripped, reset.symbol) == ("stop_loss_cooldown", False, BTC)
    assert (reset.threshold, reset.observed, reset.state) == ("1800000", "1800000", ACTIVE)
    assert breakers.entry_block(BTC, T0 + 30 * MINUTE) is None


def test_a_winning_trailing_stop_starts_no_cooldown() -> None:
    """A trailing-stop exit that made money leaves its symbol free to enter."""
    breakers = TradingBreakers(BreakerConfig())
    assert breakers.on_trade_closed(closed("5", T0, reason=ExitReason.TRAILING_STOP)) == []
    assert breakers.entry_block(BTC, T0 + MINUTE) is None


@pytest.mark.parametrize("reason", [ExitReason.TRAILING_STOP, ExitReason.MARGIN_CALL])
def test_a_losing_trailing_stop_or_a_margin_call_starts_the_cooldown(reason: ExitReason) -> None:
    """Stopped out at a loss by the trail, or force-closed: the symbol cools down as after a
    stop-loss, and the reason says which exit it was."""
    breakers = TradingBreakers(BreakerConfig())
    [trip] = breakers.on_trade_closed(closed("-5", T0, reason=reason))
    assert (trip.breaker, trip.tripped, trip.symbol) == ("stop_loss_cooldown", True, BTC)
    assert trip.reason.startswith(f"BTC-USDT stopped out ({reason}) at 95; entries blocked")
    assert rule_of(breakers, T0 + MINUTE) == "stop_loss_cooldown"


def test_account_deficit_halts_while_cash_is_below_zero_even_when_disabled() -> None:
    """Cash below zero halts trading whatever ENABLE_CIRCUIT_BREAKERS says; resume does not
    clear it; cash back at zero or above resets it; a snapshot carries it."""
    breakers = TradingBreakers(BreakerConfig(enabled=False))
    assert breakers.on_cash(T0, Decimal(5)) == []
    [trip] = breakers.on_cash(T0 + MINUTE, Decimal("-12.3456"))
    assert (trip.breaker, trip.tripped, trip.state) == ("account_deficit", True, HALTED)
    assert (trip.threshold, trip.observed) == ("0", "-12.3456")
    assert trip.reason == (
        "cash is -12.35, below zero: a short was bought back beyond its collateral and the "
        "account's other cash; nothing new can be paid for"
    )
    assert breakers.on_cash(T0 + 2 * MINUTE, Decimal(-1)) == []
    assert rule_of(breakers, T0 + 2 * MINUTE) == "trading_state"
    breakers.resume(T0 + 3 * MINUTE, Decimal(-1))
    assert breakers.state is HALTED
    copy = restored(breakers, BreakerConfig(enabled=False))
    assert copy.state is HALTED
    [reset] = copy.on_cash(T0 + 4 * MINUTE, Decimal(0))
    assert (reset.breaker, reset.tripped, reset.state) == ("account_deficit", False, ACTIVE)


def test_entries_must_be_the_minimum_time_apart_on_any_symbol() -> None:
    """An ETH entry 299999 ms after a BTC entry is refused; at 300000 ms it passes."""
    breakers = TradingBreakers(BreakerConfig())
    assert breakers.entry_block(ETH, T0) is None
    breakers.on_entry(BTC, T0)
    assert breakers.entry_block(ETH, T0 + 299_999) == Rejection(
        rule="min_time_between_trades",
        detail="the last entry (BTC-USDT) was 299999 ms ago; entries must be 300000 ms "
        "(5 min) apart",
        observed=299_999.0,
        limit=300_000.0,
    )
    assert breakers.entry_block(ETH, T0 + 300_000) is None


def test_entry_checks_run_in_order_state_cooldown_spacing_volatility() -> None:
    """With every check failing, each is reported only once those before it pass."""
    config = BreakerConfig(volatility_window=3, volatility_min_samples=3)
    breakers = TradingBreakers(config)
    for i, atr in enumerate([1.0, 1.0, 1.0, 9.0]):
        breakers.on_volatility(BTC, T0 + i * MINUTE, atr)
    breakers.on_trade_closed(closed("-5", T0, reason=ExitReason.STOP_LOSS))
    breakers.on_entry(ETH, T0 + 10 * MINUTE)
    breakers.pause(T0 + 10 * MINUTE, "check order")
    assert rule_of(breakers, T0 + 12 * MINUTE) == "trading_state"
    breakers.resume(T0 + 11 * MINUTE, None)
    assert rule_of(breakers, T0 + 12 * MINUTE) == "stop_loss_cooldown"
    breakers.on_entry(ETH, T0 + 30 * MINUTE)
    assert rule_of(breakers, T0 + 31 * MINUTE) == "min_time_between_trades"
    assert rule_of(breakers, T0 + 35 * MINUTE) == "volatility"


def test_volatility_trips_above_the_multiple_of_the_previous_median_and_resets() -> None:
    """Window [1, 2, 3]: 6 does not trip, 6.5 does; 3 resets it below 0.5 * 3 * median 4."""
    config = BreakerConfig(
        volatility_window=4, volatility_min_samples=3, volatility_multiple=3.0, volatility_reset=0.5
    )
    breakers = TradingBreakers(config)
    for i, atr in enumerate([1.0, 2.0, 30.0]):  # too few samples before the third to compare
        assert breakers.on_volatility(BTC, T0 + i * MINUTE, atr) == []
    breakers = TradingBreakers(config)
    for i, atr in enumerate([1.0, 2.0, 3.0]):
        breakers.on_volatility(BTC, T0 + i * MINUTE, atr)
    equal = TradingBreakers(config, breakers.snapshot())
    assert equal.on_volatility(BTC, T0 + 3 * MINUTE, 6.0) == []  # 6 is not above 3 * 2
    assert breakers.on_volatility(BTC, T0 + 3 * MINUTE, 6.5) == [
        BreakerTransition(
            breaker="volatility",
            tripped=True,
            state=ACTIVE,
            reason="BTC-USDT ATR 6.5 % is above 6 % (3 times the median 2 % of the previous "
            "3 candles)",
            threshold="6",
            observed="6.5",
            candle_time_ms=T0 + 3 * MINUTE,
            symbol=BTC,
        )
    ]
    # Window [1, 2, 3, 6.5]: median 2.5, reset level 3.75; 5 keeps it tripped.
    assert breakers.on_volatility(BTC, T0 + 4 * MINUTE, 5.0) == []
    assert breakers.entry_block(BTC, T0 + 4 * MINUTE) == Rejection(
        rule="volatility",
        detail="BTC-USDT is too volatile: ATR 5 % is above 7.5 %",
        observed=5.0,
        limit=7.5,
    )
    assert breakers.entry_block(ETH, T0 + 4 * MINUTE) is None
    # Window [2, 3, 6.5, 5] (1 dropped): median 4, reset level 6; 3 resets it.
    [reset] = breakers.on_volatility(BTC, T0 + 5 * MINUTE, 3.0)
    assert (reset.tripped, reset.threshold, reset.observed, reset.symbol) == (False, "6", "3", BTC)
    assert reset.reason == "BTC-USDT ATR 3 % fell below the reset level 6 %"
    assert breakers.entry_block(BTC, T0 + 5 * MINUTE) is None


def test_volatility_ignores_non_finite_values_and_zero_medians() -> None:
    """NaN is not a sample, and any ATR against a zero median does not trip."""
    config = BreakerConfig(volatility_window=3, volatility_min_samples=2)
    breakers = TradingBreakers(config)
    for i, atr in enumerate([0.0, float("nan"), 0.0, float("inf"), 5.0]):
        assert breakers.on_volatility(BTC, T0 + i * MINUTE, atr) == []
    assert breakers.snapshot()["volatility_windows"] == {BTC: [0.0, 0.0, 5.0]}


def test_a_disabled_config_trips_nothing_but_manual_controls_and_spacing_still_act() -> None:
    """Losses, a stop-out and a spike trip nothing; pause and min time between entries work."""
    config = BreakerConfig(enabled=False, volatility_window=3, volatility_min_samples=3)
    breakers = TradingBreakers(config)
    assert breakers.mark(T0, Decimal(10000)) == []
    assert breakers.mark(T0 + MINUTE, Decimal(1000)) == []
    for i in range(10):
        trade = closed("-5", T0 + i * MINUTE, reason=ExitReason.STOP_LOSS)
        assert breakers.on_trade_closed(trade) == []
    for i, atr in enumerate([1.0, 1.0, 1.0, 100.0]):
        assert breakers.on_volatility(BTC, T0 + i * MINUTE, atr) == []
    assert breakers.state is ACTIVE
    assert breakers.tripped() == ()
    assert breakers.entry_block(BTC, T0 + 20 * MINUTE) is None
    breakers.on_entry(BTC, T0 + 20 * MINUTE)
    assert rule_of(breakers, T0 + 21 * MINUTE, ETH) == "min_time_between_trades"
    [pause] = breakers.pause(T0 + 22 * MINUTE, "manual")
    assert pause.state is REDUCING


def test_a_restored_copy_carries_every_trip_and_behaves_identically() -> None:
    """Daily loss, streak, cooldown, volatility and spacing survive JSON and reset alike."""
    config = BreakerConfig(max_consecutive_losses=2, volatility_window=3, volatility_min_samples=3)
    original = TradingBreakers(config)
    original.mark(T0, Decimal("10000.50"))
    original.mark(T0 + MINUTE, Decimal("9400.25"))
    original.on_trade_closed(closed("-1", T0 + MINUTE))
    original.on_trade_closed(closed("-1", T0 + 2 * MINUTE, symbol=ETH, reason=ExitReason.STOP_LOSS))
    for i, atr in enumerate([1.0, 1.5, 1.0, 9.0]):
        original.on_volatility(BTC, T0 + i * MINUTE, atr)
    original.on_entry(BTC, T0 + 3 * MINUTE)
    copy = restored(original, config)
    assert copy.snapshot() == json.loads(json.dumps(original.snapshot()))
    assert copy.tripped() == original.tripped()
    assert len(copy.tripped()) == 4
    assert (copy.state, copy.peak_equity) == (REDUCING, Decimal("10000.50"))
    for breakers in (original, copy):
        breakers.resume(T0 + 4 * MINUTE, None)
    later = [(T0 + 6 * MINUTE, "9400"), (T0 + HOUR + 2 * MINUTE, "9300"), (T0 + DAY_MS, "9300")]
    for at_ms, equity in later:
        assert copy.mark(at_ms, Decimal(equity)) == original.mark(at_ms, Decimal(equity))
        for symbol in (BTC, ETH):
            assert copy.entry_block(symbol, at_ms) == original.entry_block(symbol, at_ms)
    assert copy.on_volatility(BTC, T0 + DAY_MS, 1.0) == original.on_volatility(
        BTC, T0 + DAY_MS, 1.0
    )
    assert copy.tripped() == original.tripped() == ()


@pytest.mark.parametrize(
    "change",
    [
        {"version": 99},
        {"peak_equity": "ten"},
        {"consecutive_losses": None},
        {"volatility_windows": {BTC: ["1.0"]}},
        {"global_trips": [{"breaker": "nonsense"}]},
        {"cooldown_until": {BTC: T0}},  # a cooldown without its trip
    ],
)
def test_a_malformed_snapshot_is_refused(change: dict[str, object]) -> None:
    """Broken or inconsistent snapshots raise ConfigError rather than load half a state."""
    snapshot = {**TradingBreakers(BreakerConfig()).snapshot(), **change}
    with pytest.raises(ConfigError, match="breaker snapshot"):
        TradingBreakers(BreakerConfig(), snapshot)


PROPERTY_CONFIG = BreakerConfig(
    max_daily_loss=0.05,
    max_drawdown=0.15,
    max_consecutive_losses=2,
    losing_streak_cooldown_ms=2 * HOUR,
    min_time_between_trades_ms=5 * MINUTE,
    stop_loss_cooldown_ms=30 * MINUTE,
    volatility_multiple=2.0,
    volatility_window=5,
    volatility_min_samples=3,
    volatility_reset=0.8,
)
SYMBOLS = (BTC, ETH)


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One call on the breakers, ``step_ms`` after the previous one."""

    name: str
    step_ms: int
    symbol: str = BTC
    equity: Decimal = Decimal(10000)
    with_equity: bool = True
    atr_pct: float = 1.0
    net: int = 0
    exit_reason: ExitReason = ExitReason.TAKE_PROFIT


Action = Callable[[TradingBreakers, int, Operation], list[BreakerTransition] | None]
ACTIONS: dict[str, Action] = {
    "mark": lambda b, t, op: b.mark(t, op.equity),
    "volatility": lambda b, t, op: b.on_volatility(op.symbol, t, op.atr_pct),
    "trade": lambda b, t, op: b.on_trade_closed(
        closed(str(op.net), t, symbol=op.symbol, reason=op.exit_reason)
    ),
    "entry": lambda b, t, op: b.on_entry(op.symbol, t),
    "pause": lambda b, t, op: b.pause(t, "test"),
    "stop": lambda b, t, op: b.emergency_stop(t, "test"),
    "resume": lambda b, t, op: b.resume(t, op.equity if op.with_equity else None),
}
STEP = st.integers(0, 6 * HOUR)
SYMBOL = st.sampled_from(SYMBOLS)
EQUITY = st.integers(700_000, 1_100_000).map(lambda cents: Decimal(cents) / 100)
OPERATION = st.one_of(
    st.builds(Operation, name=st.just("mark"), step_ms=STEP, equity=EQUITY),
    st.builds(
        Operation,
        name=st.just("volatility"),
        step_ms=STEP,
        symbol=SYMBOL,
        atr_pct=st.floats(0.1, 5.0),
    ),
    st.builds(
        Operation,
        name=st.just("trade"),
        step_ms=STEP,
        symbol=SYMBOL,
        net=st.integers(-3, 3),
        exit_reason=st.sampled_from(list(ExitReason)),
    ),
    st.builds(Operation, name=st.sampled_from(["entry", "pause", "stop"]), step_ms=STEP),
    st.builds(
        Operation, name=st.just("resume"), step_ms=STEP, equity=EQUITY, with_equity=st.booleans()
    ),
)


def apply(breakers: TradingBreakers, at_ms: int, operation: Operation) -> object:
    """Run one operation at ``at_ms``; return its transitions, every entry check and the state."""
    out = ACTIONS[operation.name](breakers, at_ms, operation)
    return out, [breakers.entry_block(s, at_ms) for s in SYMBOLS], breakers.state


@settings(max_examples=150, deadline=None)
@given(operations=st.lists(OPERATION, max_size=40), split=st.integers(0, 40))
def test_a_restored_copy_matches_the_original_after_any_history(
    operations: list[Operation], split: int
) -> None:
    """Restoring from a JSON snapshot mid-way changes no later transition or entry decision."""
    times, now = [], T0
    for operation in operations:
        now += operation.step_ms
        times.append(now)
    split = min(split, len(operations))
    original = TradingBreakers(PROPERTY_CONFIG)
    for at_ms, operation in zip(times[:split], operations[:split], strict=True):
        apply(original, at_ms, operation)
    copy = restored(original, PROPERTY_CONFIG)
    assert copy.snapshot() == json.loads(json.dumps(original.snapshot()))
    for at_ms, operation in zip(times[split:], operations[split:], strict=True):
        assert apply(copy, at_ms, operation) == apply(original, at_ms, operation)
    assert copy.tripped() == original.tripped()
    assert copy.peak_equity == original.peak_equity
