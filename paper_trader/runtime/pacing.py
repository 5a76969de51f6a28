"""Long work on the event loop, in stretches: give the loop back every few milliseconds.

A catch-up (the REST warm-up, a gap backfilled, a replay) hands the decision task a thousand
instants at once. Deciding them is pure work, and done in one go it held the loop for seconds:
no frame read, no health answered, no command taken. ``Pacer.pace`` is awaited between two
pieces of such work (two instants, two chunks); it yields to the loop once ``budget_s`` has
passed since the last yield, and costs a clock read otherwise. It never changes what is
computed, only when other tasks get their turn: the work's order and results are the same.
Work that is one piece per instant but long (a 100-symbol trading step) is written as a
generator that yields between its parts, and ``Pacer.drive`` paces it.
"""

import asyncio
import time
from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")

STRETCH_S = 0.002  # the longest stretch of work between two yields, give or take one piece


class Pacer:
    """Yield to the event loop when a stretch of work has run ``budget_s``."""

    __slots__ = ("_budget_s", "_clock", "_since", "yields")

    def __init__(
        self, budget_s: float = STRETCH_S, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._budget_s = budget_s
        self._clock = clock
        self._since = clock()
        self.yields = 0

    def start(self) -> None:
        """Begin a stretch now (when the work resumes after an await of its own)."""
        self._since = self._clock()

    async def pace(self) -> None:
        """Yield to the loop if the current stretch has used its budget."""
        if self._clock() - self._since >= self._budget_s:
            # Twice: after the first, the loop runs this task's next step before the timers
            # and I/O callbacks that fell due meanwhile (they queue behind it), so the others
            # would wait a second stretch; the second step does no work, and lets them go.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.yields += 1
            self._since = self._clock()

    async def drive(self, steps: Generator[None, None, T]) -> T:
        """Run ``steps`` to its end, pacing between its parts; return its value."""
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]  # the generator's T
            await self.pace()
