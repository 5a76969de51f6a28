"""``download``: closed candles of one series over REST into a CSV file, resumably.

The file has the replay format (``timestamp_ms,open,high,low,close,volume``). An existing file
is continued after its last row, however old (a row cut short by an interruption is dropped
first), so running the same command again fetches only what is missing and never leaves a
hole. Requests go through the same
rate-limited client and backfill as the daemon: pages in order, the venue's own rate-limit
signals honoured, candles the venue does not have counted as gaps, never retried forever.
"""

import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

import aiohttp

from paper_trader.clock import Clock
from paper_trader.domain import Candle, Gap
from paper_trader.errors import DataIntegrityError
from paper_trader.exchange.backfill import Backfiller
from paper_trader.exchange.rest import HttpRestClient, WeightBudget, with_retries
from paper_trader.exchange.sequencer import SeriesSequencer
from paper_trader.exchange.venue_clock import VenueClock
from paper_trader.exchange.wire import Subscription, VenueAdapter
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.progress import ProgressBar

HEADER = "timestamp_ms,open,high,low,close,volume\n"
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DownloadResult:
    """What a download wrote."""

    out: Path
    start_ms: int
    end_ms: int
    existing_rows: int
    written: int
    missing: int
    requests: int


async def download(
    adapter: VenueAdapter,
    subscription: Subscription,
    *,
    days: float,
    out: Path,
    clock: Clock,
    progress: TextIO = sys.stderr,
) -> DownloadResult:
    """Fetch the last ``days`` of closed candles into ``out``, continuing an existing file."""
    interval = subscription.interval.ms
    existing, last_open = _prepare(out)
    budget = WeightBudget(adapter.rest_weight_per_minute, clock)
    retry = Backoff(base_s=1.0, cap_s=60.0)
    rng = random.Random()  # noqa: S311 -- jitter, not cryptography
    venue_clock = VenueClock(clock)
    async with aiohttp.ClientSession() as session:
        rest = HttpRestClient.for_venue(session, adapter, budget, venue_clock=venue_clock)
        now = await with_retries(
            lambda: adapter.server_time_ms(rest), backoff=retry, rng=rng, what="server time"
        )
        venue_clock.sync(now)
        end = now - now % interval
        start = end - int(days * DAY_MS) // interval * interval
        if last_open is not None:  # continue the file without leaving a hole in it
            start = last_open + interval
        seq = SeriesSequencer(subscription, adapter.venue, last_open_ms=start - interval)
        with out.open("a", encoding="utf-8", newline="") as handle:
            if existing == 0 and handle.tell() == 0:
                handle.write(HEADER)
            bar = ProgressBar(progress)
            writer = _RowWriter(
                handle,
                lambda t, rows: bar.show(t + interval - start, end - start, f"{rows} candles"),
            )
            missing = _GapCounter()
            backfill = Backfiller(
                adapter,
                rest,
                emit=writer.write,
                record_gap=missing.add,
                retry=retry,
                rng=rng,
            )
            try:
                await backfill.fill(seq, start, end, strict=True)
            finally:
                handle.flush()
                os.fsync(handle.fileno())
                bar.done()
    return DownloadResult(
        out=out,
        start_ms=start,
        end_ms=end,
        existing_rows=existing,
        written=writer.rows,
        missing=missing.candles,
        requests=rest.requests,
    )


class _RowWriter:
    def __init__(self, handle: IO[str], on_row: Callable[[int, int], None]) -> None:
        self._handle = handle
        self._on_row = on_row
        self.rows = 0

    async def write(self, c: Candle) -> None:
        self._handle.write(f"{c.open_time_ms},{c.open},{c.high},{c.low},{c.close},{c.volume}\n")
        self.rows += 1
        self._on_row(c.open_time_ms, self.rows)


class _GapCounter:
    def __init__(self) -> None:
        self.candles = 0

    async def add(self, gap: Gap) -> None:
        self.candles += gap.missing


def _prepare(out: Path) -> tuple[int, int | None]:
    """Return the rows already in ``out`` and the last open time; drop a cut-short last row."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        return 0, None
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with out.open("r+b") as handle:
            handle.truncate(len(data))
    lines = [line for line in data.decode("utf-8").splitlines() if line.strip()]
    rows = [line for line in lines if not line.startswith("timestamp")]
    if not rows:
        return 0, None
    try:
        last_open = int(rows[-1].split(",", 1)[0])
    except ValueError:
        raise DataIntegrityError(
            f"{out}: the last row does not start with a timestamp; not a candle CSV"
        ) from None
    return len(rows), last_open
