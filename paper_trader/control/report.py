"""The run summary that ``replay`` prints and ``report`` rebuilds from a database.

It describes the stored candle series, the gaps the exchange could not fill, and the trading
ledger: candles the ledger handled, signals and what became of them, trades, final equity,
the analytics of ``broker/analytics.py``, how often each breaker tripped, the Monte Carlo of
the closed trades (``broker/montecarlo.py``: seeded, so the same ledger gives the same
figures) and the ledger digest (equal ledgers, equal digests).
"""

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from paper_trader.broker.analytics import analyse_tallies
from paper_trader.broker.tally import EquityTally, TradeTally
from paper_trader.clock import iso_ms
from paper_trader.control.montecarlo import RUNS, record_monte_carlo
from paper_trader.domain import Interval
from paper_trader.risk.breakers import TradingBreakers
from paper_trader.risk.config import BreakerConfig
from paper_trader.storage import gap_records, runs, schema_version, series_summaries
from paper_trader.storage.deviations import (
    deviation_counts,
    first_deviations,
    prediction_model_versions,
)
from paper_trader.storage.ledger_repository import (
    breaker_trips,
    candles_handled,
    decision_counts,
    each_closed_trade,
    each_equity_snapshot,
    ledger_state,
    open_positions,
)
from paper_trader.trading.state import handled_of

FIRST_DEVIATIONS = 10  # the deviations a report lists (all are counted)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesReport:
    """One stored candle series."""

    venue: str
    symbol: str
    interval: str
    candles: int
    first_open_time: str
    last_open_time: str
    missing_candles: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GapReport:
    """Candles of one series that could not be filled, and why."""

    venue: str
    symbol: str
    interval: str
    start: str
    end: str
    missing: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a database holds."""

    db: str
    schema_version: int
    runs: int
    candles: int
    series: tuple[SeriesReport, ...]
    gaps: tuple[GapReport, ...]
    trading: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready values, the trading figures at the top level."""
        data = asdict(self)
        return {**data.pop("trading"), **data}


async def build_report(
    conn: aiosqlite.Connection, db_path: Path, *, monte_carlo_runs: int = RUNS
) -> Report:
    """Summarise the database behind ``conn`` (``monte_carlo_runs``: ``MONTE_CARLO_RUNS``)."""
    series = tuple(
        SeriesReport(
            venue=s.venue,
            symbol=s.symbol,
            interval=s.interval,
            candles=s.candles,
            first_open_time=iso_ms(s.first_open_time_ms),
            last_open_time=iso_ms(s.last_open_time_ms),
            missing_candles=s.missing_candles,
        )
        for s in await series_summaries(conn)
    )
    gaps = tuple(
        GapReport(
            venue=g.venue,
            symbol=g.symbol,
            interval=g.interval,
            start=iso_ms(g.start_ms),
            end=iso_ms(g.end_ms),
            missing=g.missing,
            reason=g.reason,
            detail=g.detail,
        )
        for g in await gap_records(conn)
    )
    return Report(
        db=str(db_path),
        schema_version=await schema_version(conn),
        runs=len(await runs(conn)),
        candles=sum(s.candles for s in series),
        series=series,
        gaps=gaps,
        trading=await trading_summary(conn, series, monte_carlo_runs=monte_carlo_runs),
    )


async def replay_parity(conn: aiosqlite.Connection, decisions: dict[str, int]) -> dict[str, Any]:
    """Return whether a replay of the stored candles should give this ledger, and if not why:
    every recorded deviation, the entries skipped while catching up, and more than one model
    version having predicted (a replay predicts with one)."""
    deviations = await deviation_counts(conn)
    skipped = decisions.get("skipped", 0)
    models = await prediction_model_versions(conn)
    reasons = {
        **deviations,
        **({"entries_skipped_catching_up": skipped} if skipped else {}),
        **({"model_versions": models} if models > 1 else {}),
    }
    return {
        "expected": not reasons,
        "reasons": reasons,
        "first": [
            {
                "kind": d.kind,
                "symbol": d.symbol,
                "candle_time": iso_ms(d.candle_time_ms) if d.candle_time_ms >= 0 else None,
                "message": d.message,
            }
            for d in await first_deviations(conn, FIRST_DEVIATIONS)
        ],
    }


async def trading_summary(
    conn: aiosqlite.Connection, series: tuple[SeriesReport, ...], *, monte_carlo_runs: int = RUNS
) -> dict[str, Any]:
    """Return the ledger's figures: candles handled, signals, trades, equity, analytics,
    breaker trips and the Monte Carlo (None when off or under two trades)."""
    state = await ledger_state(conn)
    if state is None:
        return {
            "candles_processed": 0,
            "signals": 0,
            "trades": 0,
            "ledger_digest": None,
            "breakers_tripped": {},
            "monte_carlo": None,
        }
    extra = json.loads(state.state_json)
    initial = Decimal(str(extra.get("initial_balance", state.cash)))
    trades, equity = TradeTally(), EquityTally(initial)
    async for trade in each_closed_trade(conn):  # row by row: memory does not grow with history
        trades.add(trade)
    async for snapshot in each_equity_snapshot(conn):
        equity.add(snapshot)
    counts = await decision_counts(conn)
    interval_ms = Interval(series[0].interval).ms if series else 60_000
    analytics = analyse_tallies(trades, equity, interval_ms=interval_ms)
    monte_carlo = await record_monte_carlo(conn, initial, monte_carlo_runs)
    return {
        "replay_parity": await replay_parity(conn, counts),
        "candles_processed": await candles_handled(conn, handled_of(extra)),
        "signals": sum(counts.values()),
        "decisions": counts,
        "trades": trades.trades,
        "open_positions": len(await open_positions(conn)),
        "final_equity": format(analytics.final_equity, "f"),
        "trading_state": TradingBreakers(BreakerConfig(), extra.get("breakers")).state.value,
        "ledger_digest": trades.digest(),
        "analytics": analytics.to_json(),
        "breakers_tripped": await breaker_trips(conn),
        "monte_carlo": monte_carlo.to_json() if monte_carlo else None,
    }
