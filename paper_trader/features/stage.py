"""The feature stage of the decision task: warm-up, per-candle update, cache save and restore.

At start-up each series is restored from the feature cache and brought up to date with the
candles SQLite holds after the cached one; without a usable cache it is re-warmed from the
last candles in SQLite. Live candles then update it, the candles of one instant together
(``on_instant``: column-wise when there are many). An impossible candle is logged, counted and
resets only its own series. The state is saved every ``save_every_s`` and
when the decision task stops.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

import structlog

from paper_trader.domain import Candle, ComponentHealth, HealthStatus
from paper_trader.errors import DataIntegrityError
from paper_trader.features.cache import CacheMiss, FeatureCache, encode_columns
from paper_trader.features.engine import FeatureRow, SeriesEngine, SeriesKey, candle_values
from paper_trader.features.series_set import FeatureEngine, Frozen
from paper_trader.features.spec import FeatureSpec

# The pure parts log through structlog itself (configured by `paper_trader.runtime.logs`), named
# as `runtime.logs.get_logger` names every component, so they need nothing of the async edge.
log = structlog.stdlib.get_logger("paper_trader.features", component="features")

HistoryLoader = Callable[[SeriesKey, int | None, int], Awaitable[list[Candle]]]
"""(series, after_ms, count): up to count stored candles after after_ms, or the last count."""

ROW_BYTES_PER_VALUE = 8  # a float64 in the series' ring of rows
ROW_BYTES_FIXED = 9  # its open time and ready flag


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedCandle:
    """A closed candle on its way through the decision task, with what was judged of it as it
    closed: its feature row, whether its series was tradable by the data-quality gate right
    after it, and the error that stopped a stage on it (which quarantines its symbol).

    Decisions read these, never the gate's or a stage's state at decision time, so a batch of
    hundreds of candles (replay, backfill) is decided exactly like the same candles one by one.
    """

    candle: Candle
    row: FeatureRow | None
    tradable: bool = True
    fault: str | None = None
    late: bool = False  # it reached the aligner after its instant was decided (no entries)


def instant_chunks(items: Sequence[ClosedCandle], size: int) -> list[list[ClosedCandle]]:
    """Return ``items`` in time order (stable), cut into chunks of whole instants: each chunk
    ends with the first instant that brings it to ``size`` candles, so a chunk holds one
    instant however wide it is, or many narrow ones (a catch-up of one symbol)."""
    ordered = sorted(items, key=lambda item: item.candle.open_time_ms)
    chunks: list[list[ClosedCandle]] = []
    current: list[ClosedCandle] = []
    for item in ordered:
        if len(current) >= size and item.candle.open_time_ms != current[-1].candle.open_time_ms:
            chunks.append(current)
            current = []
        current.append(item)
    if current:
        chunks.append(current)
    return chunks


def rows_within(memory_mb: int, series: int, columns: int, wanted: int) -> int:
    """Return how many recent rows per series fit in ``memory_mb`` (at least 1, at most wanted)."""
    per_row = ROW_BYTES_PER_VALUE * columns + ROW_BYTES_FIXED
    fit = memory_mb * 2**20 // max(1, series * per_row)
    return max(1, min(wanted, fit))


def _label(key: SeriesKey) -> dict[str, str]:
    return {"venue": str(key[0]), "symbol": key[1], "interval": str(key[2])}


def _continuation_problem(engine: SeriesEngine, stored: list[Candle], limit: int) -> str | None:
    """Return why the stored candles cannot continue the engine, or None if they can.

    The database must hold the engine's last candle, unchanged (a cache from another database,
    or from a market the demo made up, must not be continued), and not too many after it.
    """
    if not stored or stored[0].open_time_ms != engine.last_open_ms:
        return f"the database does not hold the cached last candle ({engine.last_open_ms})"
    if candle_values(stored[0]) != engine.last_candle:
        return f"the database's candle at {engine.last_open_ms} differs from the cached one"
    if len(stored) - 1 > limit:
        return f"more than {limit} stored candles after the cached one: re-warming is cheaper"
    return None


class FeatureStage:
    """Features for every configured series, with their cache."""

    name = "features"

    def __init__(
        self,
        spec: FeatureSpec,
        series: Sequence[SeriesKey],
        *,
        keep_rows: int,
        cache: FeatureCache | None,
        history: HistoryLoader | None,
        monotonic: Callable[[], float],
        save_every_s: float = 300.0,
    ) -> None:
        self.spec = spec
        self.engine = FeatureEngine(spec, keep_rows=keep_rows)
        self.cache = cache
        self._series = list(series)
        self._history = history
        self._monotonic = monotonic
        self._save_every_s = save_every_s
        self._last_save = monotonic()
        self._ready: set[SeriesKey] = set()
        self.rebuilds = 0

    async def prepare(self) -> None:
        """Restore or re-warm every configured series before the first live candle."""
        for key in self._series:
            source = "cache" if self._restore(key) else "database"
            replayed = await self._catch_up(key)
            engine = self.engine.series(key)
            log.info(
                "features_prepared",
                **_label(key),
                source=source,
                candles_replayed=replayed,
                last_open_time_ms=engine.last_open_ms,
                ready=engine.is_ready,
                warmup=self.spec.warmup,
                spec_hash=self.spec.version_hash[:12],
            )

    def _restore(self, key: SeriesKey) -> bool:
        if self.cache is None:
            return False
        try:
            restored = self.cache.load(key)
        except CacheMiss as miss:
            event = "feature_cache_absent" if miss.reason == "absent" else "feature_cache_discarded"
            log.info(event, **_label(key), reason=miss.reason, detail=str(miss))
            return False
        self.engine.adopt(key, restored.engine, restored.rows)
        if restored.engine.is_ready:
            self._ready.add(key)
        log.info(
            "feature_cache_restored",
            **_label(key),
            last_open_time_ms=restored.engine.last_open_ms,
            rows=len(restored.rows),
        )
        return True

    async def _catch_up(self, key: SeriesKey) -> int:
        """Feed the stored candles the series has not seen; re-warm if it cannot continue."""
        if self._history is None:
            return 0
        limit = 2 * self.spec.warmup
        engine = self.engine.series(key)
        candles: list[Candle] = []
        if engine.last_open_ms is not None:
            stored = await self._history(key, engine.last_open_ms - 1, limit + 2)
            problem = _continuation_problem(engine, stored, limit)
            if problem is None:
                candles = stored[1:]
            else:
                log.info(
                    "feature_cache_discarded", **_label(key), reason="database", detail=problem
                )
                self.engine.adopt(key, SeriesEngine(self.spec, key[2].ms), [])
                self._ready.discard(key)
                if self.cache is not None:
                    self.cache.counters.demote("database")
        if self.engine.series(key).last_open_ms is None:
            self.rebuilds += 1
            candles = await self._history(key, None, limit)
        for candle in candles:
            try:
                self.on_candle(candle)
            except Exception:  # a stored candle that breaks the engine: its series re-warms
                log.exception("candle_failed", stage="features warm-up", **_label(key))
        return len(candles)

    def stored(self, candles: Sequence[Candle]) -> list[ClosedCandle]:
        """Return candles ``prepare()`` read from the database (stored, never decided: a stop
        came between the two) with the feature rows it computed for them, to be decided as
        they would have been live."""
        rows: dict[tuple[SeriesKey, int], FeatureRow] = {}
        for key in {(c.venue, c.symbol, c.interval) for c in candles}:
            rows.update(((key, r.open_time_ms), r) for r in self.engine.recent(key))
        return [
            ClosedCandle(candle=c, row=rows.get(((c.venue, c.symbol, c.interval), c.open_time_ms)))
            for c in candles
        ]

    def on_candle(self, candle: Candle) -> FeatureRow | None:
        """Update the candle's series; an impossible candle is logged and resets only it.

        Any other error resets the series too (its state may be half updated) and is raised
        for the decision task to record against the candle.
        """
        key = (candle.venue, candle.symbol, candle.interval)
        try:
            result = self.engine.one(candle)
        except Exception:
            self._reset(key)
            raise
        return self._judged(candle, result)

    def on_instant(self, candles: Sequence[Candle]) -> list[FeatureRow | Exception | None]:
        """Update the series of candles that share an open time, in order, together.

        Per candle: its row, None (seen before, or impossible: logged), or the unexpected
        error that stopped it (its series reset), for the decision task to record. A batch
        below the engine's ``wide`` goes candle by candle (the faster path there).
        """
        if len(candles) < self.engine.wide:
            return [self._guarded(candle) for candle in candles]
        try:
            results = self.engine.update_many(list(candles))
        except Exception as exc:  # noqa: BLE001 - the batch's state may be half updated: it re-warms
            for candle in candles:
                self._reset((candle.venue, candle.symbol, candle.interval))
            return [exc] * len(candles)
        return [self._judged(c, r) for c, r in zip(candles, results, strict=True)]

    def _guarded(self, candle: Candle) -> FeatureRow | Exception | None:
        try:
            return self.on_candle(candle)
        except Exception as exc:  # noqa: BLE001 - logged and recorded by the decision task
            return exc

    def _reset(self, key: SeriesKey) -> None:
        self.engine.reset(key)
        self._ready.discard(key)

    def _judged(
        self, candle: Candle, result: FeatureRow | DataIntegrityError | None
    ) -> FeatureRow | None:
        if isinstance(result, DataIntegrityError):
            log.warning(
                "feature_input_rejected",
                symbol=candle.symbol,
                interval=str(candle.interval),
                error=str(result),
            )
            return None
        if result is not None and result.is_ready:
            key = (candle.venue, candle.symbol, candle.interval)
            if key not in self._ready:
                self._ready.add(key)
                log.info("features_ready", **_label(key), open_time_ms=result.open_time_ms)
        return result

    async def save_if_due(self) -> None:
        """Save every series once ``save_every_s`` have passed since the last save."""
        if self.cache is not None and self._monotonic() - self._last_save >= self._save_every_s:
            await self.save()

    async def save(self) -> None:
        """Write every series' state; a disk that refuses is logged, never fatal."""
        cache = self.cache
        self._last_save = self._monotonic()
        if cache is None:
            return
        frozen = self.engine.frozen()  # numpy copies here; the engines are rebuilt off the loop
        keys = frozen.keys()
        # The worker threads write several files at once: each file's fsync waits on the disk,
        # not on the others (100 series one after the other took over a second of the stop).
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(self._save_one, cache, frozen, key) for key in keys),
            return_exceptions=True,
        )
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, OSError):
                # A full or read-only disk is a fact to report, not a bug: one line, no trace.
                log.error("feature_cache_save_failed", **_label(key), error=str(outcome))
            elif isinstance(outcome, BaseException):
                raise outcome

    @staticmethod
    def _save_one(cache: FeatureCache, frozen: Frozen, key: SeriesKey) -> None:
        engine = frozen.engine(key)
        if engine.last_open_ms is not None:
            cache.write(
                key, cache.payload(key, engine, encode_columns(*frozen.recent_columns(key)))
            )

    def stats(self) -> dict[str, object]:
        """Return the engine's and the cache's counters."""
        cache = {} if self.cache is None else self.cache.counters.to_json()
        return {
            **asdict(self.engine.counters),
            "rebuilds": self.rebuilds,
            "series_ready": len(self._ready),
            "cache": cache,
        }

    def health(self) -> ComponentHealth:
        """Return OK with readiness and the cache's hit rate."""
        detail = f"{len(self._ready)}/{len(self.engine.series_keys())} series ready"
        if self.cache is not None:
            rate = self.cache.counters.hit_rate
            detail += f"; cache hit rate {'n/a' if rate is None else f'{rate:.0%}'}"
        errors = self.engine.counters.integrity_errors
        if errors:
            detail += f"; {errors} impossible candles reset a series"
        return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)
