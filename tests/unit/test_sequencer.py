"""Tests for the per-series sequencer: each closed candle once, in order, gaps reported."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.sequencer import GapBefore, SeriesSequencer
from paper_trader.exchange.wire import KlineUpdate, Subscription

MINUTE = 60_000
SUB = Subscription(parse_pair("BTCUSDT"), Interval.M1)


def update(index: int, *, closed: bool | None, close: str = "100") -> KlineUpdate:
    """Return an update for the candle opening at ``index`` minutes."""
    return KlineUpdate(
        SUB.symbol, SUB.interval, index * MINUTE, closed, None, "100", "101", "99", close, "5"
    )


def sequencer(last: int | None = 0) -> SeriesSequencer:
    """Return a sequencer whose last emitted candle opened at ``last`` minutes."""
    return SeriesSequencer(SUB, Venue.BINANCE, last_open_ms=None if last is None else last * MINUTE)


def test_closed_candles_in_order_are_emitted_once() -> None:
    """A closed frame right after the last candle is emitted; the same frame again is not."""
    seq = sequencer()
    emitted = seq.on_update(update(1, closed=True))
    assert isinstance(emitted, Candle)
    assert emitted.open_time_ms == MINUTE
    assert emitted.close == Decimal("100")
    assert seq.on_update(update(1, closed=True)) is None
    assert (seq.emitted, seq.duplicates) == (1, 1)


def test_open_updates_emit_nothing() -> None:
    """Updates of a candle still open are not emitted (Binance ``x: false``)."""
    seq = sequencer()
    assert seq.on_update(update(1, closed=False)) is None
    assert seq.last_open_ms == 0


def test_a_skipped_candle_is_a_gap_before_the_newer_one() -> None:
    """A closed candle beyond the next expected one asks for the missing range first."""
    seq = sequencer()
    step = seq.on_update(update(4, closed=True))
    assert isinstance(step, GapBefore)
    assert (step.start_ms, step.end_ms) == (MINUTE, 4 * MINUTE)
    assert seq.last_open_ms == 0  # nothing emitted until the gap is filled
    for index in (1, 2, 3):
        assert seq.accept(update(index, closed=True).to_candle(Venue.BINANCE))
    assert seq.accept(step.candle)
    assert seq.last_open_ms == 4 * MINUTE


def test_reordered_closed_frames_come_out_in_order_without_duplicates() -> None:
    """Candle 2 closing before candle 1 is handled by the gap path; the late candle 1 is dropped."""
    seq = sequencer()
    step = seq.on_update(update(2, closed=True))
    assert isinstance(step, GapBefore)
    seq.accept(update(1, closed=True).to_candle(Venue.BINANCE))
    seq.accept(step.candle)
    assert seq.on_update(update(1, closed=True)) is None
    assert seq.duplicates == 1


def test_flagless_candle_is_final_when_a_later_one_starts() -> None:
    """Without a closed flag, the pending candle is emitted once the next candle appears."""
    seq = sequencer()
    assert seq.on_update(update(1, closed=None, close="100")) is None
    assert seq.on_update(update(1, closed=None, close="102")) is None  # re-emission updates it
    emitted = seq.on_update(update(2, closed=None))
    assert isinstance(emitted, Candle)
    assert (emitted.open_time_ms, emitted.close) == (MINUTE, Decimal("102"))
    assert seq.pending is not None
    assert seq.pending.open_time_ms == 2 * MINUTE


def test_flagless_older_update_is_out_of_order() -> None:
    """An update older than the pending candle is dropped and counted."""
    seq = sequencer()
    seq.on_update(update(3, closed=None))
    assert seq.on_update(update(2, closed=None)) is None
    assert seq.out_of_order == 1


def test_pending_candle_is_due_after_its_end_plus_grace() -> None:
    """The pending candle becomes due on the venue clock, not before its end plus the grace."""
    seq = sequencer()
    seq.on_update(update(1, closed=None))
    assert not seq.is_due(2 * MINUTE + 999, grace_ms=1000)
    assert seq.is_due(2 * MINUTE + 1000, grace_ms=1000)


def test_backfill_clears_the_pending_candle_it_covers() -> None:
    """A backfilled candle at or after the pending one replaces it (REST is authoritative)."""
    seq = sequencer()
    seq.on_update(update(1, closed=None))
    assert seq.accept(update(1, closed=True, close="103").to_candle(Venue.BINANCE))
    assert seq.pending is None


def test_first_candle_without_history_is_emitted() -> None:
    """With nothing emitted before, the first closed candle is emitted as is."""
    seq = sequencer(last=None)
    assert isinstance(seq.on_update(update(7, closed=True)), Candle)


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=200))
def test_any_arrival_order_emits_each_candle_once_in_order(arrivals: list[int]) -> None:
    """Whatever the order and repetition of closed frames, emissions are strictly increasing."""
    seq = sequencer()
    out: list[int] = []
    for index in arrivals:
        step = seq.on_update(update(index, closed=True))
        if isinstance(step, GapBefore):
            for missing in range(step.start_ms // MINUTE, step.end_ms // MINUTE):
                if seq.accept(update(missing, closed=True).to_candle(Venue.BINANCE)):
                    out.append(missing)
            step = step.candle if seq.accept(step.candle) else None
        if isinstance(step, Candle):
            out.append(step.open_time_ms // MINUTE)
    assert out == list(range(1, max(arrivals, default=0) + 1))
