"""The retention service: once an hour of candle time, the database forgets what it may.

A round prunes resolved predictions and decisions (``DECISION_RETENTION_DAYS``), candles
(``CANDLE_RETENTION_DAYS``, never under what training and the warm-up read back), the
command audit (``AUDIT_RETENTION_DAYS``, by the wall clock it is stamped with), and thins the
equity snapshots past ``EQUITY_DETAIL_DAYS``; then it gives the freed pages back to the file
system. Every step is one small transaction of the single writer (``storage/retention.py``,
``storage/thinning.py``) with a pause between two, so the decision path's commits never wait
behind a long one. Rounds follow the newest candle handled, not the wall clock: a replay or a
catch-up prunes as it goes, and a daemon with no candles coming does nothing.
"""

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass

from paper_trader.clock import Clock
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.domain.trading import DAY_MS
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness
from paper_trader.settings import Settings
from paper_trader.storage import StorageWriter
from paper_trader.storage.retention import (
    AUDIT,
    DECISIONS,
    NEVER,
    PREDICTIONS,
    PruneByTime,
    PruneCandles,
    ReleasePages,
)
from paper_trader.storage.thinning import HOUR_MS, ThinEquity

log = get_logger("retention")

STEP_ROWS = 2000  # rows one transaction deletes at most: a few ms of the writer's time
STEP_PAUSE_S = 0.02  # between two steps: the decision path's commits go first
RELEASE_PAGES = 2000  # pages (4 KiB) given back to the file system per step


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """How long each kind of row is kept, in ms (0: for ever)."""

    decisions_ms: int
    equity_detail_ms: int
    candles_ms: int
    audit_ms: int

    @classmethod
    def of(cls, settings: Settings) -> "RetentionPolicy":
        """Return the settings' policy; candles never shorter than training and warm-up need."""
        needed = (settings.training_candles + settings.warmup_candles) * settings.interval.ms
        candles = settings.candle_retention_days * DAY_MS
        return cls(
            decisions_ms=settings.decision_retention_days * DAY_MS,
            equity_detail_ms=settings.equity_detail_days * DAY_MS,
            candles_ms=NEVER if candles == NEVER else max(candles, needed + DAY_MS),
            audit_ms=settings.audit_retention_days * DAY_MS,
        )


class Retention:
    """The ``retention`` service (see the module's docstring)."""

    name = "retention"

    def __init__(
        self,
        writer: StorageWriter,
        policy: RetentionPolicy,
        *,
        candle_time: Callable[[], int | None],
        clock: Clock,
        every_ms: int = HOUR_MS,
        poll_s: float = 5.0,
        pause_s: float = STEP_PAUSE_S,
    ) -> None:
        """``candle_time``: the newest candle handled (Unix ms), or None before the first."""
        self._writer = writer
        self._policy = policy
        self._candle_time = candle_time
        self._clock = clock
        self._every_ms = every_ms
        self._poll_s = poll_s
        self._pause_s = pause_s
        self._last_round: int | None = None
        self.rounds = 0
        self.deleted = 0

    async def run(self, ready: Readiness) -> None:
        """Run a round whenever candle time has moved ``every_ms`` on since the last."""
        ready.set()
        while True:
            now = self._candle_time()
            if now is not None and (
                self._last_round is None or now - self._last_round >= self._every_ms
            ):
                await self.round()
                self._last_round = now
            await asyncio.sleep(self._poll_s)

    async def round(self) -> dict[str, int]:
        """Prune every kind of row that is due, step by step; return the rows per kind."""
        policy, counts = self._policy, {}
        keep = policy.decisions_ms
        if keep != NEVER:
            for table in (PREDICTIONS, DECISIONS):
                counts[table.name] = await self._steps(
                    functools.partial(PruneByTime, table=table, keep_ms=keep, limit=STEP_ROWS)
                )
        if policy.audit_ms != NEVER:
            before = self._clock.now_ms() - policy.audit_ms
            counts[AUDIT.name] = await self._steps(
                lambda: PruneByTime(table=AUDIT, before_ms=before, limit=STEP_ROWS)
            )
        if policy.candles_ms != NEVER:
            counts["candles"] = await self._candles(policy.candles_ms)
        if policy.equity_detail_ms != NEVER:
            counts["equity_snapshots"] = await self._steps(
                lambda: ThinEquity(detail_ms=policy.equity_detail_ms)
            )
        counts["pages_released"] = await self._steps(lambda: ReleasePages(pages=RELEASE_PAGES))
        self.rounds += 1
        self.deleted += sum(n for kind, n in counts.items() if kind != "pages_released")
        log.info("retention_round", **counts)
        return counts

    async def _steps(self, make: Callable[[], PruneByTime | ThinEquity | ReleasePages]) -> int:
        """Run ops from ``make`` until one finds nothing more due; return the rows deleted."""
        rows = 0
        while True:
            op = make()
            await self._writer.write(op)
            rows += op.done.rows
            if not op.done.more:
                return rows
            await asyncio.sleep(self._pause_s)

    async def _candles(self, keep_ms: int) -> int:
        rows, start = 0, None
        while True:
            op = PruneCandles(keep_ms=keep_ms, start=start, limit=STEP_ROWS)
            await self._writer.write(op)
            rows += op.done.rows
            start = op.resume[0]
            if start is None:
                return rows
            await asyncio.sleep(self._pause_s)

    def health(self) -> ComponentHealth:
        """Return OK with the rounds run and the rows deleted."""
        return ComponentHealth(
            component=self.name,
            status=HealthStatus.OK,
            detail=f"{self.rounds} rounds, {self.deleted} rows pruned",
        )
