"""The columns of one column-wise update, like indicators grouped into one array operation each.

``Layout`` is built once from the spec: which window means, lags, averages and ratios each
kind needs and where its columns go. ``columns`` then computes every kind over all the candles
of the update at once (all SMAs from one pass over the closes window, all returns from
one gather of lagged closes, all crossovers, volatilities and higher timeframes as (candles, k)
arrays) and writes the row matrix with one permutation. The formulas are those of ``spec.py``
as ``batch.py`` computes them; NaN windows (right after a reset) give NaN columns.
"""

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from paper_trader.features.spec import EMA_CROSS_DEAD_BAND, FeatureSpec

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
H, L, V, PV, SV, R1 = range(6)


def _ints(values: list[int]) -> Ints:
    return np.array(values, dtype=np.int64)


@dataclass(slots=True)
class Layout:
    """Where each grouped quantity comes from and which columns it fills."""

    width: int
    ema_ns: list[int]  # the close EMAs, first columns of the averages block
    wilder: dict[str, int]  # gain / loss / atr -> column in the averages block
    htf_first: int  # first higher-timeframe column of the averages block
    mean_ns: Ints = field(default_factory=lambda: _ints([]))
    mean_edges: Ints = field(default_factory=lambda: _ints([]))
    cols: dict[str, list[int]] = field(default_factory=dict)
    picks: dict[str, Ints] = field(default_factory=dict)
    params: dict[str, list[tuple[int, ...]]] = field(default_factory=dict)
    perm: Ints | None = None

    def add(self, group: str, cols: list[int], params: tuple[int, ...] = ()) -> None:
        """Add an indicator's columns and parameters to its group."""
        self.cols.setdefault(group, []).extend(cols)
        self.params.setdefault(group, []).append(params)


def layout(spec: FeatureSpec, ema_ns: list[int], wilder: list[str], htf_first: int) -> Layout:
    """Group the spec's columns by how they are computed."""
    out = Layout(
        width=len(spec.names),
        ema_ns=ema_ns,
        wilder={name: len(ema_ns) + i for i, name in enumerate(wilder)},
        htf_first=htf_first,
    )
    at = 0
    for ind in spec.indicators:
        cols = list(range(at, at + len(ind.columns)))
        at += len(ind.columns)
        kind = "ratio" if ind.kind in ("ret", "roc") else ind.kind
        out.add(kind, cols, (*ind.params, 100 if ind.kind == "roc" else 1))
    sma = [p[0] for p in out.params.get("sma", [])]
    bb = [p[0] for p in out.params.get("bbands", [])]
    out.mean_ns = _ints(sorted(set(sma + bb)) or [1])
    out.mean_edges = np.r_[0, out.mean_ns[:-1]].astype(np.int64)
    index = {n: i for i, n in enumerate(out.mean_ns.tolist())}
    out.picks["sma"] = _ints([index[n] for n in sma])
    out.picks["ratio_k"] = _ints([p[0] for p in out.params.get("ratio", [])])
    out.picks["ratio_scale"] = _ints([p[1] for p in out.params.get("ratio", [])])
    pairs = out.params.get("ema_cross", [])
    out.picks["cross_fast"] = _ints([ema_ns.index(p[0]) for p in pairs])
    out.picks["cross_slow"] = _ints([ema_ns.index(p[1]) for p in pairs])
    return out


class Step:
    """One update's inputs (valid candles of distinct slots) and the pieces of its rows."""

    def __init__(
        self,
        lay: Layout,
        ohlcv: tuple[Floats, Floats, Floats, Floats],
        cw: Floats,
        sw: Floats,
        run: Ints,
        e1: Floats,
    ) -> None:
        self.lay = lay
        self.h, self.l, self.c, self.v = ohlcv
        self.cw, self.sw, self.run, self.e1 = cw, sw, run, e1
        self.pieces: list[Floats] = []
        self.order: list[int] = []
        self.means: Floats | None = None
        self.sums: dict[int, Floats] = {}
        self.highs_lows: dict[int, tuple[Floats, Floats]] = {}

    def put(self, cols: list[int], values: Floats) -> None:
        """Add columns (values is (candles,) or (candles, len(cols)))."""
        self.pieces.append(values if values.ndim == 2 else values[:, None])
        self.order.extend(cols)

    def put_each(self, cols: list[int], *values: Floats) -> None:
        """Add one (candles,) column per entry of cols."""
        self.pieces.extend(v[:, None] for v in values)
        self.order.extend(cols)

    def volume_sums(self, n: int) -> Floats:
        """Sums of volume, tp·v and signed volume over the last n candles: (candles, 3)."""
        sums = self.sums.get(n)
        if sums is None:
            sums = self.sums[n] = self.sw[:, V : SV + 1, -n:].sum(axis=2)
        return sums

    def extremes(self, n: int) -> tuple[Floats, Floats]:
        """The highest high and the lowest low of the last n candles."""
        got = self.highs_lows.get(n)
        if got is None:
            got = self.highs_lows[n] = (
                self.sw[:, H, -n:].max(axis=1),
                self.sw[:, L, -n:].min(axis=1),
            )
        return got

    def rows(self) -> Floats:
        """Return the (candles, width) row matrix, columns in spec order."""
        lay = self.lay
        if lay.perm is None:
            if sorted(self.order) != list(range(lay.width)):
                raise AssertionError("the column-wise kernel does not fill every column")
            lay.perm = np.argsort(_ints(self.order))
        return np.concatenate(self.pieces, axis=1)[:, lay.perm]

    def window_means(self) -> Floats:
        """Means of the last n closes for every n of ``mean_ns``, exact on a flat window."""
        if self.means is None:
            ns = self.lay.mean_ns
            top = int(ns[-1])
            # sums of the disjoint stretches between the window lengths, newest first
            parts = np.add.reduceat(self.cw[:, : -top - 1 : -1], self.lay.mean_edges, axis=1)
            sums = np.add.accumulate(parts, axis=1)
            flat = self.run[:, :1] >= ns
            self.means = np.where(flat, self.c[:, None], sums / ns)
        return self.means


class Hooks(Protocol):
    """The state besides the averages that an update reads and advances."""

    def signal(self, line: Floats) -> Floats: ...
    def stoch_window(self, k: Floats) -> Floats: ...
    def htf(self) -> tuple[Floats, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]: ...


def columns(step: Step, hooks: Hooks) -> Floats:
    """Compute every column of the update."""
    lay = step.lay
    for group in lay.cols:
        GROUPS[group](step, lay.cols[group], lay.params[group], hooks)
    return step.rows()


def _sma(step: Step, cols: list[int], _params: list[tuple[int, ...]], _x: Hooks) -> None:
    means = step.window_means()[:, step.lay.picks["sma"]]
    step.put(cols[0::2], means)
    step.put(cols[1::2], step.c[:, None] / means - 1.0)


def _ema(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    step.put(cols, step.e1[:, [step.lay.ema_ns.index(p[0]) for p in params]])


def _vwap(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    for i, (n, *_) in enumerate(params):
        sums = step.volume_sums(n)
        vol, pv = sums[:, 0], sums[:, 1]
        level = np.where(vol == 0.0, step.c, pv / vol)
        step.put_each(cols[2 * i : 2 * i + 2], level, step.c / level - 1.0)


def _ratio(step: Step, cols: list[int], _params: list[tuple[int, ...]], _x: Hooks) -> None:
    lagged = step.cw[:, -1 - step.lay.picks["ratio_k"]]
    step.put(cols, (step.c[:, None] / lagged - 1.0) * step.lay.picks["ratio_scale"])


def _mom(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    ks = _ints([p[0] for p in params])
    step.put(cols, step.c[:, None] - step.cw[:, -1 - ks])


def _range(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    span = step.h - step.l
    pos = np.where(span == 0.0, 0.5, (step.c - step.l) / span)
    for i in range(len(params)):
        step.put_each(cols[2 * i : 2 * i + 2], span / step.c, pos)


def _bbands(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    c = step.c
    ns = step.lay.mean_ns.tolist()
    for i, (n, k, *_) in enumerate(params):
        mid = step.window_means()[:, ns.index(n)]
        dev = step.cw[:, -n:] - mid[:, None]
        var = np.einsum("ij,ij->i", dev, dev) / n
        band = float(k) * np.sqrt(np.where(step.run[:, 0] >= n, 0.0, var))
        lower = mid - band
        pctb = np.where(band == 0.0, 0.5 + band, (c - lower) / (2.0 * band))
        step.put_each(cols[5 * i : 5 * i + 5], mid + band, mid, lower, 2.0 * band / mid, pctb)


def _rsi(step: Step, cols: list[int], _params: list[tuple[int, ...]], _x: Hooks) -> None:
    g = step.e1[:, step.lay.wilder["gain"]]
    lo = step.e1[:, step.lay.wilder["loss"]]
    total = g + lo
    step.put(cols, np.where(total == 0.0, 50.0, 100.0 * g / total))


def _macd(step: Step, cols: list[int], params: list[tuple[int, ...]], x: Hooks) -> None:
    ns = step.lay.ema_ns
    fast = step.e1[:, [ns.index(p[0]) for p in params]]
    slow = step.e1[:, [ns.index(p[1]) for p in params]]
    line = fast - slow
    sig = x.signal(line)
    hist = line - sig
    c = step.c
    for i in range(len(params)):
        at = 6 * i
        step.put_each(cols[at : at + 3], line[:, i], sig[:, i], hist[:, i])
        step.put_each(cols[at + 3 : at + 6], line[:, i] / c, sig[:, i] / c, hist[:, i] / c)


def _stoch(step: Step, cols: list[int], params: list[tuple[int, ...]], x: Hooks) -> None:
    n, d, *_ = params[0]
    hh, ll = step.extremes(n)
    k = np.where(hh == ll, 50.0, 100.0 * (step.c - ll) / (hh - ll))
    window = x.stoch_window(k)
    step.put_each(cols, k, window.sum(axis=1) / d)


def _willr(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    for i, (n, *_) in enumerate(params):
        hh, ll = step.extremes(n)
        r = np.where(hh == ll, -50.0, -100.0 * (hh - step.c) / (hh - ll))
        step.put(cols[i : i + 1], r)


def _atr(step: Step, cols: list[int], _params: list[tuple[int, ...]], _x: Hooks) -> None:
    value = step.e1[:, step.lay.wilder["atr"]]
    step.put_each(cols, value, 100.0 * value / step.c)


def _obv_flow(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    for i, (n, *_) in enumerate(params):
        sums = step.volume_sums(n)
        vol, flow = sums[:, 0], sums[:, 2]
        step.put(cols[i : i + 1], np.where(vol == 0.0, flow * 0.0, flow / vol))


def _vol_chg(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    prev = step.sw[:, V, -2]
    both = step.v + prev
    value = np.where(both == 0.0, 0.0 * prev, (step.v - prev) / both)
    for i in range(len(params)):
        step.put(cols[i : i + 1], value)


def _vol_ratio(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    for i, (n, *_) in enumerate(params):
        total = step.volume_sums(n)[:, 0]
        step.put(cols[i : i + 1], np.where(total == 0.0, 1.0, step.v * n / total))


def _ema_cross(step: Step, cols: list[int], _params: list[tuple[int, ...]], _x: Hooks) -> None:
    picks = step.lay.picks
    spread = step.e1[:, picks["cross_fast"]] / step.e1[:, picks["cross_slow"]] - 1.0
    band = EMA_CROSS_DEAD_BAND
    cross = (spread > band).astype(np.float64) - (spread < -band) + spread * 0.0
    step.put(cols[0::2], cross)
    step.put(cols[1::2], spread)


def _volatility(step: Step, cols: list[int], params: list[tuple[int, ...]], _x: Hooks) -> None:
    longest = max(p[0] for p in params)
    window = step.sw[:, R1, -longest:]
    dev = window - window[:, -1:]  # anchored on the last return: the sums stay small
    for i, (n, *_) in enumerate(params):
        tail = dev[:, -n:]
        mean = tail.sum(axis=1) / n
        var = np.maximum(np.einsum("ij,ij->i", tail, tail) / n - mean * mean, 0.0)
        step.put(cols[i : i + 1], np.sqrt(np.where(step.run[:, 1] >= n, 0.0, var)))


def _htf(step: Step, cols: list[int], params: list[tuple[int, ...]], x: Hooks) -> None:
    lay = step.lay
    n = len(params)
    e = step.e1[:, lay.htf_first : lay.htf_first + n]
    kth, ready, ready_ret = x.htf()
    alpha = np.array([2.0 / (p[1] + 1) for p in params])
    c = step.c[:, None]
    trend = np.where(ready, c / ((1.0 - alpha) * e + alpha * c) - 1.0, np.nan)
    ret = np.where(ready_ret, c / kth - 1.0, np.nan)
    step.put(cols[0::2], trend)
    step.put(cols[1::2], ret)


GROUPS = {
    "sma": _sma,
    "ema": _ema,
    "vwap": _vwap,
    "ratio": _ratio,
    "mom": _mom,
    "range": _range,
    "bbands": _bbands,
    "rsi": _rsi,
    "macd": _macd,
    "stoch": _stoch,
    "willr": _willr,
    "atr": _atr,
    "obv_flow": _obv_flow,
    "vol_chg": _vol_chg,
    "vol_ratio": _vol_ratio,
    "ema_cross": _ema_cross,
    "volatility": _volatility,
    "htf": _htf,
}
