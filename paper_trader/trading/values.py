"""What the trading step takes and gives: its rules, one candle as it sees it, what an instant
changed, and the decision it records on an entry signal."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from paper_trader.broker.config import FillConfig
from paper_trader.domain import Candle, Event, Signal
from paper_trader.domain.trading import (
    Action,
    BreakerTransition,
    ClosedTrade,
    Decision,
    EquitySnapshot,
    Fill,
    Position,
    Side,
)
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.trading.entries import EntryRules
from paper_trader.trading.faults import Fault


@dataclass(frozen=True, slots=True, kw_only=True)
class TraderConfig:
    """Every rule of the trading step."""

    breakers: BreakerConfig
    limits: LimitsConfig
    sizing: SizingConfig
    exits: ExitConfig
    fills: FillConfig

    @property
    def entry_rules(self) -> EntryRules:
        """Return the parts an entry passes through."""
        return EntryRules(
            limits=self.limits, sizing=self.sizing, exits=self.exits, fills=self.fills
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketInput:
    """One closed candle as the trading step sees it.

    ``atr`` is in price units and ``atr_pct`` in percent (None until the features are warm);
    ``stale`` marks a candle older than the catch-up limit (no entries, exits still run);
    ``recovered`` one that closed while the daemon was down (its exits are marked so);
    ``tradable`` is the data-quality gate's verdict on the series right after the candle;
    ``fault`` the error that stopped an earlier stage on it (its symbol is quarantined);
    ``exit_only`` marks a symbol followed only for a position held outside ``SYMBOLS``.
    """

    candle: Candle
    atr: Decimal | None
    atr_pct: float | None
    stale: bool = False
    recovered: bool = False
    tradable: bool = True
    fault: str | None = None
    exit_only: bool = False


@dataclass(slots=True)
class InstantResult:
    """What one instant (or one command) changed, to commit and then to report."""

    candle_time_ms: int
    fills: list[Fill] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[ClosedTrade] = field(default_factory=list)
    transitions: list[BreakerTransition] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    snapshot: EquitySnapshot | None = None
    volatility: list[tuple[str, int, float]] = field(default_factory=list)  # ATR % taken


@dataclass(frozen=True, slots=True)
class Reported:
    """What one batch (or command) committed, as the stage reports it once committed: the
    candles it decided on and their signals (stored before the ledger commit), the instants'
    results, and the notices queued in the ledger transaction."""

    candles: Sequence[Candle]
    signals: Sequence[Signal]
    results: Sequence[InstantResult]
    notices: Sequence[Event]


def decision(
    signal: Signal,
    side: Side,
    action: Action,
    detail: str,
    *,
    rule: str | None = None,
    quantity: Decimal | None = None,
    price: Decimal | None = None,
) -> Decision:
    """Return the decision on an entry ``signal``: what became of it and why."""
    return Decision(
        venue=signal.venue,
        symbol=signal.symbol,
        interval=signal.interval,
        candle_time_ms=signal.open_time_ms,
        strength=signal.strength.value,
        score=signal.score,
        confidence=signal.confidence,
        model_version=signal.model_version,
        action=action,
        side=side,
        quantity=quantity,
        price=price,
        rule=rule,
        detail=detail,
    )
