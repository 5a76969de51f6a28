"""Exactly-once, in-order emission of closed candles for one series (DESIGN invariant 1).

The sequencer is pure and synchronous: it sees every candle update of its series, live or
backfilled, and says what to emit. A closed candle is emitted once, and only right after the
one before it; anything else is a duplicate or stale frame (dropped and counted) or reveals a
gap that the feed must fill over REST before the candle that revealed it.

Venues with a closed flag (Binance ``k.x``) say when a candle is final. For the others
(Bitvavo, Kraken) the newest candle seen is *pending* until an update for a later candle
arrives, or until the exchange clock passes its close (the feed then confirms it over REST).
"""

from dataclasses import dataclass

from paper_trader.domain import Candle, Venue
from paper_trader.exchange.wire import KlineUpdate, Subscription


@dataclass(frozen=True, slots=True, kw_only=True)
class GapBefore:
    """Candles ``[start_ms, end_ms)`` are missing before ``candle``: backfill, then emit it."""

    start_ms: int
    end_ms: int
    candle: Candle


class SeriesSequencer:
    """Decide, for each update of one series, what becomes a closed candle."""

    __slots__ = (
        "_interval_ms",
        "_venue",
        "duplicates",
        "emitted",
        "last_open_ms",
        "out_of_order",
        "pending",
        "seen_open_ms",
        "subscription",
    )

    def __init__(
        self, subscription: Subscription, venue: Venue, *, last_open_ms: int | None
    ) -> None:
        self.subscription = subscription
        self._venue = venue
        self._interval_ms = subscription.interval.ms
        self.last_open_ms = last_open_ms
        self.pending: KlineUpdate | None = None
        self.seen_open_ms: int | None = None  # the newest candle any update showed, final or not
        self.emitted = 0
        self.duplicates = 0
        self.out_of_order = 0

    @property
    def next_open_ms(self) -> int | None:
        """Return the open time of the next candle to emit (None before the first)."""
        last = self.last_open_ms
        return None if last is None else last + self._interval_ms

    def on_update(self, update: KlineUpdate) -> Candle | GapBefore | None:
        """Take one update; return a candle to emit now, a gap to fill first, or None."""
        last = self.last_open_ms
        if last is not None and update.open_time_ms <= last:
            if update.closed is False:
                self.out_of_order += 1  # an update to a candle already emitted
            else:
                self.duplicates += 1
            return None
        if self.seen_open_ms is None or update.open_time_ms > self.seen_open_ms:
            self.seen_open_ms = update.open_time_ms
        if update.closed is None:
            return self._on_flagless(update)
        if not update.closed:
            return None
        return self._closed(update.to_candle(self._venue))

    def accept(self, candle: Candle) -> bool:
        """Emit a backfilled candle if it is newer than the last one; return whether it was."""
        last = self.last_open_ms
        if last is not None and candle.open_time_ms <= last:
            self.duplicates += 1
            return False
        self._advance(candle.open_time_ms)
        pending = self.pending
        if pending is not None and pending.open_time_ms <= candle.open_time_ms:
            self.pending = None
        return True

    def is_due(self, now_ms: int, grace_ms: int) -> bool:
        """Return whether the pending candle should be final by now (flag-less venues)."""
        pending = self.pending
        return pending is not None and now_ms >= pending.open_time_ms + self._interval_ms + grace_ms

    def _on_flagless(self, update: KlineUpdate) -> Candle | GapBefore | None:
        pending = self.pending
        if pending is None or update.open_time_ms == pending.open_time_ms:
            self.pending = update
            return None
        if update.open_time_ms < pending.open_time_ms:
            self.out_of_order += 1
            return None
        # A later candle started: the pending one is final.
        final = pending.to_candle(self._venue)
        self.pending = update
        return self._closed(final)

    def _closed(self, candle: Candle) -> Candle | GapBefore:
        expected = self.next_open_ms
        if expected is None or candle.open_time_ms == expected:
            self._advance(candle.open_time_ms)
            return candle
        return GapBefore(start_ms=expected, end_ms=candle.open_time_ms, candle=candle)

    def _advance(self, open_time_ms: int) -> None:
        self.last_open_ms = open_time_ms
        self.emitted += 1
