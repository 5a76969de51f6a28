// The dashboard: the status feed's messages into the state, the state onto the page; the
// Monte Carlo panel from /api/montecarlo (at start, on each snapshot, soon after a closed
// trade, and every minute). Query parameters: `feed=ws://host:port/` connects there instead of where /api/feed says;
// `stale=SECONDS` (default 30) is how long without a message before the page says "stale".

import { applyEvent, applySnapshot, emptyState } from "./state.js";
import { FeedConnection } from "./feed.js";
import { EquityChart, PriceChart } from "./charts.js";
import { renderAll, renderConnection, renderMonteCarlo } from "./view.js";

const RENDER_EVERY_MS = 100;
const MONTE_CARLO_EVERY_MS = 60_000;
const MONTE_CARLO_AFTER_TRADE_MS = 2_000; // trades closing together: asked once
const params = new URLSearchParams(location.search);
const state = emptyState();
const equityChart = new EquityChart(document.getElementById("equity-chart"));
const priceChart = new PriceChart(document.getElementById("price-chart"));
const symbolSelect = document.getElementById("symbol-select");
let pending = null;

const feed = new FeedConnection(
  {
    message: receive,
    state: (name, detail, connects) => {
      renderConnection(name, detail, connects);
      if (name === "connected") hideTokenForm();
    },
    askToken: showTokenForm,
    resume: () => (state.run ? { since: state.seq, run: state.run } : null),
  },
  { staleMs: 1000 * positive(params.get("stale"), 30), override: feedOverride(params.get("feed")) },
);

function receive(message) {
  if (message.type === "snapshot") {
    applySnapshot(state, message);
    monteCarloSoon(0);
  } else if (message.type === "heartbeat" || message.type === "subscribed" || message.type === "error") {
    if (message.run && state.run && message.run !== state.run) feed.resync();
    return;
  } else if (state.run === null || message.run !== state.run) {
    feed.resync(); // events of a run this page holds no snapshot of
    return;
  } else if (!applyEvent(state, message)) {
    return;
  } else if (message.type === "trade_closed") {
    monteCarloSoon(MONTE_CARLO_AFTER_TRADE_MS);
  }
  schedule();
}

let monteCarloTimer = null;

function monteCarloSoon(delay) {
  if (monteCarloTimer !== null) return;
  monteCarloTimer = setTimeout(refreshMonteCarlo, delay);
}

async function refreshMonteCarlo() {
  monteCarloTimer = null;
  try {
    const response = await fetch("/api/montecarlo", { cache: "no-store" });
    if (response.ok) renderMonteCarlo((await response.json()).monte_carlo ?? null);
  } catch { /* the daemon is not answering: the panel keeps what it showed */ }
}

function schedule() {
  if (pending !== null) return;
  pending = setTimeout(() => {
    pending = null;
    renderAll(state);
    equityChart.draw(state);
    priceChart.draw(state, chosenSymbol());
  }, RENDER_EVERY_MS);
}

function chosenSymbol() {
  const symbols = [...new Set([...state.symbols.keys(), ...state.candles.keys()])].sort();
  const current = symbolSelect.value;
  if (symbols.join(",") !== [...symbolSelect.options].map((o) => o.value).join(",")) {
    symbolSelect.replaceChildren(...symbols.map((s) => new Option(s, s)));
    if (symbols.includes(current)) symbolSelect.value = current;
  }
  return symbolSelect.value || symbols[0] || "";
}

function showTokenForm(feedUrl, refused) {
  document.getElementById("token-feed").textContent = feedUrl;
  document.getElementById("token-error").hidden = !refused;
  document.getElementById("token-box").hidden = false;
  document.getElementById("token-input").focus();
}

function hideTokenForm() {
  document.getElementById("token-box").hidden = true;
  document.getElementById("token-error").hidden = true;
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token-input");
  const token = input.value.trim();
  if (!token) return;
  input.value = "";
  document.getElementById("token-error").hidden = true;
  feed.useToken(token);
});

symbolSelect.addEventListener("change", schedule);

function feedOverride(value) {
  if (!value) return null;
  try {
    const url = new URL(value);
    if (url.protocol === "ws:" || url.protocol === "wss:") return url.toString();
  } catch { /* not a URL: ignored */ }
  return null;
}

function positive(value, fallback) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

schedule();
feed.start();
monteCarloSoon(0);
setInterval(() => monteCarloSoon(0), MONTE_CARLO_EVERY_MS);
