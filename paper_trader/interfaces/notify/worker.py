"""One destination's delivery loop: the outbox's pending rows → the policy → the pacer → the
transport, every outcome recorded in the outbox before the next send.

Nothing is lost and nothing is sent twice knowingly: a message is marked sent (with its
message ids) once it arrived, and a possible repeat while it is on its way (so a ``kill -9``
mid-send makes the next run resend it marked); a 429 blocks the destination for exactly
``retry_after``; a network failure or a refusal (403, chat not found) keeps it pending and
backs off; an entity-parse error is resent once as plain text; a timeout once, marked
"(possible repeat)"; only a message the channel can never take is failed, with the reason.
"""

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from paper_trader.clock import Clock
from paper_trader.control.outbox import Outbox
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.interfaces.notify.channel import Failure, NotSent, Outcome, Sent, Transport
from paper_trader.interfaces.notify.policy import HOUR_MS, DeliveryPolicy, Outgoing
from paper_trader.interfaces.notify.render import POSSIBLE_REPEAT, late_prefix
from paper_trader.interfaces.telegram.text import Line, Message
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.logs import get_logger

log = get_logger("notifier")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """Timing of a destination's loop.

    ``late_ms``: a message sent later than this after its event starts with the event's time;
    ``backoff`` after a network failure, ``refused_backoff`` after a refusal; ``idle_s``: the
    longest wait between two looks at the outbox; ``batch``: pending rows read at a time, per
    category (so a held-back backlog of one never hides another's).
    """

    late_ms: int
    backoff: Backoff
    refused_backoff: Backoff
    idle_s: float = 5.0
    batch: int = 200
    window_ms: int = HOUR_MS


@dataclass(slots=True)
class DeliveryStats:
    """What a destination's loop did since it started."""

    messages: int = 0  # messages (parts) that arrived
    delivered: int = 0  # notifications delivered, alone or folded
    folded: int = 0  # notifications delivered inside a digest or a repeat count
    retried: int = 0  # sends made again after a failed one
    rate_limited: int = 0
    resent_plain: int = 0
    possible_repeats: int = 0
    refused: int = 0
    unreachable: int = 0
    failed: int = 0  # notifications given up (the channel can never take them)


class ChannelWorker:
    """Deliver one destination's pending notifications, in the policy's order, forever."""

    def __init__(
        self,
        transport: Transport,
        outbox: Outbox,
        policy: DeliveryPolicy,
        *,
        clock: Clock,
        config: WorkerConfig,
        expand: Callable[[Outgoing], Awaitable[Outgoing]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``expand`` fills in a message made at delivery (a report's text and chart)."""
        self._transport = transport
        self._expand = expand
        self._outbox = outbox
        self._policy = policy
        self._clock = clock
        self._config = config
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._wake = asyncio.Event()
        self._blocked_until = 0.0  # monotonic: nothing is sent before it
        self._deferred_until_ms = 0  # the wall-clock time the rows deferred with it wait for
        self._failures = 0  # consecutive failed sends
        self._trouble: str | None = None
        self._refusal_said = False  # a refusal is logged once, until a send works again
        self._down = False  # the last send found the destination unreachable
        self._interrupted: tuple[int, ...] = ()  # a delivery cut short by a stop
        self.stats = DeliveryStats()
        self.pending = 0

    @property
    def name(self) -> str:
        """Return the destination's channel name."""
        return self._transport.name

    def wake(self) -> None:
        """Look at the outbox now (new rows were claimed)."""
        self._wake.set()

    async def run(self) -> None:
        """Restore the windows from the outbox, then deliver until cancelled."""
        await self._restore()
        while True:
            await self._clear()
            choice = await self._choose()
            if choice is None:
                continue
            try:
                await self._deliver(choice)
            except asyncio.CancelledError:
                self._interrupted = choice.ids
                raise

    async def flush(self) -> None:
        """Deliver what is ready now, without waiting out a block or the policy (at a stop).

        A delivery the stop cut short may have arrived: it is left pending, marked as a
        possible repeat (its "sent" may yet commit: then the mark changes nothing).
        """
        skip = self._interrupted
        if skip:
            await self._outbox.defer(
                self.name,
                skip,
                until_ms=self._clock.now_ms(),
                error="interrupted by a stop: it may have arrived",
                possible_repeat=True,
            )
        while self._blocked_until <= self._clock.monotonic():
            outgoing = await self._choose(idle=False, skip=skip)
            if outgoing is None:
                return
            await self._clear()
            await self._deliver(outgoing)

    def health(self) -> ComponentHealth:
        """Return DEGRADED while sends fail (with the reason), else OK; the counts either way."""
        s = self.stats
        counts = [f"{s.delivered} sent", f"{self.pending} pending"]
        extras = {
            "folded": s.folded,
            "retried": s.retried,
            "rate limited": s.rate_limited,
            "refused": s.refused,
            "unreachable": s.unreachable,
            "resent as plain text": s.resent_plain,
            "possible repeats": s.possible_repeats,
            "failed": s.failed,
        }
        counts += [f"{n} {what}" for what, n in extras.items() if n]
        status = HealthStatus.OK if self._trouble is None else HealthStatus.DEGRADED
        state = "ok" if self._trouble is None else self._trouble
        detail = f"{self.name}: {state} ({', '.join(counts)})"
        return ComponentHealth(component=self.name, status=status, detail=detail)

    async def _restore(self) -> None:
        now = self._clock.now_ms()
        self._policy.restore(await self._outbox.recent(self.name, now - self._config.window_ms))
        pending = await self._outbox.pending(self.name, self._config.batch)
        until = max((n.next_attempt_at_ms for n in pending), default=0)
        if until > now:  # an earlier run was told to wait (a 429, a backoff): still honoured
            self._blocked_until = self._clock.monotonic() + (until - now) / 1000
            self._deferred_until_ms = until

    async def _clear(self) -> None:
        """Wait until the destination is neither blocked nor over a pacing limit; a backoff
        after it was unreachable ends early at a sign that it answers again."""
        while True:
            now = self._clock.monotonic()
            blocked, paced = self._blocked_until - now, self._transport.pacer.delay(now)
            if max(blocked, paced) <= 0:
                return
            if self._down and blocked > paced:
                if await self._transport.answering(blocked):
                    self._blocked_until = min(self._blocked_until, self._clock.monotonic())
                continue
            await asyncio.sleep(max(blocked, paced))

    async def _choose(self, *, idle: bool = True, skip: tuple[int, ...] = ()) -> Outgoing | None:
        """Return the next message (not one of ``skip``); with nothing ready, wait (``idle``)
        and return None."""
        self._wake.clear()
        pending = await self._outbox.pending(self.name, self._config.batch)
        pending = [n for n in pending if n.id not in skip]
        self.pending = len(pending)
        now = self._clock.now_ms()
        # Once the block has passed, what was deferred with it is due (whatever the wall clock
        # says: the block, on the monotonic clock, is what keeps sends back).
        unblocked = self._clock.monotonic() >= self._blocked_until
        due = max(now, self._deferred_until_ms) if unblocked else now
        choice = self._policy.choose(pending, now, due_ms=due)
        if choice.outgoing is None and idle:
            timeout = self._config.idle_s
            if choice.wake_at_ms is not None:
                timeout = min(timeout, max(0.0, (choice.wake_at_ms - now) / 1000))
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
        return choice.outgoing

    async def _deliver(self, outgoing: Outgoing) -> None:
        """Send every part not yet sent, then record the delivery (or why it waits)."""
        outgoing = await self._expanded(outgoing)
        parts = self._transport.parts(outgoing)
        head = outgoing.head
        single = len(outgoing.notifications) == 1
        start = min(head.parts_sent, len(parts)) if single else 0
        ids = list(head.message_ids[:start]) if single else []
        repeat = any(n.possible_repeat for n in outgoing.notifications)
        marked = repeat
        late = self._clock.now_ms() - head.created_at_ms > self._config.late_ms
        for index in range(start, len(parts)):
            prefix = late_prefix(head.created_at_ms) if index == 0 and late else ""
            outcome, repeat = await self._send_part(parts[index].prefixed(prefix), outgoing, repeat)
            marked = marked or repeat
            if isinstance(outcome, NotSent):
                await self._not_sent(outgoing, outcome, marked=repeat)
                return
            ids.append(outcome.message_id)
            repeat = False
            if single and index + 1 < len(parts):
                await self._outbox.progress(
                    self.name, head.id, parts_sent=index + 1, message_ids=ids
                )
        await self._sent(outgoing, ids, possible_repeat=marked)

    async def _expanded(self, outgoing: Outgoing) -> Outgoing:
        """Return the message as ``expand`` fills it; as queued (and why) if that fails."""
        if self._expand is None:
            return outgoing
        try:
            return await self._expand(outgoing)
        except Exception as exc:  # noqa: BLE001 -- the stored text still goes out
            error = f"{type(exc).__name__}: {exc}"
            log.warning("notification_not_expanded", channel=self.name, error=error)
            return replace(outgoing, lines=(*outgoing.lines, Line(f"(not made: {error})")))

    async def _send_part(
        self, part: Message, outgoing: Outgoing, repeat: bool
    ) -> tuple[Outcome, bool]:
        """Send one part: once more as plain text if its entities were refused, once more
        marked as a possible repeat if it timed out. Return the outcome and the mark."""
        plain = marked = False
        while True:
            body = part.prefixed(POSSIBLE_REPEAT) if repeat else part
            outcome = await self._send(body, outgoing, plain=plain)
            if isinstance(outcome, Sent):
                return outcome, repeat
            if outcome.failure is Failure.UNPARSEABLE and not plain:
                plain = True
                self.stats.resent_plain += 1
                log.warning("notification_resent_plain", channel=self.name, error=outcome.detail)
                continue
            if outcome.failure is Failure.UNCERTAIN and not marked:
                repeat = marked = True
                self.stats.possible_repeats += 1
                log.warning("notification_possible_repeat", channel=self.name, ids=outgoing.ids)
                continue
            return _settled(outcome), repeat

    async def _send(self, part: Message, outgoing: Outgoing, *, plain: bool) -> Outcome:
        await self._clear()
        # Counted at once: the bot's answers share the pacer, and may take a turn while the
        # mark below is written.
        self._transport.pacer.take(self._clock.monotonic())
        # Until its outcome is recorded the send may have arrived: a kill -9 must not lose that.
        await self._outbox.sending(self.name, outgoing.ids)
        outcome = await self._transport.send(part, outgoing, plain=plain)
        if isinstance(outcome, NotSent) and outcome.failure is not Failure.REJECTED:
            self.stats.retried += 1
        return outcome

    async def _sent(self, outgoing: Outgoing, ids: list[str], *, possible_repeat: bool) -> None:
        now = self._clock.now_ms()
        await self._outbox.mark_sent(
            self.name,
            outgoing.ids,
            message_ids=ids,
            at_ms=now,
            possible_repeat=possible_repeat,
            folded=outgoing.folded,
        )
        self._policy.record(outgoing, now)
        self.stats.messages += len(ids)
        self.stats.delivered += len(outgoing.ids)
        self.stats.folded += len(outgoing.ids) if outgoing.folded else 0
        if self._failures:
            log.info("notifications_resumed", channel=self.name, after_failures=self._failures)
        self._failures, self._trouble, self._refusal_said = 0, None, False
        self._down = False

    async def _not_sent(self, outgoing: Outgoing, outcome: NotSent, *, marked: bool) -> None:
        """Fail a message the channel can never take; otherwise block and keep it pending
        (``marked``: an attempt may have arrived)."""
        reason = f"{outcome.failure}: {outcome.detail}"
        if outcome.failure is Failure.REJECTED:
            self.stats.failed += len(outgoing.ids)
            log.error("notification_failed", channel=self.name, ids=outgoing.ids, reason=reason)
            await self._outbox.mark_failed(self.name, outgoing.ids, reason)
            return
        delay = self._delay(outcome)
        self._failures += 1
        self._trouble = reason
        self._down = outcome.failure is Failure.UNREACHABLE
        self._blocked_until = self._clock.monotonic() + delay
        if outcome.failure is Failure.RATE_LIMITED:  # the bot's answers wait for it too
            self._transport.pacer.hold(self._blocked_until)
        until_ms = self._clock.now_ms() + math.ceil(delay * 1000)
        self._deferred_until_ms = until_ms
        await self._outbox.defer(
            self.name,
            outgoing.ids,
            until_ms=until_ms,
            error=reason,
            possible_repeat=marked,
        )

    def _delay(self, outcome: NotSent) -> float:
        """Return how long the destination waits; count and log (throttled) the failure."""
        failure, attempt = outcome.failure, self._failures
        fields = {"channel": self.name, "error": outcome.detail, "failures": attempt + 1}
        if failure is Failure.RATE_LIMITED:
            self.stats.rate_limited += 1
            delay = outcome.retry_after_s if outcome.retry_after_s is not None else 1.0
            log.info("notifications_rate_limited", retry_after_s=delay, **fields)
            return delay
        backoff = self._config.backoff
        if failure is Failure.REFUSED:
            self.stats.refused += 1
            backoff = self._config.refused_backoff
            if not self._refusal_said:
                self._refusal_said = True
                log.warning("notifications_refused", **fields)
        else:
            self.stats.unreachable += 1
            if attempt & (attempt + 1) == 0:  # the 1st, 2nd, 4th, 8th, … failure in a row
                log.warning("notifications_unreachable", **fields)
        return max(backoff.base_s, backoff.delay(attempt, self._rng))


def _settled(outcome: NotSent) -> NotSent:
    """Return what a failure that was already retried once comes to."""
    if outcome.failure is Failure.UNPARSEABLE:
        return NotSent(Failure.REJECTED, outcome.detail)
    if outcome.failure is Failure.UNCERTAIN:
        return NotSent(Failure.UNREACHABLE, f"timed out again: {outcome.detail}")
    return outcome
