"""Fill a range of closed candles over REST, in order, and record what cannot be filled.

A backfill always terminates: every page moves the cursor forward, candles the venue does not
have are recorded as a gap (never retried forever), and only transport trouble is retried:
a refusal for rate waits as long as the venue asked (a short backoff if it named no time),
anything else transient waits a capped, jittered backoff. A request the venue refuses
(4xx) is a configuration error at start-up (``strict``) and a recorded gap afterwards.
"""

import random
from collections.abc import Awaitable, Callable

from paper_trader.domain import Candle, Gap, GapReason
from paper_trader.errors import ConfigError
from paper_trader.exchange.rest import with_retries
from paper_trader.exchange.sequencer import SeriesSequencer
from paper_trader.exchange.wire import KlinePage, RestClient, Subscription, VenueAdapter, VenueError
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.logs import get_logger

log = get_logger("backfill")

CandleOut = Callable[[Candle], Awaitable[None]]
GapOut = Callable[[Gap], Awaitable[None]]


class Backfiller:
    """Fetch missing closed candles of any series of one venue."""

    def __init__(
        self,
        adapter: VenueAdapter,
        rest: RestClient,
        *,
        emit: CandleOut,
        record_gap: GapOut,
        retry: Backoff,
        rng: random.Random,
    ) -> None:
        self._adapter = adapter
        self._rest = rest
        self._emit = emit
        self._record_gap = record_gap
        self._retry = retry
        self._rng = rng
        self.pages = 0
        self.requests = 0

    async def fill(
        self,
        seq: SeriesSequencer,
        start_ms: int,
        end_ms: int,
        *,
        strict: bool = False,
        tail_gaps: bool = True,
        emit: CandleOut | None = None,
    ) -> int:
        """Emit the closed candles ``[start_ms, end_ms)`` through ``seq``; return how many.

        Without ``tail_gaps``, candles missing after the last one the venue returned are not
        recorded as a gap (the stream showed them: the venue's REST may lag its stream).
        ``emit``, if given, takes the candles instead of the backfiller's own output.
        """
        out = self._emit if emit is None else emit
        sub = seq.subscription
        interval = sub.interval.ms
        cursor, emitted = start_ms, 0
        while cursor < end_ms:
            try:
                page = await self._page(sub, cursor, end_ms)
            except VenueError as exc:
                if strict:
                    raise ConfigError(
                        f"SYMBOLS={sub.symbol!r}: {self._adapter.venue.value} refused it: {exc}"
                    ) from exc
                await self._gap(sub, cursor, end_ms, GapReason.VENUE_REFUSED, str(exc))
                return emitted
            expected = cursor
            if page.history_start_ms is not None and page.history_start_ms > cursor:
                expected = min(page.history_start_ms, end_ms)
                await self._gap(sub, cursor, expected, GapReason.BEYOND_HISTORY, "")
            for candle in page.candles:
                if candle.open_time_ms < expected:
                    continue
                if candle.open_time_ms > expected:
                    await self._gap(sub, expected, candle.open_time_ms, GapReason.MISSING_AT_VENUE)
                if seq.accept(candle):
                    await out(candle)
                    emitted += 1
                expected = candle.open_time_ms + interval
            covered = min(page.next_start_ms, end_ms)
            if expected < covered and not (covered >= end_ms and not tail_gaps):
                await self._gap(sub, expected, covered, GapReason.MISSING_AT_VENUE)
            cursor = max(expected, covered)
        return emitted

    async def _page(self, sub: Subscription, start_ms: int, end_ms: int) -> KlinePage:
        async def fetch() -> KlinePage:
            self.requests += 1
            return await self._adapter.fetch_klines(self._rest, sub, start_ms, end_ms)

        page = await with_retries(
            fetch, backoff=self._retry, rng=self._rng, what=f"{sub.symbol} candles"
        )
        self.pages += 1
        return page

    async def _gap(
        self,
        sub: Subscription,
        start_ms: int,
        end_ms: int,
        reason: GapReason,
        detail: str = "",
    ) -> None:
        gap = Gap(
            venue=self._adapter.venue,
            symbol=sub.symbol,
            interval=sub.interval,
            start_ms=start_ms,
            end_ms=end_ms,
            reason=reason,
            detail=detail,
        )
        log.warning(
            "candles_unfillable",
            symbol=sub.symbol,
            interval=sub.interval.value,
            start_ms=start_ms,
            end_ms=end_ms,
            missing=gap.missing,
            reason=reason.value,
            detail=detail,
        )
        await self._record_gap(gap)
