"""Control over a running trading stage, writer and SQLite file, with permissive rules:
the candles (ATR 2) and signals a test hands it, and the commands' fills."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import aiosqlite
from fakes.storage import migrated_database
from fakes.trading import MINUTE, bar, strong_buy

from paper_trader.app.trading import ledger_loader
from paper_trader.broker.config import FillConfig
from paper_trader.control.api import Control
from paper_trader.domain import Candle, Event, EventKind, Interval, Signal, Strength, Venue
from paper_trader.domain.trading import ClosedTrade
from paper_trader.features.engine import FeatureRow
from paper_trader.features.stage import ClosedCandle
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.runtime.channel import DropOldestChannel
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.service import Readiness
from paper_trader.storage import StorageWriter, open_reader
from paper_trader.trading.stage import MarketView, TradingStage
from paper_trader.trading.trader import TraderConfig

BALANCE = Decimal(10_000)
SLIP = Decimal("0.0005")  # 5 bps, no volume impact
FEE = Decimal("0.001")
SERIES = [(Venue.BINANCE, s, Interval.M1) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")]


def config(*, max_consecutive_losses: int = 1_000) -> TraderConfig:
    """Return permissive rules: ATR 2 gives a stop 4 away and 25 units at 100 on 10 000."""
    return TraderConfig(
        breakers=BreakerConfig(
            max_daily_loss=0.99,
            max_drawdown=0.99,
            max_consecutive_losses=max_consecutive_losses,
            min_time_between_trades_ms=0,
            stop_loss_cooldown_ms=0,
            volatility_min_samples=1_000_000,
        ),
        limits=LimitsConfig(
            max_positions=10,
            max_position_size=1.0,
            max_total_exposure=10.0,
            min_notional=Decimal(1),
            min_confidence=0.0,
            correlation_limit=2.0,
        ),
        sizing=SizingConfig(risk_per_trade=0.01, confidence_full_size=0.5),
        exits=ExitConfig(
            stop_loss_atr_multiplier=2.0,
            take_profit_risk_reward=2.0,
            trailing_stop=False,
            max_holding_ms=0,
            exit_on_opposite_signal=False,
        ),
        fills=FillConfig(fee_rate=FEE, slippage_bps=Decimal(5), impact_bps=Decimal(0)),
    )


VIEW = MarketView(atr_columns=(0, 1), is_stale=lambda c: False)


@dataclass
class Rig:
    """A running stage with its control, a reader and an event subscription."""

    stage: TradingStage
    control: Control
    reader: aiosqlite.Connection
    events: DropOldestChannel[Event]
    writer: StorageWriter | None = None

    async def feed(self, candles: Sequence[Candle], signals: Sequence[Signal] = ()) -> None:
        """Hand one batch of candles (ATR 2) and signals to the stage."""
        await self.stage.on_batch([ClosedCandle(candle=c, row=row(c)) for c in candles], signals)

    def drain_kinds(self) -> list[EventKind]:
        """Return the kinds of the events published so far, consuming them."""
        return [e.kind for e in self.events.drain(len(self.events))]


@contextlib.asynccontextmanager
async def running_rig(
    tmp_path: Path, rules: TraderConfig | None = None, *, now_ms: Callable[[], int] = lambda: 0
) -> AsyncIterator[Rig]:
    """Open the database, run the writer in a TaskGroup, start the stage; tear all down.

    ``now_ms`` is the wall clock the stage stamps its events with.
    """
    path = tmp_path / "paper_trader.db"
    async with migrated_database(path) as conn, asyncio.TaskGroup() as group:
        writer = StorageWriter(conn)
        bus = EventBus()
        ready = Readiness()
        task = group.create_task(writer.run(ready), name=writer.name)
        await ready.wait()
        stage = TradingStage(
            rules or config(),
            initial_balance=BALANCE,
            view=VIEW,
            load=ledger_loader(conn, SERIES, kelly=100, window=100),
            commit=writer.write,
            events=bus,
            now_ms=now_ms,
        )
        await stage.start()
        reader = await open_reader(path)
        try:
            yield Rig(stage, Control(stage, reader), reader, bus.subscribe(), writer)
        finally:
            await reader.close()
            task.cancel()


def row(candle: Candle) -> FeatureRow:
    """Return a feature row whose ATR is 2 (2 %)."""
    return FeatureRow(
        venue=candle.venue,
        symbol=candle.symbol,
        interval=candle.interval,
        open_time_ms=candle.open_time_ms,
        values=(2.0, 2.0),
        is_ready=True,
    )


def buy(symbol: str, t: int) -> Signal:
    """Return a full-size strong buy signal."""
    return strong_buy(symbol, t, model_version="test-model", models=())


def sell_price(reference: str) -> Decimal:
    """Return what a market sell at ``reference`` fills at (less 5 bps)."""
    return Decimal(reference) * (1 - SLIP)


def sell(symbol: str, t: int) -> Signal:
    """Return a full-size sell signal (opens a short where shorts are allowed)."""
    return replace(buy(symbol, t), strength=Strength.SELL, score=-0.85)


async def open_and_close(rig: Rig, symbol: str, t: int, entry: str, exit_: str) -> ClosedTrade:
    """Enter ``symbol`` at ``t``, mark it at ``t + MINUTE``, then close it by command."""
    await rig.feed([bar(symbol, t, entry)], [buy(symbol, t)])
    await rig.feed([bar(symbol, t + MINUTE, exit_)])
    result = await rig.control.close(symbol)
    assert result.ok, result.message
    return result.trades[0]
