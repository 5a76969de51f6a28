"""The market-data feed: one venue's WebSocket kept alive forever; each closed candle once.

Over 400 lines on purpose: the connection lifecycle (warm up, open, resync, serve, rotate,
settle) is one loop over one venue's shared state (the links, the sequencers, the settler and
the counters); the parts that need none of it live beside it (`backfill`, `settle`,
`feed_state`, `links`, `sequencer`).

Life of the feed:

1. Start-up: read the venue's clock over REST, then warm up every series — from the newest
   candle in SQLite, or ``warmup_candles`` back — over REST, all series together window by
   window of time, each window's candles emitted merged by open time (so every instant is
   complete as it arrives, and the decision task holds one instant, not a whole history).
   Each series first gets a mark: nothing before its start is coming. A symbol the venue
   refuses is a configuration error (exit 2).
2. Connect (streams in the URL, or subscribe messages whose acks are awaited), then backfill
   whatever closed while disconnected, *before* any frame of the new connection is used.
3. Read frames: candle updates go through each series' sequencer; a gap is backfilled before
   the candle that revealed it; control frames are logged and counted; a malformed frame is
   logged and counted and changes nothing. A series whose next candle should be final by the
   venue's own evidence and has not come is settled over REST (``settle.py``): what REST has
   is emitted, and what neither REST nor a frame showed is marked as not coming
   (``SeriesMark``), so the decision task need not wait for it.
4. Reconnect — forever, with capped full-jitter backoff that resets only after a connection
   proved healthy — when the socket closes, when no *data* arrived for
   ``silence_timeout_s`` (heartbeats do not count; neither does a connection that never sent
   anything), or, make-before-break, when the venue announces a shutdown or the connection
   nears the venue's lifetime limit. Too many reconnects in a window is a storm: health
   degraded and an event for the notifier.

The feed never reads the local wall clock for market time: ``VenueClock`` does that job.
"""

import asyncio
import collections
import contextlib
import heapq
import operator
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import aiohttp
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from paper_trader.clock import Clock
from paper_trader.domain import Candle, ComponentHealth, Gap, HealthStatus, Interval, SeriesMark
from paper_trader.errors import ConfigError, TransientError
from paper_trader.exchange.backfill import Backfiller
from paper_trader.exchange.feed_state import FeedHealth, FeedStats, LinkEnd, StormWatch, Throttle
from paper_trader.exchange.links import (
    CLOSED,
    Link,
    Links,
    close_link,
    describe_failure,
    read_into,
)
from paper_trader.exchange.rest import HttpRestClient, WeightBudget, with_retries
from paper_trader.exchange.sequencer import GapBefore, SeriesSequencer
from paper_trader.exchange.settle import Settler
from paper_trader.exchange.venue_clock import VenueClock
from paper_trader.exchange.wire import (
    Control,
    ControlKind,
    KlineUpdate,
    MalformedFrame,
    Subscription,
    VenueAdapter,
)
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("market_feed")

LastStored = Callable[[Subscription], Awaitable[int | None]]
CHECK_EVERY_S = 1.0  # silence, ping, rotation and flag-less closure checks
# Start-up fetches every series one window of time at a time and holds the window's candles
# until every series has its part: at most WARMUP_WINDOW candles a series (one REST page), and
# windows narrowed so that about WARMUP_HELD candles are held at once (100 series: 250 each).
WARMUP_WINDOW = 1000
WARMUP_WINDOW_MIN = 100
WARMUP_HELD = 25_000
SETTLE_RETRY_S = 5.0  # a candle a frame showed but REST lacks is asked for again this often


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    """How the feed connects, waits and retries."""

    warmup_candles: int = 500
    silence_timeout_s: float = 60.0
    reconnect_base_s: float = 1.0
    reconnect_max_s: float = 60.0
    healthy_after_s: float = 30.0
    storm_reconnects: int = 5
    storm_window_s: float = 300.0
    rotate_after_s: float = 23 * 3600.0  # Binance closes every connection at 24 h
    policy_close_backoff_s: float = 120.0  # close 1008: the venue's penalty window
    close_grace_ms: int = 5_000  # flag-less venues: a candle is final this long after its end
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 10.0
    frame_queue: int = 10_000
    failures_before_critical: int = 5  # connection attempts in a row that delivered no data


class MarketFeed:
    """A supervised service: closed candles of every subscription, exactly once, in order."""

    name = "market_feed"

    def __init__(
        self,
        adapter: VenueAdapter,
        subscriptions: Iterable[Subscription],
        *,
        emit: Callable[[Candle], Awaitable[None]],
        emit_mark: Callable[[SeriesMark], Awaitable[None]] | None = None,
        last_stored: LastStored,
        record_gap: Callable[[Gap], Awaitable[None]],
        events: EventSink,
        clock: Clock,
        config: FeedConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._adapter = adapter
        self._subs = tuple(subscriptions)
        self._emit = emit
        self._last_stored = last_stored
        self._record_gap = record_gap
        self._clock = clock
        self._config = config or FeedConfig()
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._backoff = Backoff(
            base_s=self._config.reconnect_base_s, cap_s=self._config.reconnect_max_s
        )
        self.venue_clock = VenueClock(clock)
        self.stats = FeedStats()
        self._storm = StormWatch(
            self._config.storm_reconnects, self._config.storm_window_s, events, clock, adapter
        )
        self._health = FeedHealth(adapter.venue.value)
        self._seqs: dict[tuple[str, Interval], SeriesSequencer] = {}
        self._frames: asyncio.Queue[tuple[Link, object]] = asyncio.Queue(self._config.frame_queue)
        self._links = 0
        self._proven = False  # the current connection has delivered data long enough
        self._failures = 0  # connection attempts in a row that delivered no data
        self._throttle = Throttle(clock)
        self._latest_event_ms = 0  # the newest event time a data frame carried
        self._settler = Settler(
            adapter.venue,
            grace_ms=self._config.close_grace_ms,
            retry_s=SETTLE_RETRY_S,
            emit_mark=emit_mark,
        )

    def sequencers(self) -> tuple[SeriesSequencer, ...]:
        """Return the per-series sequencers (their counters are part of the feed's stats)."""
        return tuple(self._seqs.values())

    def health(self) -> ComponentHealth:
        """Return OK while connected and fresh, DEGRADED while reconnecting or in a storm,
        CRITICAL while disconnected after ``failures_before_critical`` failed attempts."""
        status, detail = self._health.assess(self._storm.active)
        failing = self._failures >= self._config.failures_before_critical
        if failing and not self._health.is_connected:
            status = HealthStatus.CRITICAL
            detail = f"{detail}; {self._failures} connection attempts in a row failed"
        return ComponentHealth(component=self.name, status=status, detail=detail)

    async def run(self, ready: Readiness) -> None:
        """Warm up, then stay connected until cancelled."""
        budget = WeightBudget(self._adapter.rest_weight_per_minute, self._clock)
        async with aiohttp.ClientSession() as session:
            rest = HttpRestClient.for_venue(
                session, self._adapter, budget, venue_clock=self.venue_clock
            )
            backfill = Backfiller(
                self._adapter,
                rest,
                emit=self._emit_backfilled,
                record_gap=self._record_gap,
                retry=self._backoff,
                rng=self._rng,
            )
            try:
                await self._warm_up(rest, backfill)
                ready.set()
                async with asyncio.TaskGroup() as readers:
                    await self._stay_connected(rest, backfill, readers)
            except ExceptionGroup as group:  # the supervisor classifies one error, not a group
                raise group.exceptions[0] from None
            finally:
                log.info(
                    "feed_stopped",
                    **self.counters(),
                    backfill_pages=backfill.pages,
                    backfill_requests=backfill.requests,
                    settle_checks=self._settler.checks,
                    series_marks=self._settler.marks,
                    log_lines_suppressed=self._throttle.suppressed,
                )

    def counters(self) -> dict[str, int]:
        """Return the feed's counters with the sequencers' drops summed in."""
        seqs = self._seqs.values()
        return {
            **self.stats.to_json(),
            "duplicates": sum(s.duplicates for s in seqs),
            "out_of_order": sum(s.out_of_order for s in seqs),
        }

    # -- start-up -------------------------------------------------------------------------

    async def _warm_up(self, rest: HttpRestClient, backfill: Backfiller) -> None:
        """Fetch every series' missing history, all series one window of time at a time."""
        await self._sync_clock(rest)
        plans: list[tuple[SeriesSequencer, int, int, bool]] = []
        for sub in self._subs:
            interval = sub.interval.ms
            end = self._closed_end(sub)
            warm_start = end - self._config.warmup_candles * interval
            stored = await self._last_stored(sub)
            start = warm_start if stored is None or stored < warm_start else stored + interval
            seq = SeriesSequencer(sub, self._adapter.venue, last_open_ms=start - interval)
            self._seqs[(sub.symbol, sub.interval)] = seq
            await self._settler.mark(seq, start - interval)
            plans.append((seq, start, end, stored is not None and stored >= warm_start))
        fetched = await self._warm_windows(backfill, plans) if plans else []
        for (seq, _, _, from_db), count in zip(plans, fetched, strict=True):
            log.info(
                "feed_warmed_up",
                symbol=seq.subscription.symbol,
                interval=seq.subscription.interval.value,
                from_database=from_db,
                fetched=count,
            )

    async def _warm_windows(
        self, backfill: Backfiller, plans: list[tuple[SeriesSequencer, int, int, bool]]
    ) -> list[int]:
        """Fetch each window of time for every series, then emit its candles merged by open
        time (series order within an instant): downstream, every instant completes as it
        arrives instead of the first series' whole history waiting for the last series."""
        fetched = [0] * len(plans)
        per_series = min(WARMUP_WINDOW, max(WARMUP_WINDOW_MIN, WARMUP_HELD // len(plans)))
        window = per_series * min(seq.subscription.interval.ms for seq, *_ in plans)
        cursor = min(start for _, start, _, _ in plans)
        while cursor < max(end for _, _, end, _ in plans):
            held: list[list[Candle]] = []
            for i, (seq, start, end, _) in enumerate(plans):
                lo, hi = max(start, cursor), min(end, cursor + window)
                got: list[Candle] = []
                held.append(got)
                if lo < hi:
                    fetched[i] += await backfill.fill(seq, lo, hi, strict=True, emit=_into(got))
            for candle in heapq.merge(*held, key=operator.attrgetter("open_time_ms")):
                await self._emit_backfilled(candle)
            cursor += window
        return fetched

    async def _sync_clock(self, rest: HttpRestClient) -> None:
        server_ms = await with_retries(
            lambda: self._adapter.server_time_ms(rest),
            backoff=self._backoff,
            rng=self._rng,
            what="venue time",
        )
        self.venue_clock.sync(server_ms)

    def _closed_end(self, sub: Subscription) -> int:
        """Return the end of the last closed candle (exclusive) by the venue's clock."""
        now = self.venue_clock.now_ms()
        return now - now % sub.interval.ms

    # -- connections ----------------------------------------------------------------------

    async def _stay_connected(
        self, rest: HttpRestClient, backfill: Backfiller, tasks: asyncio.TaskGroup
    ) -> None:
        attempt = 0
        while True:
            link: Link | None = None
            try:
                link = await self._open(tasks)
                await self._resync(link, rest, backfill)
                end = await self._serve(link, rest, backfill, tasks)
            except (OSError, TimeoutError, WebSocketException, TransientError) as exc:
                end = describe_failure(exc, self._config.policy_close_backoff_s)
            finally:
                if link is not None:
                    await close_link(link)
            attempt = 0 if self._proven else attempt + 1
            # Health counts the attempts that never delivered data; connections that did,
            # however briefly, and dropped are the storm watch's business.
            served = link is not None and link.data_frames > 0
            self._failures = 0 if served else self._failures + 1
            self._proven = False
            delay = max(end.retry_after_s, self._backoff.delay(attempt, self._rng))
            self.stats.reconnects += 1
            self._health.disconnected(end.reason)
            self._storm.record(end.reason)
            log.warning(
                "feed_reconnecting", reason=end.reason, delay_s=round(delay, 3), attempt=attempt
            )
            await asyncio.sleep(delay)

    async def _open(self, tasks: asyncio.TaskGroup) -> Link:
        url = self._adapter.ws_url()
        ws = await connect(
            url,
            open_timeout=self._config.connect_timeout_s,
            ping_interval=20.0,
            ping_timeout=20.0,
            close_timeout=2.0,
            max_size=2**22,
            max_queue=64,
        )
        self._links += 1
        link = Link(self._links, ws, self._clock.monotonic())
        reader = read_into(link, self._frames, self._config.policy_close_backoff_s)
        tasks.create_task(reader, name=f"feed-reader-{link.number}")
        self.stats.connections += 1
        for message in self._adapter.subscribe_messages():
            await ws.send(message)
        log.info("feed_connected", link=link.number, url=url)
        return link

    async def _resync(self, link: Link, rest: HttpRestClient, backfill: Backfiller) -> None:
        """Wait for the acks, then backfill what closed while we were away."""
        held = await self._await_acks(link)
        await self._sync_clock(rest)
        for seq in self._seqs.values():
            next_open = seq.next_open_ms
            end = self._closed_end(seq.subscription)
            if next_open is not None and next_open < end:
                await backfill.fill(seq, next_open, end)
        self._health.connected()
        for raw in held:
            await self._handle(link, raw, backfill)

    async def _await_acks(self, link: Link) -> collections.deque[object]:
        """Count the subscription acks; keep the data frames that arrive meanwhile."""
        expected = self._adapter.expected_acks()
        # Bounded: frames beyond it are dropped, and the backfill after the acks covers them.
        held: collections.deque[object] = collections.deque(maxlen=self._config.frame_queue)
        async with asyncio.timeout(self._config.ack_timeout_s):
            while link.acks < expected:
                frame_link, raw = await self._frames.get()
                if raw is CLOSED and frame_link is link:
                    raise TransientError(f"connection closed before the acks: {link.closed}")
                if frame_link is not link or raw is CLOSED:
                    continue
                frame = self._parse(raw)
                if isinstance(frame, Control):
                    self._on_control(link, frame)
                elif frame is not None:
                    held.append(raw)
        return held

    # -- serving --------------------------------------------------------------------------

    async def _serve(
        self, link: Link, rest: HttpRestClient, backfill: Backfiller, tasks: asyncio.TaskGroup
    ) -> LinkEnd:
        """Handle frames until the connection must be replaced; return why."""
        links = Links(link)
        next_check = 0.0  # the periodic checks run at most once a second, not per frame
        try:
            while True:
                item = await self._next_frame()
                if item is not None and item[1] is CLOSED:
                    if links.on_closed(item[0]):
                        return item[0].closed or LinkEnd(reason="closed")
                elif item is not None and links.is_live(item[0]):
                    frame_link, raw = item
                    if await self._handle(frame_link, raw, backfill) and links.successor is None:
                        links.successor = await self._rotate(tasks, "venue announced a shutdown")
                    if frame_link is links.successor and frame_link.data_frames:
                        await close_link(links.current)
                        links.promote()
                        self.stats.rotations += 1
                        log.info("feed_rotated", link=links.current.number)
                if self._clock.monotonic() < next_check:
                    continue
                next_check = self._clock.monotonic() + CHECK_EVERY_S
                end = await self._tick(links.current)
                if end is not None:
                    return end
                age = self._clock.monotonic() - links.current.opened
                if links.successor is None and age >= self._config.rotate_after_s:
                    links.successor = await self._rotate(tasks, "connection lifetime")
                await self._finalise_due(rest, backfill)
                await self._settler.settle(
                    self._seqs.values(),
                    backfill,
                    evidence_ms=self._evidence_ms(),
                    closed_end_ms=lambda seq: self._closed_end(seq.subscription),
                    now_s=self._clock.monotonic(),
                )
        finally:
            for open_link in (links.current, links.successor):
                if open_link is not None and open_link is not link:
                    await close_link(open_link)

    async def _next_frame(self) -> tuple[Link, object] | None:
        try:
            async with asyncio.timeout(CHECK_EVERY_S):
                return await self._frames.get()
        except TimeoutError:
            return None

    async def _rotate(self, tasks: asyncio.TaskGroup, why: str) -> Link | None:
        """Open the next connection while the current one keeps delivering."""
        log.info("feed_rotating", reason=why)
        try:
            return await self._open(tasks)
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("feed_rotation_failed", error=repr(exc))
            return None

    async def _tick(self, link: Link) -> LinkEnd | None:
        """Run the periodic checks: data silence, storm recovery, the application ping."""
        now = self._clock.monotonic()
        self._storm.settle()
        if now - link.last_data > self._config.silence_timeout_s:
            reason = "silent: no data" if link.data_frames else "silent: never sent data"
            log.warning("feed_silent", link=link.number, reason=reason, frames=link.data_frames)
            return LinkEnd(reason=reason)
        every = self._adapter.ping_interval_s
        if every is not None and now - link.last_ping >= every:
            message = self._adapter.ping_message()
            link.last_ping = now
            if message is not None:
                with contextlib.suppress(ConnectionClosed):
                    await link.ws.send(message)
        return None

    async def _finalise_due(self, rest: HttpRestClient, backfill: Backfiller) -> None:
        """Flag-less venues: confirm over REST the candles whose time is up.

        Only asks the venue when its clock, carried forward locally, says a pending candle
        should have ended; the venue's own clock then decides what is closed.
        """
        if self._adapter.closes_candles:
            return
        grace = self._config.close_grace_ms
        due = [s for s in self._seqs.values() if s.is_due(self.venue_clock.now_ms(), grace)]
        if not due:
            return
        await self._sync_clock(rest)
        for seq in due:
            end = self._closed_end(seq.subscription)
            next_open = seq.next_open_ms
            if next_open is not None and next_open < end:
                await backfill.fill(seq, next_open, end)
            pending = seq.pending
            if pending is not None and pending.open_time_ms + seq.subscription.interval.ms <= end:
                candle = pending.to_candle(self._adapter.venue)
                if seq.accept(candle):  # the venue's REST lags its stream: trust the stream
                    await self._emit_candle(candle)

    def _evidence_ms(self) -> int:
        """Return how far the venue has provably got: its frames' event times (venues with a
        closed flag), or its clock (the others, whose frames carry no event time)."""
        if self._adapter.closes_candles:
            return self._latest_event_ms
        return self.venue_clock.now_ms()

    async def _handle(self, link: Link, raw: object, backfill: Backfiller) -> bool:
        """Handle one frame; return True if the venue asked us to reconnect."""
        self.stats.frames += 1
        frame = self._parse(raw)
        if frame is None:
            return False
        if isinstance(frame, Control):
            return self._on_control(link, frame)
        link.data_frames += 1
        link.last_data = now = self._clock.monotonic()
        self.stats.data_frames += 1
        if not self._proven and now - link.opened >= self._config.healthy_after_s:
            self._proven = True
        for update in frame:
            await self._on_update(update, backfill)
        return False

    async def _on_update(self, update: KlineUpdate, backfill: Backfiller) -> None:
        seq = self._seqs.get((update.symbol, update.interval))
        if seq is None:
            self.stats.unknown += 1
            return
        if update.event_time_ms:
            self.venue_clock.observe(update.event_time_ms)
            self._latest_event_ms = max(self._latest_event_ms, update.event_time_ms)
        try:
            step = seq.on_update(update)
        except MalformedFrame as exc:
            self._count_malformed(str(exc))
            return
        if step is None:
            return
        if isinstance(step, GapBefore):
            await backfill.fill(seq, step.start_ms, step.end_ms)
            if not seq.accept(step.candle):
                return
            step = step.candle
        await self._emit_candle(step)

    def _parse(self, raw: object) -> tuple[KlineUpdate, ...] | Control | None:
        if not isinstance(raw, str | bytes):
            return None
        try:
            return self._adapter.parse(raw)
        except MalformedFrame as exc:
            self._count_malformed(str(exc))
            return None

    def _count_malformed(self, error: str) -> None:
        self.stats.malformed += 1
        if self._throttle.allow("malformed"):
            log.warning("frame_malformed", error=error, total=self.stats.malformed)

    def _on_control(self, link: Link, control: Control) -> bool:
        kind = control.kind
        self.stats.control += 1
        if kind is ControlKind.ACK:
            link.acks += 1
        elif kind is ControlKind.REJECTED:
            link.acks += 1
            self._on_rejected(control)
        elif kind is ControlKind.ERROR:
            self.stats.venue_errors += 1
            if self._throttle.allow("error:" + control.message):
                log.warning("venue_error_frame", venue_message=control.message)
        elif kind is ControlKind.UNKNOWN:
            self.stats.unknown += 1
            if self._throttle.allow("unknown"):
                log.warning("frame_unknown", frame=control.message, total=self.stats.unknown)
        elif kind is ControlKind.SHUTDOWN:
            if control.event_time_ms:
                self.venue_clock.observe(control.event_time_ms)
            log.info("venue_shutdown_announced", link=link.number)
            return True
        return False

    def _on_rejected(self, control: Control) -> None:
        self.stats.rejected += 1
        symbol = control.symbol or "?"
        venue = self._adapter.venue.value
        log.error("subscription_rejected", symbol=symbol, venue_message=control.message)
        if self.stats.connections == 1:
            raise ConfigError(
                f"SYMBOLS={symbol!r}: {venue} refused the subscription: {control.message}"
            )
        self._health.rejected[symbol] = control.message

    async def _emit_backfilled(self, candle: Candle) -> None:
        self.stats.backfilled += 1
        await self._emit_candle(candle)

    async def _emit_candle(self, candle: Candle) -> None:
        self.stats.candles_emitted += 1
        await self._emit(candle)


def _into(candles: list[Candle]) -> Callable[[Candle], Awaitable[None]]:
    """Return an emitter that appends to ``candles``."""

    async def append(candle: Candle) -> None:
        candles.append(candle)

    return append
