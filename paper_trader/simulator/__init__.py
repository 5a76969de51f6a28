"""A simulated exchange on loopback that speaks Binance's public market-data wire protocol.

Use it from tests as ``async with Simulator(SimulatorConfig(speed="manual")) as sim:`` and move
time with ``await sim.advance(candles=n)``, or run it for a demo or a system test with
``python -m paper_trader.simulator --help``. The market clock is the exchange's own, never the
local wall clock; it keeps running while a client is away, so a client that drops must backfill
over REST. See `server` for the server, `market` for the clock, `faults` for what it can break
and `synthetic` for the market it makes up.

The names below are imported when first used, not with the package: the package is imported
before ``python -m paper_trader.simulator.synthetic`` runs that module, which must not have been
imported already (runpy warns that it "may result in unpredictable behaviour").
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paper_trader.simulator.config import CsvSource, SimulatorConfig, Speed, SyntheticSource
    from paper_trader.simulator.faults import Faults, SimStats
    from paper_trader.simulator.server import Simulator

_HOMES = {
    "CsvSource": "config",
    "SimulatorConfig": "config",
    "Speed": "config",
    "SyntheticSource": "config",
    "Faults": "faults",
    "SimStats": "faults",
    "Simulator": "server",
}

__all__ = [
    "CsvSource",
    "Faults",
    "SimStats",
    "Simulator",
    "SimulatorConfig",
    "Speed",
    "SyntheticSource",
]


def __getattr__(name: str) -> Any:
    """Return one of the names above from its module (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
