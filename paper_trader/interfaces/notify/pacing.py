"""Our own pacing of sends, on the monotonic clock (PTB's AIORateLimiter blocks every chat
while one waits out a 429, and retries behind our back: not used).

Telegram's limits: about one message a second per chat (short bursts tolerated), 20 a minute
to a group, about 30 a second overall. Each destination has a ``Pacer`` of the limits it is
under; the overall one is shared by every chat of the bot. Everything that sends as the bot —
the notifier and the answers to commands — takes its turns from one ``TelegramPacing``, so
together they stay under the limits, and a 429 one of them gets holds the chat for both.
"""

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol


class Limit(Protocol):
    """One rate limit: how long to wait before the next send, and counting a send."""

    def delay(self, now: float) -> float:
        """Return the seconds to wait from ``now`` before a send is allowed (0: go)."""
        ...

    def take(self, now: float) -> None:
        """Count a send made at ``now``."""
        ...


class Window:
    """At most ``limit`` sends in any ``period_s`` seconds (exact, sliding)."""

    __slots__ = ("_limit", "_period_s", "_sends")

    def __init__(self, limit: int, period_s: float) -> None:
        if limit < 1 or period_s <= 0:
            raise ValueError("a window needs limit >= 1 and period_s > 0")
        self._limit = limit
        self._period_s = period_s
        self._sends: deque[float] = deque(maxlen=limit)

    def delay(self, now: float) -> float:
        """Return how long until the oldest of the last ``limit`` sends leaves the window."""
        if len(self._sends) < self._limit:
            return 0.0
        return max(0.0, self._sends[0] + self._period_s - now)

    def take(self, now: float) -> None:
        """Count a send."""
        self._sends.append(now)


class Bucket:
    """A token bucket: ``rate`` sends a second on average, bursts of ``burst``."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs rate > 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at: float | None = None

    def delay(self, now: float) -> float:
        """Return how long until one token is there."""
        tokens = self._refilled(now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def take(self, now: float) -> None:
        """Spend one token (the balance may go below zero: the next waits longer)."""
        self._tokens = self._refilled(now) - 1
        self._at = now

    def _refilled(self, now: float) -> float:
        if self._at is None:
            return self._tokens
        return min(self._burst, self._tokens + (now - self._at) * self._rate)


class Pacer:
    """Every limit one destination is under, and a hold until a 429's ``retry_after``."""

    __slots__ = ("_held_until", "_limits")

    def __init__(self, limits: Sequence[Limit]) -> None:
        self._limits = tuple(limits)
        self._held_until = 0.0

    def delay(self, now: float) -> float:
        """Return how long until the hold has passed and every limit allows a send."""
        waits = (limit.delay(now) for limit in self._limits)
        return max(self._held_until - now, *waits, 0.0)

    def hold(self, until: float) -> None:
        """Allow no send before ``until`` (monotonic seconds)."""
        self._held_until = max(self._held_until, until)

    def take(self, now: float) -> None:
        """Count a send on every limit."""
        for limit in self._limits:
            limit.take(now)


def overall_telegram_limit() -> Window:
    """Return the bot's limit over all its chats: 30 messages a second."""
    return Window(30, 1.0)


def telegram_pacer(chat_id: int, overall: Limit) -> Pacer:
    """Return a chat's pacer: 1 a second (bursts of 3), 20 a minute for a group (negative
    id), and the bot's ``overall`` limit."""
    limits: list[Limit] = [Bucket(1.0, 3), overall]
    if chat_id < 0:
        limits.append(Window(20, 60.0))
    return Pacer(limits)


class Signal:
    """A sign from elsewhere that a destination answers again (the bot's long poll succeeded):
    what waits for it stops waiting."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Wake every waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the sign; return whether it came."""
        event = self._event
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            return False
        return True


class TelegramPacing:
    """The pacing of one bot: a ``telegram_pacer`` per chat under one overall limit, and the
    sign that Telegram answers again (``answering``: fired by each successful long poll)."""

    def __init__(self) -> None:
        self._overall = overall_telegram_limit()
        self._chats: dict[int, Pacer] = {}
        self.answering = Signal()

    def chat(self, chat_id: int) -> Pacer:
        """Return the pacer of ``chat_id`` (the same one for every sender)."""
        pacer = self._chats.get(chat_id)
        if pacer is None:
            pacer = self._chats[chat_id] = telegram_pacer(chat_id, self._overall)
        return pacer

    async def turn(self, chat_id: int, monotonic: Callable[[], float]) -> None:
        """Wait until ``chat_id`` may be sent to, then count the send."""
        pacer = self.chat(chat_id)
        while True:
            wait = pacer.delay(monotonic())
            if wait <= 0:
                pacer.take(monotonic())
                return
            await asyncio.sleep(wait)
