// Render the state into the page: text only (textContent, never HTML from the feed).

import { stopDistance } from "./state.js";

const $ = (id) => document.getElementById(id);

export function renderAll(state) {
  renderHeader(state);
  renderSummary(state);
  renderPositions(state);
  renderTrades(state);
  renderSignals(state);
  renderDecisions(state);
  renderBreakers(state);
  renderHealth(state);
  renderNotices(state);
}

export function renderConnection(name, detail, connects) {
  const badge = $("conn-state");
  badge.textContent = name;
  badge.dataset.state = name;
  badge.dataset.connects = String(connects);
  $("conn-detail").textContent = detail || "";
}

function renderHeader(state) {
  const trading = $("trading-state");
  trading.textContent = state.trading;
  trading.dataset.state = state.trading;
  const health = $("health-badge");
  const h = state.health;
  health.textContent = h ? `health ${h.score} ${h.level}` : "health —";
  health.dataset.level = h ? String(h.level).toLowerCase() : "";
  const when = state.candleMs == null ? "no candle yet" : `candle ${utc(state.candleMs)} UTC`;
  const info = $("run-info");
  info.textContent = state.run ? `run ${state.run} · seq ${state.seq} · ${when}` : "";
  info.dataset.run = state.run || "";
  info.dataset.seq = String(state.seq);
}

function renderSummary(state) {
  const p = state.portfolio || {};
  for (const [id, value] of [["equity", p.equity], ["cash", p.cash], ["positions-value", p.positions_value]]) {
    $(id).textContent = value == null ? "—" : money(value);
    $(id).title = value == null ? "" : String(value);
  }
  $("drawdown").textContent = p.drawdown == null ? "—" : percent(p.drawdown);
  $("open-positions").textContent = p.open_positions ?? String(state.positions.size);
  const m = state.model;
  $("model").textContent = m ? m.version ?? "—" : "none";
}

function renderPositions(state) {
  const rows = [...state.positions.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
  fill("positions", rows, (p) => [
    text(p.symbol), text(p.side), num(p.quantity), exact(p.entry_price, price), exact(p.mark, price),
    signed(fixed(p.unrealised_pnl)), signed(fixed(p.unrealised_pct), "%"),
    exact(p.stop, price), num(distance(p)), text(p.stop_reason ?? ""), exact(p.target, price),
  ]);
}

const SHOWN = { trades: 20, decisions: 15 }; // rows shown (the newest)

function renderTrades(state) {
  const rows = state.trades.slice(-SHOWN.trades).reverse();
  fill("trades", rows, (t) => [
    text(utc(t.closed_ms)), text(t.symbol), text(t.side), num(t.quantity), exact(t.entry_price, price),
    exact(t.exit_price, price), exact(t.net_pnl, money, true),
    signed(t.return_pct == null ? null : (100 * t.return_pct).toFixed(2), "%"), text(t.reason ?? ""),
  ]);
}

function renderSignals(state) {
  const rows = [...state.signals.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
  fill("signals", rows, (s) => [
    text(utc(s.candle_ms)), text(s.symbol), text(s.strength ?? ""), num(round(s.score, 3)),
    num(round(s.confidence, 3)), text(s.model_version ?? ""),
  ]);
}

function renderDecisions(state) {
  const rows = state.decisions.slice(-SHOWN.decisions).reverse();
  fill("decisions", rows, (d) => [
    text(utc(d.candle_ms)), text(d.symbol), cls(text(d.action), d.action === "entered" ? "pos" : ""),
    text(d.side ?? ""), detail(d.rule ?? "", d.detail), exact(d.price, price),
  ]);
}

function renderBreakers(state) {
  fill("breakers", state.tripped, (b) => [text(b.name), text(b.symbol ?? "account"), detail(b.reason ?? "")]);
}

function renderHealth(state) {
  const components = state.health?.components || [];
  fill("health", components, (c) => [
    text(c.component), cls(text(c.status), c.status === "ok" ? "pos" : c.status === "critical" ? "neg" : "warn"),
    detail(c.detail ?? ""),
  ]);
}

function renderNotices(state) {
  const list = $("notices");
  const items = state.notices.slice().reverse().map((n) => {
    const li = document.createElement("li");
    li.textContent = `${n.candle_ms == null ? "" : utc(n.candle_ms) + " "}[${n.severity}] ${n.message}`;
    li.dataset.kind = n.kind;
    li.className = n.severity === "critical" || n.severity === "error" ? "bad" : n.severity === "warning" ? "warn" : "";
    return li;
  });
  list.replaceChildren(...items);
}

// The Monte Carlo of the closed trades (/api/montecarlo's `monte_carlo`, or null): the 5th,
// 50th and 95th percentile of the final equity and of the maximum drawdown.
export function renderMonteCarlo(mc) {
  const rows = mc ? [
    ["final equity", mc.final_equity, (v) => Number(v).toFixed(2)],
    ["max drawdown", mc.max_drawdown, percent],
  ] : [];
  fill("monte-carlo", rows, ([label, figures, shown]) => [
    text(label), ...["p5", "p50", "p95"].map((p) => num(figures[p] == null ? null : shown(figures[p]))),
  ]);
  const note = $("monte-carlo-note");
  note.hidden = !mc;
  note.textContent = mc
    ? `${mc.runs} runs, each resampling the ${mc.trades} closed trades with replacement from ${money(mc.initial_equity)} (seed ${mc.seed})`
    : "";
}

// Replace the rows of table `id` with one row per item; show its "empty" note when none.
function fill(id, items, cells) {
  const body = $(id).tBodies[0];
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    if (item.symbol) tr.dataset.symbol = item.symbol;
    tr.append(...cells(item));
    return tr;
  }));
  const note = document.querySelector(`.empty[data-for="${id}"]`);
  if (note) note.hidden = items.length > 0;
}

function text(value) {
  const td = document.createElement("td");
  td.textContent = value == null ? "" : String(value);
  return td;
}

function num(value) { return cls(text(value ?? "—"), "num"); }

function signed(value, suffix = "") {
  if (value == null) return num("—");
  const n = Number(value);
  return cls(num(`${value}${suffix}`), n > 0 ? "pos" : n < 0 ? "neg" : "");
}

// A cell showing `value` shortened by `format`, with the exact string in its title.
function exact(value, format, colour = false) {
  if (value == null) return num("—");
  const td = colour ? signed(format(value)) : num(format(value));
  td.title = String(value);
  return td;
}

// Money: as given when it has at most 2 decimals, else rounded to cents.
export function money(value) {
  const s = String(value);
  const decimals = s.includes(".") ? s.length - s.indexOf(".") - 1 : 0;
  return decimals <= 2 ? s : Number(s).toFixed(2);
}

// A price: as given up to 8 significant digits, else rounded to 8.
export function price(value) {
  const s = String(value);
  const digits = s.replace(/^[-+]?[0.]*/, "").replace(".", "").length;
  return digits <= 8 ? s : String(Number(Number(s).toPrecision(8)));
}

function detail(rule, more) {
  const td = cls(text(rule), "detail");
  if (more) td.title = more;
  return td;
}

function cls(td, name) {
  for (const c of name.split(" ")) if (c) td.classList.add(c);
  return td;
}

function distance(p) {
  const d = stopDistance(p);
  return d == null ? "—" : percent(d);
}

function fixed(value) { return value == null ? null : Number(value).toFixed(2); }
function round(value, digits) { return value == null ? "—" : Number(value).toFixed(digits); }
function percent(fraction) { return `${(100 * Number(fraction)).toFixed(2)}%`; }

export function utc(ms) {
  if (ms == null) return "";
  return new Date(ms).toISOString().slice(5, 16).replace("T", " ");
}
