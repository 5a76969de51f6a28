"""When one symbol's candle breaks a step of the trading instant: keep it to that symbol.

``guarded`` runs one step of an instant for each market and turns an exception into a
``Fault`` of that market's symbol; the symbol takes no further step in the instant, the others
go on. The trader then records an ``error`` decision (``error_decision``) and quarantines the
symbol (the ``symbol_error`` breaker). ``guarded`` yields after each market, so that the
trading stage can give the event loop back inside a long instant; ``finish`` runs such steps
to their end at once.
"""

import traceback
from collections.abc import Callable, Generator, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from paper_trader.domain import Candle, Signal
from paper_trader.domain.trading import Action, Decision, entry_side

if TYPE_CHECKING:  # trading.values imports Fault from here
    from paper_trader.trading.values import InstantResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A candle on which a stage failed: where, the error, and the traceback (for the log)."""

    candle: Candle
    stage: str
    error: str
    traceback: str = ""


class HasCandle(Protocol):
    """A market of the instant (``trader.MarketInput``)."""

    @property
    def candle(self) -> Candle:
        """Return the market's candle."""
        ...


M = TypeVar("M", bound=HasCandle)
T = TypeVar("T")


def guarded(
    markets: Sequence[M],
    failed: MutableMapping[str, Fault],
    result: "InstantResult",
    stage: str,
    step: Callable[[M, "InstantResult"], None],
) -> Iterator[None]:
    """Run one step for every market not failed yet, yielding after each market (the caller
    may give the loop back there); an error fails only its symbol.

    Each step changes the ledger only through calls that check before they change anything,
    so the state after a failed step is one the ledger allows.
    """
    for market in markets:
        yield
        if market.candle.symbol in failed:
            continue
        try:
            step(market, result)
        except Exception as exc:  # one symbol's trouble, not the daemon's  # noqa: BLE001
            failed[market.candle.symbol] = Fault(
                candle=market.candle,
                stage=stage,
                error=f"{stage}: {type(exc).__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc)),
            )


def error_decision(fault: Fault, signal: Signal | None) -> Decision:
    """Return the decision that records a failed candle (with its signal's fields, if any)."""
    candle = fault.candle
    return Decision(
        venue=candle.venue,
        symbol=candle.symbol,
        interval=candle.interval,
        candle_time_ms=candle.open_time_ms,
        strength="" if signal is None else signal.strength.value,
        score=0.0 if signal is None else signal.score,
        confidence=0.0 if signal is None else signal.confidence,
        model_version="" if signal is None else signal.model_version,
        action=Action.ERROR,
        side=None if signal is None else entry_side(signal.strength),
        quantity=None,
        price=None,
        rule="symbol_error",
        detail=fault.error,
    )


def finish(steps: Generator[None, None, T]) -> T:
    """Run a stepped piece of work (``guarded``'s callers) to its end at once; return its value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]  # the generator's T
