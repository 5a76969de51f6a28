"""logs/trades.csv and logs/portfolio.csv: a header once, a row per trade, hourly equity."""

import asyncio
import csv
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from fakes.trading import closed_trade

from paper_trader.domain.trading import ClosedTrade, EquitySnapshot
from paper_trader.interfaces.trade_files import PORTFOLIO_HEADER, TRADES_HEADER, TradeFiles
from paper_trader.runtime.service import Readiness

HOUR = 3_600_000
T0 = 1_672_531_200_000  # 2023-01-01T00:00Z


def trade(closed_ms: int, net: str) -> ClosedTrade:
    """Return a long round trip of 2 units, 100 -> 101, closed at ``closed_ms``."""
    round_trip = closed_trade(net, quantity="2", fee="0.2", opened_ms=closed_ms - 60_000)
    return replace(
        round_trip, exit_price=Decimal(101), exit_fee=Decimal("0.202"), gross_pnl=Decimal(2)
    )


def snapshot(at_ms: int, equity: str) -> EquitySnapshot:
    """Return a flat portfolio worth ``equity`` with a peak of 10,100."""
    return EquitySnapshot(
        candle_time_ms=at_ms,
        cash=Decimal(equity),
        positions_value=Decimal(0),
        equity=Decimal(equity),
        peak_equity=Decimal(10_100),
        open_positions=0,
    )


def rows(path: Path) -> list[list[str]]:
    """Return the CSV's rows, header included."""
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


async def run_files(files: TradeFiles, feed: list[tuple[str, object]]) -> None:
    """Run the service, hand it the feed, let it write, then stop it."""
    async with asyncio.TaskGroup() as group:
        task = group.create_task(files.run(Readiness()))
        for kind, value in feed:
            if kind == "trade":
                closed = value
                assert isinstance(closed, ClosedTrade)
                files.trade_closed(closed, snapshot(closed.closed_candle_ms, "10001.598"))
            else:
                assert isinstance(value, EquitySnapshot)
                files.snapshot(value)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if files.written >= 4:
                break
        task.cancel()


async def test_a_closed_trade_appends_one_row_under_a_header_written_once(tmp_path: Path) -> None:
    """Two runs append to the same files; the header appears once, the values are exact."""
    first = TradeFiles(tmp_path)
    await run_files(first, [("trade", trade(T0 + HOUR, "1.598"))])
    second = TradeFiles(tmp_path)
    await run_files(second, [("trade", trade(T0 + 2 * HOUR, "-0.5"))])

    trades = rows(tmp_path / "trades.csv")
    assert trades[0] == list(TRADES_HEADER)
    assert [r[0] for r in trades[1:]] == ["2023-01-01T01:00:00Z", "2023-01-01T02:00:00Z"]
    assert trades[1][1:10] == [
        "BTC-USDT", "long", "2", "100", "101", "0.402", "1.598", "0.7990", "take_profit",
    ]  # fmt: skip
    assert trades[1][10:] == ["target_limit", "2023-01-01T00:59:00Z", "false"]
    portfolio = rows(tmp_path / "portfolio.csv")
    assert portfolio[0] == list(PORTFOLIO_HEADER)
    assert portfolio[1][1:] == ["10001.598", "0", "10001.598", "10100", "0.9743", "0"]


async def test_equity_is_written_at_the_first_snapshot_of_each_candle_hour(
    tmp_path: Path,
) -> None:
    """Snapshots within one hour of candle time give one row; the next hour gives another."""
    files = TradeFiles(tmp_path)
    feed: list[tuple[str, object]] = [
        ("snapshot", snapshot(T0 + minute * 60_000, str(10_000 + minute))) for minute in range(125)
    ]
    await run_files(files, feed)

    portfolio = rows(tmp_path / "portfolio.csv")
    assert [r[0] for r in portfolio[1:]] == [
        "2023-01-01T00:00:00Z",
        "2023-01-01T01:00:00Z",
        "2023-01-01T02:00:00Z",
    ]
    assert [r[3] for r in portfolio[1:]] == ["10000", "10060", "10120"]
