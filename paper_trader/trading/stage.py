"""The decision task's trading step: run the ``Trader``, commit, then tell.

Over 400 lines (444): the lock, the commit and the stop's save share one invariant (the
ledger on disk is never a state the trader reached without committing it), kept in one place.

Each decision instant's changes go to SQLite as one ``RecordInstant``, together with the
notification outbox rows of the trades and breaker transitions they made (one transaction:
never a trade without its notification, nor the other way round); only after the last instant
of a batch has committed are they logged, published as events and handed to the trade files
(durable before visible). Commands (pause, resume, close,
emergency stop) take the same lock as a batch, so they never interleave with one.

At start the ledger is restored (cash, positions, breakers, recent trades, last closes); any
stored candle after the last instant the ledger handled (a crash between the candle commit and
the ledger commit, or a stop in the middle of a batch) is run through the exits at once,
marked as recovered.
"""

import asyncio
import itertools
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from paper_trader.broker.ledger import Ledger
from paper_trader.domain import (
    Candle,
    ComponentHealth,
    Event,
    HealthStatus,
    PredictionLog,
    Signal,
)
from paper_trader.domain.trading import Action, ClosedTrade, EquitySnapshot, Position
from paper_trader.features.engine import FeatureRow
from paper_trader.features.stage import ClosedCandle
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.pacing import Pacer
from paper_trader.storage.ledger_ops import NO_PREDICTIONS, LedgerState, RecordInstant
from paper_trader.storage.ops import RecordPredictionLog
from paper_trader.trading.events import (
    breaker_event,
    fill_fields,
    report_events,
    trade_closed_event,
    trade_fields,
    trade_opened_event,
    transition_fields,
)
from paper_trader.trading.faults import Fault
from paper_trader.trading.state import decode_windows
from paper_trader.trading.trader import Trader
from paper_trader.trading.values import InstantResult, MarketInput, Reported, TraderConfig

log = get_logger("trader")

Commit = Callable[[RecordInstant | RecordPredictionLog], Awaitable[None]]
Resume = Callable[[Sequence[Candle], frozenset[tuple[str, int]]], Awaitable[None]]
T = TypeVar("T")
WINDOWS_EVERY = 240  # instants between two saves of the volatility windows (and at a stop)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoredLedger:
    """What SQLite holds of the ledger at start-up."""

    state: LedgerState | None
    positions: Sequence[Position]
    history: Sequence[ClosedTrade]
    last_candles: Sequence[Candle]
    recent: Sequence[Candle]
    unhandled: Sequence[Candle]
    untradable: frozenset[tuple[str, int]] = frozenset()  # (symbol, time) of unhandled ones


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketView:
    """How the stage reads the rest of the daemon: the ATR columns of a feature row, the
    catch-up rule, and the symbols followed only for the exits of a position held outside
    ``SYMBOLS`` (everything else a decision reads travels with its candle)."""

    atr_columns: tuple[int, int]
    is_stale: Callable[[Candle], bool]
    exit_only: frozenset[str] = frozenset()


class TradingStage:
    """The Trader behind a lock, with its commits and its reports."""

    name = "trader"

    def __init__(
        self,
        config: TraderConfig,
        *,
        initial_balance: Decimal,
        view: MarketView,
        load: Callable[[], Awaitable[RestoredLedger]],
        commit: Commit,
        events: EventSink,
        now_ms: Callable[[], int],
        on_closed: Callable[[ClosedTrade, EquitySnapshot], None] | None = None,
        on_snapshot: Callable[[EquitySnapshot], None] | None = None,
    ) -> None:
        self._config = config
        self._initial = initial_balance
        self._view = view
        self._load = load
        self._commit = commit
        self._events = events
        self._now_ms = now_ms
        self._on_closed = on_closed
        self._on_snapshot = on_snapshot
        self.lock = asyncio.Lock()
        self.trader = Trader(config, Ledger(initial_balance))
        self.skipped = 0
        self.rejected = 0
        self.entered = 0
        self.errors = 0
        self._since_windows = 0
        self._unsaved = False  # a batch was traded in memory and not yet committed
        self.started = asyncio.Event()  # set once the ledger is restored: commands may run
        self._observers: list[Callable[[Reported], None]] = []
        self._pacer = Pacer()

    def observe(self, observer: Callable[[Reported], None]) -> None:
        """Call ``observer`` with what each batch and command committed, once committed (the
        status feed); it must return at once and not raise."""
        self._observers.append(observer)

    async def start(self, decide: Resume | None = None) -> None:
        """Restore the ledger, then decide the stored candles it never handled: through
        ``decide`` (the decision task's own path, their features and predictions included,
        with the (symbol, time) of those the data-quality gate judged not tradable), or
        without signals, recovering only exits."""
        restored = await self._load()
        state = restored.state
        ledger = Ledger(
            self._initial if state is None else Decimal(state.cash),
            positions={p.symbol: p for p in restored.positions},
            next_fill_id=1 if state is None else state.next_fill_id,
        )
        self.trader = Trader(
            self._config,
            ledger,
            state=None if state is None else _restored_state(state),
            history=restored.history,
            last_candle_ms=None if state is None else state.last_candle_ms,
            marks={c.symbol: c for c in restored.last_candles},
            recent=restored.recent,
        )
        log.info(
            "ledger_restored",
            cash=str(ledger.cash),
            positions=len(ledger.positions),
            state=self.trader.breakers.state.value,
            last_candle_ms=self.trader.last_candle_ms,
            unhandled_candles=len(restored.unhandled),
        )
        if restored.unhandled and decide is not None:
            await decide(restored.unhandled, restored.untradable)
        elif restored.unhandled:
            await self.on_batch(
                [ClosedCandle(candle=c, row=None) for c in restored.unhandled], [], recovering=True
            )
        self.started.set()

    async def on_batch(
        self,
        items: Sequence[ClosedCandle],
        signals: Sequence[Signal],
        *,
        faults: Mapping[tuple[str, int], str] | None = None,
        recovering: bool = False,
        predictions: PredictionLog = NO_PREDICTIONS,
    ) -> None:
        """Trade every instant of the batch in time order; commit; then report.

        ``faults`` are the candles, by (symbol, open time), on which the prediction step failed;
        ``predictions`` what the batch added to the prediction log, committed with it.
        """
        by_symbol = {(s.symbol, s.open_time_ms): s for s in signals}
        failed = faults or {}
        async with self.lock:
            self._unsaved = True  # until the commit below: a stop in between must not save
            previous = self.trader.last_candle_ms
            results: list[InstantResult] = []
            ordered = sorted(items, key=lambda item: item.candle.open_time_ms)
            self._pacer.start()
            for time_ms, group in itertools.groupby(ordered, key=lambda i: i.candle.open_time_ms):
                await self._pacer.pace()  # a catch-up's thousand instants: the loop breathes
                markets = [self._market(i, failed, recovering=recovering) for i in group]
                instant_signals = {
                    m.candle.symbol: by_symbol[(m.candle.symbol, time_ms)]
                    for m in markets
                    if (m.candle.symbol, time_ms) in by_symbol
                }
                steps = self.trader.instant_steps(time_ms, markets, instant_signals)
                result = await self._pacer.drive(steps)  # 100 symbols: the loop breathes
                if result.snapshot is not None:  # None: every candle was handled before
                    results.append(result)
            notices = await self._persist(results, previous, predictions)
            self._unsaved = False
        self._report(results, notices)
        if self._observers:
            self._tell(Reported([i.candle for i in ordered], signals, results, notices))

    async def save(self) -> None:
        """Commit the full state, volatility windows included (at a stop).

        Not after a batch stopped between its trading and its commit (the task was cancelled
        while the loop breathed): the trader's memory is then ahead of the ledger (cash, fills,
        the candles handled), and saving it would write a state whose fills, decisions and
        snapshots were never committed. The ledger stays at its last commit; the restart
        recovers those instants from the stored candles it never handled.
        """
        async with self.lock:
            if self.trader.last_candle_ms is None:
                return
            if self._unsaved:
                log.warning(
                    "trading_state_not_saved",
                    reason="stopped between trading a batch and committing it",
                    in_memory_last_candle_ms=self.trader.last_candle_ms,
                )
                return
            result = InstantResult(candle_time_ms=self.trader.last_candle_ms)
            await self._commit(self._op([result], windows=True))

    async def run_command(
        self, command: Callable[[Trader, InstantResult], T]
    ) -> tuple[T, InstantResult]:
        """Apply a command to the trader at the last candle time; commit; report; return the
        command's answer and what it changed."""
        async with self.lock:
            at = self.trader.last_candle_ms or 0
            result = InstantResult(candle_time_ms=at)
            self._unsaved = True
            answer = command(self.trader, result)
            result.snapshot = self.trader.snapshot(at) if result.fills else None
            notices = await self._persist([result], at)
            self._unsaved = False
        self._report([result], notices)
        if self._observers:
            self._tell(Reported((), (), [result], notices))
        return answer, result

    def _tell(self, reported: Reported) -> None:
        for observer in self._observers:
            try:
                observer(reported)
            except Exception:  # an observer's bug must not stop the trading
                log.exception("trading_observer_failed", observer=repr(observer))

    def health(self) -> ComponentHealth:
        """Return OK while ACTIVE, DEGRADED (with the reasons) while entries are off."""
        breakers = self.trader.breakers
        state = breakers.state
        if state.rank == 0:
            return ComponentHealth(
                component=self.name,
                status=HealthStatus.OK,
                detail=f"{len(self.trader.ledger.positions)} open",
            )
        reasons = "; ".join(t.reason for t in breakers.tripped() if t.symbol is None)
        return ComponentHealth(
            component=self.name, status=HealthStatus.DEGRADED, detail=f"{state}: {reasons}"
        )

    def _market(
        self, item: ClosedCandle, faults: Mapping[tuple[str, int], str], *, recovering: bool
    ) -> MarketInput:
        candle = item.candle
        atr, atr_pct = _atr(item.row, self._view.atr_columns)
        stale = recovering or item.late or self._view.is_stale(candle)
        return MarketInput(
            candle=candle,
            atr=atr,
            atr_pct=atr_pct,
            stale=stale,
            recovered=stale,
            tradable=item.tradable,
            fault=item.fault or faults.get((candle.symbol, candle.open_time_ms)),
            exit_only=candle.symbol in self._view.exit_only,
        )

    async def _persist(
        self,
        results: list[InstantResult],
        previous_ms: int | None,
        predictions: PredictionLog = NO_PREDICTIONS,
    ) -> tuple[Event, ...]:
        """Commit what the instants changed, the events telling of it and the prediction log
        they were decided on in one transaction, wait for it, and return those events
        (``previous_ms``: the instant before them).

        Every instant is written: at least its equity snapshot and the last candle handled.
        """
        if not results:
            if predictions:  # candles handled before: their log alone
                await self._commit(RecordPredictionLog(log=predictions))
            return ()
        notices = _notices(results, previous_ms, self._now_ms())
        await self._commit(self._op(results, notices=notices, predictions=predictions))
        return notices

    def _op(
        self,
        results: list[InstantResult],
        *,
        windows: bool = False,
        notices: tuple[Event, ...] = (),
        predictions: PredictionLog = NO_PREDICTIONS,
    ) -> RecordInstant:
        """Return one write for the instants: the positions as they stand at the end."""
        ledger = self.trader.ledger
        self._since_windows += len(results)
        if windows or self._since_windows >= WINDOWS_EVERY:
            windows, self._since_windows = True, 0
        final: dict[str, Position | None] = {}
        for result in results:
            final.update(dict.fromkeys(result.closed))
            final.update(result.positions)
        state = LedgerState(
            cash=format(ledger.cash, "f"),
            next_fill_id=ledger.next_fill_id,
            last_candle_ms=self.trader.last_candle_ms or results[-1].candle_time_ms,
            state_json=self.trader.state_json(),
            volatility_json=self.trader.windows_json() if windows else None,
        )
        return RecordInstant(
            state=state,
            fills=tuple(f for r in results for f in r.fills),
            closed=tuple(dict.fromkeys(s for r in results for s in r.closed)),
            positions=tuple(p for p in final.values() if p is not None),
            trades=tuple(t for r in results for t in r.trades),
            transitions=tuple(t for r in results for t in r.transitions),
            decisions=tuple(d for r in results for d in r.decisions),
            snapshots=tuple(r.snapshot for r in results if r.snapshot is not None),
            notices=notices,
            predictions=predictions,
            samples=tuple(v for r in results for v in r.volatility),
        )

    def _report(self, results: list[InstantResult], notices: Sequence[Event]) -> None:
        """Tell people, after the commit: logs, events (already in the outbox), trade files."""
        for event in notices:
            self._events.publish(event)
        for result in results:
            for decision in result.decisions:
                self._count(decision.action)
            for fill in result.fills:
                if fill.reason == "entry":  # the instant's positions: those it opened or moved
                    position = result.positions.get(fill.symbol)
                    log.info("trade_opened", **fill_fields(fill), stop=_stop_text(position))
            for trade in result.trades:
                name = "trade_closed_recovered" if trade.recovered else "trade_closed"
                log.info(name, **trade_fields(trade))
                if self._on_closed is not None and result.snapshot is not None:
                    self._on_closed(trade, result.snapshot)
            for fault in result.faults:
                self._log_fault(fault)
            for transition in result.transitions:
                name = "breaker_tripped" if transition.tripped else "breaker_reset"
                log.warning(name, **transition_fields(transition))
            if self._on_snapshot is not None and result.snapshot is not None:
                self._on_snapshot(result.snapshot)
        skipped = sum(1 for r in results for d in r.decisions if d.action is Action.SKIPPED)
        if skipped:
            log.info("entries_skipped_catching_up", skipped=skipped)

    def _count(self, action: Action) -> None:
        if action is Action.ENTERED:
            self.entered += 1
        elif action is Action.REJECTED:
            self.rejected += 1
        elif action is Action.ERROR:
            self.errors += 1
        else:
            self.skipped += 1

    def _log_fault(self, fault: Fault) -> None:
        """Log a failed candle with the candle and, if the trading step failed, the traceback."""
        candle = fault.candle
        fields = {"stage": fault.stage, "symbol": candle.symbol, "error": fault.error}
        if fault.traceback:  # earlier stages logged theirs where they failed
            fields["traceback"] = fault.traceback
        log.error(
            "symbol_quarantined",
            **fields,
            open_time_ms=candle.open_time_ms,
            candle=f"o={candle.open} h={candle.high} l={candle.low} c={candle.close} "
            f"v={candle.volume}",
        )


def _notices(
    results: Sequence[InstantResult], previous_ms: int | None, now_ms: int
) -> tuple[Event, ...]:
    """Return the events telling of the instants' reports due, entries, closed trades and
    breaker changes, in the order they happened."""
    notices: list[Event] = []
    for result in results:
        notices.extend(report_events(previous_ms, result.candle_time_ms, now_ms))
        previous_ms = result.candle_time_ms
        for fill in result.fills:
            if fill.reason == "entry":  # the instant's positions: those it opened or moved
                position = result.positions.get(fill.symbol)
                notices.append(trade_opened_event(fill, position, now_ms))
        notices.extend(trade_closed_event(trade, now_ms) for trade in result.trades)
        notices.extend(breaker_event(t, now_ms) for t in result.transitions)
    return tuple(notices)


def _atr(row: FeatureRow | None, columns: tuple[int, int]) -> tuple[Decimal | None, float | None]:
    if row is None:
        return None, None
    atr, atr_pct = row.values[columns[0]], row.values[columns[1]]
    if not (math.isfinite(atr) and atr > 0 and math.isfinite(atr_pct)):
        return None, None
    return Decimal(repr(atr)), atr_pct


def _restored_state(state: LedgerState) -> dict[str, object]:
    """Return the trader's state, the volatility windows put back into the breakers': those
    last written, with the samples taken since (the windows keep their last values)."""
    value = json.loads(state.state_json)
    if not isinstance(value, dict):
        return {}
    breakers = value.get("breakers")
    if isinstance(breakers, dict) and (state.volatility_json or state.samples):
        windows = decode_windows(state.volatility_json or "{}")
        for symbol, _, atr_pct in state.samples:
            windows.setdefault(symbol, []).append(atr_pct)
        breakers["volatility_windows"] = windows
    return value


def _stop_text(position: Position | None) -> str | None:
    return None if position is None else format(position.stop_price, "f")
