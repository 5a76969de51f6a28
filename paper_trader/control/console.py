"""Everything an operator's interface may ask or order, in one value handed to it by the app.

An interface (the Telegram bot) gets a ``Console`` and nothing else of the daemon: the
commands and live queries of ``Control``, the ledger ``Reports``, the ``SystemInfo`` the app
provides, the ``CommandAudit`` trail, and the clock and candle interval to age candles by.
"""

from collections.abc import Callable
from dataclasses import dataclass

from paper_trader.control.api import Control
from paper_trader.control.audit import CommandAudit
from paper_trader.control.reports import Reports
from paper_trader.control.system import SystemInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class Console:
    """The control surface of one running daemon."""

    control: Control
    reports: Reports
    system: SystemInfo
    audit: CommandAudit
    interval_ms: int
    now_ms: Callable[[], int]

    def candle_age_s(self, last_candle_ms: int | None) -> float | None:
        """Return the seconds since the close of the candle opened at ``last_candle_ms``."""
        if last_candle_ms is None:
            return None
        return max(0.0, (self.now_ms() - last_candle_ms - self.interval_ms) / 1000)
