"""The instant aligner releases the candles of several series in (open time, symbol) order."""

from collections.abc import Callable

from paper_trader.market.aligner import InstantAligner, Stall

A = ("binance", "BTCUSDT")
B = ("binance", "ETHUSDT")
STALL_S = 10.0


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def aligner(
    clock: FakeClock,
    *,
    max_items: int = 200_000,
    on_stall: Callable[[Stall], None] | None = None,
) -> InstantAligner[str]:
    """Return an aligner over series A (BTCUSDT) and B (ETHUSDT) that stalls after 10 s."""
    return InstantAligner(
        [A, B], monotonic=clock, stall_s=STALL_S, max_items=max_items, on_stall=on_stall
    )


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


def test_a_series_never_seen_holds_the_others_until_their_instant_waited_the_limit() -> None:
    """ETH never delivers: BTC at 1 waits 10 s from when it was held, then goes alone."""
    clock, stalls = FakeClock(), list[Stall]()
    held = aligner(clock, on_stall=stalls.append)
    clock.now = 5.0
    push(held, A, 1)
    clock.now = 14.999
    assert held.release() == []
    assert stalls == []
    clock.now = 15.001
    assert held.release() == ["BTCUSDT@1"]
    assert stalls == [
        Stall(key=B, through_ms=None, waiting_ms=1, reason="the candles of 1 waited more than 10 s")
    ]
    push(held, A, 2)
    assert held.release() == ["BTCUSDT@2"]  # a stalled series is not waited for again
    assert held.stalls == 1


def test_hours_without_candles_do_not_stall_a_series_nothing_waits_for() -> None:
    """Quiet for an hour of wall time, then BTC at 2: it waits for ETH at 2 as ever.

    The stall clock starts when a candle is held, not when a series last delivered: a long
    warm-up of one series, or a market that was quiet for everyone, changes no instant.
    """
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 1)
    push(held, B, 1)
    assert held.release() == ["BTCUSDT@1", "ETHUSDT@1"]
    clock.now = 3_600.0
    push(held, A, 2)
    assert held.release() == []
    clock.now = 3_609.0
    push(held, B, 2)
    assert held.release() == ["BTCUSDT@2", "ETHUSDT@2"]
    assert held.stalls == 0


def test_a_stalled_series_that_comes_back_is_late_then_holds_the_others_again() -> None:
    """ETH returns at 1 after BTC's 1 and 2 went alone: its candle is late and released on
    its own; BTC at 3 then waits for ETH again."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 1)
    push(held, A, 2)
    clock.now = 10.5
    assert held.release() == ["BTCUSDT@1", "BTCUSDT@2"]
    assert held.is_decided(1)
    assert held.is_decided(2)
    assert not held.is_decided(3)
    push(held, B, 1)
    push(held, A, 3)
    assert held.release() == ["ETHUSDT@1"]
    assert held.release() == []
    push(held, B, 2)
    push(held, B, 3)
    assert held.release() == ["ETHUSDT@2", "BTCUSDT@3", "ETHUSDT@3"]


def test_when_every_series_has_stalled_everything_held_is_released() -> None:
    """Neither series reaches the other's instant within the limit: all comes out in order."""
    clock = FakeClock()
    held = aligner(clock)
    sol = ("binance", "SOLUSDT")
    held.push(sol, 2, "SOLUSDT", "SOLUSDT@2")
    clock.now = 60.0
    assert held.release() == ["SOLUSDT@2"]
    assert held.stalls == 2


def test_a_mark_completes_a_series_without_a_candle() -> None:
    """ETH has no candle at 1 (rejected, or the venue has none): its mark releases BTC at 1."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 1)
    push(held, A, 2)
    held.mark(B, 1)
    assert held.release() == ["BTCUSDT@1"]
    held.mark(B, 0)  # an older time never moves a series back
    assert held.release() == []
    held.mark(B, 2)
    assert held.release() == ["BTCUSDT@2"]


def test_a_mark_for_every_series_completes_an_instant_of_a_merged_replay() -> None:
    """A replay's files merged by time: time 2 began, so time 1 is complete for everyone."""
    clock = FakeClock()
    held = aligner(clock)
    push(held, A, 1)
    assert held.release() == []
    held.mark(None, 1)
    assert held.release() == ["BTCUSDT@1"]


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
    """Three BTC candles over a limit of 2 while ETH holds: time 1 is forced out, ETH stalls."""
    clock = FakeClock()
    held = aligner(clock, max_items=2)
    push(held, A, 1)
    push(held, A, 2)
    assert held.release() == []
    assert held.forced == 0
    push(held, A, 3)
    assert held.release() == ["BTCUSDT@1"]
    assert held.forced == 1
    assert held.stalls == 1  # ETH held it back: stalled and reported
    assert len(held) == 2
    assert held.release() == ["BTCUSDT@2", "BTCUSDT@3"]  # ETH is no longer waited for
    assert held.forced == 1


def test_overflow_forces_a_whole_instant_of_several_symbols() -> None:
    """Over the limit, every candle of the oldest time comes out together, in symbol order."""
    clock = FakeClock()
    held = aligner(clock, max_items=2)
    sol = ("binance", "SOLUSDT")
    held.mark(sol, 0)
    push(held, B, 1)
    push(held, A, 1)
    push(held, A, 2)
    assert held.release() == ["BTCUSDT@1", "ETHUSDT@1"]
    assert held.forced == 1
    assert len(held) == 1
