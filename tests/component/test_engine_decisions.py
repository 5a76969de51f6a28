"""What a decision reads of a candle is fixed when the candle is handled: a batch of hundreds
of candles (a replay, a backfill) is decided exactly like the same candles one at a time."""

from pathlib import Path

from fakes.decision_rig import decisions, feed, running
from fakes.trading import MINUTE, T0, bar

from paper_trader.domain import Candle

HALT = range(40, 100)  # ETH: zero-volume flat candles, its data-quality score falls below 80
MINUTES = range(160)


def market(symbol: str, minute: int) -> Candle:
    halted = symbol == "ETH-USDT" and minute in HALT
    return bar(symbol, T0 + minute * MINUTE, volume="0" if halted else "1000")


async def test_a_batch_is_decided_like_its_candles_one_at_a_time(tmp_path: Path) -> None:
    """ETH halts: its entries are refused for data quality from the candle whose score fell
    below the limit, not before (no later candle's verdict decides an earlier one), and a
    replay-sized batch gives exactly the decisions of a live run fed candle by candle."""
    live_db, replay_db = tmp_path / "live.db", tmp_path / "replay.db"
    async with running(live_db) as live:
        for minute in MINUTES:
            await feed(live, range(minute, minute + 1), market)
    async with running(replay_db, capacity=2 * len(MINUTES)) as replayed:
        await feed(replayed, MINUTES, market)
        assert replayed.engine.stats().candles_processed == 2 * len(MINUTES)

    live_decisions = await decisions(live_db)
    assert await decisions(replay_db) == live_decisions
    refused = [m for s, m, _, rule in live_decisions if s == "ETH-USDT" and rule == "data_quality"]
    assert refused
    assert HALT.start + 10 < refused[0] < HALT.stop  # the score needs many flat candles to fall
    eth_before = {a for s, m, a, _ in live_decisions if s == "ETH-USDT" and m < refused[0]}
    assert "entered" in eth_before
