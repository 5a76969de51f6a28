"""The instant aligner releases the candles of several series in (open time, symbol) order."""

from paper_trader.market.aligner import InstantAligner

A = ("binance", "BTCUSDT")
B = ("binance", "ETHUSDT")
STALL_S = 10.0


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def aligner(clock: FakeClock, *, max_items: int = 200_000) -> InstantAligner[str]:
    """Return an aligner over series A (BTCUSDT) and B (ETHUSDT) that stalls after 10 s."""
    return InstantAligner([A, B], monotonic=clock, stall_s=STALL_S, max_items=max_items)


def push(held: InstantAligner[str], key: tuple[str, str], minute: int) -> None:
    """Push the candle of ``key`` at ``minute``, labelled like ``BTCUSDT@3``."""
    held.push(key, minute, key[1], f"{key[1]}@{minute}")


def test_an_instant_is_released_only_when_both_series_reached_it() -> None:
    """BTC at 1 waits for ETH at 1; then both come out, BTC first."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 1)
    assert held.release() == []
    push(held, B, 1)
    assert held.release() == ["BTCUSDT@1", "ETHUSDT@1"]
    assert len(held) == 0


def test_items_come_out_sorted_by_time_then_symbol_whatever_the_push_order() -> None:
    """ETH before BTC at each time, later times pushed first: released as (time, symbol)."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, B, 3)
    push(held, B, 2)
    push(held, A, 3)
    push(held, A, 2)
    assert held.release() == ["BTCUSDT@2", "ETHUSDT@2", "BTCUSDT@3", "ETHUSDT@3"]


def test_a_series_ahead_is_held_at_the_slower_series_watermark() -> None:
    """BTC at 2 and 3, ETH at 2: only time 2 is complete; BTC at 3 stays held."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 2)
    push(held, A, 3)
    push(held, B, 2)
    assert held.release() == ["BTCUSDT@2", "ETHUSDT@2"]
    assert len(held) == 1
    push(held, B, 3)
    assert held.release() == ["BTCUSDT@3", "ETHUSDT@3"]


def test_a_series_never_seen_holds_the_others_until_it_stalls() -> None:
    """ETH never delivers: BTC waits until 10 s after start, then flows on its own."""
    clock = FakeClock()
    held = aligner(clock)
    clock.now = 5.0
    push(held, A, 1)
    clock.now = 9.999
    assert held.release() == []
    clock.now = STALL_S
    assert held.release() == ["BTCUSDT@1"]
    clock.now = 11.0
    push(held, A, 2)
    assert held.release() == ["BTCUSDT@2"]


def test_a_stalled_series_that_comes_back_holds_the_others_again() -> None:
    """ETH returns late at 1: its candle is released alone, then BTC at 3 waits for ETH again."""
    clock = FakeClock()
    held = aligner(clock)
    clock.now = 10.5
    push(held, A, 1)
    push(held, A, 2)
    assert held.release() == ["BTCUSDT@1", "BTCUSDT@2"]
    clock.now = 12.0
    push(held, B, 1)
    push(held, A, 3)
    assert held.release() == ["ETHUSDT@1"]
    assert held.release() == []
    push(held, B, 3)
    assert held.release() == ["BTCUSDT@3", "ETHUSDT@3"]


def test_a_series_that_falls_silent_stops_holding_after_the_stall_time() -> None:
    """ETH delivered at 1, then nothing: BTC at 2 is held for 10 s after ETH was last seen."""
    clock = FakeClock()
    held = aligner(clock)
    clock.now = 1.0
    push(held, A, 1)
    push(held, B, 1)
    assert held.release() == ["BTCUSDT@1", "ETHUSDT@1"]
    clock.now = 5.0
    push(held, A, 2)
    clock.now = 10.999
    assert held.release() == []
    clock.now = 11.0
    assert held.release() == ["BTCUSDT@2"]


def test_when_every_series_has_stalled_everything_seen_is_released() -> None:
    """Both silent for longer than the stall time: the held candles come out in order."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 2)
    push(held, B, 1)
    clock.now = 60.0
    assert held.release() == ["ETHUSDT@1", "BTCUSDT@2"]


def test_a_dropped_candle_seen_advances_the_watermark() -> None:
    """ETH's candle at 1 was dropped but seen: BTC at 1 need not wait for it."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 1)
    push(held, A, 2)
    held.seen(B, 1)
    assert held.release() == ["BTCUSDT@1"]
    held.seen(B, 0)  # an older time never moves the watermark back
    held.seen(B, 2)
    assert held.release() == ["BTCUSDT@2"]


def test_a_series_not_declared_holds_the_others_once_it_is_seen() -> None:
    """A third series that appears at 1 holds BTC and ETH at 2 until it reaches 2."""
    clock = FakeClock()
    held = aligner(clock)
    sol = ("binance", "SOLUSDT")
    held.push(sol, 1, "SOLUSDT", "SOLUSDT@1")
    push(held, A, 2)
    push(held, B, 2)
    assert held.release() == ["SOLUSDT@1"]
    held.push(sol, 2, "SOLUSDT", "SOLUSDT@2")
    assert held.release() == ["BTCUSDT@2", "ETHUSDT@2", "SOLUSDT@2"]


def test_flush_returns_everything_held_in_order() -> None:
    """At the end of a stream, held candles come out in (time, symbol) order, watermark or not."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, B, 2)
    push(held, A, 3)
    push(held, A, 1)
    push(held, B, 1)
    assert held.flush() == ["BTCUSDT@1", "ETHUSDT@1", "ETHUSDT@2", "BTCUSDT@3"]
    assert len(held) == 0
    assert held.flush() == []


def test_release_of_nothing_returns_nothing() -> None:
    """An empty aligner releases an empty list and forces nothing."""
    clock = FakeClock()
    held = aligner(clock, max_items=0)
    assert held.release() == []
    assert held.forced == 0


def test_overflow_releases_the_oldest_instant_and_counts_it() -> None:
    """Three BTC candles over a limit of 2 while ETH holds: time 1 is forced out."""
    clock = FakeClock()
    held = aligner(clock, max_items=2)
    push(held, A, 1)
    push(held, A, 2)
    assert held.release() == []
    assert held.forced == 0
    push(held, A, 3)
    assert held.release() == ["BTCUSDT@1"]
    assert held.forced == 1
    assert len(held) == 2
    assert held.release() == []
    assert held.forced == 1


def test_overflow_forces_a_whole_instant_of_several_symbols() -> None:
    """Over the limit, every candle of the oldest time comes out together, in symbol order."""
    clock = FakeClock()
    held = aligner(clock, max_items=2)
    sol = ("binance", "SOLUSDT")
    held.seen(sol, 0)
    push(held, B, 1)
    push(held, A, 1)
    push(held, A, 2)
    assert held.release() == ["BTCUSDT@1", "ETHUSDT@1"]
    assert held.forced == 1
    assert len(held) == 1
