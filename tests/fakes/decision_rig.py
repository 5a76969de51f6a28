"""The decision path of one run over a real SQLite file, with its seams for tests: the real
writer, engine, aligner and trading stage; a feature stage and a prediction step to choose."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import aiosqlite
from conftest import eventually
from fakes.storage import migrated_database
from fakes.trading import MINUTE, T0, bar, strong_buy

from paper_trader.app.trading import ledger_loader
from paper_trader.broker.config import FillConfig
from paper_trader.clock import SystemClock
from paper_trader.domain import Candle, Interval, MarketItem, Signal, Venue
from paper_trader.engine import DecisionEngine
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import ClosedCandle, FeatureStage
from paper_trader.market.aligner import InstantAligner
from paper_trader.prediction.stage import BatchPrediction
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.events import EventBus
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.runtime.service import Readiness
from paper_trader.storage import StorageWriter, UpsertCandles
from paper_trader.trading.stage import MarketView, TradingStage
from paper_trader.trading.trader import TraderConfig

SYMBOLS = ("BTC-USDT", "ETH-USDT")
SERIES = [(Venue.BINANCE, s, Interval.M1) for s in SYMBOLS]
RULES = TraderConfig(
    breakers=BreakerConfig(
        min_time_between_trades_ms=0, stop_loss_cooldown_ms=0, max_consecutive_losses=1_000
    ),
    limits=LimitsConfig(max_positions=10, max_position_size=0.2, min_confidence=0.0),
    sizing=SizingConfig(),
    exits=ExitConfig(max_holding_ms=2 * MINUTE, trailing_stop=False),
    fills=FillConfig(fee_rate=Decimal("0.001"), slippage_bps=Decimal(5), impact_bps=Decimal(0)),
)
ATR = ("atr_14", "atr_pct_14")


class SteadyFeatures(FeatureStage):
    """The real feature stage, whose every row is ready with an ATR of 2 (2 %): entries
    need no 660-candle warm-up."""

    def atr_pct(self, candle: Candle) -> float:
        """Return the candle's ATR % (2 here; a subclass may vary it)."""
        return 2.0

    def on_candle(self, candle: Candle) -> FeatureRow | None:
        super().on_candle(candle)
        names = self.spec.names
        values = [0.0] * len(names)
        values[names.index(ATR[0])], values[names.index(ATR[1])] = 2.0, self.atr_pct(candle)
        return FeatureRow(
            venue=candle.venue,
            symbol=candle.symbol,
            interval=candle.interval,
            open_time_ms=candle.open_time_ms,
            values=tuple(values),
            is_ready=True,
        )


def buy(candle: Candle) -> Signal:
    """Return the STRONG_BUY of model "test" made at the close of ``candle``."""
    return strong_buy(
        candle.symbol, candle.open_time_ms, venue=candle.venue, interval=candle.interval
    )


class BuyEverything:
    """A prediction step that says "buy" on every candle with a feature row."""

    async def start(self) -> None:
        return None

    async def on_batch(self, items: Sequence[ClosedCandle]) -> BatchPrediction:
        return BatchPrediction(
            signals=[buy(i.candle) for i in items if i.row is not None], faults={}
        )

    def close(self) -> None:
        return None


@dataclass
class Daemon:
    """The decision path of one run over a SQLite file."""

    engine: DecisionEngine
    channel: BlockingChannel[MarketItem]
    stage: TradingStage


@contextlib.asynccontextmanager
async def running(
    db: Path, features: type[FeatureStage] = SteadyFeatures, *, capacity: int = 64
) -> AsyncIterator[Daemon]:
    """Run the writer and the engine (real stages; ``features`` a seam) on ``db``."""
    async with migrated_database(db) as conn, asyncio.TaskGroup() as group:
        writer = StorageWriter(conn)
        ready = Readiness()
        writing = group.create_task(writer.run(ready), name=writer.name)
        await ready.wait()
        spec = default_spec()
        names = spec.names
        stage = TradingStage(
            RULES,
            initial_balance=Decimal(10_000),
            view=MarketView(
                atr_columns=(names.index(ATR[0]), names.index(ATR[1])),
                is_stale=lambda _c: False,
            ),
            load=ledger_loader(conn, SERIES, kelly=100, window=100),
            commit=writer.write,
            events=EventBus(),
            now_ms=lambda: 0,
        )
        channel: BlockingChannel[MarketItem] = BlockingChannel(capacity)
        stage_features = features(
            spec, [], keep_rows=1, cache=None, history=None, monotonic=SystemClock().monotonic
        )
        engine = DecisionEngine(
            channel,
            lambda judged: writer.submit(UpsertCandles.judged(judged)),
            Heartbeat(SystemClock()),
            features=stage_features,
            prediction=BuyEverything(),  # type: ignore[arg-type]
            trading=stage,
            aligner=InstantAligner(SERIES, monotonic=SystemClock().monotonic, stall_s=600),
        )
        engine_task = group.create_task(engine.run(Readiness()), name="engine")
        try:
            yield Daemon(engine, channel, stage)
        finally:
            channel.close()
            await engine_task
            writing.cancel()


async def feed(
    daemon: Daemon, minutes: range, make: Callable[[str, int], Candle] | None = None
) -> None:
    """Hand over every symbol's candle of each minute (``make(symbol, minute)``, else a
    steady bar), then wait until all are decided."""
    for minute in minutes:
        for symbol in SYMBOLS:
            candle = bar(symbol, T0 + minute * MINUTE) if make is None else make(symbol, minute)
            await daemon.channel.put(candle)
    last = T0 + (minutes.stop - 1) * MINUTE
    await eventually(lambda: daemon.stage.trader.last_candle_ms == last, timeout=20)


async def decisions(db: Path) -> list[tuple[str, int, str, str | None]]:
    async with aiosqlite.connect(db) as conn:
        rows = await conn.execute_fetchall(
            "SELECT symbol, (candle_time_ms - ?) / ?, action, rule FROM decisions "
            "ORDER BY candle_time_ms, symbol",
            (T0, MINUTE),
        )
    return [(str(s), int(m), str(a), None if r is None else str(r)) for s, m, a, r in rows]
