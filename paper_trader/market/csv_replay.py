"""Recorded candles from candle CSV files, as the candle source of ``replay``."""

import asyncio
import heapq
import itertools
from collections.abc import Iterator, Sequence

from paper_trader.domain import Candle, MarketItem, SeriesMark
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("csv_replay")


class CsvReplaySource:
    """Feed validated CSVs' candles into the decision engine's channel, then close it.

    Several files are merged by (open time, symbol), as the candles would have arrived live.
    Each time the merged stream moves on to a later open time, a mark for every series says
    that the earlier instant is complete (a file with a hole holds nothing back).
    """

    name = "csv_replay"

    def __init__(
        self,
        csvs: CandleCsv | Sequence[CandleCsv],
        out: BlockingChannel[MarketItem],
        *,
        chunk_size: int = 2000,
    ) -> None:
        self._csvs = [csvs] if isinstance(csvs, CandleCsv) else list(csvs)
        self._out = out
        self._chunk_size = chunk_size
        self.candles_sent = 0

    def _chunks(self) -> Iterator[list[Candle]]:
        """Yield lists of up to ``chunk_size`` candles, merged across the files by time."""
        streams = [
            itertools.chain.from_iterable(csv.chunks(self._chunk_size)) for csv in self._csvs
        ]
        merged = heapq.merge(*streams, key=lambda c: (c.open_time_ms, c.symbol))
        while chunk := list(itertools.islice(merged, self._chunk_size)):
            yield chunk

    async def run(self, ready: Readiness) -> None:
        """Read the files in a worker thread, chunk by chunk, and put every candle in order."""
        ready.set()
        chunks = self._chunks()
        previous: Candle | None = None
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            for candle in chunk:
                if previous is not None and candle.open_time_ms > previous.open_time_ms:
                    await self._out.put(_all_through(previous))
                await self._out.put(candle)
                previous = candle
            self.candles_sent += len(chunk)
        self._out.close()
        log.info("replay_source_finished", candles=self.candles_sent)


def _all_through(candle: Candle) -> SeriesMark:
    """Return the mark that every series is complete through ``candle``'s open time."""
    return SeriesMark(
        venue=candle.venue, symbol=None, interval=candle.interval, through_ms=candle.open_time_ms
    )
