"""Ledger analytics: returns, risk ratios, drawdowns, trade statistics and the ledger digest."""

import dataclasses
import hashlib
import json
import math
from decimal import Decimal

import pytest
from fakes.trading import closed_trade
from hypothesis import given
from hypothesis import strategies as st

from paper_trader.broker.analytics import Analytics, Breakdown, analyse, ledger_digest
from paper_trader.broker.tally import TradeTally
from paper_trader.domain.candle import Interval, Venue
from paper_trader.domain.trading import ClosedTrade, EquitySnapshot, ExitReason, Side

H = 3_600_000
D = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
INITIAL = Decimal(1000)


def snap(ms: int, equity: str, open_positions: int = 0) -> EquitySnapshot:
    """An equity snapshot at candle time ``ms``, all in cash."""
    return EquitySnapshot(
        candle_time_ms=ms,
        cash=Decimal(equity),
        positions_value=Decimal(0),
        equity=Decimal(equity),
        peak_equity=Decimal(equity),
        open_positions=open_positions,
    )


def trade(
    symbol: str,
    side: Side,
    quantity: str,
    entry: str,
    fee: str,
    net: str,
    reason: ExitReason,
    opened_ms: int,
) -> ClosedTrade:
    """A trade closed one hour after it opened, paying ``fee`` on each fill, netting ``net``."""
    return closed_trade(
        net,
        venue=Venue.BITVAVO,
        symbol=symbol,
        interval=Interval.H1,
        side=side,
        quantity=quantity,
        entry=entry,
        fee=fee,
        opened_ms=opened_ms,
        held_ms=H,
        reason=reason,
    )


def breakdown(key: str, trades: int, wins: int, net: int, fees: str) -> Breakdown:
    """A breakdown whose win rate is ``wins / trades``."""
    return Breakdown(
        key=key,
        trades=trades,
        wins=wins,
        win_rate=wins / trades,
        net_pnl=Decimal(net),
        fees=Decimal(fees),
    )


LONG, SHORT = Side.LONG, Side.SHORT
TP, SL, MAX = ExitReason.TAKE_PROFIT, ExitReason.STOP_LOSS, ExitReason.MAX_HOLDING
# Nets +100, -30, +50, -20, 0; fees per trade 2, 1, 0.5, 1, 0.2 (total 4.7).
TRADES = (
    # symbol, side, quantity, entry, fee per fill, net, exit reason, opened
    trade("BTC/EUR", LONG, "1", "100", "1", "100", TP, T0),
    trade("ETH/EUR", LONG, "2", "50", "0.5", "-30", SL, T0 + D),
    trade("BTC/EUR", SHORT, "1", "300", "0.25", "50", TP, T0 + D),
    trade("ETH/EUR", LONG, "1", "40", "0.5", "-20", SL, T0 + 2 * D),
    trade("BTC/EUR", LONG, "1", "200", "0.1", "0", MAX, T0 + 3 * D),
)
# Two snapshots a day for four days; the last of each day gives 1100, 990, 1089, 1197.9, i.e.
# daily returns +10 %, -10 %, +10 %, +10 %. The peak 1150 (day 2, 00:00) falls to 920 (-20 %)
# and is regained exactly at day 4, 00:00. Five of the eight snapshots hold a position.
SNAPSHOTS = (
    snap(T0, "1000"),
    snap(T0 + 12 * H, "1100", 1),
    snap(T0 + D, "1150", 1),
    snap(T0 + D + 12 * H, "990"),
    snap(T0 + 2 * D, "920", 1),
    snap(T0 + 2 * D + 12 * H, "1089"),
    snap(T0 + 3 * D, "1150", 2),
    snap(T0 + 3 * D + 12 * H, "1197.9", 1),
)


def run(
    trades: tuple[ClosedTrade, ...] = TRADES,
    snapshots: tuple[EquitySnapshot, ...] = SNAPSHOTS,
    initial: Decimal = INITIAL,
) -> Analytics:
    """Analyse with hourly candles."""
    return analyse(trades, snapshots, initial_equity=initial, interval_ms=H)


def test_returns_come_from_the_last_snapshot_over_the_initial_equity() -> None:
    """1197.9 / 1000 - 1 = 0.1979, annualised over the 3.5 days from first to last snapshot."""
    result = run()
    assert result.final_equity == Decimal("1197.9")
    assert result.total_return == pytest.approx(0.1979, rel=1e-12)
    assert result.annualised_return == pytest.approx(1.1979 ** (365 / 3.5) - 1, rel=1e-9)


def test_daily_equity_takes_the_last_snapshot_of_each_utc_day() -> None:
    """The 12:00 snapshot is the last of each day, so it is the day's equity."""
    assert run().daily_equity == (
        ("2024-01-01", Decimal("1100")),
        ("2024-01-02", Decimal("990")),
        ("2024-01-03", Decimal("1089")),
        ("2024-01-04", Decimal("1197.9")),
    )


def test_sharpe_and_sortino_are_annualised_from_daily_returns() -> None:
    """Returns .1, -.1, .1, .1: mean .05, std .1, downside sqrt(.01 / 4) = .05."""
    result = run()
    assert result.sharpe == pytest.approx(0.5 * math.sqrt(365), rel=1e-9)  # 9.5525
    assert result.sortino == pytest.approx(1.0 * math.sqrt(365), rel=1e-9)  # 19.105


def test_calmar_divides_the_annualised_return_by_the_max_drawdown() -> None:
    """The deepest fall is 20 %, so Calmar is five times the annualised return."""
    result = run()
    assert result.annualised_return is not None
    assert result.calmar == pytest.approx(result.annualised_return / 0.2, rel=1e-12)


def test_drawdown_is_peak_to_trough_and_lasts_until_the_peak_is_regained() -> None:
    """1150 falls to 920: (1150 - 920) / 1150 = 0.2; 1150 is back two days later."""
    result = run()
    assert result.max_drawdown == pytest.approx(0.2, rel=1e-12)
    assert result.max_drawdown_duration_ms == 2 * D


def test_drawdown_duration_runs_to_the_last_snapshot_when_never_regained() -> None:
    """1000 falls to 800 and never comes back: 20 %, three hours to the last snapshot."""
    snapshots = (
        snap(T0, "1000"),
        snap(T0 + H, "900"),
        snap(T0 + 2 * H, "950"),
        snap(T0 + 3 * H, "800"),
    )
    result = run((), snapshots)
    assert result.max_drawdown == pytest.approx(0.2, rel=1e-12)
    assert result.max_drawdown_duration_ms == 3 * H


def test_rising_equity_has_no_drawdown_and_no_time_under_a_peak() -> None:
    """Each snapshot is a new high: nothing fell, so no time was spent below a peak."""
    result = run((), (snap(T0, "1000"), snap(T0 + D, "1010"), snap(T0 + 2 * D, "1020")))
    assert result.max_drawdown == 0.0
    assert result.max_drawdown_duration_ms == 0


def test_the_longest_drawdown_need_not_be_the_deepest() -> None:
    """A 10 % fall lasting 2 h, then a 1 % fall from 100 at 2 h regained only at 6 h."""
    snapshots = (
        snap(T0, "100"),
        snap(T0 + H, "90"),
        snap(T0 + 2 * H, "100"),
        snap(T0 + 3 * H, "99"),
        snap(T0 + 4 * H, "99.5"),
        snap(T0 + 5 * H, "99.9"),
        snap(T0 + 6 * H, "100.5"),
    )
    result = run((), snapshots, Decimal(100))
    assert result.max_drawdown == pytest.approx(0.1, rel=1e-12)
    assert result.max_drawdown_duration_ms == 4 * H


def test_the_initial_equity_is_the_first_peak() -> None:
    """Starting at 1000 and first marked at 950 is a 5 % drawdown, regained an hour later."""
    result = run((), (snap(T0, "950"), snap(T0 + H, "1000"), snap(T0 + 2 * H, "1010")))
    assert result.max_drawdown == pytest.approx(0.05, rel=1e-12)
    assert result.max_drawdown_duration_ms == H


def test_trade_statistics_count_a_zero_trade_as_neither_win_nor_loss() -> None:
    """Wins 100, 50; losses -30, -20; one flat: win rate 2/5, profit factor 150/50."""
    result = run()
    assert (result.trades, result.wins, result.losses) == (5, 2, 2)
    assert result.win_rate == pytest.approx(0.4)
    assert result.profit_factor == pytest.approx(3.0)
    assert result.expectancy == Decimal(20)  # 100 / 5
    assert result.average_win == Decimal(75)
    assert result.average_loss == Decimal(-25)
    assert result.total_fees == Decimal("4.7")
    assert result.net_pnl == Decimal(100)


def test_kelly_fraction_uses_win_rate_and_payoff_ratio() -> None:
    """W = 0.4, R = 75 / 25 = 3: 0.4 - 0.6 / 3 = 0.2."""
    assert run().kelly_fraction == pytest.approx(0.2, rel=1e-12)


def test_profit_factor_and_kelly_are_none_without_losses() -> None:
    """Only winners: no loss to divide by, no average loss, a win rate of 1."""
    result = run((TRADES[0], TRADES[2]))
    assert result.profit_factor is None
    assert result.average_loss is None
    assert result.kelly_fraction is None
    assert result.win_rate == 1.0


def test_profit_factor_is_zero_and_kelly_none_with_only_losses() -> None:
    """Only losers: nothing won over 50 lost, and no average win for Kelly."""
    result = run((TRADES[1], TRADES[3]))
    assert result.profit_factor == 0.0
    assert result.average_win is None
    assert result.kelly_fraction is None


def test_breakdowns_group_by_symbol_and_by_exit_reason_sorted_by_key() -> None:
    """BTC: 100, 50, 0; ETH: -30, -20; reasons sorted max_holding, stop_loss, take_profit."""
    result = run()
    assert result.by_symbol == (
        breakdown("BTC/EUR", trades=3, wins=2, net=150, fees="2.7"),
        breakdown("ETH/EUR", trades=2, wins=0, net=-50, fees="2"),
    )
    assert result.by_exit_reason == (
        breakdown("max_holding", trades=1, wins=0, net=0, fees="0.2"),
        breakdown("stop_loss", trades=2, wins=0, net=-50, fees="2"),
        breakdown("take_profit", trades=2, wins=2, net=150, fees="2.5"),
    )


def test_exposure_is_the_fraction_of_snapshots_holding_a_position() -> None:
    """Five of eight snapshots have an open position."""
    assert run().exposure == 0.625


def test_var_and_cvar_with_few_returns_are_the_worst_day() -> None:
    """With four returns the 5th percentile ("lower") is the minimum, -10 %."""
    result = run()
    assert result.var_95 == pytest.approx(0.1, rel=1e-12)
    assert result.cvar_95 == pytest.approx(0.1, rel=1e-12)


def test_var_is_the_lower_5th_percentile_and_cvar_the_mean_beyond_it() -> None:
    """41 returns: index floor(0.05 * 40) = 2 is -3 %; the mean of -5, -4, -3 % is -4 %."""
    returns = [Decimal("0.01")] * 38
    for index, loss in ((5, "-0.05"), (15, "-0.04"), (25, "-0.03")):
        returns.insert(index, Decimal(loss))
    equity, snapshots = INITIAL, []
    for day, r in enumerate(returns):
        equity *= 1 + r
        snapshots.append(snap(T0 + day * D, str(equity)))
    result = run((), tuple(snapshots))
    assert result.var_95 == pytest.approx(0.03, abs=1e-12)
    assert result.cvar_95 == pytest.approx(0.04, abs=1e-12)


def test_equal_daily_returns_have_no_sharpe_or_sortino() -> None:
    """+10 % twice (day 2 has no snapshot): zero spread and no losing day, VaR a gain."""
    snapshots = (snap(T0, "1200"), snap(T0 + 23 * H, "1100"), snap(T0 + 2 * D + 5 * H, "1210"))
    result = run((), snapshots)
    assert result.daily_equity == (("2024-01-01", Decimal(1100)), ("2024-01-03", Decimal(1210)))
    assert result.sharpe is None
    assert result.sortino is None
    assert result.var_95 == pytest.approx(-0.1, rel=1e-12)
    assert result.annualised_return == pytest.approx(1.21 ** (365 / (2 + 5 / 24)) - 1, rel=1e-9)


def test_less_than_a_day_has_no_annualised_return_or_risk_ratios() -> None:
    """One day of snapshots: one daily return, a span under a day."""
    result = run((), (snap(T0, "900"), snap(T0 + 23 * H, "950")))
    assert result.annualised_return is None
    assert result.calmar is None
    assert (result.sharpe, result.sortino, result.var_95, result.cvar_95) == (None,) * 4
    assert result.max_drawdown == pytest.approx(0.1, rel=1e-12)


def test_empty_inputs_give_none_or_zero_and_valid_json() -> None:
    """No trades, no snapshots: final is the initial equity, every ratio None."""
    result = run((), ())
    assert result.final_equity == INITIAL
    assert result.total_return == 0.0
    assert (result.trades, result.wins, result.losses) == (0, 0, 0)
    assert (result.net_pnl, result.total_fees) == (Decimal(0), Decimal(0))
    undefined = [
        "annualised_return", "sharpe", "sortino", "calmar", "max_drawdown",
        "max_drawdown_duration_ms", "win_rate", "profit_factor", "expectancy", "average_win",
        "average_loss", "exposure", "var_95", "cvar_95", "kelly_fraction",
    ]  # fmt: skip
    assert {name: getattr(result, name) for name in undefined} == dict.fromkeys(undefined)
    assert (result.by_symbol, result.by_exit_reason, result.daily_equity) == ((), (), ())
    json.dumps(result.to_json(), allow_nan=False)


def test_to_json_writes_money_as_text_and_rounds_floats() -> None:
    """Decimals keep their digits, floats get six decimals, dates are ISO days."""
    out = run().to_json()
    json.dumps(out, allow_nan=False)
    assert out["final_equity"] == "1197.9"
    assert out["total_fees"] == "4.70"  # 2 + 1.0 + 0.50 + 1.0 + 0.2
    assert out["sharpe"] == 9.552487  # 0.5 * sqrt(365) = 9.5524865...
    assert out["max_drawdown_duration_ms"] == 2 * D
    assert out["daily_equity"] == [
        {"date": "2024-01-01", "equity": "1100"},
        {"date": "2024-01-02", "equity": "990"},
        {"date": "2024-01-03", "equity": "1089"},
        {"date": "2024-01-04", "equity": "1197.9"},
    ]
    btc = {"key": "BTC/EUR", "trades": 3, "wins": 2, "win_rate": 0.666667}
    assert out["by_symbol"] == [
        {**btc, "net_pnl": "150", "fees": "2.70"},
        {
            "key": "ETH/EUR",
            "trades": 2,
            "wins": 0,
            "win_rate": 0.0,
            "net_pnl": "-50",
            "fees": "2.0",
        },
    ]


def test_bad_inputs_are_refused() -> None:
    """A non-positive initial equity or interval, or unordered snapshots, raise ValueError."""
    with pytest.raises(ValueError, match="initial equity"):
        run((), (), Decimal(0))
    with pytest.raises(ValueError, match="interval"):
        analyse((), (), initial_equity=INITIAL, interval_ms=0)
    with pytest.raises(ValueError, match="out of order"):
        run((), (snap(T0 + H, "1000"), snap(T0, "1000")))


def test_digest_of_one_trade_is_the_hash_of_its_canonical_json() -> None:
    """The canonical form: sorted keys, compact separators, decimals without trailing zeros."""
    expected = (
        '[{"closed_candle_ms":1704070800000,"entry_fee":"1","entry_fill_model":"market_close",'
        '"entry_price":"100","exit_fee":"1","exit_fill_model":"target_limit","exit_price":"202",'
        '"exit_reason":"take_profit","interval":"1h","net_pnl":"100","opened_candle_ms":'
        '1704067200000,"quantity":"1","side":"long","symbol":"BTC/EUR","venue":"bitvavo"}]'
    )
    assert ledger_digest([TRADES[0]]) == hashlib.sha256(expected.encode()).hexdigest()


def test_digest_of_no_trades_is_the_hash_of_an_empty_list() -> None:
    """An empty ledger hashes "[]"."""
    assert ledger_digest([]) == hashlib.sha256(b"[]").hexdigest()


def test_digest_does_not_depend_on_the_input_order() -> None:
    """Reversed and rotated lists of the same trades give the same digest."""
    digest = ledger_digest(TRADES)
    assert ledger_digest(TRADES[::-1]) == digest
    assert ledger_digest(TRADES[2:] + TRADES[:2]) == digest


def test_digest_ignores_trailing_zeros_and_exponents() -> None:
    """1.50 is 1.5 and 1E+2 is 100."""
    first = TRADES[0]
    a = dataclasses.replace(first, quantity=Decimal("1.50"), entry_price=Decimal("100"))
    b = dataclasses.replace(first, quantity=Decimal("1.5"), entry_price=Decimal("1E+2"))
    assert ledger_digest([a]) == ledger_digest([b])


def test_digest_changes_when_a_price_changes() -> None:
    """A different exit price, even in the 31st significant digit, is a different ledger."""
    first = TRADES[0]
    moved = dataclasses.replace(first, exit_price=Decimal("202.0000000000000000000000000001"))
    assert ledger_digest([moved]) != ledger_digest([first])
    assert ledger_digest([dataclasses.replace(first, exit_price=Decimal(203))]) != ledger_digest(
        [first]
    )


def test_digest_ignores_recovered_and_fill_ids() -> None:
    """Recovery at start-up and fill sequence numbers are facts about the run, not the market."""
    other = dataclasses.replace(TRADES[0], recovered=True, entry_fill_id=41, exit_fill_id=42)
    assert ledger_digest([other]) == ledger_digest([TRADES[0]])


@given(
    initial=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2),
    equities=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2),
        min_size=1,
        max_size=30,
    ),
)
def test_max_drawdown_equals_the_brute_force_over_all_pairs(
    initial: Decimal, equities: list[Decimal]
) -> None:
    """For positive equity, drawdown is in [0, 1) and the max of (E_i - E_j) / E_i, i < j."""
    snapshots = tuple(snap(T0 + k * H, str(e)) for k, e in enumerate(equities))
    result = run((), snapshots, initial)
    series = [initial, *equities]
    pairs = [
        (series[i] - series[j]) / series[i]
        for i in range(len(series))
        for j in range(i + 1, len(series))
    ]
    # A series that only rises has no fall: every pair is negative, the drawdown is 0.
    brute = float(max(Decimal(0), *pairs))
    assert result.max_drawdown is not None
    assert 0.0 <= result.max_drawdown < 1.0
    assert result.max_drawdown == brute


def test_a_tally_takes_trades_in_the_digests_order_and_orders_ties_itself() -> None:
    """Fed row by row as SQL sorts them, ties on (opened, symbol, closed) in any order, the
    tally's digest is the ledger digest; a trade from before the previous one is refused."""
    first = trade("BTC-EUR", Side.LONG, "1", "100", "0.1", "5", ExitReason.TAKE_PROFIT, 0)
    twin = trade("BTC-EUR", Side.LONG, "2", "100", "0.1", "-3", ExitReason.STOP_LOSS, 0)
    later = trade("ETH-EUR", Side.SHORT, "1", "50", "0.1", "1", ExitReason.MANUAL, H)
    digests = set()
    for tie in ((first, twin), (twin, first)):
        tally = TradeTally()
        for each in (*tie, later):
            tally.add(each)
        digests.add(tally.digest())
    assert digests == {ledger_digest([later, twin, first])}
    with pytest.raises(ValueError, match="out of the digest's order"):
        tally.add(first)
    assert TradeTally().digest() == hashlib.sha256(b"[]").hexdigest()
