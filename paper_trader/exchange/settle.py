"""Settle the candles that should be final by now but have not come.

The decision task waits for every series to reach an instant, so the feed must say, for each
series, when nothing more is coming for an open time. A candle whose final frame never came
(the frame was lost, the connection fell silent for a while, the venue has no closed flag),
or that no frame ever showed (a halt, a quiet market), is settled over REST once the venue's
own evidence says it must be final: the frames' event times on venues with a closed flag, the
venue's clock on the others (whose frames carry none), ``grace_ms`` after its close.

The REST answer is the proof: every candle it returns is emitted in order (a lost frame costs
nothing); when it returns none up to the settled time and no frame showed one there either,
the venue does not have them, and the series is marked complete through that time
(``SeriesMark``). The missing candles are recorded as a gap later, when a candle after them
reveals it, as before. A candle a frame showed but REST does not have yet is asked for again
every ``retry_s``. Each series costs at most one request per newly settled candle.
"""

from collections.abc import Awaitable, Callable, Iterable

from paper_trader.domain import Interval, SeriesMark, Venue
from paper_trader.exchange.backfill import Backfiller
from paper_trader.exchange.sequencer import SeriesSequencer

SeriesKey = tuple[str, Interval]


class Settler:
    """Per series: what has been settled over REST, and when to ask again."""

    def __init__(
        self,
        venue: Venue,
        *,
        grace_ms: int,
        retry_s: float,
        emit_mark: Callable[[SeriesMark], Awaitable[None]] | None,
    ) -> None:
        self._venue = venue
        self._grace_ms = grace_ms
        self._retry_s = retry_s
        self._emit_mark = emit_mark
        self._checked: dict[SeriesKey, int] = {}
        self._retry_at: dict[SeriesKey, float] = {}
        self.checks = 0
        self.marks = 0

    async def mark(self, seq: SeriesSequencer, through_ms: int) -> None:
        """Say that ``seq``'s series has nothing more to come at or before ``through_ms``."""
        if self._emit_mark is None:
            return
        sub = seq.subscription
        self.marks += 1
        await self._emit_mark(
            SeriesMark(
                venue=self._venue, symbol=sub.symbol, interval=sub.interval, through_ms=through_ms
            )
        )

    async def settle(
        self,
        seqs: Iterable[SeriesSequencer],
        backfill: Backfiller,
        *,
        evidence_ms: int,
        closed_end_ms: Callable[[SeriesSequencer], int],
        now_s: float,
    ) -> None:
        """Settle every series whose next candle must be final by ``evidence_ms``."""
        if evidence_ms <= 0:
            return
        for seq in seqs:
            due = self._due(seq, evidence_ms, now_s)
            if due is None:
                continue
            key = (seq.subscription.symbol, seq.subscription.interval)
            self._checked[key] = due
            self._retry_at[key] = now_s + self._retry_s
            self.checks += 1
            interval = seq.subscription.interval.ms
            start = seq.next_open_ms
            assert start is not None  # _due checked it
            end = min(due + interval, closed_end_ms(seq))
            if start < end:
                await backfill.fill(seq, start, end, tail_gaps=False)
            after, seen = seq.next_open_ms, seq.seen_open_ms
            if after is not None and after <= due and (seen is None or seen < after):
                await self.mark(seq, due)

    def _due(self, seq: SeriesSequencer, evidence_ms: int, now_s: float) -> int | None:
        """Return the open time through which ``seq`` should be settled now, or None."""
        next_open = seq.next_open_ms
        if next_open is None:
            return None
        interval = seq.subscription.interval.ms
        final_through = (evidence_ms - self._grace_ms) // interval * interval - interval
        if final_through < next_open:
            return None
        key = (seq.subscription.symbol, seq.subscription.interval)
        seen = seq.seen_open_ms
        showed = seen is not None and seen >= next_open
        new = final_through > self._checked.get(key, next_open - interval)
        if new or (showed and now_s >= self._retry_at.get(key, 0.0)):
            return final_through
        return None
