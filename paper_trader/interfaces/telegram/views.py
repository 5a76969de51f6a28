"""The answers' text: each of control's frozen values as parts, the summary line first.

Pure functions; ``text.render`` escapes and splits what they return.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from paper_trader.control.api import CommandResult, PositionView, Status
from paper_trader.control.montecarlo import MonteCarlo
from paper_trader.control.reports import (
    Balance,
    PeriodRow,
    PeriodUnit,
    Profit,
    SymbolPerformance,
    Today,
)
from paper_trader.control.risk_report import RiskReport
from paper_trader.control.system import HealthView, ModelInfo, VersionInfo
from paper_trader.domain.trading import ClosedTrade, Decision, plain
from paper_trader.interfaces.telegram.text import Line, Part, Pre, money, pairs, pct, signed, table

NONE = "-"


def when(ms: int | None) -> str:
    """Return a Unix-ms time as ``2026-01-02 13:45 UTC``."""
    if ms is None:
        return NONE
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(seconds: float | None) -> str:
    """Return an age as ``42 s``, ``5 min``, ``3.5 h`` or ``2.0 d``."""
    if seconds is None:
        return NONE
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def share(value: float | None) -> str:
    """Return a fraction as a percentage: 0.05 → ``5.00 %``."""
    return NONE if value is None else f"{100 * value:.2f} %"


def status(
    view: Status, today: Today, health: HealthView | None, candle_age_s: float | None
) -> list[Part]:
    """Return /status: state, equity, PnL today, positions, health, last candle age."""
    level = f"{health.status.label} (score {health.score})" if health else "not checked yet"
    head = (
        f"{view.state.value.upper()} · equity {money(view.equity)} · "
        f"today {signed(today.pnl)} ({pct(today.pnl_pct)})"
    )
    rows = [
        ("state", view.state.value),
        ("equity", money(view.equity)),
        ("cash", money(view.cash)),
        ("in positions", money(view.positions_value)),
        ("PnL today", f"{signed(today.pnl)} ({pct(today.pnl_pct)})"),
        ("drawdown", share(view.drawdown)),
        ("open positions", str(view.open_positions)),
        ("health", level),
        ("last candle", _candle_age(view.last_candle_ms, candle_age_s)),
        ("signals", f"{view.entered} entered, {view.rejected} rejected, {view.skipped} skipped"),
    ]
    parts: list[Part] = [Line(head, bold=True), pairs(rows)]
    if view.tripped:
        parts.append(Line("Tripped:"))
        parts += [Line(f"• {t.breaker}{_on(t.symbol)}: {t.reason}") for t in view.tripped]
    return parts


def positions(views: Sequence[PositionView]) -> list[Part]:
    """Return /positions: one row per open position at its mark."""
    if not views:
        return [Line("No open positions.", bold=True)]
    total = sum((v.unrealised_pnl for v in views), Decimal(0))
    rows = [
        (
            v.position.symbol,
            v.position.side.value,
            plain(v.position.quantity),
            plain(v.position.entry_price),
            plain(v.mark),
            signed(v.unrealised_pnl),
            pct(v.unrealised_pct),
            f"{plain(v.stop)} {v.stop_reason.value}",
        )
        for v in views
    ]
    header = ("symbol", "side", "qty", "entry", "mark", "PnL", "%", "stop")
    return [
        Line(f"{len(views)} open position(s), unrealised {signed(total)}", bold=True),
        table(header, rows),
    ]


def trades(items: Sequence[ClosedTrade]) -> list[Part]:
    """Return /trades: the newest closed trades, oldest first."""
    if not items:
        return [Line("No closed trades yet.", bold=True)]
    net = sum((t.net_pnl for t in items), Decimal(0))
    rows = [
        (
            when(t.closed_candle_ms),
            t.symbol,
            t.side.value,
            plain(t.entry_price),
            plain(t.exit_price),
            signed(t.net_pnl),
            t.exit_reason.value,
        )
        for t in items
    ]
    header = ("closed", "symbol", "side", "entry", "exit", "net", "reason")
    return [Line(f"Last {len(items)} trade(s): net {signed(net)}", bold=True), table(header, rows)]


def signals(items: Sequence[Decision]) -> list[Part]:
    """Return /signals: the newest entry decisions and what became of them."""
    if not items:
        return [Line("No signals yet.", bold=True)]
    entered = sum(1 for d in items if d.action.value == "entered")
    rows = [
        (
            when(d.candle_time_ms),
            d.symbol,
            d.strength,
            f"{d.confidence:.2f}",
            d.action.value,
            d.rule or "",
        )
        for d in items
    ]
    header = ("time", "symbol", "signal", "conf", "action", "rule")
    return [
        Line(f"Last {len(items)} signal(s): {entered} entered", bold=True),
        table(header, rows),
    ]


def balance(view: Balance) -> list[Part]:
    """Return /balance: cash, collateral, positions, exposure."""
    rows = [
        ("equity", money(view.equity)),
        ("cash", money(view.cash)),
        ("free cash", money(view.free_cash)),
        ("short collateral", money(view.reserved)),
        ("in positions", money(view.positions_value)),
        ("exposure", f"{money(view.exposure)} ({share(view.exposure_share)})"),
        ("initial balance", money(view.initial_balance)),
        ("total return", pct(100 * view.total_return)),
    ]
    head = f"Equity {money(view.equity)} ({pct(100 * view.total_return)} since start)"
    return [Line(head, bold=True), pairs(rows)]


def profit(view: Profit) -> list[Part]:
    """Return /profit: PnL since the start."""
    rows = [
        ("total PnL", signed(view.total_pnl)),
        ("realised (net)", signed(view.realised)),
        ("unrealised", signed(view.unrealised)),
        ("fees paid", money(view.fees)),
        ("trades", f"{view.trades} ({view.wins} won, {view.losses} lost)"),
        ("win rate", share(view.win_rate)),
        ("best trade", _trade_line(view.best_trade)),
        ("worst trade", _trade_line(view.worst_trade)),
    ]
    head = f"Profit {signed(view.total_pnl)} on {money(view.initial_balance)}, {view.trades} trades"
    return [Line(head, bold=True), pairs(rows)]


def performance(rows: Sequence[SymbolPerformance]) -> list[Part]:
    """Return /performance: per symbol, best first."""
    if not rows:
        return [Line("No closed trades yet.", bold=True)]
    net = sum((r.net_pnl for r in rows), Decimal(0))
    body = [
        (r.symbol, r.trades, share(r.win_rate), signed(r.net_pnl), money(r.fees), signed(r.best))
        for r in rows
    ]
    return [
        Line(f"{len(rows)} symbol(s), net {signed(net)}", bold=True),
        table(("symbol", "trades", "win", "net", "fees", "best"), body),
    ]


def periods(unit: PeriodUnit, rows: Sequence[PeriodRow]) -> list[Part]:
    """Return /daily, /weekly or /monthly: one row per period, oldest first."""
    if not rows:
        return [Line("No candles handled yet: nothing to report.", bold=True)]
    total = sum((r.pnl for r in rows), Decimal(0))
    fmt = "%Y-%m" if unit is PeriodUnit.MONTH else "%Y-%m-%d"
    body = [
        (
            datetime.fromtimestamp(r.start_ms / 1000, tz=UTC).strftime(fmt),
            signed(r.pnl),
            pct(r.return_pct),
            r.trades,
            r.wins,
            money(r.end_equity),
        )
        for r in rows
    ]
    head = f"{len(rows)} {unit.value}(s): {signed(total)}"
    return [Line(head, bold=True), table((unit.value, "PnL", "%", "trades", "won", "equity"), body)]


def monte_carlo_lines(result: MonteCarlo | None) -> list[str]:
    """Return the Monte Carlo of the closed trades in three lines (none without one)."""
    if result is None:
        return []
    final, drawdown = result.final_equity, result.max_drawdown
    return [
        f"Monte Carlo of all {result.trades:,} closed trades so far ({result.runs:,} runs):",
        f"final equity p5 {final.p5:,.2f} · p50 {final.p50:,.2f} · p95 {final.p95:,.2f}",
        f"max drawdown p5 {share(drawdown.p5)} · p50 {share(drawdown.p50)} · "
        f"p95 {share(drawdown.p95)}",
    ]


def daily(rows: Sequence[PeriodRow], result: MonteCarlo | None) -> list[Part]:
    """Return /daily: one row per day, then the Monte Carlo of the record."""
    return [*periods(PeriodUnit.DAY, rows), *map(Line, monte_carlo_lines(result))]


def risk(view: RiskReport) -> list[Part]:
    """Return /risk: state, breakers, limits against their use, exposure, VaR."""
    rows = [
        ("state", view.state.value + ("" if view.breakers_enabled else " (breakers off)")),
        ("exposure", f"{money(view.exposure)} = {share(view.exposure_share)}"),
        ("  limit", share(view.max_total_exposure)),
        ("positions", f"{view.open_positions} of {view.max_positions}"),
        ("position size max", share(view.max_position_size)),
        ("daily loss", f"{share(view.daily_loss_share)} of {share(view.max_daily_loss)}"),
        ("drawdown", f"{share(view.drawdown_share)} of {share(view.max_drawdown)}"),
        ("losing streak", f"{view.consecutive_losses} of {view.max_consecutive_losses}"),
    ]
    for var in view.var:
        label = f"VaR {var.level:.0%} {var.horizon}"
        if var.loss is None or var.share is None:
            rows.append((label, f"{NONE} ({var.samples} returns, too few)"))
        else:
            rows.append((label, f"{money(var.loss)} = {share(var.share)} ({var.samples} returns)"))
    head = f"{view.state.value.upper()} · {len(view.tripped)} breaker(s) tripped"
    parts: list[Part] = [Line(head, bold=True), pairs(rows)]
    parts += [Line(f"• {t.breaker}{_on(t.symbol)}: {t.reason}") for t in view.tripped]
    parts.append(Line("VaR: historical, 5th percentile of hourly / daily equity returns."))
    return parts


def health(view: HealthView | None) -> list[Part]:
    """Return /health: the score and every component."""
    if view is None:
        return [Line("No health check has run yet.", bold=True)]
    head = f"Health {view.status.label}, score {view.score}/100"
    rows = [(c.component, f"{c.status.label}  {c.detail}") for c in view.components]
    rows += [
        ("memory", f"{view.rss_mb:.0f} MB"),
        ("cpu", f"{view.cpu_percent:.0f} %"),
        ("loop lag", f"{view.loop_lag_ms:.1f} ms"),
    ]
    if view.checked_ms is not None:
        rows.append(("checked", when(view.checked_ms)))
    return [Line(head, bold=True), pairs(rows)]


def model(info: ModelInfo | None) -> list[Part]:
    """Return /model: version, walk-forward against live accuracy, weights, drift."""
    if info is None or info.version is None:
        reason = info.blocked if info and info.blocked else "no model loaded"
        return [Line(f"No model in use: {reason}", bold=True)]
    rows = [
        ("version", info.version),
        ("walk-forward acc.", share(info.walk_forward_accuracy)),
        ("live accuracy", share(info.live_accuracy)),
        ("resolved", f"{info.resolved} ({info.pending} pending)"),
    ]
    rows += [(f"weight {name}", f"{weight:.3f}") for name, weight in info.weights]
    rows += [(f"PSI {name}", f"{value:.3f}") for name, value in info.drift]
    head = (
        f"Model {info.version}: live {share(info.live_accuracy)} vs walk-forward "
        f"{share(info.walk_forward_accuracy)}"
    )
    parts: list[Part] = [Line(head, bold=True), pairs(rows)]
    parts += [Line(f"• drift alert: {alert}") for alert in info.alerts]
    if info.blocked:
        parts.append(Line(f"Entries blocked: {info.blocked}"))
    return parts


def version(info: VersionInfo) -> list[Part]:
    """Return /version."""
    return [Line(f"paper-trader {info.version}", bold=True), pairs(info.packages)]


def config(rows: Sequence[tuple[str, str]]) -> list[Part]:
    """Return /show_config: every setting, secrets masked."""
    return [Line(f"{len(rows)} settings (secrets masked)", bold=True), pairs(rows)]


def logs(lines: Sequence[str], asked: int) -> list[Part]:
    """Return /logs: the last lines of the main log."""
    if not lines:
        return [Line("The log is empty or not written to a file.", bold=True)]
    return [Line(f"Last {len(lines)} of {asked} log line(s)", bold=True), Pre(tuple(lines))]


def command_result(result: CommandResult) -> list[Part]:
    """Return what a command did: its message, then the trades it closed."""
    head = ("✅ " if result.ok else "⚠️ ") + result.message
    parts: list[Part] = [Line(head, bold=True)]
    parts += [Line(f"• {t.breaker}{_on(t.symbol)}: {t.reason}") for t in result.transitions]
    if result.trades:
        parts += trades(result.trades)[1:]
    return parts


def _candle_age(last_candle_ms: int | None, seconds: float | None) -> str:
    if last_candle_ms is None:
        return "none handled yet"
    return f"closed {age(seconds)} ago (opened {when(last_candle_ms)})"


def _on(symbol: str | None) -> str:
    return f" ({symbol})" if symbol else ""


def _trade_line(trade: ClosedTrade | None) -> str:
    if trade is None:
        return NONE
    return f"{signed(trade.net_pnl)} {trade.symbol} {when(trade.closed_candle_ms)}"
