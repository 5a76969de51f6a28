"""Performance analytics of a paper-trading ledger, and the ledger's canonical digest.

Everything is computed from closed trades and equity snapshots; times are candle times, never
the wall clock, so that a replay and the live run report the same numbers. Money stays
``Decimal`` (divided in the current decimal context); ratios are floats. A metric that is
undefined (no trades, too few returns, a zero denominator) is None, never NaN or infinity.
"""

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from decimal import Decimal

import numpy as np

from paper_trader.broker.tally import EquityTally, Group, TradeTally
from paper_trader.domain.trading import DAY_MS, ClosedTrade, EquitySnapshot

_DAYS_PER_YEAR = 365
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Breakdown:
    """The trades of one group (a symbol or an exit reason): count, wins, net PnL and fees."""

    key: str
    trades: int
    wins: int
    win_rate: float
    net_pnl: Decimal
    fees: Decimal

    def to_json(self) -> dict[str, object]:
        """Return the breakdown as JSON-ready values."""
        return _fields_to_json(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Analytics:
    """The performance of a ledger. Returns and drawdowns are fractions (0.05 is 5 %).

    ``max_drawdown`` and its duration are None without snapshots; ``daily_equity`` holds the
    last equity of each UTC day with a snapshot, as ("YYYY-MM-DD", equity).
    """

    initial_equity: Decimal
    final_equity: Decimal
    total_return: float
    annualised_return: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float | None
    max_drawdown_duration_ms: int | None
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: Decimal | None
    average_win: Decimal | None
    average_loss: Decimal | None
    total_fees: Decimal
    net_pnl: Decimal
    exposure: float | None
    var_95: float | None
    cvar_95: float | None
    kelly_fraction: float | None
    by_symbol: tuple[Breakdown, ...]
    by_exit_reason: tuple[Breakdown, ...]
    daily_equity: tuple[tuple[str, Decimal], ...]

    def to_json(self) -> dict[str, object]:
        """Return JSON-ready values: money as exact strings, floats rounded to 6 decimals.

        ``daily_equity`` becomes a list of ``{"date": ..., "equity": ...}`` objects.
        """
        out = _fields_to_json(self)
        out["daily_equity"] = [
            {"date": day, "equity": format(equity, "f")} for day, equity in self.daily_equity
        ]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _TradeStats:
    trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: Decimal | None
    average_win: Decimal | None
    average_loss: Decimal | None
    total_fees: Decimal
    net_pnl: Decimal
    kelly_fraction: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _ReturnStats:
    sharpe: float | None
    sortino: float | None
    var_95: float | None
    cvar_95: float | None


def analyse(
    trades: Sequence[ClosedTrade],
    snapshots: Sequence[EquitySnapshot],
    *,
    initial_equity: Decimal,
    interval_ms: int,
) -> Analytics:
    """Return the performance of a ledger from its closed trades and equity snapshots.

    ``snapshots`` are in ascending candle time, one per decision instant (or, once thinned,
    per the ``instants`` it stands for), and may be empty. Each instant stands for one candle
    of ``interval_ms``, so exposure (the fraction of the span with a position open) is the
    fraction of instants with a position open. Raise ``ValueError`` if ``initial_equity`` or
    ``interval_ms`` is not positive, or if the snapshots are out of order. The same as
    ``analyse_tallies`` of the two fed one by one (``report`` streams them from SQLite).
    """
    equity = EquityTally(initial_equity)
    for snapshot in snapshots:
        equity.add(snapshot)
    return analyse_tallies(_tallied(trades), equity, interval_ms=interval_ms)


def analyse_tallies(trades: TradeTally, equity: EquityTally, *, interval_ms: int) -> Analytics:
    """Return the performance of a ledger whose trades and snapshots were tallied."""
    initial_equity = equity.initial_equity
    _check_inputs(initial_equity, interval_ms)
    final_equity = equity.last.equity if equity.last else initial_equity
    annualised = _annualised_return(equity, final_equity / initial_equity)
    max_drawdown = float(equity.deepest) if equity.last else None
    returns = _daily_returns(initial_equity, list(equity.daily.values()))
    stats, return_stats = _trade_stats(trades), _return_stats(returns)
    calmar = None
    if annualised is not None and max_drawdown:
        calmar = _finite(annualised / max_drawdown)
    return Analytics(
        initial_equity=initial_equity,
        final_equity=final_equity,
        total_return=float(final_equity / initial_equity - 1),
        annualised_return=annualised,
        calmar=calmar,
        max_drawdown=max_drawdown,
        max_drawdown_duration_ms=equity.longest_ms if equity.last else None,
        exposure=equity.opened / equity.instants if equity.last else None,
        by_symbol=_breakdown(trades.by_symbol),
        by_exit_reason=_breakdown(trades.by_exit_reason),
        daily_equity=tuple((_iso_day(day), value) for day, value in equity.daily.items()),
        **asdict(stats),
        **asdict(return_stats),
    )


def ledger_digest(trades: Sequence[ClosedTrade]) -> str:
    """Return the SHA-256 hex digest of the canonical trade list; equal ledgers, equal digests.

    Each trade contributes venue, symbol, interval, side, quantity, entry and exit price,
    entry and exit fee, net PnL, opened and closed candle times, exit reason and both fill
    models. Decimals are written without trailing zeros (``1.50`` and ``1.5`` are the same).
    Trades are sorted by (opened candle, symbol, closed candle), then by their canonical text,
    so the input order does not matter. Left out on purpose: ``recovered`` (a fact about the
    run, not the market), the fill ids (sequence numbers of one run) and gross PnL (implied);
    nothing wall-clock is in a trade. The empty ledger hashes ``[]``. ``TradeTally.digest``
    gives the same of trades fed in that order.
    """
    return _tallied(trades).digest()


def _tallied(trades: Sequence[ClosedTrade]) -> TradeTally:
    tally = TradeTally()
    for trade in sorted(trades, key=lambda t: (t.opened_candle_ms, t.symbol, t.closed_candle_ms)):
        tally.add(trade)
    return tally


def _check_inputs(initial_equity: Decimal, interval_ms: int) -> None:
    """Raise ``ValueError`` on inputs no analytics can be computed from."""
    if not initial_equity > 0:
        raise ValueError(f"the initial equity must be positive, not {initial_equity}")
    if interval_ms <= 0:
        raise ValueError(f"the interval must be a positive number of ms, not {interval_ms}")


def _annualised_return(equity: EquityTally, growth: Decimal) -> float | None:
    """Return ``growth ** (365 / days) - 1`` over the snapshots' span; None under one day.

    None too when it cannot be a finite real number (equity fell below zero, or overflow).
    """
    if equity.first is None or equity.last is None:
        return None
    span_ms = equity.last.candle_time_ms - equity.first.candle_time_ms
    if span_ms < DAY_MS or growth < 0:
        return None
    try:
        return math.pow(float(growth), _DAYS_PER_YEAR * DAY_MS / span_ms) - 1.0
    except OverflowError:
        return None


def _daily_returns(initial_equity: Decimal, daily: Sequence[Decimal]) -> list[float]:
    """Return each day's equity over the previous day's (the first over the initial) - 1.

    A day that follows a day ending at zero equity has no defined return and is left out.
    """
    pairs = itertools.pairwise([initial_equity, *daily])
    return [float(now / before - 1) for before, now in pairs if before]


def _return_stats(returns: Sequence[float]) -> _ReturnStats:
    """Return Sharpe, Sortino (both annualised by sqrt(365)) and historical 95 % VaR/CVaR."""
    if len(returns) < 2:
        return _ReturnStats(sharpe=None, sortino=None, var_95=None, cvar_95=None)
    r = np.asarray(returns, dtype=np.float64)
    mean, scale = float(r.mean()), math.sqrt(_DAYS_PER_YEAR)
    # Equal returns have no spread; testing that exactly avoids a rounding-noise std.
    std = float(r.std(ddof=1)) if len(set(returns)) > 1 else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    cutoff = float(np.percentile(r, 5, method="lower"))
    return _ReturnStats(
        sharpe=mean / std * scale if std > 0 else None,
        sortino=mean / downside * scale if downside > 0 else None,
        var_95=-cutoff,
        cvar_95=-float(r[r <= cutoff].mean()),
    )


def _trade_stats(tally: TradeTally) -> _TradeStats:
    """Return counts, win rate, profit factor, averages, fees, net PnL and the Kelly fraction.

    A trade with zero net PnL counts as neither a win nor a loss.
    """
    average_win = tally.won / tally.wins if tally.wins else None
    average_loss = tally.lost / tally.losses if tally.losses else None
    win_rate = tally.wins / tally.trades if tally.trades else None
    kelly = None
    if win_rate is not None and average_win is not None and average_loss is not None:
        kelly = win_rate - (1 - win_rate) / float(average_win / -average_loss)
    return _TradeStats(
        trades=tally.trades,
        wins=tally.wins,
        losses=tally.losses,
        win_rate=win_rate,
        profit_factor=float(tally.won / -tally.lost) if tally.losses else None,
        expectancy=tally.net_pnl / tally.trades if tally.trades else None,
        average_win=average_win,
        average_loss=average_loss,
        total_fees=tally.fees,
        net_pnl=tally.net_pnl,
        kelly_fraction=kelly,
    )


def _breakdown(groups: dict[str, Group]) -> tuple[Breakdown, ...]:
    """Return one breakdown per group, sorted by its name."""
    return tuple(
        Breakdown(
            key=name,
            trades=group.trades,
            wins=group.wins,
            win_rate=group.wins / group.trades,
            net_pnl=group.net_pnl,
            fees=group.fees,
        )
        for name, group in sorted(groups.items())
    )


def _finite(value: float) -> float | None:
    """Return ``value``, or None if it is infinite or NaN."""
    return value if math.isfinite(value) else None


def _iso_day(day: int) -> str:
    """Return the UTC day number (days since 1970-01-01) as "YYYY-MM-DD"."""
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


def _fields_to_json(value: Analytics | Breakdown) -> dict[str, object]:
    """Return a dataclass's fields as JSON-ready values."""
    return {f.name: _to_json_value(getattr(value, f.name)) for f in fields(value)}


def _to_json_value(value: object) -> object:
    """Return ``value`` ready for ``json.dumps``: Decimal as text, floats rounded to 6 places."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        # + 0.0 turns a rounded -0.0 into 0.0; infinities and NaN are not JSON.
        return round(value, 6) + 0.0 if math.isfinite(value) else None
    if isinstance(value, Breakdown):
        return value.to_json()
    if isinstance(value, tuple):
        return [_to_json_value(item) for item in value]
    return value
