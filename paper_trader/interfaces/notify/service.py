"""The notifier: a supervised service that delivers the outbox to every configured channel.

It owns one ``ChannelWorker`` per destination (each Telegram chat, the webhook) in its own
TaskGroup, so a 429 or an outage at one never holds up another. At start it retires the
deliveries of channels no longer configured and claims the pending rows for the configured
ones; then it watches the outbox for new rows, claims them and wakes the workers; once an hour
it prunes what is older than the retention. The decision path never waits for any of this:
it only writes the outbox. Network failures are handled inside the workers (backoff, health
DEGRADED); only a storage failure ends the service (a transient one restarts it).
"""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from paper_trader.clock import Clock
from paper_trader.control.outbox import Outbox
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.interfaces.notify.worker import ChannelWorker, DeliveryStats
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("notifier")

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifierConfig:
    """``retention_days``: settled rows kept (and pending ones given up) after; ``poll_s``:
    how often the outbox is checked for new rows; ``flush_s``: how long a stop may spend
    delivering what is ready; ``off``: channels that are off and why, said once at start."""

    retention_days: int
    poll_s: float = 0.5
    prune_every_s: float = 3600.0
    flush_s: float = 3.0
    off: tuple[str, ...] = ()


class Notifier:
    """The ``notifier`` service (see the module's docstring)."""

    name = "notifier"

    def __init__(
        self,
        outbox: Outbox,
        workers: Sequence[ChannelWorker],
        *,
        clock: Clock,
        config: NotifierConfig,
        closing: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        """``closing``: what releases the channels' connections once the service stops."""
        self._closing = tuple(closing)
        self._outbox = outbox
        self._workers = tuple(workers)
        self._clock = clock
        self._config = config
        self._said_off = False
        self._tail = 0  # the newest outbox row claimed for every channel

    @property
    def channels(self) -> tuple[str, ...]:
        """Return the configured channels' names."""
        return tuple(w.name for w in self._workers)

    def stats(self) -> dict[str, DeliveryStats]:
        """Return each channel's counters."""
        return {w.name: w.stats for w in self._workers}

    def pending(self) -> dict[str, int]:
        """Return each channel's notifications waiting to be sent."""
        return {w.name: w.pending for w in self._workers}

    async def run(self, ready: Readiness) -> None:
        """Claim, deliver and prune until cancelled; at a stop, deliver what is ready."""
        self._say_off()
        try:
            await self._serve(ready)
        except asyncio.CancelledError:
            await self._flush()
            await self._close()
            self._log_counts()
            raise
        except ExceptionGroup as group:  # the supervisor classifies one error, not a group
            raise group.exceptions[0] from None

    async def _serve(self, ready: Readiness) -> None:
        channels = self.channels
        retention_ms = self._config.retention_days * DAY_MS
        await self._outbox.retire(channels)
        self._tail = await self._outbox.tail()
        await self._outbox.claim(channels, since_ms=self._clock.now_ms() - retention_ms)
        async with asyncio.TaskGroup() as group:
            for worker in self._workers:
                group.create_task(worker.run(), name=f"notifier:{worker.name}")
            group.create_task(self._prune(retention_ms), name="notifier:prune")
            ready.set()
            await self._watch()

    def health(self) -> ComponentHealth:
        """Return the worst channel's status, every channel's detail; OK when all are off."""
        if not self._workers:
            detail = "; ".join(self._config.off) or "no channel configured"
            return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)
        reports = [w.health() for w in self._workers]
        status = max(r.status for r in reports)
        detail = "; ".join([*(r.detail for r in reports), *self._config.off])
        return ComponentHealth(component=self.name, status=status, detail=detail)

    def _say_off(self) -> None:
        if not self._said_off:
            self._said_off = True
            for reason in self._config.off:
                log.info("notification_channel_off", reason=reason)

    async def _watch(self) -> None:
        """Poll the outbox; claim its new rows for every channel, then wake the workers."""
        while True:
            await asyncio.sleep(self._config.poll_s)
            await self._claim_new()

    async def _claim_new(self) -> None:
        newest = await self._outbox.tail()
        if newest <= self._tail:
            return
        await self._outbox.claim(self.channels, after_id=self._tail)
        self._tail = newest
        for worker in self._workers:
            worker.wake()

    async def _prune(self, retention_ms: int) -> None:
        while True:
            await self._outbox.prune(self._clock.now_ms() - retention_ms)
            await asyncio.sleep(self._config.prune_every_s)

    def _log_counts(self) -> None:
        """Log what each channel did in this run (at a stop)."""
        for worker in self._workers:
            log.info("notifier_stopped", channel=worker.name, **dataclasses.asdict(worker.stats))

    async def _close(self) -> None:
        for close in self._closing:
            try:
                async with asyncio.timeout(self._config.flush_s):
                    await close()
            except Exception as exc:  # noqa: BLE001 -- each closes in its own try
                log.warning("notifier_close_failed", error=str(exc))

    async def _flush(self) -> None:
        """Deliver what is ready (a stopping notice), bounded by ``flush_s``."""
        try:
            async with asyncio.timeout(self._config.flush_s):
                await self._claim_new()
                async with asyncio.TaskGroup() as group:
                    for worker in self._workers:
                        group.create_task(worker.flush(), name=f"notifier:flush:{worker.name}")
        except TimeoutError:
            log.warning("notifier_flush_timed_out", timeout_s=self._config.flush_s)
        except Exception as exc:  # noqa: BLE001 -- a stop must go on; the rows stay pending
            log.warning("notifier_flush_failed", error=str(exc))
