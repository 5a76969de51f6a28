"""The schema's history: every migration's SQL, in order, as it shipped.

Over 400 lines on purpose: the history is append-only, and each migration's SQL stays in one
piece beside the comment that says what its tables hold.

Append a ``Migration`` with the next version to change the schema; never edit one that has
shipped (`paper_trader.storage.migrations` runs them, each in its own transaction). Money,
prices and quantities are ``TEXT`` holding exact decimal strings (``format(d, "f")``); times are
integer Unix milliseconds; every table is ``STRICT``.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema step: the version it brings the database to and the SQL that gets it there."""

    version: int
    description: str
    sql: str


_INITIAL_SCHEMA = """
CREATE TABLE candles (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    open_time_ms INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    volume TEXT NOT NULL,
    PRIMARY KEY (venue, symbol, interval, open_time_ms)
) STRICT, WITHOUT ROWID;

CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started_at_ms INTEGER NOT NULL,
    stopped_at_ms INTEGER,
    mode TEXT NOT NULL,
    pid INTEGER NOT NULL,
    app_version TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    exit_code INTEGER
) STRICT;

CREATE TABLE signals (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    direction TEXT NOT NULL,
    strength TEXT NOT NULL,
    confidence REAL NOT NULL,
    probabilities_json TEXT NOT NULL,
    model_version TEXT NOT NULL,
    feature_spec_hash TEXT NOT NULL
) STRICT;

CREATE INDEX signals_symbol_time ON signals (symbol, candle_time_ms);

CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    fill_model TEXT NOT NULL
) STRICT;

CREATE TABLE trades (
    id INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    entry_fill_id INTEGER NOT NULL REFERENCES fills(id),
    exit_fill_id INTEGER REFERENCES fills(id),
    entry_price TEXT NOT NULL,
    exit_price TEXT,
    fees TEXT NOT NULL,
    realised_pnl TEXT,
    opened_candle_ms INTEGER NOT NULL,
    closed_candle_ms INTEGER,
    exit_reason TEXT
) STRICT;

CREATE TABLE positions (
    symbol TEXT NOT NULL PRIMARY KEY,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    stop_price TEXT,
    take_profit_price TEXT,
    trailing_stop_price TEXT,
    opened_candle_ms INTEGER NOT NULL,
    entry_fill_id INTEGER NOT NULL REFERENCES fills(id)
) STRICT;

CREATE TABLE equity_snapshots (
    candle_time_ms INTEGER PRIMARY KEY,
    cash TEXT NOT NULL,
    positions_value TEXT NOT NULL,
    equity TEXT NOT NULL,
    peak_equity TEXT NOT NULL
) STRICT;

CREATE TABLE breaker_events (
    id INTEGER PRIMARY KEY,
    candle_time_ms INTEGER NOT NULL,
    breaker TEXT NOT NULL,
    transition TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    threshold TEXT,
    observed TEXT
) STRICT;

CREATE TABLE notification_outbox (
    id INTEGER PRIMARY KEY,
    created_at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL,
    data_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at_ms INTEGER,
    last_error TEXT
) STRICT;

CREATE INDEX notification_outbox_status ON notification_outbox (status, id);

CREATE TABLE metadata (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
"""

_GAPS = """
CREATE TABLE gaps (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    missing INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    detected_at_ms INTEGER NOT NULL,
    PRIMARY KEY (venue, symbol, interval, start_ms)
) STRICT, WITHOUT ROWID;
"""

# One row per live prediction, keyed by the candle it was made at the close of. ``close`` is
# that candle's close; ``outcome`` goes from 'pending' to 'resolved' (``label`` 0 down, 1 flat,
# 2 up) or 'expired' once the candle ``horizon`` candles later has closed or never came;
# ``resolved_open_time_ms`` is that candle. The JSON columns have sorted keys.
_PREDICTIONS = """
CREATE TABLE predictions (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    open_time_ms INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    close TEXT NOT NULL,
    horizon INTEGER NOT NULL,
    threshold REAL NOT NULL,
    p_down REAL NOT NULL,
    p_flat REAL NOT NULL,
    p_up REAL NOT NULL,
    score REAL NOT NULL,
    strength TEXT NOT NULL,
    confidence REAL NOT NULL,
    models_json TEXT NOT NULL,
    weights_json TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending',
    label INTEGER,
    forward_return REAL,
    resolved_open_time_ms INTEGER,
    PRIMARY KEY (venue, symbol, interval, open_time_ms)
) STRICT, WITHOUT ROWID;

CREATE INDEX predictions_pending ON predictions (outcome, venue, symbol, interval, open_time_ms);
"""

# The trading ledger. Migration 1 created first drafts of these tables that nothing ever
# wrote; they are replaced. Money is exact decimal text. ``fills`` is the journal: a position
# or a trade row always points at the fill(s) that made it, and every row of one decision
# instant commits in one transaction together with ``trading_state`` (cash, the next fill id,
# the breakers) and the instant's equity snapshot.
_LEDGER = """
DROP TABLE signals;
DROP TABLE trades;
DROP TABLE positions;
DROP TABLE fills;
DROP TABLE equity_snapshots;
DROP TABLE breaker_events;

CREATE TABLE fills (
    fill_id INTEGER PRIMARY KEY,
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT NOT NULL,
    slippage_bps TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    fill_model TEXT NOT NULL
) STRICT;

CREATE TABLE positions (
    symbol TEXT NOT NULL PRIMARY KEY,
    venue TEXT NOT NULL,
    interval TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    entry_fee TEXT NOT NULL,
    entry_fill_id INTEGER NOT NULL REFERENCES fills (fill_id),
    opened_candle_ms INTEGER NOT NULL,
    stop_price TEXT NOT NULL,
    take_profit_price TEXT,
    trailing_stop_price TEXT,
    extreme_price TEXT NOT NULL,
    risk_per_unit TEXT NOT NULL,
    atr TEXT NOT NULL
) STRICT;

CREATE TABLE trades (
    entry_fill_id INTEGER PRIMARY KEY REFERENCES fills (fill_id),
    exit_fill_id INTEGER NOT NULL UNIQUE REFERENCES fills (fill_id),
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT NOT NULL,
    entry_price TEXT NOT NULL,
    exit_price TEXT NOT NULL,
    entry_fee TEXT NOT NULL,
    exit_fee TEXT NOT NULL,
    gross_pnl TEXT NOT NULL,
    net_pnl TEXT NOT NULL,
    opened_candle_ms INTEGER NOT NULL,
    closed_candle_ms INTEGER NOT NULL,
    exit_reason TEXT NOT NULL,
    entry_fill_model TEXT NOT NULL,
    exit_fill_model TEXT NOT NULL,
    recovered INTEGER NOT NULL
) STRICT;

CREATE INDEX trades_closed ON trades (closed_candle_ms);

CREATE TABLE equity_snapshots (
    candle_time_ms INTEGER PRIMARY KEY,
    cash TEXT NOT NULL,
    positions_value TEXT NOT NULL,
    equity TEXT NOT NULL,
    peak_equity TEXT NOT NULL,
    open_positions INTEGER NOT NULL
) STRICT;

CREATE TABLE breaker_events (
    id INTEGER PRIMARY KEY,
    candle_time_ms INTEGER NOT NULL,
    breaker TEXT NOT NULL,
    symbol TEXT,
    transition TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    threshold TEXT NOT NULL,
    observed TEXT NOT NULL
) STRICT;

CREATE TABLE decisions (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    strength TEXT NOT NULL,
    score REAL NOT NULL,
    confidence REAL NOT NULL,
    model_version TEXT NOT NULL,
    action TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT,
    price TEXT,
    rule TEXT,
    detail TEXT NOT NULL,
    PRIMARY KEY (venue, symbol, interval, candle_time_ms)
) STRICT, WITHOUT ROWID;

CREATE TABLE trading_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cash TEXT NOT NULL,
    next_fill_id INTEGER NOT NULL,
    last_candle_ms INTEGER NOT NULL,
    state_json TEXT NOT NULL,
    volatility_json TEXT NOT NULL DEFAULT '{}'
) STRICT;
"""

# A short holds collateral out of free cash and has a margin call (broker/margin.py). Positions
# opened before this version hold none ('0') and have no margin call (NULL).
_SHORT_COLLATERAL = """
ALTER TABLE positions ADD COLUMN collateral TEXT NOT NULL DEFAULT '0';
ALTER TABLE positions ADD COLUMN margin_call_price TEXT;
"""

_DEVIATIONS = """
CREATE TABLE deviations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    symbol TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    detected_at_ms INTEGER NOT NULL,
    message TEXT NOT NULL,
    data_json TEXT NOT NULL
) STRICT;
"""

# The notifier's side of the outbox. Each row gets its category and priority (served by
# priority, then age); ``notification_deliveries`` holds one row per channel it goes to
# (``telegram:<chat id>``, ``webhook``): pending → sent (Telegram's message ids, the time, and
# whether it was folded into a digest or a repeat count) or failed (the reason), with the next
# attempt's time after a refusal, how many parts of a long message are already delivered and
# whether an attempt may have arrived although it timed out. The outbox row's own ``status``
# is 'sent' once no delivery is pending and one was sent. Rows queued before this version get
# the category and priority of their kind.
_NOTIFIER = """
ALTER TABLE notification_outbox ADD COLUMN category TEXT NOT NULL DEFAULT 'lifecycle';
ALTER TABLE notification_outbox ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';

UPDATE notification_outbox SET category = CASE
    WHEN kind IN ('trade_opened', 'trade_closed') THEN 'trade'
    WHEN kind IN ('breaker_tripped', 'breaker_reset', 'prediction_breaker') THEN 'breaker'
    WHEN kind IN ('service_restarted', 'service_crash_loop', 'service_failed',
                  'feed_reconnect_storm', 'model_unavailable', 'prediction_timeout') THEN 'error'
    WHEN kind IN ('service_recovered', 'feed_recovered') THEN 'health'
    WHEN kind IN ('model_retrained', 'model_drift') THEN 'drift'
    WHEN kind IN ('data_gap', 'symbol_not_tradable', 'symbol_tradable', 'series_stalled',
                  'candle_late') THEN 'data'
    ELSE 'lifecycle'
END, priority = CASE
    WHEN severity = 'critical' OR kind IN ('service_crash_loop', 'service_failed')
        THEN 'critical'
    WHEN kind IN ('trade_opened', 'trade_closed', 'breaker_tripped', 'prediction_breaker',
                  'daemon_stopping', 'feed_reconnect_storm', 'symbol_not_tradable',
                  'model_unavailable', 'model_drift') THEN 'high'
    WHEN kind IN ('service_recovered', 'model_loaded', 'candle_late') THEN 'low'
    ELSE 'normal'
END;

CREATE INDEX notification_outbox_created ON notification_outbox (status, created_at_ms);

CREATE TABLE notification_deliveries (
    outbox_id INTEGER NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL DEFAULT 0,
    parts_sent INTEGER NOT NULL DEFAULT 0,
    message_ids TEXT NOT NULL DEFAULT '',
    possible_repeat INTEGER NOT NULL DEFAULT 0,
    folded INTEGER NOT NULL DEFAULT 0,
    sent_at_ms INTEGER,
    last_error TEXT,
    failed_reason TEXT,
    PRIMARY KEY (outbox_id, channel)
) STRICT, WITHOUT ROWID;

CREATE INDEX notification_deliveries_status ON notification_deliveries (channel, status);
"""

# One row per command an interface accepted (from an authorised chat and user), with what it
# answered: ``result`` is the answer's first line, ``ok`` whether the command did what was
# asked. ``user_id`` is NULL when the update carried no sender (a channel post).
_COMMAND_AUDIT = """
CREATE TABLE command_audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    interface TEXT NOT NULL,
    chat_id INTEGER NOT NULL,
    user_id INTEGER,
    command TEXT NOT NULL,
    arguments TEXT NOT NULL,
    result TEXT NOT NULL,
    ok INTEGER NOT NULL
) STRICT;

CREATE INDEX command_audit_time ON command_audit (at_ms);
"""

# Predictions and decisions keyed by time first. An instant writes one row per symbol to each;
# keyed symbol first, every row dirtied its own B-tree leaf (at 100 symbols about 1.3 MB of WAL
# per instant), while every reader asks by time (the newest, the pending since, retention). Now
# an instant's rows share a few leaves at the right edge, and the pending index holds only the
# pending rows (a few instants' worth) instead of every prediction ever made.
_TIME_KEYS = """
CREATE TABLE predictions_by_time (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    open_time_ms INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    close TEXT NOT NULL,
    horizon INTEGER NOT NULL,
    threshold REAL NOT NULL,
    p_down REAL NOT NULL,
    p_flat REAL NOT NULL,
    p_up REAL NOT NULL,
    score REAL NOT NULL,
    strength TEXT NOT NULL,
    confidence REAL NOT NULL,
    models_json TEXT NOT NULL,
    weights_json TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending',
    label INTEGER,
    forward_return REAL,
    resolved_open_time_ms INTEGER,
    PRIMARY KEY (open_time_ms, venue, symbol, interval)
) STRICT, WITHOUT ROWID;

INSERT INTO predictions_by_time SELECT
    venue, symbol, interval, open_time_ms, model_version, spec_hash, close, horizon, threshold,
    p_down, p_flat, p_up, score, strength, confidence, models_json, weights_json, outcome,
    label, forward_return, resolved_open_time_ms
FROM predictions ORDER BY open_time_ms, venue, symbol, interval;

DROP TABLE predictions;

ALTER TABLE predictions_by_time RENAME TO predictions;

CREATE INDEX predictions_pending ON predictions (open_time_ms, venue, symbol, interval)
WHERE outcome = 'pending';

CREATE TABLE decisions_by_time (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    strength TEXT NOT NULL,
    score REAL NOT NULL,
    confidence REAL NOT NULL,
    model_version TEXT NOT NULL,
    action TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity TEXT,
    price TEXT,
    rule TEXT,
    detail TEXT NOT NULL,
    PRIMARY KEY (candle_time_ms, symbol, venue, interval)
) STRICT, WITHOUT ROWID;

INSERT INTO decisions_by_time SELECT
    venue, symbol, interval, candle_time_ms, strength, score, confidence, model_version,
    action, side, quantity, price, rule, detail
FROM decisions ORDER BY candle_time_ms, symbol, venue, interval;

DROP TABLE decisions;

ALTER TABLE decisions_by_time RENAME TO decisions;
"""

# Equity snapshots thinned past the detail period (storage/thinning.py): a kept snapshot stands
# for ``instants`` instants, ``open_instants`` of them with a position open (NULL: it stands for
# itself alone, open if ``open_positions`` > 0).
_THINNING = """
ALTER TABLE equity_snapshots ADD COLUMN instants INTEGER NOT NULL DEFAULT 1;
ALTER TABLE equity_snapshots ADD COLUMN open_instants INTEGER;
"""

# What a start needs to go on exactly where the last commit left off, written in the decisions'
# transaction: the adaptive weights' memory of the model version in use (one row, replaced as
# it moves), and each ATR % the volatility breaker took since ``volatility_json`` was last
# written (emptied whenever it is: the two together are the windows); and, stored with the
# candles, the data-quality gate's verdict on each (tradable: 1, 0, NULL before this) and its
# state of each series after them.
_RESUME_STATE = """
ALTER TABLE candles ADD COLUMN tradable INTEGER;

CREATE TABLE quality_state (
    venue TEXT NOT NULL,
    symbol TEXT NOT NULL,
    interval TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (venue, symbol, interval)
) STRICT;

CREATE TABLE ensemble_state (
    model_version TEXT PRIMARY KEY,
    scorecard BLOB NOT NULL
) STRICT;

CREATE TABLE volatility_samples (
    symbol TEXT NOT NULL,
    candle_time_ms INTEGER NOT NULL,
    atr_pct REAL NOT NULL,
    PRIMARY KEY (symbol, candle_time_ms)
) STRICT, WITHOUT ROWID;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(version=1, description="create the initial schema", sql=_INITIAL_SCHEMA),
    Migration(version=2, description="record candle gaps that cannot be filled", sql=_GAPS),
    Migration(version=3, description="log predictions and their outcomes", sql=_PREDICTIONS),
    Migration(version=4, description="the trading ledger", sql=_LEDGER),
    Migration(version=5, description="short collateral and margin calls", sql=_SHORT_COLLATERAL),
    Migration(
        version=6, description="record how a live run may differ from a replay", sql=_DEVIATIONS
    ),
    Migration(
        version=7, description="notification categories, priorities and deliveries", sql=_NOTIFIER
    ),
    Migration(version=8, description="audit the commands interfaces accepted", sql=_COMMAND_AUDIT),
    Migration(version=9, description="key predictions and decisions by time", sql=_TIME_KEYS),
    Migration(version=10, description="equity snapshots that stand for several", sql=_THINNING),
    Migration(
        version=11, description="resume the quality gate, weights and volatility", sql=_RESUME_STATE
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version
