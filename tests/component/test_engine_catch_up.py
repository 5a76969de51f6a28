"""A catch-up hands the decision task hundreds of instants at once (the REST warm-up comes
series by series, so nothing is complete until the last series arrives): they are decided in
chunks of whole instants, exactly as one at a time, and the loop serves other tasks meanwhile."""

import asyncio
from pathlib import Path

from conftest import eventually
from fakes.decision_rig import SYMBOLS, decisions, feed, running
from fakes.trading import MINUTE, T0, bar

from paper_trader.features.stage import ClosedCandle, instant_chunks

MINUTES = range(600)


async def test_a_catch_up_is_decided_as_live_while_the_loop_breathes(tmp_path: Path) -> None:
    live_db, caught_up_db = tmp_path / "live.db", tmp_path / "caught_up.db"
    async with running(live_db) as live:
        for minute in MINUTES:
            await feed(live, range(minute, minute + 1))
    async with running(caught_up_db, capacity=2 * len(MINUTES)) as daemon:
        seen: set[int | None] = set()
        done = asyncio.Event()

        async def watch() -> None:  # another task: it runs only when the loop is given back
            while not done.is_set():
                seen.add(daemon.stage.trader.last_candle_ms)
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        for symbol in SYMBOLS:  # one series' whole history, then the other's
            for minute in MINUTES:
                await daemon.channel.put(bar(symbol, T0 + minute * MINUTE))
        last = T0 + MINUTES[-1] * MINUTE
        await eventually(lambda: daemon.stage.trader.last_candle_ms == last, timeout=30)
        done.set()
        await watcher
    assert await decisions(caught_up_db) == await decisions(live_db)
    midway = {t for t in seen if t is not None and T0 < t < T0 + MINUTES[-1] * MINUTE}
    assert len(midway) >= 5  # the watcher ran between instants of the one released batch


def _items(times: list[int]) -> list[ClosedCandle]:
    return [ClosedCandle(candle=bar("BTC-USDT", T0 + t * MINUTE), row=None) for t in times]


def test_chunks_hold_whole_instants_in_time_order() -> None:
    items = _items([2, 0, 1, 1, 1, 3, 0])
    chunks = instant_chunks(items, 2)
    minutes = [[(i.candle.open_time_ms - T0) // MINUTE for i in c] for c in chunks]
    assert minutes == [[0, 0], [1, 1, 1], [2, 3]]
    assert instant_chunks([], 5) == []
    assert len(instant_chunks(items, 100)) == 1
