"""Settings of the simulated exchange: where its candles come from, its clock, its limits."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from paper_trader.domain import Interval
from paper_trader.errors import ConfigError
from paper_trader.simulator.connection import WsLimits
from paper_trader.simulator.faults import Faults
from paper_trader.simulator.market import SYMBOL_PATTERN

Speed = float | Literal["max", "manual"]
DEFAULT_SYNTHETIC_CANDLES = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class CsvSource:
    """Candles from CSV files (``timestamp_ms,open,high,low,close,volume``), one per symbol,
    in the order of ``SimulatorConfig.symbols``."""

    paths: tuple[Path, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticSource:
    """A seeded synthetic market; every symbol gets its own seed derived from ``seed``."""

    seed: int = 7
    start_ms: int = 1_672_531_200_000  # 2023-01-01T00:00Z


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """Everything the simulated exchange needs; ``port=0`` picks a free port.

    ``speed`` is a multiple of real time (60.0 = one 1m candle per wall second), ``"max"``
    (next step as soon as the previous one was sent) or ``"manual"`` (only `Simulator.advance`
    moves time). ``candles`` bounds how many candles are loaded per symbol (synthetic default
    1000, CSV default all of them).
    """

    host: str = "127.0.0.1"
    port: int = 0
    symbols: tuple[str, ...] = ("BTCUSDT",)
    interval: Interval = Interval.M1
    source: CsvSource | SyntheticSource = field(default_factory=SyntheticSource)
    candles: int | None = None
    history: int = 100
    speed: Speed = 60.0
    updates_per_candle: int = 2
    start_on_connect: bool = True
    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_connection_age_s: float = 86_400.0
    shutdown_grace_s: float = 1.0
    close_timeout_s: float = 2.0
    weight_limit: int = 6000
    ban_s: float = 120.0
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self._check_symbols()
        if not (0 <= self.port <= 65_535):
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if self.candles is not None and self.candles < 1:
            raise ConfigError(f"candles must be at least 1, got {self.candles}")
        if self.history < 0 or self.updates_per_candle < 0:
            raise ConfigError("history and updates_per_candle must be 0 or more")
        if self.speed not in ("max", "manual") and not (
            isinstance(self.speed, float | int) and self.speed > 0
        ):
            raise ConfigError(f"speed must be a positive number, 'max' or 'manual': {self.speed}")
        timings = (
            self.ping_interval_s,
            self.pong_timeout_s,
            self.max_connection_age_s,
            self.close_timeout_s,
        )
        if min(timings) <= 0 or self.shutdown_grace_s < 0 or self.ban_s < 0:
            raise ConfigError("ping, pong, age and close timings must be more than 0 seconds")
        if self.weight_limit < 1:
            raise ConfigError(f"weight_limit must be at least 1, got {self.weight_limit}")

    def _check_symbols(self) -> None:
        if not self.symbols:
            raise ConfigError("at least one symbol is needed")
        for symbol in self.symbols:
            if not SYMBOL_PATTERN.match(symbol):
                raise ConfigError(f"symbol {symbol!r} must be uppercase letters/digits: BTCUSDT")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError(f"duplicate symbols in {self.symbols}")
        if isinstance(self.source, CsvSource) and len(self.symbols) != len(self.source.paths):
            raise ConfigError("a CSV source holds one file per symbol")

    @property
    def ws_limits(self) -> WsLimits:
        """Return the per-connection limits."""
        return WsLimits(
            ping_interval_s=self.ping_interval_s,
            pong_timeout_s=self.pong_timeout_s,
            max_connection_age_s=self.max_connection_age_s,
            shutdown_grace_s=self.shutdown_grace_s,
        )
