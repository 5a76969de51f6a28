"""The Monte Carlo of the stored record (``broker/montecarlo.py``), for every interface.

The closed trades are read in the order they closed, row by row through the read-only
connection; only their returns are kept (8 bytes a trade). The simulation runs in an
executor: thousands of runs over a long record take a CPU-bound fraction of a second, which
must not run on the loop. ``MonteCarlo`` and ``Percentiles`` are importable from here by the
parts that may not import ``broker/``.
"""

import asyncio
import functools
from decimal import Decimal

import aiosqlite

from paper_trader.broker.montecarlo import (
    MIN_TRADES,
    RUNS,
    SEED,
    MonteCarlo,
    Percentiles,
    TradeReturns,
    simulate,
)
from paper_trader.storage.ledger_repository import each_closed_trade

__all__ = ["MIN_TRADES", "RUNS", "SEED", "MonteCarlo", "Percentiles", "record_monte_carlo"]


async def record_monte_carlo(
    reader: aiosqlite.Connection,
    initial_equity: Decimal,
    runs: int,
    *,
    until_ms: int | None = None,
) -> MonteCarlo | None:
    """Return the Monte Carlo of the trades closed (at candle times before ``until_ms``, when
    given) on a ledger that started from ``initial_equity``; None when it is off (``runs``
    0), the equity is not positive or fewer than ``MIN_TRADES`` trades closed."""
    if runs < 1 or not initial_equity > 0:
        return None
    returns = TradeReturns(initial_equity)
    async for trade in each_closed_trade(reader, as_closed=True):  # only the returns are kept
        if until_ms is None or trade.closed_candle_ms < until_ms:
            returns.add(trade)
    if len(returns) < MIN_TRADES:
        return None
    run = functools.partial(
        simulate, returns.returns(), initial_equity=initial_equity, runs=runs, seed=SEED
    )
    return await asyncio.get_running_loop().run_in_executor(None, run)
