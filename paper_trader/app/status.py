"""The composition root's status feed: the hub, what the parts tell it, and its snapshot.

The trading stage tells what each batch committed (its candles and signals were stored before
the ledger commit it waited for), in instant order: candles, signals, decisions, fills, trades
opened and closed, breakers, the equity; then the notices of that transaction. The event
recorder tells every other event once it is in the outbox (``data_gap``, ``model`` and
``notification``). The health monitor's checks are polled once a second. Nothing is told
before it is committed (invariant 4).
"""

import itertools
import secrets
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import aiosqlite

from paper_trader.clock import Clock
from paper_trader.control.api import Control
from paper_trader.control.reports import Reports
from paper_trader.control.system import HealthProvider, HealthView, ModelInfo
from paper_trader.domain import Event, EventKind
from paper_trader.domain.trading import EquitySnapshot
from paper_trader.interfaces.http.health import health_answer
from paper_trader.interfaces.status.access import Access, dashboard_origins
from paper_trader.interfaces.status.hub import StatusHub
from paper_trader.interfaces.status.server import StatusServer
from paper_trader.market.quality import QualityMonitor
from paper_trader.runtime.events import EventRecorder
from paper_trader.settings import Settings
from paper_trader.storage.ledger_repository import closed_trades, recent_decisions
from paper_trader.trading.stage import TradingStage
from paper_trader.trading.values import InstantResult, Reported

T = TypeVar("T")
SNAPSHOT_TRADES = 50
SNAPSHOT_SIGNALS = 50
_GAP_KINDS = frozenset({
    EventKind.DATA_GAP, EventKind.SYMBOL_NOT_TRADABLE, EventKind.SYMBOL_TRADABLE,
    EventKind.SERIES_STALLED, EventKind.CANDLE_LATE,
})  # fmt: skip
_MODEL_KINDS = frozenset({
    EventKind.MODEL_LOADED, EventKind.MODEL_UNAVAILABLE, EventKind.MODEL_RETRAINED,
    EventKind.MODEL_DRIFT, EventKind.PREDICTION_BREAKER, EventKind.PREDICTION_TIMEOUT,
})  # fmt: skip


def status_feed(
    settings: Settings,
    clock: Clock,
    trading: TradingStage,
    recorder: EventRecorder,
    snapshot: "FeedSnapshot",
    *,
    dashboard_port: Callable[[], int | None],
) -> StatusServer:
    """Return the status feed on ``STATUS_WS_HOST:STATUS_WS_PORT``, told by the trading stage
    and the event recorder from now on."""
    hub = StatusHub(f"{clock.now_ms():x}-{secrets.token_hex(3)}")
    snapshot.hub = hub
    teller = Teller(hub)
    trading.observe(teller.reported)
    recorder.observe(teller.event)
    token = settings.status_ws_token
    extra = frozenset(settings.status_ws_origins)
    access = Access(
        token=None if token is None else token.get_secret_value(),
        origins=lambda: dashboard_origins(settings.health_host, dashboard_port()) | extra,
        max_clients=settings.status_ws_max_clients,
    )
    return StatusServer(
        hub,
        snapshot.take,
        access,
        host=settings.status_ws_host,
        port=settings.status_ws_port,
        poll=HealthPoll(hub, snapshot.health).poll,
    )


class Teller:
    """Turn what the parts report into the feed's events."""

    def __init__(self, hub: StatusHub) -> None:
        self._hub = hub

    def reported(self, reported: Reported) -> None:
        """Tell a committed batch, instant by instant, then its notices."""
        tell = self._hub.tell
        candles = _by_time(reported.candles, lambda c: c.open_time_ms)
        signals = _by_time(reported.signals, lambda s: s.open_time_ms)
        results = {r.candle_time_ms: r for r in reported.results}
        for time_ms in sorted(candles.keys() | signals.keys() | results.keys()):
            for candle in candles.get(time_ms, ()):
                tell("candle", time_ms, candle)
            for signal in signals.get(time_ms, ()):
                tell("signal", time_ms, signal)
            if time_ms in results:
                self._result(results[time_ms])
        for notice in reported.notices:
            self.event(notice)

    def event(self, event: Event) -> None:
        """Tell an event that is in the outbox: as a notification, and by its kind."""
        candle_ms = event.data.get("candle_time_ms")
        at = candle_ms if isinstance(candle_ms, int) else self._hub.last_candle_ms
        body = {
            "kind": event.kind.value,
            "severity": event.severity.value,
            "message": event.message,
            "source": event.source,
            "at_ms": event.at_ms,
            "data": event.data,
        }
        if event.kind in _GAP_KINDS:
            self._hub.tell("data_gap", at, body)
        elif event.kind in _MODEL_KINDS:
            self._hub.tell("model", at, body)
        self._hub.tell("notification", at, body)

    def _result(self, result: InstantResult) -> None:
        tell, at = self._hub.tell, result.candle_time_ms
        for decision in result.decisions:
            tell("decision", at, decision)
        closed_by = {t.exit_fill_id: t for t in result.trades}
        for fill in result.fills:  # in the order they filled: an exit before a new entry
            tell("fill", at, fill)
            position = result.positions.get(fill.symbol)
            if fill.reason == "entry" and position is not None:
                tell("trade_opened", at, position)
            elif (trade := closed_by.pop(fill.fill_id, None)) is not None:
                tell("trade_closed", at, trade)
        for trade in closed_by.values():  # none: every trade closes on a fill of its instant
            tell("trade_closed", at, trade)
        for transition in result.transitions:
            tell("breaker", at, transition)
        if result.snapshot is not None:
            tell("equity", at, equity_point(result.snapshot))


class HealthPoll:
    """Tell each new health check once."""

    def __init__(self, hub: StatusHub, health: HealthProvider) -> None:
        self._hub = hub
        self._health = health
        self._last: int | None = None

    def poll(self) -> None:
        """Tell the latest check if it is new."""
        view = self._health()
        if view is None or view.checked_ms == self._last:
            return
        self._last = view.checked_ms
        self._hub.tell("health", self._hub.last_candle_ms, health_data(view))


class FeedSnapshot:
    """The ``snapshot`` a connection starts with, consistent with the events after it."""

    def __init__(
        self,
        control: Control,
        reports: Reports,
        reader: aiosqlite.Connection,
        quality: QualityMonitor,
        trading: TradingStage,
        *,
        health: HealthProvider,
        model: Callable[[], ModelInfo | None],
    ) -> None:
        self._control = control
        self._reports = reports
        self._reader = reader
        self._quality = quality
        self._trading = trading
        self.health = health
        self._model = model
        self.hub: StatusHub | None = None

    async def take(self) -> tuple[int, object]:
        """Return the last event number the snapshot holds, and the snapshot.

        The portfolio is read between two commits and the event number noted at once (see
        ``Control.portfolio``); history read after it is cut at that moment's last candle and
        fill, so nothing told after the number is also in the snapshot.
        """
        assert self.hub is not None  # set by status_feed
        portfolio = await self._control.portfolio()
        seq = self.hub.seq
        last = portfolio.status.last_candle_ms
        trades = await closed_trades(self._reader, limit=SNAPSHOT_TRADES)
        decisions = await recent_decisions(self._reader, limit=SNAPSHOT_SIGNALS)
        curve = () if last is None else await self._reports.curve_between(0, last + 1)
        view = self.health()
        return seq, {
            "status": portfolio.status,
            "positions": portfolio.positions,
            "trades": [t for t in trades if t.exit_fill_id <= portfolio.last_fill_id],
            "signals": [d for d in decisions if last is not None and d.candle_time_ms <= last],
            "equity": [equity_point(s) for s in curve],
            "health": None if view is None else health_data(view),
            "model": self._model(),
            "symbols": list(self._symbols()),
        }

    def _symbols(self) -> Iterator[dict[str, Any]]:
        last = self._trading.trader.last_candles
        for series in self._quality.series():
            candle = last.get(series.symbol)
            yield {
                "symbol": series.symbol,
                "interval": series.interval.value,
                "last_candle_ms": None if candle is None else candle.open_time_ms,
                "close": None if candle is None else candle.close,
                "quality": series.score,
                "tradable": series.tradable,
            }


def equity_point(snapshot: EquitySnapshot) -> dict[str, Any]:
    """Return an equity snapshot with its drawdown (the fraction of the peak lost)."""
    peak = snapshot.peak_equity
    drawdown = float((peak - snapshot.equity) / peak) if peak > 0 else 0.0
    return {
        "candle_time_ms": snapshot.candle_time_ms,
        "equity": snapshot.equity,
        "cash": snapshot.cash,
        "positions_value": snapshot.positions_value,
        "peak_equity": peak,
        "drawdown": drawdown,
        "open_positions": snapshot.open_positions,
    }


def health_data(view: HealthView) -> dict[str, Any]:
    """Return a health check as ``/health`` shows it, with its wall-clock time in ms."""
    body = health_answer(view, all_ready=True)[1]
    body["checked_ms"] = view.checked_ms
    return body


def _by_time(items: Sequence[T], time_of: Callable[[T], int]) -> dict[int, list[T]]:
    return {t: list(group) for t, group in itertools.groupby(sorted(items, key=time_of), time_of)}
