"""The features of every series: one column-wise block per interval, recent rows in numpy rings.

Each series has a slot in the block of its interval. Its state lives either in the block (the
series closes together with many others: one vectorised update for all of them) or in a
``SeriesEngine`` (warm-up, restore, and instants with few candles, where one object per
indicator is faster than a numpy call per indicator: ``WIDE`` is where the two cross, measured
by ``bench/features.py``). A series moves into the block at the first wide instant it is part
of, and out of it when someone asks for its engine (``series``); both paths equal the batch
reference, so where a series is computed never shows in its rows. A bad candle resets its
series only, is counted and reported for that candle.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paper_trader.domain import Candle
from paper_trader.errors import DataIntegrityError
from paper_trader.features import transfer
from paper_trader.features.block import NO_TIME, SeriesBlock
from paper_trader.features.engine import (
    FeatureRow,
    SeriesEngine,
    SeriesKey,
    candle_values,
    invalid_reason,
)
from paper_trader.features.spec import FeatureSpec

WIDE = 24  # candles of one interval from which the block is faster (bench: between 16 and 32)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Outcome = FeatureRow | DataIntegrityError | None


@dataclass(slots=True)
class EngineCounters:
    """What the feature engine has done since start."""

    rows: int = 0
    skipped: int = 0
    integrity_errors: int = 0
    gap_resets: int = 0


class RowRings:
    """The last ``keep`` rows of every slot of a block: (slots, keep, width) arrays."""

    def __init__(self, width: int, keep: int) -> None:
        self.width = width
        self.keep = keep
        self.values = np.empty((0, keep, width))
        self.times = np.empty((0, keep), dtype=np.int64)
        self.ready = np.empty((0, keep), dtype=np.bool_)
        self.filled = np.empty(0, dtype=np.int64)

    def ensure(self, slots: int) -> None:
        """Make room for ``slots`` slots, the new ones empty, growing by a quarter at least:
        series join one at a time, and copying every ring for each one (100 series of 1,000
        rows) cost 0.6 s of start-up and a heap high-water mark that stayed in the RSS."""
        have = len(self.filled)
        extra = 0 if slots <= have else max(slots, have + max(8, have // 4)) - have
        if extra > 0:
            self.values = np.concatenate(
                [self.values, np.full((extra, self.keep, self.width), np.nan)]
            )
            self.times = np.concatenate([self.times, np.zeros((extra, self.keep), np.int64)])
            self.ready = np.concatenate([self.ready, np.zeros((extra, self.keep), np.bool_)])
            self.filled = np.concatenate([self.filled, np.zeros(extra, np.int64)])

    def append(self, slots: Ints, times: Ints, rows: Floats, ready: npt.NDArray[np.bool_]) -> None:
        """Add one row to each of the (distinct) slots."""
        at = self.filled[slots] % self.keep
        self.values[slots, at] = rows
        self.times[slots, at] = times
        self.ready[slots, at] = ready
        self.filled[slots] += 1

    def append_one(self, slot: int, time: int, row: list[float], ready: bool) -> None:
        """Add one row to one slot (basic indexing: cheaper than ``append`` for one)."""
        filled = int(self.filled[slot])
        at = filled % self.keep
        self.values[slot, at] = row
        self.times[slot, at] = time
        self.ready[slot, at] = ready
        self.filled[slot] = filled + 1

    def copy(self) -> "RowRings":
        """Return an independent copy."""
        twin = RowRings(self.width, self.keep)
        twin.values, twin.times = self.values.copy(), self.times.copy()
        twin.ready, twin.filled = self.ready.copy(), self.filled.copy()
        return twin

    def clear(self, slot: int) -> None:
        """Forget a slot's rows."""
        self.filled[slot] = 0

    def columns(self, slot: int) -> tuple[Ints, npt.NDArray[np.bool_], Floats]:
        """Return the slot's times, readiness and values, oldest first, as arrays (what the
        cache file holds: no row objects, 1,000 of them a series took most of a stop)."""
        filled = int(self.filled[slot])
        order = np.arange(filled - min(filled, self.keep), filled) % self.keep
        return self.times[slot, order], self.ready[slot, order], self.values[slot, order]

    def recent(self, slot: int, key: SeriesKey) -> list[FeatureRow]:
        """Return the slot's rows, oldest first."""
        filled = int(self.filled[slot])
        m = min(filled, self.keep)
        out = []
        for j in range(filled - m, filled):
            at = j % self.keep
            values = self.values[slot, at].copy()
            values.flags.writeable = False
            out.append(
                FeatureRow(
                    venue=key[0],
                    symbol=key[1],
                    interval=key[2],
                    open_time_ms=int(self.times[slot, at]),
                    values=values,
                    is_ready=bool(self.ready[slot, at]),
                )
            )
        return out


class Frozen:
    """Every series' state and recent rows at one moment (``FeatureEngine.frozen``)."""

    def __init__(
        self,
        spec: FeatureSpec,
        blocks: dict[int, tuple[SeriesBlock, RowRings]],
        slots: dict[SeriesKey, int],
        states: dict[SeriesKey, dict[str, object]],
    ) -> None:
        self.spec = spec
        self._blocks = blocks
        self._slots = slots
        self._states = states

    def keys(self) -> list[SeriesKey]:
        """Return the series held."""
        return list(self._slots)

    def engine(self, key: SeriesKey) -> SeriesEngine:
        """Return an engine holding the series' state."""
        state = self._states.get(key)
        if state is None:
            return transfer.export(self._blocks[key[2].ms][0], self._slots[key])
        engine = SeriesEngine(self.spec, key[2].ms)
        if state.get("last_open_ms") is not None:  # a series that saw no candle stays empty
            engine.restore(state)
        return engine

    def recent(self, key: SeriesKey) -> list[FeatureRow]:
        """Return the series' recent rows, oldest first."""
        return self._blocks[key[2].ms][1].recent(self._slots[key], key)

    def recent_columns(self, key: SeriesKey) -> tuple[Ints, npt.NDArray[np.bool_], Floats]:
        """Return the series' recent rows as arrays (``RowRings.columns``)."""
        return self._blocks[key[2].ms][1].columns(self._slots[key])


@dataclass(slots=True)
class _Interval:
    """The block of one interval, its rows and which series have which slot."""

    block: SeriesBlock
    rings: RowRings
    keys: list[SeriesKey]


class FeatureEngine:
    """Every series' features, isolation of bad input, recent rows per series."""

    def __init__(self, spec: FeatureSpec, *, keep_rows: int = 1, wide: int = WIDE) -> None:
        self.spec = spec
        self.keep_rows = max(1, keep_rows)
        self.wide = wide
        self.counters = EngineCounters()
        self._intervals: dict[int, _Interval] = {}
        self._slot: dict[SeriesKey, int] = {}
        self._engines: dict[SeriesKey, SeriesEngine] = {}  # series whose state is an object

    def _place(self, key: SeriesKey) -> tuple[_Interval, int]:
        slot = self._slot.get(key)
        group = self._intervals.get(key[2].ms)
        if group is None:
            block = SeriesBlock(self.spec, key[2].ms, slots=0)
            group = self._intervals[key[2].ms] = _Interval(
                block, RowRings(len(self.spec.names), self.keep_rows), []
            )
        if slot is None:
            slot = self._slot[key] = len(group.keys)
            group.keys.append(key)
            group.block.ensure(slot + 1)
            group.rings.ensure(slot + 1)
            self._engines[key] = SeriesEngine(self.spec, key[2].ms)
        return group, slot

    def series(self, key: SeriesKey) -> SeriesEngine:
        """Return the engine of one series (creating it empty); it holds the series' state."""
        group, slot = self._place(key)
        engine = self._engines.get(key)
        if engine is None:
            engine = self._engines[key] = transfer.export(group.block, slot)
        return engine

    def copy_of(self, key: SeriesKey) -> SeriesEngine:
        """Return an engine with the series' state, leaving the series where it is (to save)."""
        engine = self._engines.get(key)
        if engine is not None:
            return engine
        group, slot = self._place(key)
        return transfer.export(group.block, slot)

    def frozen(self) -> "Frozen":
        """Return a copy of every series' state and rows, to save from another thread.

        Cheap on the caller's thread (numpy copies and one snapshot per series held as an
        object); building each series' engine from it is the slow part, done by the reader.
        """
        blocks = {ms: (g.block.copy(), g.rings.copy()) for ms, g in self._intervals.items()}
        states = {key: engine.snapshot() for key, engine in self._engines.items()}
        return Frozen(self.spec, blocks, dict(self._slot), states)

    def last_open_ms(self, key: SeriesKey) -> int | None:
        """Return the open time of the series' last candle, None before the first."""
        engine = self._engines.get(key)
        if engine is not None:
            return engine.last_open_ms
        group, slot = self._place(key)
        last = int(group.block.last_open[slot])
        return None if last == NO_TIME else last

    def is_columnwise(self, key: SeriesKey) -> bool:
        """Return whether the series' state lives in its block (it closed with many others)."""
        return key in self._slot and key not in self._engines

    def series_keys(self) -> list[SeriesKey]:
        """Return the series the engine knows."""
        return list(self._slot)

    def recent(self, key: SeriesKey) -> list[FeatureRow]:
        """Return the series' last rows, oldest first."""
        if key not in self._slot:
            return []
        group, slot = self._place(key)
        return group.rings.recent(slot, key)

    def adopt(self, key: SeriesKey, engine: SeriesEngine, rows: list[FeatureRow]) -> None:
        """Install a series restored from the cache, with its recent rows."""
        group, slot = self._place(key)
        self._engines[key] = engine
        group.rings.clear(slot)
        for row in rows[-self.keep_rows :]:
            group.rings.append(
                np.array([slot]),
                np.array([row.open_time_ms]),
                row.array[None, :],
                np.array([row.is_ready]),
            )

    def update(self, candle: Candle) -> FeatureRow | None:
        """Fold a closed candle into its series; None if seen before or impossible.

        An impossible candle raises ``DataIntegrityError`` after its series was reset and the
        error counted; other series are untouched.
        """
        result = self.one(candle)
        if isinstance(result, DataIntegrityError):
            raise result
        return result

    def update_many(self, candles: list[Candle]) -> list[Outcome]:
        """Fold candles of distinct series in; per candle its row, None, or its error."""
        if len(candles) < self.wide:  # the per-series path for every candle: no grouping
            return [self.one(candle) for candle in candles]
        out: list[Outcome] = [None] * len(candles)
        by_interval: dict[int, list[int]] = {}
        for i, candle in enumerate(candles):
            by_interval.setdefault(candle.interval.ms, []).append(i)
        distinct = len({(c.venue, c.symbol, c.interval) for c in candles}) == len(candles)
        for picks in by_interval.values():
            if distinct and len(picks) >= self.wide:
                self._columnwise(candles, picks, out)
            else:
                for i in picks:
                    out[i] = self.one(candles[i])
        return out

    def one(self, candle: Candle) -> Outcome:
        """Fold one closed candle into its series: its row, None if seen before, or its error."""
        key = (candle.venue, candle.symbol, candle.interval)
        engine = self._engines.get(key)
        if engine is None:
            group, slot = self._place(key)
            if key not in self._engines:  # in the block: one candle through it
                return self._block_rows(group, [candle], [slot])[0]
            engine = self._engines[key]
        before = engine.count
        try:
            values = engine.update(candle.open_time_ms, *candle_values(candle))
        except DataIntegrityError as exc:
            self.counters.integrity_errors += 1
            return exc
        if values is None:
            self.counters.skipped += 1
            return None
        if engine.count <= before and before > 0:
            self.counters.gap_resets += 1
        rings = self._intervals[key[2].ms].rings
        rings.append_one(self._slot[key], candle.open_time_ms, values, engine.is_ready)
        self.counters.rows += 1
        return _row(key, candle.open_time_ms, tuple(values), is_ready=engine.is_ready)

    def _columnwise(self, candles: list[Candle], picks: list[int], out: list[Outcome]) -> None:
        chosen = [candles[i] for i in picks]
        keys = [(c.venue, c.symbol, c.interval) for c in chosen]
        for key in keys:
            if key not in self._slot or key in self._engines:
                group, slot = self._place(key)
                engine = self._engines.pop(key)
                transfer.adopt(group.block, slot, engine)  # into the block
        group = self._intervals[chosen[0].interval.ms]
        slots = [self._slot[key] for key in keys]
        for i, result in zip(picks, self._block_rows(group, chosen, slots), strict=True):
            out[i] = result

    def _block_rows(
        self, group: _Interval, candles: list[Candle], slots: list[int]
    ) -> list[Outcome]:
        """One column-wise update of block slots; rows, None and errors in candle order."""
        block = group.block
        s = np.array(slots, dtype=np.int64)
        times = np.array([c.open_time_ms for c in candles], dtype=np.int64)
        flat = [float(x) for c in candles for x in (c.open, c.high, c.low, c.close, c.volume)]
        ohlcv = np.array(flat).reshape(len(candles), 5)
        before = block.count[s]
        done = block.update(s, times, ohlcv)
        rows = done.rows
        rows.flags.writeable = False  # the rows handed out are views of it
        ready = done.count >= block.warmup
        fresh = done.fresh
        if fresh.all():
            group.rings.append(s, times, rows, ready)
            self.counters.rows += len(candles)
            self.counters.gap_resets += int((done.gap_reset & (before > 0)).sum())
            return [
                FeatureRow(
                    venue=c.venue,
                    symbol=c.symbol,
                    interval=c.interval,
                    open_time_ms=c.open_time_ms,
                    values=row,
                    is_ready=is_ready,
                )
                for c, row, is_ready in zip(candles, rows, ready.tolist(), strict=True)
            ]
        group.rings.append(s[fresh], times[fresh], rows[fresh], ready[fresh])
        self.counters.rows += int(fresh.sum())
        self.counters.skipped += int(done.skipped.sum())
        self.counters.gap_resets += int((done.gap_reset & fresh & (before > 0)).sum())
        result: list[Outcome] = []
        for i, candle in enumerate(candles):
            key = (candle.venue, candle.symbol, candle.interval)
            if fresh[i]:
                result.append(_row(key, candle.open_time_ms, rows[i], is_ready=bool(ready[i])))
            elif done.refused[i]:
                self.counters.integrity_errors += 1
                reason = invalid_reason(*ohlcv[i].tolist()) or "a value is not a number"
                result.append(DataIntegrityError(f"candle at {candle.open_time_ms}: {reason}"))
            else:
                result.append(None)
        return result

    def reset(self, key: SeriesKey) -> None:
        """Start the series' warm-up again (its state may be half updated)."""
        self.series(key).reset()


def _row(
    key: SeriesKey, open_time_ms: int, values: Floats | tuple[float, ...], *, is_ready: bool
) -> FeatureRow:
    return FeatureRow(
        venue=key[0],
        symbol=key[1],
        interval=key[2],
        open_time_ms=open_time_ms,
        values=values,
        is_ready=is_ready,
    )
