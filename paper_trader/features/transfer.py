"""Move a series between a ``SeriesEngine`` (one object per indicator) and a ``SeriesBlock`` slot.

Both hold the same information: the last candles of the series since its reset, in rings,
and the recursive averages. ``export`` builds an engine from a slot (for the feature cache
and for whoever works on one series at a time), ``adopt`` loads an engine into a slot. The
rings' running sums are re-summed exactly on the way out, so an exported engine continues
exactly like one that saw every candle (to rounding, far inside the spec's 1e-9).
"""

import itertools
import math
from typing import Any

import numpy as np

from paper_trader.features.block import CLOSES, NO_TIME, PV, SHORT, SV, H, L, SeriesBlock, V
from paper_trader.features.engine import SeriesEngine
from paper_trader.features.indicators import (
    Atr,
    Bollinger,
    Ema,
    EmaCross,
    EmaLevel,
    Extremes,
    HigherTimeframe,
    Macd,
    Rsi,
    Sma,
    Stochastic,
    Volatility,
    WilliamsR,
)
from paper_trader.features.rolling import History, Moments, Ring, Window
from paper_trader.features.volume import ObvFlow, VolumeChange, VolumeRatio, Vwap

_EXTREMES = (Stochastic, WilliamsR)


def _run(values: list[float]) -> int:
    """Return how many of the last values in a row equal the last one."""
    run = 0
    for x in reversed(values):
        if run and x != values[-1]:
            break
        run += 1
    return run


def _fill(ring: Ring, values: list[float], count: int) -> None:
    """Set a ring to hold ``values`` (the last min(count, n) pushed, oldest first)."""
    n = ring.n
    buf = [0.0] * n
    for j, x in zip(range(count - len(values), count), values, strict=True):
        buf[j % n] = x
    ring.buf = buf
    ring.pos = count % n
    ring.count = count
    ring.last = values[-1] if values else math.nan
    ring.run = _run(values)
    if isinstance(ring, Window):
        ring.total = sum(buf)
        ring.since_resum = 0
    elif isinstance(ring, Moments):
        ring.since = 0
        if values:
            ring._reanchor(values[-1])


def _ring_values(ring: Ring) -> list[float]:
    """Return a ring's last min(count, n) values, oldest first."""
    m = min(ring.count, ring.n)
    return [ring.buf[j % ring.n] for j in range(ring.count - m, ring.count)]


class _Slot:
    """One slot of a block, read as Python lists."""

    def __init__(self, block: SeriesBlock, i: int) -> None:
        self.b = block
        self.i = i
        self.count = int(block.count[i])
        self.tick = int(block.tick[i])

    def closes(self, n: int = CLOSES) -> list[float]:
        m = min(self.count, n)
        idx = np.arange(self.tick - m + 1, self.tick + 1) & (CLOSES - 1)
        values: list[float] = self.b.closes[self.i, idx].tolist()
        return values

    def short(self, field: int, n: int, count: int) -> list[float]:
        m = min(count, n)
        idx = np.arange(self.tick - m + 1, self.tick + 1) & (SHORT - 1)
        values: list[float] = self.b.short[self.i, field, idx].tolist()
        return values

    def ema(self, col: int, ema: Ema, *, signal: bool = False) -> None:
        avg = self.b.e2 if signal else self.b.e1
        ema.value = float(avg.value[self.i, col])
        ema.seed = float(avg.seed[self.i, col])
        ema.count = int(avg.count[self.i, col])


def export(block: SeriesBlock, i: int) -> SeriesEngine:
    """Return a ``SeriesEngine`` holding slot i's state."""
    slot = _Slot(block, i)
    engine = SeriesEngine(block.spec, block.interval_ms)
    count = slot.count
    engine.count = count
    last = int(block.last_open[i])
    engine.last_open_ms = None if last == NO_TIME else last
    candle = block.last_candle[i].tolist()
    engine.last_candle = () if math.isnan(candle[0]) else tuple(candle)
    closes = slot.closes()
    history: History = engine._history
    _fill(history, closes, count)
    history.run = int(block.run[i, 0])
    before = block.prev[i].tolist()
    macds = 0
    for step, ind in zip(engine._steps, block.spec.indicators, strict=True):
        _export_step(slot, step, ind.params, before, macds)
        macds += type(step) is Macd
    return engine


def _export_step(  # noqa: PLR0912 - one branch per indicator class, as in adopt
    slot: _Slot,
    step: Any,
    params: tuple[int, ...],
    before: list[float],
    macds: int,
) -> None:
    """Load one indicator of an exported engine from the slot (dispatch on its class)."""
    kind = type(step)  # exact classes: isinstance on the ABC subclasses is slow
    b, count = slot.b, slot.count
    ema_col = b.plan.ema_ns.index
    wilder = {name: len(b.plan.ema_ns) + j for j, name in enumerate(b.plan.wilder_n)}
    prev_close = before[0]
    if kind is Sma:
        step.total = sum(slot.closes(min(step.n, count)))
        step.since = 0
    elif kind is EmaLevel:
        slot.ema(ema_col(step.ema.n), step.ema)
    elif kind is Vwap:
        _fill(step.pv, slot.short(PV, step.pv.n, count), count)
        _fill(step.vol, slot.short(V, step.vol.n, count), count)
    elif kind is Bollinger:
        _fill(step.mom, slot.closes(step.mom.n), count)
        step.mom.run = int(b.run[slot.i, 0])
    elif kind is Rsi:
        slot.ema(wilder["gain"], step.gain)
        slot.ema(wilder["loss"], step.loss)
        step.prev = prev_close
    elif kind is Macd:
        slot.ema(ema_col(step.fast.n), step.fast)
        slot.ema(ema_col(step.slow.n), step.slow)
        slot.ema(macds, step.signal, signal=True)
    elif kind in _EXTREMES:
        _export_extremes(slot, step)
    elif kind is Atr:
        slot.ema(wilder["atr"], step.wilder)
        step.prev = prev_close
    elif kind is ObvFlow:
        changes = max(0, count - 1)
        _fill(step.signed, slot.short(SV, step.signed.n, changes), changes)
        _fill(step.vol, slot.short(V, step.vol.n, changes), changes)
        step.prev = prev_close
    elif kind is VolumeChange:
        step.prev = before[1]
    elif kind is VolumeRatio:
        _fill(step.vol, slot.short(V, step.vol.n, count), count)
    elif kind is EmaCross:
        slot.ema(ema_col(step.fast.n), step.fast)
        slot.ema(ema_col(step.slow.n), step.slow)
    elif kind is Volatility:
        changes = max(0, count - 1)
        _fill(step.mom, slot.short(5, step.mom.n, changes), changes)
        step.mom.run = int(b.run[slot.i, 1]) if changes else 0
        step.prev = prev_close
    elif kind is HigherTimeframe:
        _export_htf(slot, step, b.plan.htf.index(params))  # type: ignore[arg-type]


def _export_extremes(slot: _Slot, step: Extremes) -> None:
    count = slot.count
    highs, lows = slot.short(H, step.n, count), slot.short(L, step.n, count)
    step.highs = [0.0] * step.n
    step.lows = [0.0] * step.n
    for j, (hi, lo) in zip(
        range(count - len(highs), count), zip(highs, lows, strict=True), strict=True
    ):
        step.highs[j % step.n] = hi
        step.lows[j % step.n] = lo
    step.pos = count % step.n
    step.count = count
    if isinstance(step, Stochastic):
        made = max(0, count - step.n + 1)
        kept = slot.b.ks[slot.i].tolist()
        _fill(step.ks, kept[len(kept) - min(made, len(kept)) :] if kept else [], made)


def _export_htf(slot: _Slot, step: HigherTimeframe, j: int) -> None:
    b, i = slot.b, slot.i
    step.bucket = int(b.bucket[i, j])
    step.last_close = float(b.bucket_close[i, j])
    col = len(b.plan.ema_ns) + len(b.plan.wilder_n) + j
    slot.ema(col, step.ema)
    done = int(b.done_count[i, j])
    size = b.htf_k
    m = min(done, step.closes.n)
    closes = [float(b.done[i, j, x % size]) for x in range(done - m, done)]
    _fill(step.closes, closes, done)


def adopt(block: SeriesBlock, i: int, engine: SeriesEngine) -> None:
    """Load an engine's state into slot i (which it replaces)."""
    slots = np.array([i], dtype=np.int64)
    block.forget(slots)
    count = engine.count
    block.count[i] = count
    block.last_open[i] = NO_TIME if engine.last_open_ms is None else engine.last_open_ms
    if engine.last_candle:
        block.last_candle[i] = engine.last_candle
    history: History = engine._history
    closes = _ring_values(history)
    tick = int(block.tick[i])
    at = np.arange(tick - len(closes) + 1, tick + 1) & (CLOSES - 1)
    block.closes[i, at] = closes
    block.closes[i, at + CLOSES] = closes
    returns = [b / a - 1.0 for a, b in itertools.pairwise(closes)]
    block.run[i] = (history.run, _run(returns) if count > 1 else 0)
    volume = engine.last_candle[4] if engine.last_candle and count else math.nan
    block.prev[i] = (history.last, volume, returns[-1] if returns else math.nan)
    _put_short(block, i, 5, returns[-(count - 1) :] if count > 1 else [])
    macds = 0
    for step, ind in zip(engine._steps, block.spec.indicators, strict=True):
        _adopt_step(block, i, step, ind.params, macds)
        macds += type(step) is Macd


def _put_short(block: SeriesBlock, i: int, field: int, values: list[float]) -> None:
    """Write a field's last values (oldest first) as the newest of slot i's short ring."""
    values = values[-SHORT:]
    tick = int(block.tick[i])
    at = np.arange(tick - len(values) + 1, tick + 1) & (SHORT - 1)
    block.short[i, field, at] = values
    block.short[i, field, at + SHORT] = values


def _set_ema(block: SeriesBlock, i: int, col: int, ema: Ema, *, signal: bool = False) -> None:
    avg = block.e2 if signal else block.e1
    avg.value[i, col] = ema.value
    avg.seed[i, col] = ema.seed
    avg.count[i, col] = ema.count


def _adopt_step(
    block: SeriesBlock,
    i: int,
    step: Any,
    params: tuple[int, ...],
    macds: int,
) -> None:
    """Load one indicator's state into slot i (dispatch on its class)."""
    kind = type(step)  # exact classes: isinstance on the ABC subclasses is slow
    ema_col = block.plan.ema_ns.index
    wilder = {name: len(block.plan.ema_ns) + j for j, name in enumerate(block.plan.wilder_n)}
    if kind is EmaLevel:
        _set_ema(block, i, ema_col(step.ema.n), step.ema)
    elif kind is Vwap:
        _put_short(block, i, PV, _ring_values(step.pv))
        _put_short(block, i, V, _ring_values(step.vol))
    elif kind is Rsi:
        _set_ema(block, i, wilder["gain"], step.gain)
        _set_ema(block, i, wilder["loss"], step.loss)
    elif kind is Macd:
        _set_ema(block, i, ema_col(step.fast.n), step.fast)
        _set_ema(block, i, ema_col(step.slow.n), step.slow)
        _set_ema(block, i, macds, step.signal, signal=True)
    elif kind in _EXTREMES:
        m = min(step.count, step.n)
        order = [j % step.n for j in range(step.count - m, step.count)]
        _put_short(block, i, H, [step.highs[j] for j in order])
        _put_short(block, i, L, [step.lows[j] for j in order])
        if isinstance(step, Stochastic) and block.ks.shape[1]:
            kept = _ring_values(step.ks)[-block.ks.shape[1] :]
            block.ks[i, block.ks.shape[1] - len(kept) :] = kept
    elif kind is Atr:
        _set_ema(block, i, wilder["atr"], step.wilder)
    elif kind is ObvFlow:
        _put_short(block, i, SV, _ring_values(step.signed))
    elif kind is VolumeRatio and step.vol.count:
        _put_short(block, i, V, _ring_values(step.vol))
    elif kind is EmaCross:
        _set_ema(block, i, ema_col(step.fast.n), step.fast)
        _set_ema(block, i, ema_col(step.slow.n), step.slow)
    elif kind is HigherTimeframe:
        j = block.plan.htf.index(params)  # type: ignore[arg-type]
        block.bucket[i, j] = step.bucket
        block.bucket_close[i, j] = step.last_close
        _set_ema(block, i, len(block.plan.ema_ns) + len(block.plan.wilder_n) + j, step.ema)
        block.done_count[i, j] = step.closes.count
        for x, close in zip(
            range(step.closes.count - min(step.closes.count, step.closes.n), step.closes.count),
            _ring_values(step.closes),
            strict=True,
        ):
            block.done[i, j, x % block.htf_k] = close
