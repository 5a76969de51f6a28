"""The column-wise feature engine: the state of a set of series in numpy arrays, one slot each.

Just over 400 lines (425): the slots' state, its rings and the one vectorised update share
every array; split apart, each half would reach into the other's.

``SeriesBlock.update`` folds the candles of one instant (one candle each for some of the slots,
the others untouched) into the state with one vectorised step and returns their rows as one
matrix. The formulas are those of ``spec.py``, computed the way ``batch.py`` computes them:
every rolling statistic is taken over its whole window (gathered from a ring of the last
values), so nothing drifts and an all-zero or all-equal window is exact. Windows start as NaN
after a reset, so a column is NaN until its warm-up without a per-column count. Like
indicators are grouped: the exponential averages of every kind in one (slots, k) array, every
rolling sum of the closes from one window, the short windows (high, low, volume, ...) in one
ring; slots that advance together share a ring position, so their windows are slices. Each
ring is written twice (at i and i + size) so a window is contiguous. ``transfer.py`` moves a
series between this and a ``SeriesEngine``.
"""

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from paper_trader.features import kernel
from paper_trader.features.spec import FeatureSpec

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

CLOSES = 256  # closes kept per slot (as History.SIZE): the longest look-back fits
SHORT = 64  # high, low, volume, tp·v, signed volume, ret_1 kept per slot
H, L, V, PV, SV, R1 = range(6)
NO_TIME = np.iinfo(np.int64).min // 2


@dataclass(slots=True)
class Plan:
    """The spec's indicators grouped by kind, with where their columns go."""

    ema_ns: list[int]  # exponential averages of the close, shared by ema, macd and ema_cross
    wilder_n: dict[str, int]  # "gain", "loss", "atr" -> n
    htf: list[tuple[int, int, int]]  # (multiple, n_ema, k_ret)
    signal_ns: list[int]  # one per macd
    stoch_d: int  # the %D length of the one stochastic (0 without one)
    at: dict[int, int]  # indicator index -> its first column

    @property
    def e1_ns(self) -> list[int]:
        return [*self.ema_ns, *self.wilder_n.values(), *(n for _, n, _ in self.htf)]


def plan(spec: FeatureSpec) -> Plan:
    """Group the spec's indicators; raise ``ValueError`` for a look-back the rings cannot hold."""
    ema_ns: list[int] = []
    wilder: dict[str, int] = {}
    htf: list[tuple[int, int, int]] = []
    signal: list[int] = []
    at: dict[int, int] = {}
    stoch_d = 0
    col = 0
    for i, ind in enumerate(spec.indicators):
        at[i] = col
        col += len(ind.columns)
        p = ind.params
        if ind.kind == "ema":
            ema_ns.append(p[0])
        elif ind.kind == "macd":
            ema_ns.extend(p[:2])
            signal.append(p[2])
        elif ind.kind == "ema_cross":
            ema_ns.extend(p)
        elif ind.kind == "rsi":
            _single(wilder, "gain", p[0])
            _single(wilder, "loss", p[0])
        elif ind.kind == "atr":
            _single(wilder, "atr", p[0])
        elif ind.kind == "stoch":
            if stoch_d:
                raise ValueError("the column-wise engine holds one stochastic, not two")
            stoch_d = p[1]
        elif ind.kind == "htf":
            htf.append((p[0], p[1], p[2]))
        if ind.kind in ("sma", "bbands") and p[0] > CLOSES:
            raise ValueError(f"{ind.kind} {p[0]} looks back further than {CLOSES} closes")
        if ind.kind in ("stoch", "willr", "vwap", "obv_flow", "vol_ratio", "volatility") and (
            p[0] > SHORT
        ):
            raise ValueError(f"{ind.kind} {p[0]} looks back further than {SHORT} candles")
    return Plan(
        ema_ns=sorted(set(ema_ns)),
        wilder_n=wilder,
        htf=htf,
        signal_ns=signal,
        stoch_d=stoch_d,
        at=at,
    )


def _single(wilder: dict[str, int], name: str, n: int) -> None:
    if wilder.setdefault(name, n) != n:
        raise ValueError(f"the column-wise engine holds one {name} average, not two")


class Emas:
    """Exponential averages seeded with the mean of their first n inputs, k per slot.

    The rule of ``indicators.Ema``, vectorised: a NaN input is no input.
    """

    __slots__ = ("alpha", "count", "keep", "n", "seed", "value")

    def __init__(self, slots: int, ns: list[int], alphas: list[float]) -> None:
        self.n = np.array(ns, dtype=np.int64)
        self.alpha = np.array(alphas)
        self.keep = 1.0 - self.alpha
        self.value = np.full((slots, len(ns)), np.nan)
        self.seed = np.zeros((slots, len(ns)))
        self.count = np.zeros((slots, len(ns)), dtype=np.int64)

    def grow(self, slots: int) -> None:
        """Make room for ``slots`` slots, the new ones empty."""
        extra = slots - len(self.value)
        self.value = np.vstack([self.value, np.full((extra, len(self.n)), np.nan)])
        self.seed = np.vstack([self.seed, np.zeros((extra, len(self.n)))])
        self.count = np.vstack([self.count, np.zeros((extra, len(self.n)), dtype=np.int64)])

    def copy(self) -> "Emas":
        """Return an independent copy."""
        twin = Emas(0, [], [])
        twin.n, twin.alpha, twin.keep = self.n, self.alpha, self.keep
        twin.value, twin.seed, twin.count = self.value.copy(), self.seed.copy(), self.count.copy()
        return twin

    def clear(self, slots: Ints) -> None:
        """Forget the slots' averages."""
        self.value[slots] = np.nan
        self.seed[slots] = 0.0
        self.count[slots] = 0

    def push(self, slots: Ints | slice, x: Floats) -> Floats:
        """Fold x (rows for ``slots``) in; return the slots' averages."""
        has = ~np.isnan(x)
        count = self.count[slots] + has
        held = self.value[slots]
        value = np.where(has & (count > self.n), self.keep * held + self.alpha * x, held)
        if (count <= self.n).any():  # warming up: sum the seeds, seed the averages that fill
            x0 = np.where(has, x, 0.0)
            seed = self.seed[slots]
            value = np.where(has & (count == self.n), (seed + x0) / self.n, value)
            self.seed[slots] = np.where(count < self.n, seed + x0, seed)
        self.count[slots] = count
        self.value[slots] = value
        return value


@dataclass(slots=True)
class Outcome:
    """What an update did: one entry per candle given, in order."""

    rows: Floats  # (candles, columns); NaN rows for skipped and refused candles
    fresh: Bools  # a row was computed
    skipped: Bools  # seen before (at or before the slot's last time)
    refused: Bools  # impossible: the slot was reset
    gap_reset: Bools  # a gap longer than the spec bridges reset the slot first
    count: Ints  # the slots' candle counts after the update


class SeriesBlock:
    """The features of a set of series of one interval, updated column-wise."""

    def __init__(self, spec: FeatureSpec, interval_ms: int, slots: int = 8) -> None:
        self.spec = spec
        self.interval_ms = interval_ms
        self.width = len(spec.names)
        self.warmup = spec.warmup
        self.gap_ms = (spec.max_bridged_gap + 1) * interval_ms
        self.plan = plan(spec)
        p = self.plan
        wilder = list(p.wilder_n.values())
        alphas = [
            *(2.0 / (n + 1) for n in p.ema_ns),
            *(1.0 / n for n in wilder),
            *(2.0 / (n + 1) for _, n, _ in p.htf),
        ]
        self.e1 = Emas(0, p.e1_ns, alphas)
        self.e2 = Emas(0, p.signal_ns, [2.0 / (n + 1) for n in p.signal_ns])
        self.layout = kernel.layout(
            spec, p.ema_ns, list(p.wilder_n), len(p.ema_ns) + len(p.wilder_n)
        )
        self.bucket_ms = np.array([m * interval_ms for m, _, _ in p.htf], dtype=np.int64)
        self.htf_k = max((k for _, _, k in p.htf), default=1)
        self.capacity = 0
        self.cursor = 0  # the ring position of the slots that advance together
        self._allocate(slots)

    def _allocate(self, slots: int) -> None:
        n_htf = len(self.plan.htf)
        grow = _Grower(self, slots)
        self.count: Ints = grow("count", (), np.int64(0))
        self.tick: Ints = grow("tick", (), np.int64(self.cursor))  # ring index of the newest
        self.last_open: Ints = grow("last_open", (), np.int64(NO_TIME))
        self.last_candle: Floats = grow("last_candle", (5,), np.nan)
        self.prev: Floats = grow("prev", (3,), np.nan)  # close, volume, ret_1 before
        self.run: Ints = grow("run", (2,), np.int64(0))  # identical closes, ret_1 values
        self.closes: Floats = grow("closes", (2 * CLOSES,), np.nan)  # each written twice
        self.short: Floats = grow("short", (6, 2 * SHORT), np.nan)  # each written twice
        self.ks: Floats = grow("ks", (max(0, self.plan.stoch_d - 1),), np.nan)  # last %K
        self.bucket: Ints = grow("bucket", (n_htf,), np.int64(-1))
        self.bucket_close: Floats = grow("bucket_close", (n_htf,), np.nan)
        self.done: Floats = grow("done", (n_htf, self.htf_k), np.nan)  # completed closes
        self.done_count: Ints = grow("done_count", (n_htf,), np.int64(0))
        self.e1.grow(slots)
        self.e2.grow(slots)
        self.capacity = slots
        self._closes_view = sliding_window_view(self.closes, CLOSES, axis=1)
        self._short_view = sliding_window_view(self.short, SHORT, axis=2)
        self._all = np.arange(slots, dtype=np.int64)

    _STATE = (
        "count", "tick", "last_open", "last_candle", "prev", "run", "closes", "short", "ks",
        "bucket", "bucket_close", "done", "done_count",
    )  # fmt: skip

    def copy(self) -> "SeriesBlock":
        """Return an independent copy of the state (cheap: numpy copies), e.g. to save it from
        another thread while this one goes on."""
        twin = copy.copy(self)
        for name in self._STATE:
            setattr(twin, name, getattr(self, name).copy())
        twin.e1, twin.e2 = self.e1.copy(), self.e2.copy()
        twin._closes_view = sliding_window_view(twin.closes, CLOSES, axis=1)
        twin._short_view = sliding_window_view(twin.short, SHORT, axis=2)
        return twin

    def ensure(self, slots: int) -> None:
        """Make room for at least ``slots`` slots."""
        if slots > self.capacity:
            self._allocate(slots)  # exactly: a block whose every slot closes takes views

    def clear(self, slots: Ints) -> None:
        """Reset the slots: every indicator warms up again (the last candle time stays)."""
        self.count[slots] = 0
        self.tick[slots] = self.cursor  # empty rings: join the others' position
        self.prev[slots] = np.nan
        self.run[slots] = 0
        self.closes[slots] = np.nan
        self.short[slots] = np.nan
        self.ks[slots] = np.nan
        self.bucket[slots] = -1
        self.bucket_close[slots] = np.nan
        self.done[slots] = np.nan
        self.done_count[slots] = 0
        self.e1.clear(slots)
        self.e2.clear(slots)

    def forget(self, slots: Ints) -> None:
        """Empty the slots entirely (a slot given back for another series)."""
        self.clear(slots)
        self.last_open[slots] = NO_TIME
        self.last_candle[slots] = np.nan

    def update(self, slots: Ints, times: Ints, ohlcv: Floats) -> Outcome:
        """Fold one candle per slot in (distinct slots); ``ohlcv`` is (candles, 5)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._update(slots, times, ohlcv)

    def _update(self, slots: Ints, times: Ints, ohlcv: Floats) -> Outcome:
        last = self.last_open[slots]
        skipped = times <= last
        gap = (times - last > self.gap_ms) & (last != NO_TIME)
        o, h, l, c, v = ohlcv.T
        ok = (l > 0.0) & (l <= h) & (h < np.inf) & (o > 0.0) & (o < np.inf)
        ok &= (c > 0.0) & (c < np.inf) & (v >= 0.0) & (v < np.inf)
        refused = ~ok & ~skipped
        fresh = ok & ~skipped
        if gap.any():
            gap &= ~skipped
            self.clear(slots[gap])
        if not fresh.all():
            self.last_open[slots[~skipped]] = times[~skipped]
            self.clear(slots[refused])
            rows = np.full((len(slots), self.width), np.nan)
            if fresh.any():
                rows[fresh] = self._fold(slots[fresh], times[fresh], ohlcv[fresh])
            self.tick[slots[refused]] = self.cursor  # emptied: in step with the others again
        else:
            self.last_open[slots] = times
            rows = self._fold(slots, times, ohlcv)
        return Outcome(
            rows=rows,
            fresh=fresh,
            skipped=skipped,
            refused=refused,
            gap_reset=gap,
            count=self.count[slots],
        )

    def _fold(self, s: Ints, t: Ints, ohlcv: Floats) -> Floats:
        """The vectorised step over valid candles of distinct slots."""
        sel: Ints | slice = s
        if len(s) == self.capacity and (s == self._all).all():
            sel = slice(None)  # every slot in order: views instead of gathers
        _, h, l, c, v = ohlcv.T
        self.last_candle[sel] = ohlcv
        count = self.count[sel] + 1
        self.count[sel] = count
        prev = self.prev[sel]
        pc, pr = prev[:, 0], prev[:, 2]
        r1 = c / pc - 1.0
        d = c - pc
        same = np.empty((len(s), 2), dtype=np.bool_)
        same[:, 0] = c == pc
        same[:, 1] = r1 == pr
        run = np.where(same, self.run[sel] + 1, 1)
        self.run[sel] = run
        tick = self.tick[sel] + 1
        self.tick[sel] = tick
        self.cursor = int(tick.max())
        short = np.empty((len(s), 6))
        short[:, H] = h
        short[:, L] = l
        short[:, V] = v
        short[:, PV] = (h + l + c) / 3.0 * v
        short[:, SV] = np.sign(d) * v
        short[:, R1] = r1
        cw, sw = self._windows(s, sel, tick, c, short)
        tr = np.maximum(h - l, np.maximum(np.abs(h - pc), np.abs(l - pc)))
        p = self.plan
        e1_in = np.empty((len(s), len(self.e1.n)))
        e1_in[:, : len(p.ema_ns)] = c[:, None]
        wilder = {"gain": np.maximum(d, 0.0), "loss": np.maximum(-d, 0.0), "atr": tr}
        for i, name in enumerate(p.wilder_n):
            e1_in[:, len(p.ema_ns) + i] = wilder[name]
        if p.htf:
            e1_in[:, len(p.ema_ns) + len(p.wilder_n) :] = self._buckets(sel, t, c)
        e1 = self.e1.push(sel, e1_in)
        self.prev[sel] = np.column_stack([c, v, r1])  # after every read of it (sel may be a view)
        step = kernel.Step(self.layout, (h, l, c, v), cw, sw, run, e1)
        return kernel.columns(step, _Hooks(self, s, sel))

    def _windows(
        self, s: Ints, sel: Ints | slice, tick: Ints, c: Floats, short: Floats
    ) -> tuple[Floats, Floats]:
        """Write the candles into the rings; return the closes and short windows, oldest
        first: (candles, CLOSES) and (candles, 6, SHORT). Slots that advance together share
        a ring position (``tick``), so their windows are slices, not gathers."""
        at = tick & (CLOSES - 1)
        at_s = tick & (SHORT - 1)
        a, b = int(at[0]), int(at_s[0])
        if (at == a).all():
            rows = slice(None) if isinstance(sel, slice) else s
            self.closes[rows, a] = c
            self.closes[rows, a + CLOSES] = c
            self.short[rows, :, b] = short
            self.short[rows, :, b + SHORT] = short
            cw = self.closes[rows, a + 1 : a + 1 + CLOSES]
            sw = self.short[rows, :, b + 1 : b + 1 + SHORT]
            return cw, sw
        self.closes[s[:, None], np.column_stack([at, at + CLOSES])] = c[:, None]
        self.short[s[:, None], :, np.column_stack([at_s, at_s + SHORT])] = short[:, None, :]
        return self._closes_view[s, at + 1], self._short_view[s, :, at_s + 1]

    def _buckets(self, s: Ints | slice, t: Ints, c: Floats) -> Floats:
        """Advance the higher-timeframe buckets; return the closes of those just completed."""
        bucket = t[:, None] // self.bucket_ms
        held = self.bucket[s]
        completed = (bucket != held) & (held >= 0)
        pushed = np.where(completed, self.bucket_close[s], np.nan)
        if completed.any():
            rows, cols = np.nonzero(completed)
            slots = self._all[s][rows]
            dc = self.done_count[slots, cols]
            self.done[slots, cols, dc % self.htf_k] = pushed[rows, cols]
            self.done_count[slots, cols] = dc + 1
        self.bucket[s] = bucket
        self.bucket_close[s] = c[:, None]
        return pushed


class _Hooks:
    """The state an update's kernel reads and advances besides the averages."""

    def __init__(self, block: "SeriesBlock", s: Ints, sel: Ints | slice) -> None:
        self.block = block
        self.s = sel
        self.rows = s

    def signal(self, line: Floats) -> Floats:
        """Advance the MACD signal averages with the lines; return them."""
        return self.block.e2.push(self.s, line)

    def stoch_window(self, k: Floats) -> Floats:
        """Push %K; return the last d values of it, oldest first."""
        b, s = self.block, self.s
        window = np.column_stack([b.ks[s], k])
        b.ks[s] = window[:, 1:]
        return window

    def htf(self) -> tuple[Floats, Bools, Bools]:
        """Return the k-th last completed bucket closes and which columns are warm."""
        b, s = self.block, self.s
        p = b.plan
        dc = b.done_count[s]
        kret = np.array([k for _, _, k in p.htf], dtype=np.int64)
        col = len(p.ema_ns) + len(p.wilder_n)
        counts = b.e1.count[s, col : col + len(p.htf)]
        cols = np.arange(len(p.htf))
        kth = b.done[self.rows[:, None], cols, (dc - kret) % b.htf_k]
        nema = np.array([n for _, n, _ in p.htf], dtype=np.int64)
        return kth, counts >= nema, dc >= kret


class _Grower:
    """Reallocate one state array of a block with more slots, the new ones at ``fill``."""

    def __init__(self, block: "SeriesBlock", slots: int) -> None:
        self.block = block
        self.slots = slots

    def __call__(self, name: str, shape: tuple[int, ...], fill: float | np.int64) -> Any:
        new = np.full((self.slots, *shape), fill, dtype=np.asarray(fill).dtype)
        if self.block.capacity:
            new[: self.block.capacity] = getattr(self.block, name)
        return new
