"""``logs/trades.csv`` and ``logs/portfolio.csv``, for people who tail files or use a spreadsheet.

Only the live daemon writes those in ``LOG_DIR``; ``demo`` and ``replay`` keep theirs beside
their own database (``cache/demo.trades.csv`` and ``cache/demo.portfolio.csv`` for
``cache/demo.db``), so a run never mixes into another's files.

A row is queued only after its trade or snapshot has committed to SQLite (the truth); a
service appends the rows off the loop. The queue keeps the newest 10,000 rows and counts what
it dropped: these files are a view of the database, which ``report`` can always rebuild.
A trades row is written when a trade closes; a portfolio row at each trade and at the first
snapshot of every hour of candle time.
"""

import asyncio
import csv
import io
from pathlib import Path

from paper_trader.clock import iso_ms
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.domain.trading import ClosedTrade, EquitySnapshot
from paper_trader.runtime.channel import ChannelClosed, DropOldestChannel
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("trade_files")

HOUR_MS = 3_600_000
TRADES_HEADER = (
    "closed_at",
    "symbol",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "fees",
    "net_pnl",
    "return_pct",
    "exit_reason",
    "fill_model",
    "opened_at",
    "recovered",
)
PORTFOLIO_HEADER = (
    "time",
    "cash",
    "positions_value",
    "equity",
    "peak_equity",
    "drawdown_pct",
    "open_positions",
)


def trade_row(trade: ClosedTrade) -> tuple[str, ...]:
    """Return a closed trade as a trades.csv row."""
    return (
        iso_ms(trade.closed_candle_ms),
        trade.symbol,
        trade.side.value,
        format(trade.quantity, "f"),
        format(trade.entry_price, "f"),
        format(trade.exit_price, "f"),
        format(trade.fees, "f"),
        format(trade.net_pnl, "f"),
        f"{float(trade.return_pct) * 100:.4f}",
        trade.exit_reason.value,
        trade.exit_fill_model.value,
        iso_ms(trade.opened_candle_ms),
        "true" if trade.recovered else "false",
    )


def portfolio_row(snapshot: EquitySnapshot) -> tuple[str, ...]:
    """Return an equity snapshot as a portfolio.csv row."""
    peak = snapshot.peak_equity
    drawdown = 0.0 if peak <= 0 else float((peak - snapshot.equity) / peak) * 100
    return (
        iso_ms(snapshot.candle_time_ms),
        format(snapshot.cash, "f"),
        format(snapshot.positions_value, "f"),
        format(snapshot.equity, "f"),
        format(snapshot.peak_equity, "f"),
        f"{drawdown:.4f}",
        str(snapshot.open_positions),
    )


class TradeFiles:
    """Queue rows for the two CSV files and append them in a worker thread."""

    name = "trade_files"

    def __init__(self, directory: Path, *, capacity: int = 10_000, prefix: str = "") -> None:
        self.trades_path = directory / f"{prefix}trades.csv"
        self.portfolio_path = directory / f"{prefix}portfolio.csv"
        self._headers = {self.trades_path: TRADES_HEADER, self.portfolio_path: PORTFOLIO_HEADER}
        self._rows: DropOldestChannel[tuple[Path, tuple[str, ...]]] = DropOldestChannel(capacity)
        self._last_hour: int | None = None
        self.written = 0

    @classmethod
    def beside(cls, db_path: Path) -> "TradeFiles":
        """Return the trade files of a demo or replay database: ``<db stem>.trades.csv`` and
        ``<db stem>.portfolio.csv`` in its directory."""
        return cls(db_path.parent, prefix=f"{db_path.stem}.")

    def trade_closed(self, trade: ClosedTrade, snapshot: EquitySnapshot) -> None:
        """Queue the trade's row and a portfolio row (after both committed)."""
        self._rows.put_nowait((self.trades_path, trade_row(trade)))
        self._rows.put_nowait((self.portfolio_path, portfolio_row(snapshot)))

    def snapshot(self, snapshot: EquitySnapshot) -> None:
        """Queue a portfolio row at the first snapshot of each hour of candle time."""
        hour = snapshot.candle_time_ms // HOUR_MS
        if hour != self._last_hour:
            self._last_hour = hour
            self._rows.put_nowait((self.portfolio_path, portfolio_row(snapshot)))

    def health(self) -> ComponentHealth:
        """Return OK with the rows written."""
        return ComponentHealth(
            component=self.name, status=HealthStatus.OK, detail=f"{self.written} rows"
        )

    async def run(self, ready: Readiness) -> None:
        """Append queued rows until stopped; what is queued at a stop is written first."""
        ready.set()
        try:
            while True:
                first = await self._rows.get()
                batch = [first, *self._rows.drain(999)]
                await asyncio.to_thread(_append, batch, self._headers)
                self.written += len(batch)
        except ChannelClosed:
            return
        finally:
            rest = self._rows.drain(10_000)
            if rest:
                _append(rest, self._headers)
            if self._rows.dropped:
                log.warning("trade_file_rows_dropped", dropped=self._rows.dropped)


def _append(rows: list[tuple[Path, tuple[str, ...]]], headers: dict[Path, tuple[str, ...]]) -> None:
    """Append rows to their files, writing the header of a new or empty file first."""
    by_path: dict[Path, list[tuple[str, ...]]] = {}
    for path, row in rows:
        by_path.setdefault(path, []).append(row)
    for path, lines in by_path.items():
        header = headers[path]
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if fresh:
            writer.writerow(header)
        writer.writerows(lines)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text.getvalue())
