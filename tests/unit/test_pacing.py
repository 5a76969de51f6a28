"""Long work on the loop gives it back between pieces, once a stretch has used its budget."""

import asyncio

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
