"""The daily and weekly reports, made when they are delivered.

The trading stage commits a report's outbox row with the instant that starts a new UTC day
(or week) of candle time; the row says only which window (``period``, ``start_ms``). Its text
(PnL, trades, win rate, drawdown, best and worst trade, health; a daily one also the Monte
Carlo of every trade closed before the day's end) and its equity chart are made here, from
the ledger through ``control/``, when a channel is about to send it: the window is closed and
committed, so every channel and every retry gets the same report. A chart is drawn once per
row (in an executor, off the loop) and shared by the channels.
"""

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Callable

from paper_trader.control.api import Control, PeriodReport
from paper_trader.control.reports import PeriodUnit, Reports
from paper_trader.control.system import HealthView
from paper_trader.domain import EventKind
from paper_trader.domain.trading import ClosedTrade
from paper_trader.interfaces.notify.policy import Outgoing
from paper_trader.interfaces.telegram.chart import draw_equity_png
from paper_trader.interfaces.telegram.text import Line, Part, money, pct, signed
from paper_trader.interfaces.telegram.views import monte_carlo_lines, share

REPORT_KINDS = {
    EventKind.DAILY_REPORT.value: PeriodUnit.DAY,
    EventKind.WEEKLY_REPORT.value: PeriodUnit.WEEK,
}
CACHED = 8  # reports kept for the other channels of the same row


@dataclasses.dataclass(frozen=True, slots=True)
class Made:
    """A report as sent: its lines and its chart (None with fewer than two snapshots)."""

    lines: tuple[Part, ...]
    photo: bytes | None


class ReportMaker:
    """Fill a report's message with its text and chart (see the module's docstring)."""

    def __init__(
        self, control: Control, reports: Reports, health: Callable[[], HealthView | None]
    ) -> None:
        self._control = control
        self._reports = reports
        self._health = health
        self._made: OrderedDict[int, Made] = OrderedDict()

    async def expand(self, outgoing: Outgoing) -> Outgoing:
        """Return ``outgoing`` with the report's text and chart; anything else unchanged."""
        period = REPORT_KINDS.get(outgoing.kind)
        if period is None or outgoing.folded:
            return outgoing
        head = outgoing.head
        made = self._made.get(head.id)
        if made is None:
            made = await self._make(period, int(head.data["start_ms"]), head.message)
            self._made[head.id] = made
            while len(self._made) > CACHED:
                self._made.popitem(last=False)
        return dataclasses.replace(outgoing, lines=made.lines, photo=made.photo)

    async def _make(self, period: PeriodUnit, start_ms: int, title: str) -> Made:
        report = await self._control.report(period, start_ms=start_ms)
        curve = await self._reports.curve_between(report.start_ms, report.end_ms)
        lines = (Line(f"\U0001f4ca {title}", bold=True), *map(Line, report_lines(report)))
        if period is PeriodUnit.DAY:
            record = await self._reports.monte_carlo(until_ms=report.end_ms)
            lines += tuple(map(Line, monte_carlo_lines(record)))
        lines += (Line(_health(self._health())),)
        if len(curve) < 2:
            return Made(lines, None)
        points = [(c.candle_time_ms, float(c.equity)) for c in curve]
        loop = asyncio.get_running_loop()
        photo = await loop.run_in_executor(None, draw_equity_png, points, title)
        return Made(lines, photo)


def report_lines(report: PeriodReport) -> list[str]:
    """Return a report's summary lines: PnL first, then trades, drawdown, best and worst."""
    change = report.end_equity - report.start_equity
    count = len(report.trades)
    lines = [
        f"PnL {signed(change)} ({pct(report.total_return * 100)}) · equity "
        f"{money(report.end_equity)}",
        f"{count} trade{'' if count == 1 else 's'} closed: {report.wins} won, "
        f"{report.losses} lost · win rate {share(report.wins / count if count else None)}",
        f"net of fees {signed(report.net_pnl)} (fees {money(report.fees)})",
        f"max drawdown {share(_drawdown(report))}",
    ]
    if report.best_trade is not None and report.worst_trade is not None:
        lines.append(f"best {_trade(report.best_trade)} · worst {_trade(report.worst_trade)}")
    lines += [f"{symbol}: {signed(pnl)}" for symbol, pnl in report.by_symbol]
    return lines


def _drawdown(report: PeriodReport) -> float | None:
    value = report.analytics.get("max_drawdown")
    return float(value) if isinstance(value, int | float | str) else None


def _trade(trade: ClosedTrade) -> str:
    return f"{trade.symbol} {signed(trade.net_pnl)}"


def _health(view: HealthView | None) -> str:
    if view is None:
        return "health: not checked yet"
    return f"health: {view.status.label} (score {view.score})"
