"""The bot's commands: name, usage, menu text, and what each asks of the console.

Each command is a coroutine ``(console, args) -> Reply``; a bad argument raises ``UsageError``
and the bot answers the usage in one line. ``/close`` and ``/emergency_stop`` only *ask*
(``Reply.ask``): the bot attaches the confirmation button, and a press runs ``CONFIRMED``.
Everything goes through ``control/``; nothing here touches the ledger or the database.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from paper_trader.control.console import Console
from paper_trader.control.reports import PeriodUnit
from paper_trader.errors import PaperTraderError
from paper_trader.interfaces.telegram import views
from paper_trader.interfaces.telegram.chart import draw_equity_png
from paper_trader.interfaces.telegram.text import Line, Part, money, signed

SOURCE = "telegram"
MAX_ROWS = 100
MAX_CHART_DAYS = 365
MAX_SYMBOL_CHARS = 30


class UsageError(PaperTraderError):
    """A command's arguments are not what it takes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """A command to confirm with a button: the action, its argument, the button's label."""

    action: str
    argument: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """An answer: its parts (summary first), whether the command did what was asked, an
    optional photo (sent with the summary as caption) and an optional confirmation."""

    parts: tuple[Part, ...]
    ok: bool = True
    photo: bytes | None = None
    ask: Ask | None = None

    @property
    def summary(self) -> str:
        """Return the first line, as recorded in the audit."""
        first = self.parts[0] if self.parts else Line("")
        return first.text.split("\n", 1)[0] if isinstance(first, Line) else "(table)"


def reply(parts: Sequence[Part], *, ok: bool = True) -> Reply:
    """Return a text answer."""
    return Reply(parts=tuple(parts), ok=ok)


Run = Callable[[Console, Sequence[str]], Awaitable[Reply]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One command of the menu."""

    name: str
    args: str
    description: str
    run: Run
    acts: bool = False  # changes the trading: never run when typed long ago

    @property
    def usage(self) -> str:
        """Return ``/name args``."""
        return f"/{self.name} {self.args}".rstrip()


def count_arg(args: Sequence[str], default: int, *, limit: int = MAX_ROWS) -> int:
    """Return the optional count argument (1..limit); raise ``UsageError`` otherwise."""
    if not args:
        return default
    text = args[0] if len(args) == 1 else ""
    # ASCII digits: "²" is a digit to str.isdigit() but not to int(), and int() refuses
    # more than 4,300 digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or not 1 <= int(text) <= limit:
        raise UsageError(f"expected a whole number from 1 to {limit}")
    return int(text)


def no_args(args: Sequence[str]) -> None:
    """Raise ``UsageError`` if any argument was given."""
    if args:
        raise UsageError("takes no arguments")


async def _status(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    status = await console.control.status()
    today = await console.reports.today()
    health = console.system.health()
    return reply(views.status(status, today, health, console.candle_age_s(status.last_candle_ms)))


async def _positions(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.positions(await console.control.positions()))


async def _trades(console: Console, args: Sequence[str]) -> Reply:
    return reply(views.trades(await console.control.recent_trades(count_arg(args, 10))))


async def _signals(console: Console, args: Sequence[str]) -> Reply:
    return reply(views.signals(await console.control.recent_signals(count_arg(args, 10))))


async def _balance(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.balance(await console.reports.balance()))


async def _profit(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.profit(await console.reports.profit()))


async def _performance(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.performance(await console.reports.performance()))


def _period(unit: PeriodUnit, default: int, limit: int) -> Run:
    async def run(console: Console, args: Sequence[str]) -> Reply:
        count = count_arg(args, default, limit=limit)
        rows = await console.reports.periods(unit, count)
        if unit is PeriodUnit.DAY:
            return reply(views.daily(rows, await console.reports.monte_carlo()))
        return reply(views.periods(unit, rows))

    return run


async def _risk(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.risk(await console.reports.risk()))


async def _health(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.health(console.system.health()))


async def _model(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.model(console.system.model()))


async def _pause(console: Console, args: Sequence[str]) -> Reply:
    reason = " ".join(args)[:200] or "paused from Telegram"
    result = await console.control.pause(reason, source=SOURCE)
    return reply(views.command_result(result), ok=result.ok)


async def _resume(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    result = await console.control.resume(source=SOURCE)
    return reply(views.command_result(result), ok=result.ok)


async def _close(console: Console, args: Sequence[str]) -> Reply:
    if len(args) != 1 or len(args[0]) > MAX_SYMBOL_CHARS:
        raise UsageError("expected one symbol, or all")
    target = "all" if args[0].lower() == "all" else args[0]
    what = "every open position" if target == "all" else f"the position on {target}"
    return Reply(
        parts=(Line(f"Close {what} at its last close?", bold=True), Line("Confirm within 60 s.")),
        ask=Ask(action="close", argument=target, label=f"Close {target}"),
    )


async def _emergency_stop(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    question = "Emergency stop: halt trading and close every position?"
    return Reply(
        parts=(Line(question, bold=True), Line("Confirm within 60 s.")),
        ask=Ask(action="emergency_stop", argument="", label="EMERGENCY STOP"),
    )


async def _logs(console: Console, args: Sequence[str]) -> Reply:
    count = count_arg(args, 20, limit=200)
    return reply(views.logs(await console.system.log_tail(count), count))


async def _version(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.version(console.system.version()))


async def _show_config(console: Console, args: Sequence[str]) -> Reply:
    no_args(args)
    return reply(views.config(console.system.config()))


async def _chart(console: Console, args: Sequence[str]) -> Reply:
    days = count_arg(args, 7, limit=MAX_CHART_DAYS)
    curve = await console.reports.equity_curve(days)
    if len(curve) < 2:
        return reply([Line(f"Not enough equity history for a chart of {days} day(s) yet.")])
    points = [(c.candle_time_ms, float(c.equity)) for c in curve]
    title = f"Equity, last {days} day(s)"
    png = await asyncio.get_running_loop().run_in_executor(None, draw_equity_png, points, title)
    change = curve[-1].equity - curve[0].equity
    head = f"{title}: {money(curve[-1].equity)} ({signed(change)})"
    return Reply(parts=(Line(head, bold=True),), photo=png)


async def close_confirmed(console: Console, argument: str) -> Reply:
    """Run a confirmed /close."""
    if argument == "all":
        result = await console.control.close_all(source=SOURCE)
    else:
        result = await console.control.close(argument, source=SOURCE)
    return reply(views.command_result(result), ok=result.ok)


async def emergency_stop_confirmed(console: Console, _argument: str) -> Reply:
    """Run a confirmed /emergency_stop."""
    result = await console.control.emergency_stop("emergency stop from Telegram", source=SOURCE)
    return reply(views.command_result(result), ok=result.ok)


CONFIRMED: dict[str, Callable[[Console, str], Awaitable[Reply]]] = {
    "close": close_confirmed,
    "emergency_stop": emergency_stop_confirmed,
}


def _help_text(_console: Console, _args: Sequence[str]) -> Reply:
    lines = [Line("paper-trader commands", bold=True)]
    lines += [Line(f"{c.usage} - {c.description}") for c in COMMANDS]
    return reply(lines)


async def _help(console: Console, args: Sequence[str]) -> Reply:
    return _help_text(console, args)


COMMANDS: tuple[Command, ...] = (
    Command(name="start", args="", description="what this bot does", run=_help),
    Command(name="help", args="", description="the commands", run=_help),
    Command(name="status", args="", description="state, equity, PnL today, health", run=_status),
    Command(name="positions", args="", description="open positions at their marks", run=_positions),
    Command(name="trades", args="[n]", description="the last n closed trades", run=_trades),
    Command(name="signals", args="[n]", description="the last n signals", run=_signals),
    Command(name="balance", args="", description="cash, positions, exposure", run=_balance),
    Command(name="profit", args="", description="PnL since the start", run=_profit),
    Command(name="performance", args="", description="PnL per symbol", run=_performance),
    Command(
        name="daily", args="[n]", description="the last n days", run=_period(PeriodUnit.DAY, 7, 366)
    ),
    Command(
        name="weekly",
        args="[n]",
        description="the last n weeks",
        run=_period(PeriodUnit.WEEK, 4, 104),
    ),
    Command(
        name="monthly",
        args="[n]",
        description="the last n months",
        run=_period(PeriodUnit.MONTH, 6, 60),
    ),
    Command(name="risk", args="", description="breakers, limits, exposure, VaR", run=_risk),
    Command(name="health", args="", description="components and health score", run=_health),
    Command(name="model", args="", description="model version, accuracy, drift", run=_model),
    Command(name="pause", args="[reason]", description="stop new entries", run=_pause, acts=True),
    Command(name="resume", args="", description="allow entries again", run=_resume, acts=True),
    Command(
        name="close",
        args="SYMBOL|all",
        description="close a position (confirm)",
        run=_close,
        acts=True,
    ),
    Command(
        name="emergency_stop",
        args="",
        description="halt and close everything (confirm)",
        run=_emergency_stop,
        acts=True,
    ),
    Command(name="logs", args="[n]", description="the last n log lines", run=_logs),
    Command(name="version", args="", description="versions", run=_version),
    Command(name="show_config", args="", description="settings, secrets masked", run=_show_config),
    Command(name="chart", args="[days]", description="equity curve as a picture", run=_chart),
)
BY_NAME = {c.name: c for c in COMMANDS}
