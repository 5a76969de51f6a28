// The dashboard's picture of the daemon: built from a `snapshot`, then kept up by each event
// (docs/status-protocol.md). Pure data, no DOM. Every list is bounded.

import * as read from "./normalise.js";

export const LIMITS = {
  trades: 100, decisions: 100, equity: 2000, candles: 600, markers: 200, notices: 50,
};

export function emptyState() {
  return {
    run: null, seq: 0, candleMs: null, version: 0,
    trading: "unknown", tripped: [],
    portfolio: null,
    positions: new Map(),   // symbol -> position
    trades: [],             // oldest first
    decisions: [],          // oldest first
    signals: new Map(),     // symbol -> the latest signal
    equity: [],             // {time (s), equity, drawdown}, ascending time
    health: null, model: null,
    symbols: new Map(),     // symbol -> {symbol, last_candle_ms, close, quality, tradable}
    candles: new Map(),     // symbol -> [{time (s), open, high, low, close}]
    markers: new Map(),     // symbol -> [{time (s), kind: entry|exit, side, text}]
    notices: [],            // {candle_ms, severity, kind, message}
  };
}

// Replace everything with what a snapshot says; candles already drawn are kept (the snapshot
// holds none) unless the run changed.
export function applySnapshot(state, message) {
  const data = read.snapshotData(message.data || {});
  const fresh = emptyState();
  if (message.run === state.run) {
    fresh.candles = state.candles;
    fresh.markers = state.markers;
    fresh.notices = state.notices;
  }
  Object.assign(state, fresh, { run: message.run, seq: message.seq, candleMs: message.candle_ms });
  state.trading = data.state || "unknown";
  state.tripped = data.tripped;
  state.portfolio = read.portfolio(data);
  for (const p of data.positions) state.positions.set(p.symbol, p);
  state.trades = last(data.trades, LIMITS.trades);
  state.decisions = last(data.signals, LIMITS.decisions);
  for (const point of data.equity_curve) addEquity(state, point.candle_ms, point);
  state.health = data.health;
  state.model = data.model;
  for (const s of data.symbols) state.symbols.set(s.symbol, { ...s });
  for (const t of state.trades) markTrade(state, t);
  for (const p of state.positions.values()) markEntry(state, p.symbol, p.opened_ms, p.side);
  state.version += 1;
}

// Apply one event; return false when it is not for this picture (already seen, other run).
export function applyEvent(state, message) {
  if (message.run !== state.run || message.seq <= state.seq) return false;
  state.seq = message.seq;
  if (message.candle_ms != null) state.candleMs = message.candle_ms;
  const handle = HANDLERS[message.type];
  if (handle) handle(state, message.data || {}, message);
  state.version += 1;
  return true;
}

const HANDLERS = {
  candle(state, d, m) {
    const time = toSeconds(m.candle_ms);
    const bar = { time, open: +d.open, high: +d.high, low: +d.low, close: +d.close };
    if (time != null) upsert(listOf(state.candles, d.symbol), bar, LIMITS.candles);
    const known = state.symbols.get(d.symbol) || { symbol: d.symbol };
    state.symbols.set(d.symbol, { ...known, close: d.close, last_candle_ms: m.candle_ms });
    const position = state.positions.get(d.symbol);
    if (position) remark(position, d.close);
  },
  signal(state, d, m) {
    state.signals.set(d.symbol, { ...d, candle_ms: m.candle_ms });
  },
  decision(state, d, m) {
    const decision = read.decision(d);
    push(state.decisions, { ...decision, candle_ms: decision.candle_ms ?? m.candle_ms }, LIMITS.decisions);
  },
  trade_opened(state, d, m) {
    const position = read.position(d);
    remark(position, state.symbols.get(position.symbol)?.close ?? position.entry_price);
    state.positions.set(position.symbol, position);
    markEntry(state, position.symbol, m.candle_ms ?? position.opened_ms, position.side);
  },
  trade_closed(state, d, m) {
    const trade = read.trade(d);
    if (trade.closed_ms == null) trade.closed_ms = m.candle_ms;
    // A stop and a new entry at one instant: the new position is told before the old closes.
    const open = state.positions.get(trade.symbol);
    if (open && (open.opened_ms == null || trade.opened_ms == null || open.opened_ms === trade.opened_ms)) {
      state.positions.delete(trade.symbol);
    }
    const known = trade.exit_fill_id != null && state.trades.some((t) => t.exit_fill_id === trade.exit_fill_id);
    if (!known) push(state.trades, trade, LIMITS.trades);
    markExit(state, trade);
  },
  breaker(state, d) {
    const b = read.breaker(d);
    const same = (t) => t.name === b.name && t.symbol === b.symbol;
    state.tripped = state.tripped.filter((t) => !same(t));
    if (b.tripped) state.tripped.push(b);
    if (b.state) state.trading = b.state;
  },
  equity(state, d, m) {
    state.portfolio = { ...state.portfolio, ...read.portfolio(d) };
    addEquity(state, m.candle_ms ?? read.point(d).candle_ms, d);
  },
  health(state, d) { state.health = d; },
  // Every `data_gap` and `model` event is a `notification` too: the notices list shows those.
  notification(state, d, m) {
    const message = d.message || d.kind || "";
    push(state.notices, { candle_ms: m.candle_ms, severity: d.severity || "info", kind: d.kind || "", message }, LIMITS.notices);
  },
};

// Mark a position at `mark` (a price string): its gross unrealised PnL, as the daemon reckons
// it (side * quantity * (mark - entry)), and how far its stop is, as a fraction of the mark.
export function remark(position, mark) {
  const m = Number(mark), entry = Number(position.entry_price), qty = Number(position.quantity);
  const sign = position.side === "short" ? -1 : 1;
  position.mark = String(mark);
  const pnl = sign * qty * (m - entry);
  position.unrealised_pnl = pnl.toFixed(2);
  position.unrealised_pct = ((100 * pnl) / (qty * entry)).toFixed(2);
}

export function stopDistance(position) {
  const mark = Number(position.mark), stop = Number(position.stop);
  if (!mark || position.stop == null || Number.isNaN(stop)) return null;
  return (position.side === "short" ? stop - mark : mark - stop) / mark;
}

function addEquity(state, candleMs, d) {
  const time = toSeconds(candleMs);
  if (time == null || d.equity == null) return;
  upsert(state.equity, { time, equity: d.equity, drawdown: Number(d.drawdown || 0) }, LIMITS.equity);
}

function markTrade(state, t) {
  markEntry(state, t.symbol, t.opened_ms, t.side);
  markExit(state, t);
}

function markEntry(state, symbol, ms, side) {
  const time = toSeconds(ms);
  if (time == null) return;
  addMarker(state, symbol, { time, kind: "entry", side, text: side });
}

function markExit(state, t) {
  const time = toSeconds(t.closed_ms);
  if (time == null) return;
  const text = `${t.reason ?? "exit"} ${money(t.net_pnl)}`.trim();
  addMarker(state, t.symbol, { time, kind: "exit", side: t.side, text });
}

// A fresh snapshot of the same run names trades already marked: mark each once.
function addMarker(state, symbol, marker) {
  const list = listOf(state.markers, symbol);
  const same = (m) => m.time === marker.time && m.kind === marker.kind && m.text === marker.text;
  if (!list.some(same)) push(list, marker, LIMITS.markers);
}

function money(value) {
  return value == null ? "" : Number(value).toFixed(2);
}

function listOf(map, key) {
  if (!map.has(key)) map.set(key, []);
  return map.get(key);
}

// Add `item` in time order (a later point of the same time replaces it); keep the newest `limit`.
function upsert(list, item, limit) {
  const tail = list[list.length - 1];
  if (tail && tail.time === item.time) list[list.length - 1] = item;
  else if (tail && tail.time > item.time) return;
  else push(list, item, limit);
}

function push(list, item, limit) {
  list.push(item);
  if (list.length > limit) list.splice(0, list.length - limit);
}

function last(list, limit) {
  return list.slice(Math.max(0, list.length - limit));
}

function toSeconds(ms) {
  return ms == null ? null : Math.floor(ms / 1000);
}
