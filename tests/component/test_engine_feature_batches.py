"""The decision task computes the features of one instant's candles together: the rows it
records equal those of the same candles one at a time, and an error in the batched step is
each candle's fault, not the daemon's."""

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from fakes.feature_series import MINUTE, random_series

from paper_trader.clock import SystemClock
from paper_trader.domain import Candle, Interval, JudgedCandles, PredictionLog, Venue
from paper_trader.engine import DecisionEngine
from paper_trader.features.series_set import FeatureEngine
from paper_trader.features.spec import default_spec
from paper_trader.features.stage import ClosedCandle, FeatureStage
from paper_trader.market.quality import QualityConfig, QualityMonitor
from paper_trader.prediction.stage import BatchPrediction
from paper_trader.runtime.channel import BlockingChannel
from paper_trader.runtime.sdnotify import Heartbeat
from paper_trader.runtime.service import Readiness

SPEC = default_spec()
SYMBOLS = [f"S{k}-USDT" for k in range(30)]
INSTANTS = 120


def market() -> list[list[Candle]]:
    """INSTANTS instants of one 1m candle per symbol, every symbol at every instant."""
    columns = []
    for k, symbol in enumerate(SYMBOLS):
        times, ohlcv = random_series(60 + k, INSTANTS)
        columns.append(
            [
                Candle(
                    venue=Venue.BINANCE,
                    symbol=symbol,
                    interval=Interval.M1,
                    open_time_ms=int(t),
                    open=Decimal(repr(o)),
                    high=Decimal(repr(h)),
                    low=Decimal(repr(lo)),
                    close=Decimal(repr(c)),
                    volume=Decimal(repr(v)),
                )
                for t, o, h, lo, c, v in zip(times.tolist(), *ohlcv.tolist(), strict=True)
            ]
        )
    return [list(instant) for instant in zip(*columns, strict=True)]


@dataclass
class Recorder:
    """A prediction stage that records what it is given and predicts nothing."""

    items: list[ClosedCandle] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def on_batch(self, items: list[ClosedCandle]) -> BatchPrediction:
        self.items.extend(items)
        return BatchPrediction()

    async def write(self, log: PredictionLog) -> None:
        assert not log  # it predicts nothing

    def close(self) -> None:
        return None


def stage() -> FeatureStage:
    return FeatureStage(SPEC, [], keep_rows=1, cache=None, history=None, monotonic=lambda: 0.0)


async def decide(features: FeatureStage, instants: list[list[Candle]]) -> Recorder:
    """Run the decision task over the instants (one batch each) and return what it decided."""
    channel: BlockingChannel[Candle] = BlockingChannel(len(SYMBOLS) * 2)
    recorder = Recorder()

    async def store(_judged: JudgedCandles) -> None:
        return None

    quality = QualityMonitor(QualityConfig())
    engine = DecisionEngine(
        channel,  # type: ignore[arg-type]
        store,
        Heartbeat(SystemClock()),
        quality=quality,
        features=features,
        prediction=recorder,  # type: ignore[arg-type]
        batch_size=len(SYMBOLS),
    )
    task = asyncio.create_task(engine.run(Readiness()), name="test-engine")
    for instant in instants:
        for candle in instant:
            await channel.put(candle)
        await engine.caught_up(settle_s=0.0)
    channel.close()
    async with asyncio.timeout(10):
        await task
    return recorder


async def test_the_rows_of_a_batched_instant_equal_the_rows_one_candle_at_a_time() -> None:
    """Thirty symbols closing together: every recorded row equals the per-candle stage's."""
    instants = market()
    batched = stage()
    recorded = await decide(batched, instants)
    assert all(batched.engine.is_columnwise((Venue.BINANCE, s, Interval.M1)) for s in SYMBOLS)
    alone = stage()
    want = {(c.symbol, c.open_time_ms): alone.on_candle(c) for i in instants for c in i}
    assert len(recorded.items) == len(want)
    assert {i.fault for i in recorded.items} == {None}
    for item in recorded.items:
        got, expected = item.row, want[(item.candle.symbol, item.candle.open_time_ms)]
        assert got is not None
        assert expected is not None
        assert got.is_ready == expected.is_ready
        np.testing.assert_allclose(got.array, expected.array, rtol=1e-9, atol=1e-9)


class _Breaks(FeatureEngine):
    """A feature engine with a bug that one instant triggers."""

    def update_many(self, candles: list[Candle]) -> list:  # type: ignore[type-arg]
        if candles[0].open_time_ms == BROKEN_AT:
            raise ZeroDivisionError("a bug only this instant reaches")
        return super().update_many(candles)


BROKEN_AT = random_series(60, 1)[0][0] + 50 * MINUTE


async def test_an_error_in_the_batched_step_is_each_candles_fault_and_the_rest_goes_on() -> None:
    """The instant the bug hits: every candle of it failed (counted, recorded), their series
    re-warm, the next instants have rows again."""
    features = stage()
    features.engine = _Breaks(SPEC, keep_rows=1)
    recorded = await decide(features, market())
    broken = [i for i in recorded.items if i.candle.open_time_ms == BROKEN_AT]
    assert len(broken) == len(SYMBOLS)
    assert all(i.fault == "ZeroDivisionError: a bug only this instant reaches" for i in broken)
    after = [i for i in recorded.items if i.candle.open_time_ms == BROKEN_AT + MINUTE]
    assert all(i.fault is None and i.row is not None for i in after)
    key = (Venue.BINANCE, SYMBOLS[0], Interval.M1)
    assert features.engine.series(key).count == INSTANTS - 51
