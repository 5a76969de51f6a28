"""Long work on the loop gives it back between pieces, once a stretch has used its budget."""

import asyncio
from collections.abc import Generator

from paper_trader.runtime.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_yields_only_once_a_stretch_has_used_its_budget() -> None:
    clock = FakeClock()
    pacer = Pacer(budget_s=0.002, clock=clock)
    ran: list[int] = []

    async def other() -> None:
        ran.append(len(ran))

    task = asyncio.create_task(other())
    for _ in range(3):  # 3 pieces of 0.5 ms: within the budget, the other task waits
        clock.now += 0.0005
        await pacer.pace()
    assert ran == []
    assert pacer.yields == 0
    clock.now += 0.0006  # 2.1 ms into the stretch: the next pace lets the other task run
    await pacer.pace()
    assert ran == [0]
    assert pacer.yields == 1
    await pacer.pace()  # a new stretch began at the yield
    assert pacer.yields == 1
    await task


async def test_start_begins_a_new_stretch() -> None:
    clock = FakeClock()
    pacer = Pacer(budget_s=0.002, clock=clock)
    clock.now = 1.0  # an await of the work's own (an executor) took a second
    pacer.start()
    clock.now += 0.001
    await pacer.pace()
    assert pacer.yields == 0


async def test_a_callback_due_during_a_stretch_runs_before_the_next_piece() -> None:
    """A timer (or a frame read) that fell due while a stretch ran gets its turn at the
    yield, not one stretch later: the loop queues it behind the work's own next step."""
    clock = FakeClock()
    pacer = Pacer(budget_s=0.002, clock=clock)
    order: list[str] = []
    asyncio.get_running_loop().call_later(0, order.append, "timer")
    clock.now += 0.003  # the first piece used the budget
    await pacer.pace()
    order.append("second piece")
    assert order == ["timer", "second piece"]


async def test_drive_runs_stepped_work_to_its_value_and_lets_others_in_between() -> None:
    clock = FakeClock()
    pacer = Pacer(budget_s=0.002, clock=clock)
    ran: list[str] = []

    def steps() -> Generator[None, None, int]:
        for piece in range(4):
            ran.append(f"piece {piece}")
            clock.now += 0.0015  # every second piece crosses the budget
            yield
        return 42

    async def other() -> None:
        ran.append("other")

    task = asyncio.create_task(other())
    assert await pacer.drive(steps()) == 42
    assert ran == ["piece 0", "piece 1", "other", "piece 2", "piece 3"]
    assert pacer.yields == 2
    await task
