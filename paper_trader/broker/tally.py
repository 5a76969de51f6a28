"""The analytics' inputs, one trade and one snapshot at a time, in constant memory.

``report`` reads a ledger of any age: its trades and equity snapshots come from SQLite row by
row into a ``TradeTally`` and an ``EquityTally``, which keep only sums, counts, the running
peak, the per-symbol and per-reason groups, one equity per day and the digest's hash; the
history itself is never held. ``analytics.analyse`` feeds the same tallies from lists, so both
ways give the same figures.

The digest needs the trades in the order it defines (opened candle, symbol, closed candle,
then their canonical text): the tally takes them in the first three keys' order, as SQL
sorts them, and orders the trades that tie on all three itself.
"""

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from paper_trader.domain.trading import DAY_MS, ClosedTrade, EquitySnapshot, plain

_ZERO = Decimal(0)


@dataclass(slots=True)
class Group:
    """One symbol's or exit reason's trades: count, wins, net PnL and fees."""

    trades: int = 0
    wins: int = 0
    net_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO


@dataclass(slots=True)
class TradeTally:
    """Everything the analytics and the digest take from closed trades."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    won: Decimal = _ZERO
    lost: Decimal = _ZERO  # the losing trades' net PnL (below zero)
    net_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    by_symbol: dict[str, Group] = field(default_factory=dict)
    by_exit_reason: dict[str, Group] = field(default_factory=dict)
    _hash: Any = field(default_factory=hashlib.sha256)
    # (sort text, canonical text) of the trades of one (opened, symbol, closed), in any order
    _tie: list[tuple[str, str]] = field(default_factory=list)
    _tie_key: tuple[int, str, int] | None = None
    _hashed: int = 0

    def add(self, trade: ClosedTrade) -> None:
        """Count one trade; raise ``ValueError`` if it comes before the previous one in the
        digest's order (opened candle, symbol, closed candle)."""
        key = (trade.opened_candle_ms, trade.symbol, trade.closed_candle_ms)
        if self._tie_key is not None and key < self._tie_key:
            raise ValueError(f"trades out of the digest's order: {key} after {self._tie_key}")
        if key != self._tie_key:
            self._flush()
            self._tie_key = key
        canonical = canonical_trade(trade)
        self._tie.append((
            json.dumps(canonical, sort_keys=True),
            json.dumps(canonical, sort_keys=True, separators=(",", ":")),
        ))  # fmt: skip
        self.trades += 1
        self.net_pnl += trade.net_pnl
        self.fees += trade.fees
        if trade.net_pnl > 0:
            self.wins += 1
            self.won += trade.net_pnl
        elif trade.net_pnl < 0:
            self.losses += 1
            self.lost += trade.net_pnl
        for groups, name in (
            (self.by_symbol, trade.symbol),
            (self.by_exit_reason, trade.exit_reason.value),
        ):
            group = groups.setdefault(name, Group())
            group.trades += 1
            group.wins += trade.net_pnl > 0
            group.net_pnl += trade.net_pnl
            group.fees += trade.fees

    def digest(self) -> str:
        """Return the ledger digest of the trades added (``analytics.ledger_digest``)."""
        self._flush()
        twin = self._hash.copy()
        twin.update(b"]" if self._hashed else b"[]")
        return str(twin.hexdigest())

    def _flush(self) -> None:
        for _, text in sorted(self._tie):
            self._hash.update(b"," if self._hashed else b"[")
            self._hash.update(text.encode("utf-8"))
            self._hashed += 1
        self._tie.clear()


@dataclass(slots=True)
class EquityTally:
    """Everything the analytics take from equity snapshots: the first and last, the deepest
    fall and the longest time under a peak, each day's last equity, and the instants with a
    position open (a thinned snapshot stands for several)."""

    initial_equity: Decimal
    first: EquitySnapshot | None = None
    last: EquitySnapshot | None = None
    instants: int = 0
    opened: int = 0
    daily: dict[int, Decimal] = field(default_factory=dict)  # one per UTC day: small
    deepest: Decimal = _ZERO
    longest_ms: int = 0
    _peak: Decimal = _ZERO
    _peak_ms: int = 0
    _under: bool = False

    def add(self, snapshot: EquitySnapshot) -> None:
        """Count one snapshot; raise ``ValueError`` if it is older than the previous one."""
        if self.last is not None and snapshot.candle_time_ms < self.last.candle_time_ms:
            raise ValueError(
                f"snapshots out of order: {snapshot.candle_time_ms} after "
                f"{self.last.candle_time_ms}"
            )
        if self.first is None:
            self.first = snapshot
            self._peak, self._peak_ms = self.initial_equity, snapshot.candle_time_ms
        self.last = snapshot
        self.instants += snapshot.instants
        self.opened += snapshot.opened
        self.daily[snapshot.candle_time_ms // DAY_MS] = snapshot.equity
        at = snapshot.candle_time_ms
        if snapshot.equity >= self._peak:
            if self._under:
                self.longest_ms = max(self.longest_ms, at - self._peak_ms)
            self._peak, self._peak_ms, self._under = snapshot.equity, at, False
        else:
            self._under = True
            self.longest_ms = max(self.longest_ms, at - self._peak_ms)
            self.deepest = max(self.deepest, (self._peak - snapshot.equity) / self._peak)


def canonical_trade(trade: ClosedTrade) -> dict[str, object]:
    """Return the fields of ``trade`` that define it in the ledger digest."""
    return {
        "venue": trade.venue.value,
        "symbol": trade.symbol,
        "interval": trade.interval.value,
        "side": trade.side.value,
        "quantity": plain(trade.quantity),
        "entry_price": plain(trade.entry_price),
        "exit_price": plain(trade.exit_price),
        "entry_fee": plain(trade.entry_fee),
        "exit_fee": plain(trade.exit_fee),
        "net_pnl": plain(trade.net_pnl),
        "opened_candle_ms": trade.opened_candle_ms,
        "closed_candle_ms": trade.closed_candle_ms,
        "exit_reason": trade.exit_reason.value,
        "entry_fill_model": trade.entry_fill_model.value,
        "exit_fill_model": trade.exit_fill_model.value,
    }
