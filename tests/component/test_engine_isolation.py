"""One candle's trouble is that symbol's alone: an error quarantines the symbol, is recorded as
an error decision, and neither the other symbols nor a restart are stopped by it."""

from pathlib import Path

import aiosqlite
from fakes.decision_rig import SYMBOLS, SteadyFeatures, decisions, feed, running
from fakes.trading import T0, bar

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.features.engine import FeatureRow
from paper_trader.features.spec import default_spec

POISON = (SYMBOLS[1], T0 + 5 * 60_000)  # ETH's sixth candle breaks the feature stage


class BrokenFeatures(SteadyFeatures):
    """The feature stage with a bug that only one candle triggers."""

    def on_candle(self, candle: Candle) -> FeatureRow | None:
        if (candle.symbol, candle.open_time_ms) == POISON:
            raise ZeroDivisionError("a bug only this candle reaches")
        return super().on_candle(candle)


async def test_an_error_on_one_candle_quarantines_only_its_symbol_across_a_restart(
    tmp_path: Path,
) -> None:
    """ETH's sixth candle breaks the feature stage: it is stored and recorded as an error,
    ETH takes no entry until 60 clean candles, BTC keeps trading, and a restart on the same
    database goes on from there without failing on anything it stored."""
    db = tmp_path / "paper_trader.db"
    async with running(db, BrokenFeatures) as first:
        await feed(first, range(20))
        assert first.engine.stats().candles_failed == 1
    made = await decisions(db)
    assert ("ETH-USDT", 5, "error", "symbol_error") in made
    eth_after = [m for m in made if m[0] == "ETH-USDT" and m[1] > 5]
    assert eth_after
    assert {(a, r) for _, _, a, r in eth_after} == {("rejected", "symbol_error")}
    assert any(m[0] == "BTC-USDT" and m[2] == "entered" for m in made if m[1] > 5)
    async with aiosqlite.connect(db) as conn:
        stored = await conn.execute_fetchall(
            "SELECT count(*) FROM candles WHERE symbol = ? AND open_time_ms = ?", POISON
        )
    assert list(stored) == [(1,)]

    async with running(db, BrokenFeatures) as second:
        await feed(second, range(20, 70))
    made = await decisions(db)
    eth = {m: (a, r) for s, m, a, r in made if s == "ETH-USDT"}
    assert eth[64] == ("rejected", "symbol_error")  # 59 clean candles after the error
    assert any(a == "entered" for m, (a, _) in eth.items() if m >= 66)


async def test_a_stored_candle_that_breaks_the_features_does_not_stop_the_warm_up() -> None:
    """At start-up the stored history is replayed through the features: the broken candle is
    logged and skipped, the series warms up on the others, start-up goes on."""
    spec = default_spec()
    stored = [bar(POISON[0], T0 + minute * 60_000) for minute in range(10)]

    async def history(_key: object, _after: int | None, _count: int) -> list[Candle]:
        return stored

    series = [(Venue.BINANCE, POISON[0], Interval.M1)]
    features = BrokenFeatures(
        spec, series, keep_rows=1, cache=None, history=history, monotonic=lambda: 0.0
    )
    await features.prepare()
    engine = features.engine.series(series[0])
    assert engine.last_open_ms == stored[-1].open_time_ms
