"""``download``: closed candles over REST into a resumable CSV, against the Binance simulator.

The simulator runs in-process at speed "manual" with 2000 closed 1m candles (and 100 more still
to come), so ``days=1`` asks for the last 1440 of them: two REST pages.
"""

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from paper_trader.clock import SystemClock
from paper_trader.domain import Candle, Interval
from paper_trader.domain.symbols import parse_pair
from paper_trader.errors import ConfigError
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.download import DownloadResult, download
from paper_trader.exchange.wire import KlinePage, RestClient, Subscription
from paper_trader.simulator import Simulator, SimulatorConfig

HISTORY = 2000
DAY = 1440  # 1m candles in a day
HEADER = "timestamp_ms,open,high,low,close,volume"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig(
        speed="manual", history=HISTORY, candles=HISTORY + 100, symbols=("BTCUSDT",)
    )
    async with Simulator(config) as simulator:
        yield simulator


def subscription(symbol: str = "BTCUSDT") -> Subscription:
    return Subscription(parse_pair(symbol), Interval.M1)


def adapter(sim: Simulator, symbol: str = "BTCUSDT") -> BinanceAdapter:
    return BinanceAdapter([subscription(symbol)], ws_base=sim.ws_url, rest_base=sim.rest_url)


async def fetch(
    sim: Simulator,
    out: Path,
    *,
    days: float = 1,
    venue: BinanceAdapter | None = None,
    progress: io.StringIO | None = None,
) -> DownloadResult:
    """Run a download of BTCUSDT 1m from ``sim`` into ``out``; progress to a non-TTY stream."""
    return await download(
        venue or adapter(sim),
        subscription(),
        days=days,
        out=out,
        clock=SystemClock(),
        progress=progress or io.StringIO(),
    )


def row(c: Candle) -> str:
    return f"{c.open_time_ms},{c.open},{c.high},{c.low},{c.close},{c.volume}"


def closed(sim: Simulator, first: int, last: int) -> list[str]:
    """Return the simulator's candles ``[first, last)`` (by index) as CSV rows."""
    return [row(c) for c in sim.candles("BTCUSDT")[first:last]]


def rows(out: Path) -> list[str]:
    """Return the file's data rows, checking the header is the first line and only there."""
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[0] == HEADER
    assert lines[-1] == "", "the file must end with a complete line"
    return lines[1:-1]


def open_times(data: list[str]) -> list[int]:
    return [int(line.split(",", 1)[0]) for line in data]


class RateLimitedOnPage(BinanceAdapter):
    """A Binance adapter that makes the simulator answer one klines page with 429 first."""

    def __init__(self, sim: Simulator, *, page: int, retry_after_s: float) -> None:
        super().__init__([subscription()], ws_base=sim.ws_url, rest_base=sim.rest_url)
        self._sim = sim
        self._page = page
        self._retry_after_s = retry_after_s
        self.calls = 0

    async def fetch_klines(
        self, rest: RestClient, subscription: Subscription, start_ms: int, end_ms: int
    ) -> KlinePage:
        self.calls += 1
        if self.calls == self._page:
            self._sim.fail_rest(1, 429, self._retry_after_s)
        return await super().fetch_klines(rest, subscription, start_ms, end_ms)


async def test_fresh_download_writes_header_and_exactly_the_last_days_of_closed_candles(
    sim: Simulator, tmp_path: Path
) -> None:
    """A new file gets the header and the last 1440 closed candles, ascending, over 2 pages."""
    out = tmp_path / "data" / "btc.csv"

    result = await fetch(sim, out)

    assert rows(out) == closed(sim, HISTORY - DAY, HISTORY)
    first, last = sim.candles("BTCUSDT")[HISTORY - DAY], sim.candles("BTCUSDT")[HISTORY - 1]
    assert result == DownloadResult(
        out=out,
        start_ms=first.open_time_ms,
        end_ms=last.close_time_ms,
        existing_rows=0,
        written=DAY,
        missing=0,
        requests=3,  # server time + two pages of at most 1000 klines
    )
    assert sim.stats.rest_requests == 3


async def test_rerun_after_new_candles_appends_only_the_new_rows(
    sim: Simulator, tmp_path: Path
) -> None:
    """Running again after 30 more candles closed fetches and appends just those 30."""
    out = tmp_path / "btc.csv"
    await fetch(sim, out)
    await sim.advance(candles=30)

    result = await fetch(sim, out)

    assert (result.existing_rows, result.written, result.missing) == (DAY, 30, 0)
    data = rows(out)
    assert data == closed(sim, HISTORY - DAY, HISTORY + 30)
    times = open_times(data)
    assert times == sorted(set(times))


async def test_rerun_with_nothing_new_writes_nothing(sim: Simulator, tmp_path: Path) -> None:
    """With no candle closed since the last run the file is left as it was."""
    out = tmp_path / "btc.csv"
    await fetch(sim, out)
    before = out.read_bytes()

    result = await fetch(sim, out)

    assert (result.existing_rows, result.written, result.missing) == (DAY, 0, 0)
    assert result.requests == 1  # only the server time
    assert out.read_bytes() == before


async def test_row_cut_short_by_an_interruption_is_dropped_and_fetched_again(
    sim: Simulator, tmp_path: Path
) -> None:
    """A last line cut mid-row is replaced by the full row; no duplicate, no broken line."""
    out = tmp_path / "btc.csv"
    await fetch(sim, out)
    data = out.read_bytes()
    last_line_start = data.rstrip(b"\n").rfind(b"\n") + 1
    out.write_bytes(data[: last_line_start + 20])  # the interruption hit inside the last row
    await sim.advance(candles=5)

    result = await fetch(sim, out)

    assert (result.existing_rows, result.written) == (DAY - 1, 1 + 5)
    assert rows(out) == closed(sim, HISTORY - DAY, HISTORY + 5)


async def test_file_cut_inside_the_header_is_started_afresh(sim: Simulator, tmp_path: Path) -> None:
    """A file holding part of the header only gets a whole header and every candle."""
    out = tmp_path / "btc.csv"
    out.write_text(HEADER[:12], encoding="utf-8")

    result = await fetch(sim, out)

    assert (result.existing_rows, result.written) == (0, DAY)
    assert rows(out) == closed(sim, HISTORY - DAY, HISTORY)


async def test_candles_deleted_at_the_venue_are_counted_missing_and_not_written(
    sim: Simulator, tmp_path: Path
) -> None:
    """Candles the venue no longer has, at the edges and across a page boundary, are gaps."""
    candles = sim.candles("BTCUSDT")
    first = HISTORY - DAY
    deleted = {first, first + 500, first + 999, first + 1000, HISTORY - 1}
    sim.delete_candles("BTCUSDT", [candles[i].open_time_ms for i in deleted])
    out = tmp_path / "btc.csv"

    result = await fetch(sim, out)

    assert result.missing == len(deleted)
    assert result.written == DAY - len(deleted)
    assert rows(out) == [row(candles[i]) for i in range(first, HISTORY) if i not in deleted]


async def test_rate_limit_with_retry_after_is_waited_out_and_the_file_is_complete(
    sim: Simulator, tmp_path: Path
) -> None:
    """A 429 on a klines page is retried after Retry-After; no candle is lost or doubled."""
    venue = RateLimitedOnPage(sim, page=2, retry_after_s=1.0)
    out = tmp_path / "btc.csv"

    result = await fetch(sim, out, venue=venue)

    assert sim.stats.rest_429 == 1
    assert venue.calls == 3  # page 1, page 2 refused, page 2 again
    assert (result.written, result.missing, result.requests) == (DAY, 0, 4)
    assert rows(out) == closed(sim, HISTORY - DAY, HISTORY)


async def test_rate_limit_on_the_first_request_is_waited_out(
    sim: Simulator, tmp_path: Path
) -> None:
    """A 429 on the very first request (the server time) is waited out like any other."""
    sim.fail_rest(1, 429, retry_after_s=1.0)
    out = tmp_path / "btc.csv"

    result = await fetch(sim, out)

    assert sim.stats.rest_429 == 1
    assert (result.written, result.requests) == (DAY, 4)
    assert rows(out) == closed(sim, HISTORY - DAY, HISTORY)


async def test_unknown_symbol_is_a_configuration_error_naming_symbols(
    sim: Simulator, tmp_path: Path
) -> None:
    """A symbol the venue refuses raises ConfigError naming SYMBOLS and writes no candle."""
    out = tmp_path / "foo.csv"

    with pytest.raises(ConfigError, match="SYMBOLS") as caught:
        await download(
            adapter(sim, "FOOUSDT"),
            subscription("FOOUSDT"),
            days=1,
            out=out,
            clock=SystemClock(),
            progress=io.StringIO(),
        )

    assert "FOO" in str(caught.value)
    assert not out.exists() or rows(out) == []


async def test_progress_to_a_stream_that_is_not_a_terminal_writes_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    """Without a TTY (a pipe, a log file) no progress bar is drawn."""
    progress = io.StringIO()

    await fetch(sim, tmp_path / "btc.csv", progress=progress)

    assert progress.getvalue() == ""


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


async def test_progress_on_a_terminal_is_one_redrawn_line_ending_with_a_newline(
    sim: Simulator, tmp_path: Path
) -> None:
    """On a TTY the bar redraws in place (carriage returns) and the line is ended once done."""
    progress = Terminal()

    await fetch(sim, tmp_path / "btc.csv", progress=progress)

    text = progress.getvalue()
    assert text.startswith("\r[")
    assert text.count("\r") > 10
    assert text.endswith(" candles\n")
    assert text.count("\n") == 1


async def test_progress_on_a_terminal_ends_at_100_percent_with_every_row_counted(
    sim: Simulator, tmp_path: Path
) -> None:
    """The last bar drawn for a complete download shows 100% and the number of rows written."""
    progress = Terminal()

    await fetch(sim, tmp_path / "btc.csv", progress=progress)

    last_draw = progress.getvalue().rsplit("\r", 1)[-1]
    assert last_draw.endswith(f"100%  {DAY} candles\n")
