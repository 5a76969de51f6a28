// The two charts, drawn with the vendored Lightweight Charts (global `LightweightCharts`):
// equity with its drawdown below it, and one symbol's candles with entry and exit markers.

const LWC = window.LightweightCharts;
const THEME = {
  autoSize: true,
  layout: { background: { type: "solid", color: "#181c22" }, textColor: "#c9d1d9", panes: { separatorColor: "#2a3038" } },
  grid: { vertLines: { color: "#20252c" }, horzLines: { color: "#20252c" } },
  timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a3038" },
  rightPriceScale: { borderColor: "#2a3038" },
  crosshair: { mode: 0 },
};
const GREEN = "#3fb950", RED = "#f85149", BLUE = "#58a6ff";

export class EquityChart {
  constructor(element) {
    this.element = element;
    // An overview of the whole run: always fitted, not scrolled or zoomed.
    this.chart = LWC.createChart(element, { ...THEME, handleScroll: false, handleScale: false });
    this.equity = this.chart.addSeries(LWC.LineSeries, { color: BLUE, lineWidth: 2, title: "equity" });
    this.drawdown = this.chart.addSeries(
      LWC.AreaSeries,
      { lineColor: RED, topColor: "rgba(248,81,73,0.05)", bottomColor: "rgba(248,81,73,0.35)",
        lineWidth: 1, title: "drawdown %", invertFilledArea: true },
      1,
    );
    const panes = this.chart.panes();
    if (panes[1]) panes[1].setHeight(80);
    this.shown = "";
  }

  draw(state) {
    const tail = state.equity[state.equity.length - 1];
    const key = tail ? `${state.run}:${state.equity.length}:${tail.time}:${tail.equity}` : "";
    if (key === this.shown) return;
    this.shown = key;
    this.equity.setData(state.equity.map((p) => ({ time: p.time, value: Number(p.equity) })));
    this.drawdown.setData(state.equity.map((p) => ({ time: p.time, value: -100 * p.drawdown })));
    this.chart.timeScale().fitContent();
    this.element.dataset.points = String(state.equity.length);
  }
}

export class PriceChart {
  constructor(element) {
    this.element = element;
    this.chart = LWC.createChart(element, THEME);
    this.series = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: GREEN, downColor: RED, borderVisible: false, wickUpColor: GREEN, wickDownColor: RED,
    });
    this.markers = LWC.createSeriesMarkers(this.series, []);
    this.lines = [];
    this.key = "";
  }

  draw(state, symbol) {
    const key = `${symbol}:${state.version}`;
    if (key === this.key) return;
    const bars = state.candles.get(symbol) || [];
    if (!this.key.startsWith(`${symbol}:`)) this.chart.timeScale().resetTimeScale();
    this.key = key;
    this.series.setData(bars);
    const markers = snapped(state.markers.get(symbol) || [], bars).map(marker);
    this.markers.setMarkers(markers);
    this.drawLevels(state.positions.get(symbol));
    this.element.dataset.points = String(bars.length);
    this.element.dataset.markers = String(markers.length);
    this.element.dataset.symbol = symbol || "";
  }

  // The open position's entry and stop (and target) as price lines.
  drawLevels(position) {
    for (const line of this.lines) this.series.removePriceLine(line);
    this.lines = [];
    if (!position) return;
    const levels = [["entry", position.entry_price, BLUE], ["stop", position.stop, RED], ["target", position.target, GREEN]];
    for (const [title, price, color] of levels) {
      if (price == null) continue;
      this.lines.push(this.series.createPriceLine({ price: Number(price), color, lineWidth: 1, lineStyle: 2, title }));
    }
  }
}

// Put each marker on the bar it happened in (the last bar at or before it); drop those before
// the first bar the page has.
function snapped(markers, bars) {
  if (!bars.length) return [];
  const out = [];
  for (const m of markers) {
    const bar = lastAtOrBefore(bars, m.time);
    if (bar !== null) out.push({ ...m, time: bar.time });
  }
  return out.sort((a, b) => a.time - b.time);
}

function lastAtOrBefore(bars, time) {
  let lo = 0, hi = bars.length - 1, found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (bars[mid].time <= time) { found = bars[mid]; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

function marker(m) {
  if (m.kind === "entry") {
    const long = m.side !== "short";
    return { time: m.time, position: long ? "belowBar" : "aboveBar", shape: long ? "arrowUp" : "arrowDown",
             color: long ? GREEN : RED, text: m.text };
  }
  return { time: m.time, position: "aboveBar", shape: "circle", color: BLUE, text: m.text };
}
