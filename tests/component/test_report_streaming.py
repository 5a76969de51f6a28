"""``report`` streams the ledger from SQLite: the figures of the lists, memory of neither."""

import random
import tracemalloc
from decimal import Decimal

import aiosqlite

from paper_trader.broker.analytics import analyse, ledger_digest
from paper_trader.broker.montecarlo import TradeReturns, simulate
from paper_trader.control.report import trading_summary
from paper_trader.storage import Durability, Statement, StorageWriter
from paper_trader.storage.ledger_repository import closed_trades, equity_snapshots

MINUTE = 60_000
T0 = 1_700_000_000_000 // MINUTE * MINUTE
REASONS = ("stop_loss", "take_profit", "max_holding", "opposite_signal")


class Rows:
    """A FAST op running ``statements`` (test data, written by the real writer)."""

    def __init__(self, *statements: Statement) -> None:
        self._statements = list(statements)

    @property
    def durability(self) -> Durability:
        """Return FAST."""
        return Durability.FAST

    def prepare(self) -> list[Statement]:
        """The statements."""
        return self._statements


async def add_ledger(writer: StorageWriter, trades: int, seed: int) -> None:
    """``trades`` closed trades over two days (some tying on open, symbol and close), a
    snapshot a minute, and the trading state ``report`` starts from."""
    rng = random.Random(seed)
    fills, rows = [], []
    for k in range(trades):
        opened = T0 + rng.randrange(0, 2800) * MINUTE
        closed = opened + rng.randrange(1, 60) * MINUTE
        symbol = rng.choice(("A-USD", "B-USD", "C-USD"))
        entry = Decimal(rng.randrange(9000, 11000)) / 100
        exit_ = entry + Decimal(rng.randrange(-300, 300)) / 100
        fee = Decimal("0.05")
        net = exit_ - entry - 2 * fee
        fills += [(2 * k + 1, symbol, opened), (2 * k + 2, symbol, closed)]
        money = (str(entry), str(exit_), str(fee), str(fee), str(exit_ - entry), str(net))
        rows.append((2 * k + 1, 2 * k + 2, symbol, *money, opened, closed, rng.choice(REASONS)))
    equity = [Decimal(10_000) + Decimal(rng.randrange(-500, 500)) for _ in range(2880)]
    await writer.write(Rows(
        Statement(
            "INSERT INTO fills (fill_id, venue, symbol, interval, side, quantity, price, fee, "
            "slippage_bps, candle_time_ms, reason, fill_model) "
            "VALUES (?, 'kraken', ?, '1m', 'buy', '1', '100', '0.05', '0', ?, 'entry', "
            "'market_close')",
            fills,
        ),
        Statement(
            "INSERT INTO trades (entry_fill_id, exit_fill_id, venue, symbol, interval, side, "
            "quantity, entry_price, exit_price, entry_fee, exit_fee, gross_pnl, net_pnl, "
            "opened_candle_ms, closed_candle_ms, exit_reason, entry_fill_model, "
            "exit_fill_model, recovered) VALUES (?, ?, 'kraken', ?, '1m', 'long', '1', ?, ?, "
            "?, ?, ?, ?, ?, ?, ?, 'market_close', 'market_close', 0)",
            rows,
        ),
        Statement(
            "INSERT INTO equity_snapshots (candle_time_ms, cash, positions_value, equity, "
            "peak_equity, open_positions) VALUES (?, ?, '0', ?, ?, ?)",
            [(T0 + k * MINUTE, str(e), str(e), str(e), k % 3) for k, e in enumerate(equity)],
        ),
        Statement(
            "INSERT INTO trading_state (id, cash, next_fill_id, last_candle_ms, state_json) "
            "VALUES (1, '10000', ?, ?, '{\"initial_balance\": \"10000\"}')",
            [(2 * trades + 1, T0 + 2879 * MINUTE)],
        ),
    ))  # fmt: skip


async def test_the_streamed_report_has_the_figures_of_the_whole_lists(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Trades read row by row in the digest's order, snapshots in time order: the same
    analytics and digest as the lists all in memory."""
    await add_ledger(writer, trades=3000, seed=3)
    trades, snapshots = await closed_trades(reader), await equity_snapshots(reader)
    whole = analyse(trades, snapshots, initial_equity=Decimal(10_000), interval_ms=MINUTE)

    summary = await trading_summary(reader, ())

    assert summary["trades"] == 3000
    assert summary["ledger_digest"] == ledger_digest(trades)
    assert summary["analytics"] == whole.to_json()


async def test_the_streamed_monte_carlo_resamples_the_trades_in_closing_order(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Each trade's return on the realised equity before it, in the order they closed: the
    Monte Carlo of the list sorted so; MONTE_CARLO_RUNS=0 gives none."""
    await add_ledger(writer, trades=500, seed=4)
    stored = await closed_trades(reader)
    returns = TradeReturns(Decimal(10_000))
    for trade in sorted(stored, key=lambda t: (t.closed_candle_ms, t.exit_fill_id)):
        returns.add(trade)
    expected = simulate(returns.returns(), initial_equity=Decimal(10_000), runs=1000)
    assert expected is not None

    summary = await trading_summary(reader, ())
    off = await trading_summary(reader, (), monte_carlo_runs=0)

    assert summary["monte_carlo"] == expected.to_json()
    assert off["monte_carlo"] is None


async def test_the_reports_memory_does_not_grow_with_the_number_of_trades(
    writer: StorageWriter, reader: aiosqlite.Connection
) -> None:
    """Ten times the trades, about the same peak of memory allocated while reporting."""
    peaks = []
    for trades in (1000, 10_000):
        await writer.write(Rows(Statement("DELETE FROM trades"), Statement("DELETE FROM fills"),
                                Statement("DELETE FROM equity_snapshots"),
                                Statement("DELETE FROM trading_state")))  # fmt: skip
        await add_ledger(writer, trades=trades, seed=trades)
        tracemalloc.start()
        try:
            summary = await trading_summary(reader, ())
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert summary["trades"] == trades
    assert peaks[1] < 1.5 * peaks[0], peaks
