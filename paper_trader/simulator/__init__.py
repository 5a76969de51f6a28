"""A simulated exchange on loopback that speaks Binance's public market-data wire protocol.

Use it from tests as ``async with Simulator(SimulatorConfig(speed="manual")) as sim:`` and move
time with ``await sim.advance(candles=n)``, or run it for a demo or a system test with
``python -m paper_trader.simulator --help``. The market clock is the exchange's own, never the
local wall clock; it keeps running while a client is away, so a client that drops must backfill
over REST. See `server` for the server, `market` for the clock, `faults` for what it can break
and `synthetic` for the market it makes up.
"""

from paper_trader.simulator.config import CsvSource, SimulatorConfig, Speed, SyntheticSource
from paper_trader.simulator.faults import Faults, SimStats
from paper_trader.simulator.server import Simulator

__all__ = [
    "CsvSource",
    "Faults",
    "SimStats",
    "Simulator",
    "SimulatorConfig",
    "Speed",
    "SyntheticSource",
]
