"""The start-up and shutdown notices: what the operator's phone says when the daemon comes and
goes.

The ``announcer`` is the last service added, so it is the first to stop: once every service
is ready it commits ``daemon_started`` (version, venue, symbols, model, trading state, and how
the run before it ended if not cleanly) to the outbox; when it is cancelled at a stop it
commits ``daemon_stopping`` (why, how long it ran, the state and what stays open) before the
notifier, stopped next, delivers what is ready.
Both are written straight to the outbox through the writer and awaited: durable before any
channel can show them.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from paper_trader import __version__
from paper_trader.clock import Clock
from paper_trader.control.api import Control, Status
from paper_trader.control.system import ModelInfo
from paper_trader.domain import Event, EventKind, EventSource
from paper_trader.interfaces.notify.render import utc_text
from paper_trader.interfaces.telegram.text import money
from paper_trader.interfaces.telegram.views import share
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness
from paper_trader.storage import AppendOutbox, RunRecord, StorageWriter, runs

log = get_logger("app")
_SOURCE = EventSource("daemon")
WRITE_TIMEOUT_S = 2.0  # a stop never waits longer for its notice


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    """What a notice says of the run: its mode, venue, interval and series."""

    mode: str
    exchange: str
    interval: str
    symbols: tuple[str, ...]
    exit_only: tuple[str, ...] = ()


def started_text(
    facts: RunFacts, status: Status, model: ModelInfo | None, previous: RunRecord | None = None
) -> str:
    """Return the start-up notice: version, venue and symbols, model, trading state, and how
    the ``previous`` run ended if it did not stop cleanly."""
    lines = [
        f"paper-trader {__version__} started ({facts.mode}) on {facts.exchange}, "
        f"{facts.interval} candles",
        f"symbols: {', '.join(facts.symbols)}",
    ]
    if facts.exit_only:
        lines.append(f"followed for exits only: {', '.join(facts.exit_only)}")
    lines += [f"model: {_model(model)}", *_state(status), *_previous(previous)]
    return "\n".join(lines)


def _previous(run: RunRecord | None) -> list[str]:
    if run is None or run.exit_code == 0:
        return []
    began = f"the run started {utc_text(run.started_at_ms)}"
    if run.stopped_at_ms is None:
        return [f"{began} ended without a clean stop (killed, or the machine went down)"]
    return [f"{began} stopped with exit code {run.exit_code}"]


def stopping_text(reason: str, ran_s: float, status: Status) -> str:
    """Return the shutdown notice: why, after how long, and the state it leaves."""
    lines = [f"paper-trader {__version__} stopping: {reason}", f"ran {_duration(ran_s)}"]
    lines += _state(status)
    if status.open_positions:
        lines.append("open positions are kept and followed again at the next start")
    return "\n".join(lines)


def _model(model: ModelInfo | None) -> str:
    if model is None or model.version is None:
        return "none (no entries until one is trained)"
    blocked = f"; entries blocked: {model.blocked}" if model.blocked else ""
    return f"{model.version}{blocked}"


def _state(status: Status) -> list[str]:
    lines = [
        f"trading: {status.state.value.upper()}",
        f"equity {money(status.equity)} (cash {money(status.cash)}), "
        f"drawdown {share(status.drawdown)}, {status.open_positions} open position"
        + ("" if status.open_positions == 1 else "s"),
    ]
    lines += [f"tripped: {t.breaker}: {t.reason}" for t in status.tripped if t.symbol is None]
    return lines


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


class Announcer:
    """The ``announcer`` service (see the module's docstring)."""

    name = "announcer"

    def __init__(
        self,
        facts: RunFacts,
        control: Control,
        writer: StorageWriter,
        clock: Clock,
        *,
        all_ready: asyncio.Event,
        model: Callable[[], ModelInfo | None],
        stop_reason: Callable[[], str],
        reader: aiosqlite.Connection,
    ) -> None:
        """``reader`` reads the run records (this run's is the last)."""
        self._reader = reader
        self._facts = facts
        self._control = control
        self._writer = writer
        self._clock = clock
        self._all_ready = all_ready
        self._model = model
        self._stop_reason = stop_reason
        self._started = clock.monotonic()
        self._announced = False

    async def run(self, ready: Readiness) -> None:
        """Say the daemon started once all is ready; say it stops when cancelled."""
        ready.set()
        try:
            await self._all_ready.wait()
            if not self._announced:  # a restart of this service says nothing twice
                status = await self._control.status()
                recorded = await runs(self._reader)
                previous = recorded[-2] if len(recorded) > 1 else None
                text = started_text(self._facts, status, self._model(), previous)
                await self._commit(EventKind.DAEMON_STARTED, text)
                self._announced = True
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await self._farewell()
            raise

    async def _farewell(self) -> None:
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                status = await self._control.status()
                ran = self._clock.monotonic() - self._started
                await self._commit(
                    EventKind.DAEMON_STOPPING, stopping_text(self._stop_reason(), ran, status)
                )
        except Exception as exc:  # noqa: BLE001 -- a stop goes on without its notice
            log.warning("stopping_notice_failed", error=f"{type(exc).__name__}: {exc}")

    async def _commit(self, kind: EventKind, message: str) -> None:
        event: Event = _SOURCE.info(kind, message, at_ms=self._clock.now_ms())
        await self._writer.write(AppendOutbox(event=event))
