"""The REST weight budget (a 60 s sliding window) and the venue's clock, on a fake clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper_trader.exchange.rest import WeightBudget
from paper_trader.exchange.venue_clock import VenueClock

WINDOW_S = 60.0
FLOAT_SLACK_S = 1e-9
WILD_WALL_MS = 4_102_444_800_000  # 2100-01-01: nothing here may depend on the wall clock


class FakeClock:
    """A clock that moves only when told; counts how often the wall clock is read."""

    def __init__(self, monotonic: float = 1_000.0, wall_ms: int = WILD_WALL_MS) -> None:
        self.mono = monotonic
        self.wall_ms = wall_ms
        self.wall_reads = 0

    def monotonic(self) -> float:
        return self.mono

    def now_ms(self) -> int:
        self.wall_reads += 1
        return self.wall_ms

    def advance(self, seconds: float) -> None:
        self.mono += seconds


# WeightBudget


def test_spending_up_to_the_limit_needs_no_wait() -> None:
    """Every spend while the window holds less than the limit goes at once."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)

    delays = []
    for _ in range(5):
        delays.append(budget.delay_s(2))
        budget.spend(2)
        clock.advance(1.0)

    assert delays == [0.0] * 5


def test_one_more_weight_waits_until_the_oldest_spend_leaves_the_window() -> None:
    """Past the limit the wait ends when enough old weight is 60 s old."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)
    budget.spend(4)  # t = 0
    clock.advance(10.0)
    budget.spend(6)  # t = 10
    clock.advance(10.0)  # t = 20

    assert budget.delay_s(1) == pytest.approx(40.0)  # the 4 spent at t = 0 frees room
    assert budget.delay_s(4) == pytest.approx(40.0)
    assert budget.delay_s(5) == pytest.approx(50.0)  # needs the 6 spent at t = 10 gone too


def test_spent_weight_leaves_the_window_after_exactly_60_seconds() -> None:
    """At 60 s the old spend no longer counts; a moment before, it still does."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)
    budget.spend(10)

    clock.advance(59.5)
    assert budget.delay_s(1) == pytest.approx(0.5)
    clock.advance(0.5)
    assert budget.delay_s(10) == 0.0


def test_pause_delays_every_spend_until_it_ends() -> None:
    """After pause(s) even a budget with room waits s seconds; a shorter pause does not cut it."""
    clock = FakeClock()
    budget = WeightBudget(1000, clock)

    budget.pause(30.0)
    clock.advance(10.0)
    budget.pause(5.0)

    assert budget.delay_s(1) == pytest.approx(20.0)
    clock.advance(20.0)
    assert budget.delay_s(1) == 0.0


def test_weight_the_venue_reports_used_counts_toward_the_budget() -> None:
    """observe_used(n) adds what other clients on the IP used, for the next 60 s."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)
    budget.spend(2)

    budget.observe_used(9)  # we spent 2, someone else 7

    assert budget.delay_s(1) == 0.0
    assert budget.delay_s(2) == pytest.approx(60.0)
    clock.advance(WINDOW_S)
    assert budget.delay_s(10) == 0.0


def test_reported_usage_below_our_own_count_changes_nothing() -> None:
    """A venue count lower than what we spent does not free budget."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)
    budget.spend(8)

    budget.observe_used(3)

    assert budget.delay_s(3) == pytest.approx(60.0)


def test_reported_usage_counts_even_when_old_spends_have_just_expired() -> None:
    """The venue's count is compared with what we spent in the last 60 s, not earlier."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)
    budget.spend(5)  # t = 0
    clock.advance(70.0)  # the 5 are out of the window, but nothing has expired them yet

    budget.observe_used(8)  # at t = 70 the IP has used 8 in the venue's current minute

    assert budget.delay_s(5) == pytest.approx(60.0)  # 8 + 5 > 10 until the 8 are 60 s old


def test_weight_larger_than_the_whole_budget_does_not_wait_forever() -> None:
    """An oversized request goes when the window is empty and waits a finite time otherwise."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)

    assert budget.delay_s(25) == 0.0
    budget.spend(25)
    clock.advance(1.0)
    assert budget.delay_s(25) == pytest.approx(59.0)
    clock.advance(59.0)
    assert budget.delay_s(25) == 0.0


def test_venue_window_holds_requests_heavier_than_what_is_left_until_it_resets() -> None:
    """observe_window(remaining, reset_in): spends count down; past it, the wait is the reset."""
    clock = FakeClock()
    budget = WeightBudget(1000, clock)

    budget.observe_window(3, 2.5)
    assert budget.delay_s(3) == 0.0
    assert budget.delay_s(4) == pytest.approx(2.5)
    budget.spend(2)
    assert budget.delay_s(1) == 0.0
    assert budget.delay_s(2) == pytest.approx(2.5)
    clock.advance(2.5)  # the venue's window reset: its count is forgotten
    assert budget.delay_s(100) == 0.0


def test_venue_window_does_not_outlive_its_reset_nor_free_the_own_budget() -> None:
    """A window reported generous does not lift the 60 s budget; an old one stops counting."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)
    budget.spend(10)

    budget.observe_window(900, 30.0)
    assert budget.delay_s(1) == pytest.approx(60.0)
    budget.observe_window(0, 1.0)
    clock.advance(1.0)
    budget.spend(0)  # spending after the reset does not revive the old count
    assert budget.delay_s(1) == pytest.approx(59.0)


def test_budget_never_reads_the_wall_clock() -> None:
    """The window is measured on the monotonic clock only."""
    clock = FakeClock()
    budget = WeightBudget(10, clock)

    budget.spend(10)
    budget.observe_used(10)
    budget.observe_window(0, 1.0)
    budget.pause(1.0)
    budget.delay_s(1)

    assert clock.wall_reads == 0


def test_budget_below_one_weight_per_minute_is_refused() -> None:
    """per_minute must be at least 1."""
    with pytest.raises(ValueError, match="per_minute"):
        WeightBudget(0, FakeClock())


Op = tuple[str, int]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("spend"), st.integers(min_value=1, max_value=10)),
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=90_000)),
    ),
    max_size=60,
)


@given(operations)
def test_weight_in_any_60_s_window_never_exceeds_the_limit(ops: list[Op]) -> None:
    """When every spend first waits delay_s, no 60 s window holds more than the limit."""
    limit = 10
    clock = FakeClock(monotonic=0.0)
    budget = WeightBudget(limit, clock)
    spends: list[tuple[float, int]] = []

    for kind, amount in ops:
        if kind == "advance":
            clock.advance(amount / 1000)
            continue
        for _ in range(10):  # float rounding may leave a sliver of wait
            delay = budget.delay_s(amount)
            if delay <= 0:
                break
            clock.advance(delay)
        else:
            pytest.fail(f"delay_s({amount}) did not reach 0: {delay}")
        budget.spend(amount)
        spends.append((clock.mono, amount))

    for now, _ in spends:
        # Spends exactly 60 s apart may differ by a rounding error in float seconds.
        window_start = now - WINDOW_S + FLOAT_SLACK_S
        in_window = sum(w for at, w in spends if window_start < at <= now)
        assert in_window <= limit


# VenueClock


def test_venue_clock_is_zero_before_anything_is_known() -> None:
    """Before a sync or an event time, now_ms() is 0 and the clock is not synced."""
    venue = VenueClock(FakeClock())

    assert venue.now_ms() == 0
    assert not venue.synced


def test_venue_clock_carries_the_server_time_forward_on_the_monotonic_clock() -> None:
    """After sync, now_ms() is the server time plus the monotonic time elapsed since."""
    clock = FakeClock()
    venue = VenueClock(clock)

    venue.sync(1_700_000_000_000)
    clock.advance(2.5)

    assert venue.synced
    assert venue.now_ms() == 1_700_000_002_500


def test_venue_clock_never_reads_the_wall_clock() -> None:
    """A wildly wrong local wall clock changes nothing: it is never read."""
    clock = FakeClock(wall_ms=WILD_WALL_MS)
    venue = VenueClock(clock)

    venue.sync(1_700_000_000_000)
    venue.observe(1_700_000_000_100)
    clock.advance(1.0)
    now = venue.now_ms()

    assert now == 1_700_000_001_000
    assert clock.wall_reads == 0


def test_event_times_pull_the_venue_clock_forward_but_never_back() -> None:
    """observe() of a later event time moves now_ms() forward; an earlier one does nothing."""
    clock = FakeClock()
    venue = VenueClock(clock)
    venue.sync(1_000_000)

    venue.observe(1_005_000)
    assert venue.now_ms() == 1_005_000
    venue.observe(990_000)
    assert venue.now_ms() == 1_005_000
    clock.advance(10.0)  # the carried clock overtakes the event time
    venue.observe(1_007_000)
    assert venue.now_ms() == 1_010_000


def test_event_times_alone_sync_the_venue_clock() -> None:
    """Without a server-time sync the latest event time is the venue's time."""
    venue = VenueClock(FakeClock())

    venue.observe(1_234_000)
    venue.observe(1_000_000)

    assert venue.synced
    assert venue.now_ms() == 1_234_000


def test_later_sync_with_an_earlier_server_time_wins_over_old_event_times() -> None:
    """A fresh server time replaces event times from before it, even if they were later."""
    clock = FakeClock()
    venue = VenueClock(clock)
    venue.sync(2_000_000)
    venue.observe(2_500_000)  # e.g. a simulator restarted at an earlier time

    venue.sync(1_500_000)
    assert venue.now_ms() == 1_500_000
    clock.advance(3.0)
    assert venue.now_ms() == 1_503_000
