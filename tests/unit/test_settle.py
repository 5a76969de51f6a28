"""Settling over REST: what should be final by now and has not come is fetched, and only what
neither REST nor a frame showed is marked as not coming."""

import random
from decimal import Decimal

from paper_trader.domain import Candle, Gap, Interval, SeriesMark, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.backfill import Backfiller
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.sequencer import SeriesSequencer
from paper_trader.exchange.settle import Settler
from paper_trader.exchange.wire import KlineUpdate, Subscription
from paper_trader.runtime.backoff import Backoff

MIN = 60_000
T0 = 1_672_531_200_000
GRACE = 5_000
SUB = Subscription(parse_pair("BTCUSDT"), Interval.M1)


def candle(i: int) -> Candle:
    return Candle(
        venue=Venue.BINANCE,
        symbol="BTC-USDT",
        interval=Interval.M1,
        open_time_ms=T0 + i * MIN,
        open=Decimal(100),
        high=Decimal(101),
        low=Decimal(99),
        close=Decimal(100),
        volume=Decimal(1),
    )


class VenueRest:
    """Binance's /api/v3/klines over a list of candles (the RestClient seam)."""

    def __init__(self, candles: list[Candle]) -> None:
        self.candles = candles
        self.requests = 0

    async def get_json(self, path: str, params: dict[str, str], *, weight: int) -> object:
        assert path == "/api/v3/klines"
        self.requests += 1
        start, end = int(params["startTime"]), int(params["endTime"])
        return [
            [c.open_time_ms, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume)]
            for c in self.candles
            if start <= c.open_time_ms <= end
        ]


class Rig:
    """A sequencer that has emitted candle 9, a settler and what they hand out."""

    def __init__(self, venue_has: list[int]) -> None:
        self.rest = VenueRest([candle(i) for i in venue_has])
        self.emitted: list[int] = []
        self.marks: list[int] = []
        self.gaps: list[Gap] = []
        adapter = BinanceAdapter([SUB], ws_base="ws://127.0.0.1:1", rest_base="http://127.0.0.1:1")
        self.backfill = Backfiller(
            adapter,
            self.rest,
            emit=self._emit,
            record_gap=self._gap,
            retry=Backoff(base_s=0.01, cap_s=0.01),
            rng=random.Random(1),
        )
        self.seq = SeriesSequencer(SUB, Venue.BINANCE, last_open_ms=T0 + 9 * MIN)
        self.settler = Settler(Venue.BINANCE, grace_ms=GRACE, retry_s=5.0, emit_mark=self._mark)

    async def _emit(self, c: Candle) -> None:
        self.emitted.append((c.open_time_ms - T0) // MIN)

    async def _gap(self, gap: Gap) -> None:
        self.gaps.append(gap)

    async def _mark(self, mark: SeriesMark) -> None:
        self.marks.append((mark.through_ms - T0) // MIN)

    def saw(self, i: int, *, closed: bool = False) -> None:
        """A frame showed candle ``i`` (partial unless ``closed``)."""
        update = KlineUpdate(
            "BTC-USDT", Interval.M1, T0 + i * MIN, closed, 0, "1", "1", "1", "1", "1"
        )
        self.seq.on_update(update)

    async def settle(self, evidence_minute: float, now_s: float = 0.0) -> None:
        evidence = T0 + int(evidence_minute * MIN)
        await self.settler.settle(
            [self.seq],
            self.backfill,
            evidence_ms=evidence,
            closed_end_ms=lambda _seq: evidence - evidence % MIN,
            now_s=now_s,
        )


async def test_nothing_is_asked_before_the_next_candle_must_be_final() -> None:
    """Candle 10 closes at minute 11; until 5 s after that nothing happens."""
    rig = Rig(venue_has=[10])
    await rig.settle(11.08)
    assert (rig.rest.requests, rig.emitted, rig.marks) == (0, [], [])


async def test_a_final_frame_that_never_came_is_fetched_over_rest() -> None:
    """A frame showed candle 10, its final one never came: REST gives it, no mark is needed."""
    rig = Rig(venue_has=[10, 11])
    rig.saw(10)
    await rig.settle(11.5)
    assert rig.emitted == [10]
    assert rig.marks == []


async def test_candles_lost_with_their_frames_are_recovered_not_marked_away() -> None:
    """No frame showed 10-14 (the stream fell silent), REST has them: emitted, in order."""
    rig = Rig(venue_has=[10, 11, 12, 13, 14])
    await rig.settle(15.5)
    assert rig.emitted == [10, 11, 12, 13, 14]
    assert rig.marks == []


async def test_what_neither_rest_nor_a_frame_showed_is_marked_not_coming() -> None:
    """A halt: no frame and no REST row for 10-13, all closed by 14:30. The series is complete
    through 13, and no gap is recorded yet (the candle after the halt will reveal it)."""
    rig = Rig(venue_has=[])
    await rig.settle(14.5)
    assert rig.emitted == []
    assert rig.marks == [13]
    assert rig.gaps == []


async def test_a_candle_a_frame_showed_is_never_marked_away_and_is_asked_for_again() -> None:
    """A frame showed 10 but REST does not have it yet: no mark; asked again after retry_s."""
    rig = Rig(venue_has=[])
    rig.saw(10)
    await rig.settle(11.5, now_s=0.0)
    assert (rig.rest.requests, rig.marks) == (1, [])
    await rig.settle(11.6, now_s=1.0)
    assert rig.rest.requests == 1
    rig.rest.candles = [candle(10)]
    await rig.settle(11.7, now_s=6.0)
    assert (rig.rest.requests, rig.emitted, rig.marks) == (2, [10], [])


async def test_a_quiet_series_costs_one_request_per_newly_settled_candle() -> None:
    """A market with no trades: one question per candle that became final, not per tick."""
    rig = Rig(venue_has=[])
    for tick in range(10):
        await rig.settle(11.5 + tick * 0.05, now_s=float(tick))
    assert rig.rest.requests == 1
    await rig.settle(12.5, now_s=20.0)
    assert rig.rest.requests == 2
    assert rig.marks == [10, 11]
