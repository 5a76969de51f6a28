// The feed's `data` (docs/status-protocol.md) in the one shape the page keeps: a position
// flat, candle times as `*_ms`, a trade's return as a fraction.

export function snapshotData(data) {
  const status = data.status || {};
  return {
    state: status.state,
    tripped: list(status.tripped).map(breaker),
    ...portfolio(status),
    last_candle_ms: status.last_candle_ms ?? null,
    positions: list(data.positions).map(position),
    trades: list(data.trades).map(trade),
    signals: list(data.signals).map(decision),
    equity_curve: list(data.equity).map(point),
    health: data.health || null,
    model: data.model || null,
    symbols: list(data.symbols),
  };
}

function list(value) {
  return Array.isArray(value) ? value : [];
}

export function portfolio(d) {
  const keys = ["equity", "cash", "positions_value", "peak_equity", "drawdown", "open_positions"];
  const out = {};
  for (const k of keys) if (d[k] !== undefined) out[k] = d[k];
  return out;
}

// A position at its mark (a snapshot's view of it) or as opened (a `trade_opened` event's).
export function position(view) {
  const p = view.position || view;
  const [stop, stopReason] = bindingStop(p);
  return {
    symbol: p.symbol,
    side: p.side,
    quantity: p.quantity,
    entry_price: p.entry_price,
    opened_ms: p.opened_candle_ms ?? null,
    mark: view.mark ?? null,
    unrealised_pnl: view.unrealised_pnl ?? null,
    unrealised_pct: view.unrealised_pct ?? null,
    stop: view.stop ?? stop,
    stop_reason: view.stop_reason ?? stopReason,
    target: view.target ?? p.take_profit_price ?? null,
  };
}

// The stop that would fire first: the trailing stop once it is tighter than the initial one.
function bindingStop(p) {
  const initial = p.stop_price ?? null, trailing = p.trailing_stop_price ?? null;
  if (trailing === null || initial === null) {
    return trailing === null ? [initial, initial === null ? null : "stop_loss"] : [trailing, "trailing_stop"];
  }
  const tighter = p.side === "short" ? Number(trailing) < Number(initial) : Number(trailing) > Number(initial);
  return tighter ? [trailing, "trailing_stop"] : [initial, "stop_loss"];
}

export function trade(t) {
  const fraction = Number(t.net_pnl) / (Number(t.quantity) * Number(t.entry_price));
  return {
    symbol: t.symbol,
    side: t.side,
    quantity: t.quantity,
    entry_price: t.entry_price,
    exit_price: t.exit_price,
    net_pnl: t.net_pnl,
    return_pct: Number.isFinite(fraction) ? fraction : null,
    reason: t.exit_reason ?? null,
    opened_ms: t.opened_candle_ms ?? null,
    closed_ms: t.closed_candle_ms ?? null,
    exit_fill_id: t.exit_fill_id ?? null,
  };
}

export function decision(d) {
  return { ...d, candle_ms: d.candle_time_ms ?? null };
}

export function point(p) {
  return { candle_ms: p.candle_time_ms ?? null, equity: p.equity, drawdown: p.drawdown };
}

export function breaker(b) {
  return {
    name: b.breaker, symbol: b.symbol ?? null, reason: b.reason ?? "",
    tripped: b.tripped ?? true, state: b.state ?? null,
  };
}
