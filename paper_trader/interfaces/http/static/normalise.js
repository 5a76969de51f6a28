// The feed's `data` in the one shape the page keeps. docs/status-protocol.md names the fields;
// the daemon's values carry their own names too (a position nested in its view, candle times as
// `*_candle_ms` / `candle_time_ms`, `exit_reason`, `stop_price`, `breaker`): both are read.

export function snapshotData(data) {
  const status = data.status || data;
  return {
    state: status.state,
    tripped: (status.tripped || []).map(breaker),
    ...portfolio(status),
    last_candle_ms: status.last_candle_ms,
    positions: (data.positions || []).map(position),
    trades: (data.trades || []).map(trade),
    signals: (data.signals || []).map(decision),
    equity_curve: (data.equity_curve || (Array.isArray(data.equity) ? data.equity : [])).map(point),
    health: data.health || null,
    model: data.model || null,
    symbols: data.symbols || [],
  };
}

export function portfolio(d) {
  const keys = ["equity", "cash", "positions_value", "peak_equity", "drawdown", "open_positions"];
  const out = {};
  for (const k of keys) if (d[k] !== undefined) out[k] = d[k];
  return out;
}

// A position at its mark (a snapshot's) or as opened (a `trade_opened` event's).
export function position(view) {
  const p = view.position || view;
  const [stop, stopReason] = bindingStop(p);
  return {
    symbol: p.symbol,
    side: p.side,
    quantity: p.quantity,
    entry_price: p.entry_price,
    opened_ms: first(p.opened_ms, p.opened_candle_ms),
    mark: view.mark ?? null,
    unrealised_pnl: view.unrealised_pnl ?? null,
    unrealised_pct: view.unrealised_pct ?? null,
    stop: first(view.stop, stop),
    stop_reason: first(view.stop_reason, stopReason),
    target: first(view.target, p.take_profit_price),
  };
}

// The stop that would fire first: the trailing stop once it is tighter than the initial one.
function bindingStop(p) {
  const initial = p.stop_price ?? p.stop, trailing = p.trailing_stop_price;
  if (trailing == null || initial == null) return [initial ?? null, initial == null ? null : "stop_loss"];
  const tighter = p.side === "short" ? Number(trailing) < Number(initial) : Number(trailing) > Number(initial);
  return tighter ? [trailing, "trailing_stop"] : [initial, "stop_loss"];
}

export function trade(t) {
  const returnPct = t.return_pct ?? (Number(t.net_pnl) / (Number(t.quantity) * Number(t.entry_price)));
  return {
    symbol: t.symbol,
    side: t.side,
    quantity: t.quantity,
    entry_price: t.entry_price,
    exit_price: t.exit_price,
    net_pnl: t.net_pnl,
    return_pct: Number.isFinite(Number(returnPct)) ? Number(returnPct) : null,
    reason: first(t.reason, t.exit_reason),
    opened_ms: first(t.opened_ms, t.opened_candle_ms),
    closed_ms: first(t.closed_ms, t.closed_candle_ms),
  };
}

export function decision(d) {
  return { ...d, candle_ms: first(d.candle_ms, d.candle_time_ms) };
}

export function point(p) {
  return { candle_ms: first(p.candle_ms, p.candle_time_ms), equity: p.equity, drawdown: p.drawdown };
}

export function breaker(b) {
  return {
    name: first(b.name, b.breaker), symbol: b.symbol ?? null, reason: b.reason ?? "",
    tripped: b.tripped ?? true, state: b.state ?? null,
  };
}

function first(...values) {
  for (const v of values) if (v !== undefined && v !== null) return v;
  return null;
}
