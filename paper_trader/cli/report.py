"""``report``: the summary of a database, the same as replay's (read-only).

By default a short table for people: trades, PnL, equity, win rate, maximum drawdown, breaker
trips and the Monte Carlo percentiles. ``--json`` prints the whole summary as JSON for scripts
(the same object replay writes). ``demo`` ends with the same table.
"""

import argparse
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from paper_trader.app.chores import report
from paper_trader.cli.command import console_logging
from paper_trader.settings import Settings

WIDTH = 15  # the labels' column
NONE = "-"


def report_command(settings: Settings, args: argparse.Namespace) -> int:
    """Print the summary of ``--db`` (default ``DB_PATH``): the table, or ``--json``."""
    with console_logging(settings):
        summary = report(args.db or settings.db_path, monte_carlo_runs=settings.monte_carlo_runs)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print("\n".join(summary_lines(summary.to_json(), settings.monte_carlo_runs)))
    return 0


def summary_lines(data: Mapping[str, Any], runs: int) -> list[str]:
    """Return the table of a report's JSON (``runs``: ``MONTE_CARLO_RUNS``, to say why there
    is no Monte Carlo)."""
    analytics: Mapping[str, Any] = data.get("analytics") or {}
    lines = [
        f"paper-trader report of {data['db']}",
        _row("candles", _candles(data)),
        _row("trades", _trades(data, analytics)),
    ]
    if analytics:
        lines += _ledger(data, analytics)
    lines.append(_row("breakers", _breakers(data)))
    lines += _monte_carlo(data.get("monte_carlo"), runs)
    lines.append(_row("ledger digest", str(data.get("ledger_digest") or NONE)))
    return lines


def _ledger(data: Mapping[str, Any], analytics: Mapping[str, Any]) -> list[str]:
    pnl, fees = _signed(analytics["net_pnl"]), _money(analytics["total_fees"])
    change = _pct(analytics["total_return"], signed=True)
    start, end = _money(analytics["initial_equity"]), _money(data["final_equity"])
    return [
        _row("PnL", f"{pnl} on the closed trades, net of fees ({fees} paid)"),
        _row("equity", f"{end} from {start} ({change})"),
        _row("win rate", _pct(analytics["win_rate"])),
        _row("max drawdown", f"{_pct(analytics['max_drawdown'])} (equity marked to market)"),
    ]


def _row(label: str, value: str) -> str:
    return f"{label:<{WIDTH}}{value}"


def _candles(data: Mapping[str, Any]) -> str:
    series, gaps = len(data.get("series", ())), len(data.get("gaps", ()))
    return (
        f"{data.get('candles_processed', 0):,} handled of {data.get('candles', 0):,} stored "
        f"({series} series, {gaps} unfilled gap{'' if gaps == 1 else 's'})"
    )


def _trades(data: Mapping[str, Any], analytics: Mapping[str, Any]) -> str:
    text = f"{data.get('trades', 0):,} closed"
    if analytics:
        text += f": {analytics['wins']:,} won, {analytics['losses']:,} lost"
    return text + f" · {data.get('open_positions', 0)} open"


def _breakers(data: Mapping[str, Any]) -> str:
    trips: Mapping[str, int] = data.get("breakers_tripped") or {}
    total = sum(trips.values())
    text = f"{total} trip{'' if total == 1 else 's'}"
    if trips:
        text += ": " + ", ".join(f"{name} {count}" for name, count in trips.items())
    state = data.get("trading_state")
    return text + (f" · trading {state}" if state else "")


def _monte_carlo(mc: Mapping[str, Any] | None, runs: int) -> list[str]:
    if mc is None:
        why = "off (MONTE_CARLO_RUNS=0)" if runs < 1 else "none: it needs 2 closed trades"
        return [_row("Monte Carlo", why)]
    head = f"{mc['runs']:,} runs resampling the {mc['trades']:,} closed trades (seed {mc['seed']})"
    return [
        _row("Monte Carlo", head),
        _row("  final equity", _percentiles(mc["final_equity"], _money)),
        _row("  max drawdown", _percentiles(mc["max_drawdown"], _pct)),
    ]


def _percentiles(figures: Mapping[str, object], shown: Callable[[object], str]) -> str:
    return "  ".join(f"{p} {shown(figures[p]):>12}" for p in ("p5", "p50", "p95"))


def _money(value: object) -> str:
    return NONE if value is None else f"{Decimal(str(value)):,.2f}"


def _signed(value: object) -> str:
    return NONE if value is None else f"{Decimal(str(value)):+,.2f}"


def _pct(value: object, *, signed: bool = False) -> str:
    if value is None:
        return NONE
    percent = 100 * Decimal(str(value))
    return f"{percent:+.2f} %" if signed else f"{percent:.2f} %"
