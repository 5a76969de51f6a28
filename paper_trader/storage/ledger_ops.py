"""The trading ledger's writes: one ``RecordInstant`` per batch of decision instants.

Everything the instants changed (fills, positions, closed trades, breaker transitions,
decisions, the equity snapshots and the trading state row) is applied in ONE transaction, so
``kill -9`` leaves either all of it or none. Its durability is LEDGER (``synchronous=FULL``)
when money moved or a breaker changed, FAST otherwise. ``positions`` are the positions held
at the end of the batch that changed in it, ``closed`` every symbol whose position closed in
it (deleted first, so a position closed and opened again in one batch is written anew).
``notices`` are the events that tell of it (trades opened and closed, breaker transitions):
they enter the notification outbox in the same transaction, so a crash can never keep the
ledger change and lose its notification, nor the other way round. ``predictions`` is what the
batch added to the prediction log (the predictions its decisions were made on, the outcomes
that moved the ensemble's weights, and those weights' state): in the same transaction too, so
a start finds the prediction log and the weights exactly as the ledger left them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from paper_trader.domain import Event, PredictionLog
from paper_trader.domain.trading import (
    BreakerTransition,
    ClosedTrade,
    Decision,
    EquitySnapshot,
    Fill,
    Position,
)
from paper_trader.storage.ops import decimal_text, prediction_log_steps
from paper_trader.storage.outbox import outbox_statements
from paper_trader.storage.writer import Durability, Statement, Step, one

NO_PREDICTIONS = PredictionLog()  # frozen: one shared empty log


VolatilitySample = tuple[str, int, float]  # (symbol, candle time, ATR %) the breaker took


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerState:
    """The one row that resumes the ledger: cash, the next fill id, the last instant handled.

    ``state_json`` holds the breakers' state and the last candle handled per symbol;
    ``volatility_json`` the volatility breaker's windows, written only when given (they are
    bulky: the stage writes them every few minutes of candles and at a stop); every ATR % the
    breaker takes in between is a ``VolatilitySample`` of its instant's commit, so a start
    after ``kill -9`` has the windows exactly (``samples``, in the order they were taken).
    """

    cash: str
    next_fill_id: int
    last_candle_ms: int
    state_json: str
    volatility_json: str | None = None
    samples: tuple[VolatilitySample, ...] = ()  # read back: those taken since volatility_json


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordInstant:
    """Commit what one decision instant changed; ``closed`` are symbols whose position ended."""

    state: LedgerState
    fills: tuple[Fill, ...] = ()
    closed: tuple[str, ...] = ()
    positions: tuple[Position, ...] = ()
    trades: tuple[ClosedTrade, ...] = ()
    transitions: tuple[BreakerTransition, ...] = ()
    decisions: tuple[Decision, ...] = ()
    snapshots: tuple[EquitySnapshot, ...] = ()
    notices: tuple[Event, ...] = ()
    predictions: PredictionLog = NO_PREDICTIONS
    samples: tuple[VolatilitySample, ...] = ()

    @property
    def durability(self) -> Durability:
        """Return LEDGER when a fill, a breaker transition or a notice is in it, else FAST."""
        ledger = self.fills or self.transitions or self.notices
        return Durability.LEDGER if ledger else Durability.FAST

    def prepare(self) -> Sequence[Step]:
        """Write every part; closed positions are removed before positions are upserted."""
        parts = [
            Statement(_INSERT_FILL, [_fill_row(f) for f in self.fills]),
            Statement(_DELETE_POSITION, [(s,) for s in self.closed]),
            Statement(_UPSERT_POSITION, [_position_row(p) for p in self.positions]),
            Statement(_INSERT_TRADE, [_trade_row(t) for t in self.trades]),
            Statement(_INSERT_TRANSITION, [_transition_row(t) for t in self.transitions]),
            Statement(_UPSERT_DECISION, [_decision_row(d) for d in self.decisions]),
            Statement(_UPSERT_SNAPSHOT, [_snapshot_row(s) for s in self.snapshots]),
        ]
        statements: list[Step] = [part for part in parts if part.rows]
        statements += prediction_log_steps(self.predictions)
        statements += outbox_statements(self.notices)
        s = self.state
        statements.append(
            one(_UPSERT_STATE, s.cash, s.next_fill_id, s.last_candle_ms, s.state_json)
        )
        if s.volatility_json is not None:  # the windows, this batch's samples in them
            statements.append(one(_SET_VOLATILITY, s.volatility_json))
            statements.append(Statement(_CLEAR_SAMPLES, ((),)))
        elif self.samples:
            statements.append(Statement(_INSERT_SAMPLE, self.samples))
        return statements


_DELETE_POSITION = "DELETE FROM positions WHERE symbol = ?"
_SET_VOLATILITY = "UPDATE trading_state SET volatility_json = ? WHERE id = 1"
_CLEAR_SAMPLES = "DELETE FROM volatility_samples"
_INSERT_SAMPLE = """
INSERT INTO volatility_samples (symbol, candle_time_ms, atr_pct) VALUES (?, ?, ?)
ON CONFLICT (symbol, candle_time_ms) DO UPDATE SET atr_pct = excluded.atr_pct
"""

_INSERT_FILL = """
INSERT INTO fills (
    fill_id, venue, symbol, interval, side, quantity, price, fee, slippage_bps,
    candle_time_ms, reason, fill_model
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _fill_row(f: Fill) -> tuple[object, ...]:
    return (
        f.fill_id,
        f.venue.value,
        f.symbol,
        f.interval.value,
        f.side.value,
        decimal_text(f.quantity),
        decimal_text(f.price),
        decimal_text(f.fee),
        decimal_text(f.slippage_bps),
        f.candle_time_ms,
        f.reason,
        f.fill_model.value,
    )


_UPSERT_POSITION = """
INSERT INTO positions (
    symbol, venue, interval, side, quantity, entry_price, entry_fee, entry_fill_id,
    opened_candle_ms, stop_price, take_profit_price, trailing_stop_price, extreme_price,
    risk_per_unit, atr, collateral, margin_call_price
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (symbol) DO UPDATE SET
    stop_price = excluded.stop_price,
    take_profit_price = excluded.take_profit_price,
    trailing_stop_price = excluded.trailing_stop_price,
    extreme_price = excluded.extreme_price
"""


def _position_row(p: Position) -> tuple[object, ...]:
    return (
        p.symbol,
        p.venue.value,
        p.interval.value,
        p.side.value,
        decimal_text(p.quantity),
        decimal_text(p.entry_price),
        decimal_text(p.entry_fee),
        p.entry_fill_id,
        p.opened_candle_ms,
        decimal_text(p.stop_price),
        _optional(p.take_profit_price),
        _optional(p.trailing_stop_price),
        decimal_text(p.extreme_price),
        decimal_text(p.risk_per_unit),
        decimal_text(p.atr),
        decimal_text(p.collateral),
        _optional(p.margin_call_price),
    )


_INSERT_TRADE = """
INSERT INTO trades (
    entry_fill_id, exit_fill_id, venue, symbol, interval, side, quantity, entry_price,
    exit_price, entry_fee, exit_fee, gross_pnl, net_pnl, opened_candle_ms, closed_candle_ms,
    exit_reason, entry_fill_model, exit_fill_model, recovered
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _trade_row(t: ClosedTrade) -> tuple[object, ...]:
    return (
        t.entry_fill_id,
        t.exit_fill_id,
        t.venue.value,
        t.symbol,
        t.interval.value,
        t.side.value,
        decimal_text(t.quantity),
        decimal_text(t.entry_price),
        decimal_text(t.exit_price),
        decimal_text(t.entry_fee),
        decimal_text(t.exit_fee),
        decimal_text(t.gross_pnl),
        decimal_text(t.net_pnl),
        t.opened_candle_ms,
        t.closed_candle_ms,
        t.exit_reason.value,
        t.entry_fill_model.value,
        t.exit_fill_model.value,
        int(t.recovered),
    )


_INSERT_TRANSITION = """
INSERT INTO breaker_events (
    candle_time_ms, breaker, symbol, transition, state, reason, threshold, observed
) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""


def _transition_row(t: BreakerTransition) -> tuple[object, ...]:
    return (
        t.candle_time_ms,
        t.breaker,
        t.symbol,
        "tripped" if t.tripped else "reset",
        t.state.value,
        t.reason,
        t.threshold,
        t.observed,
    )


_UPSERT_DECISION = """
INSERT INTO decisions (
    venue, symbol, interval, candle_time_ms, strength, score, confidence, model_version,
    action, side, quantity, price, rule, detail
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (venue, symbol, interval, candle_time_ms) DO NOTHING
"""


def _decision_row(d: Decision) -> tuple[object, ...]:
    return (
        d.venue.value,
        d.symbol,
        d.interval.value,
        d.candle_time_ms,
        d.strength,
        float(d.score),
        float(d.confidence),
        d.model_version,
        d.action.value,
        "" if d.side is None else d.side.value,
        _optional(d.quantity),
        _optional(d.price),
        d.rule,
        d.detail,
    )


_UPSERT_SNAPSHOT = """
INSERT INTO equity_snapshots (
    candle_time_ms, cash, positions_value, equity, peak_equity, open_positions
) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (candle_time_ms) DO UPDATE SET
    cash = excluded.cash,
    positions_value = excluded.positions_value,
    equity = excluded.equity,
    peak_equity = excluded.peak_equity,
    open_positions = excluded.open_positions
"""


def _snapshot_row(s: EquitySnapshot) -> tuple[object, ...]:
    return (
        s.candle_time_ms,
        decimal_text(s.cash),
        decimal_text(s.positions_value),
        decimal_text(s.equity),
        decimal_text(s.peak_equity),
        s.open_positions,
    )


_UPSERT_STATE = """
INSERT INTO trading_state (id, cash, next_fill_id, last_candle_ms, state_json)
VALUES (1, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    cash = excluded.cash,
    next_fill_id = excluded.next_fill_id,
    last_candle_ms = excluded.last_candle_ms,
    state_json = excluded.state_json
"""


def _optional(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)
