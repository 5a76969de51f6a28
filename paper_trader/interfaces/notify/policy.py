"""What a channel sends next: priority, then age; caps per hour; digests; repeat counts.

Pure: the pending deliveries and the wall-clock time in, one message (or when to look again)
out. Per channel, the sends of the last hour are counted by cap (errors, trades, status): a
notification whose cap is used up waits, and once the hour lets one more through, everything
of that cap that waited goes out as one digest ("12 more trades: …") — folded, never dropped.
A repeat (same kind, source and symbol or service) of a noisy category within the repeat
window waits for its end and is then sent once with its count ("Feed reconnect storm x7 in 10
min", with a multiplication sign). Critical notifications are never capped nor held.
"""

import enum
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from paper_trader.domain import Severity
from paper_trader.domain.notifications import (
    Category,
    Notification,
    Priority,
    SentNotification,
)
from paper_trader.interfaces.notify.render import span_text
from paper_trader.interfaces.telegram.text import Line, Part

HOUR_MS = 3_600_000
REPEAT_WINDOW_MS = 600_000
DIGEST_LINES = 15  # notifications listed in a digest, the rest counted
DIGEST_LINE_CHARS = 200


class Cap(enum.StrEnum):
    """The three caps per hour of the settings."""

    ERROR = "error"
    TRADE = "trade"
    STATUS = "status"


CAP_OF: Mapping[Category, Cap] = {
    Category.TRADE: Cap.TRADE,
    Category.ERROR: Cap.ERROR,
    Category.BREAKER: Cap.ERROR,
    Category.HEALTH: Cap.STATUS,
    Category.DRIFT: Cap.STATUS,
    Category.DATA: Cap.STATUS,
    Category.LIFECYCLE: Cap.STATUS,
    Category.REPORT: Cap.STATUS,
}


def cap_of(category: Category, priority: Priority) -> Cap | None:
    """Return the cap a notification counts against; None for the never capped: critical
    alerts, and reports (at most two a day)."""
    if priority is Priority.CRITICAL or category is Category.REPORT:
        return None
    return CAP_OF[category]


REPEATING = frozenset({Category.ERROR, Category.HEALTH, Category.DATA, Category.DRIFT})
_NOUNS = {Cap.ERROR: "errors", Cap.TRADE: "trades", Cap.STATUS: "status messages"}
_ICONS = {Severity.CRITICAL: "\U0001f6a8", Severity.WARNING: "\u26a0\ufe0f"}
_TRADE_ICON = "\U0001f4b1"
_INFO_ICON = "\u2139\ufe0f"
_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Caps:
    """Messages per hour per cap (0: no cap) and the repeat window."""

    per_hour: Mapping[Cap, int]
    window_ms: int = HOUR_MS
    repeat_window_ms: int = REPEAT_WINDOW_MS


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One message to send: the notifications it delivers (one, a repeat, or a digest)."""

    notifications: tuple[Notification, ...]
    lines: tuple[Part, ...]
    kind: str
    severity: Severity
    category: Category
    priority: Priority
    folded: bool = False
    data: Mapping[str, str | int | float] = field(default_factory=dict)
    digest_of: Cap | None = None  # the cap whose waiting notifications it delivers
    photo: bytes | None = None  # a picture sent with the first part (a report's chart)

    @property
    def ids(self) -> tuple[int, ...]:
        """Return the outbox ids it delivers."""
        return tuple(n.id for n in self.notifications)

    @property
    def head(self) -> Notification:
        """Return the oldest notification it delivers."""
        return min(self.notifications, key=lambda n: (n.created_at_ms, n.id))

    @property
    def cap(self) -> Cap | None:
        """Return the cap it counts against (None: never capped)."""
        return cap_of(self.category, self.priority)


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """The next message, or None and when to look again (None: when something new comes)."""

    outgoing: Outgoing | None
    wake_at_ms: int | None = None


@dataclass(slots=True)
class _Candidate:
    members: list[Notification]
    ready_at_ms: int
    digest: Cap | None = None

    @property
    def order(self) -> tuple[int, int, int]:
        best = min(n.priority.rank for n in self.members)
        first = min(self.members, key=lambda n: (n.created_at_ms, n.id))
        return best, first.created_at_ms, first.id


class DeliveryPolicy:
    """The caps and repeat windows of one channel, and its choice of the next message."""

    def __init__(self, caps: Caps) -> None:
        self._caps = caps
        self._sends: dict[Cap, deque[int]] = {cap: deque() for cap in Cap}
        self._last: dict[tuple[str, str, str], int] = {}
        self._overflowing: set[Cap] = set()  # caps whose notifications wait for a digest

    def restore(self, sent: Iterable[SentNotification]) -> None:
        """Count messages already sent (by an earlier run) in the windows, oldest first."""
        for s in sent:
            cap = cap_of(s.category, s.priority)
            if cap is not None:
                self._sends[cap].append(s.sent_at_ms)
            if s.category in REPEATING:
                self._last[s.repeat_key] = max(self._last.get(s.repeat_key, 0), s.sent_at_ms)

    def used(self, cap: Cap, now_ms: int) -> int:
        """Return how many messages counted against ``cap`` in the window ending now."""
        self._expire(now_ms)
        return len(self._sends[cap])

    def choose(
        self, pending: Sequence[Notification], now_ms: int, *, due_ms: int | None = None
    ) -> Choice:
        """Return the first ready message by priority, then age; or when one will be.

        A row deferred to after ``due_ms`` (default: now) is not ready.
        """
        self._expire(now_ms)
        candidates, not_due = self._candidates(pending, now_ms, due_ms or now_ms)
        ready = [c for c in candidates if c.ready_at_ms <= now_ms]
        if ready:
            return Choice(outgoing=self._outgoing(min(ready, key=lambda c: c.order)))
        wakes = [c.ready_at_ms for c in candidates] + not_due
        return Choice(outgoing=None, wake_at_ms=min(wakes) if wakes else None)

    def record(self, outgoing: Outgoing, at_ms: int) -> None:
        """Count a message as sent at ``at_ms``."""
        if outgoing.cap is not None:
            self._sends[outgoing.cap].append(at_ms)
        if outgoing.digest_of is not None:
            self._overflowing.discard(outgoing.digest_of)
        for n in outgoing.notifications:
            if n.category in REPEATING and n.priority is not Priority.CRITICAL:
                self._last[n.repeat_key] = at_ms

    def _candidates(
        self, pending: Sequence[Notification], now_ms: int, due_ms: int
    ) -> tuple[list[_Candidate], list[int]]:
        singles: list[_Candidate] = []
        digests: dict[Cap, _Candidate] = {}
        repeats: dict[tuple[str, str, str], _Candidate] = {}
        not_due: list[int] = []
        for n in pending:
            if n.next_attempt_at_ms > due_ms:
                not_due.append(n.next_attempt_at_ms)
                continue
            cap = cap_of(n.category, n.priority)
            if cap is None:
                singles.append(_Candidate([n], now_ms))
                continue
            if self._is_full(cap):
                self._overflowing.add(cap)
            if cap in self._overflowing:
                free_at = self._sends[cap][0] + self._caps.window_ms if self._is_full(cap) else 0
                ready = max(free_at, now_ms)
                digests.setdefault(cap, _Candidate([], ready, digest=cap)).members.append(n)
            elif n.category in REPEATING:
                last = self._last.get(n.repeat_key)
                held = last is not None and now_ms < last + self._caps.repeat_window_ms
                at = last + self._caps.repeat_window_ms if held and last is not None else now_ms
                repeats.setdefault(n.repeat_key, _Candidate([], at)).members.append(n)
            else:
                singles.append(_Candidate([n], now_ms))
        return [*singles, *repeats.values(), *digests.values()], not_due

    def _is_full(self, cap: Cap) -> bool:
        limit = self._caps.per_hour.get(cap, 0)
        return limit > 0 and len(self._sends[cap]) >= limit

    def _expire(self, now_ms: int) -> None:
        for sends in self._sends.values():
            while sends and sends[0] <= now_ms - self._caps.window_ms:
                sends.popleft()
        horizon = now_ms - self._caps.repeat_window_ms
        for key in [k for k, at in self._last.items() if at <= horizon]:
            del self._last[key]

    def _outgoing(self, candidate: _Candidate) -> Outgoing:
        members = sorted(candidate.members, key=lambda n: (n.created_at_ms, n.id))
        if candidate.digest is not None:
            if len(members) > 1:
                return digest(candidate.digest, members)
            return replace(single(members[0]), digest_of=candidate.digest)
        if len(members) > 1:
            return repeat(members)
        return single(members[0])


def title(kind: str) -> str:
    """Return an event kind as a title: ``trade_opened`` → ``Trade opened``."""
    return kind.replace("_", " ").capitalize()


def icon(n: Notification) -> str:
    """Return the mark in front of a message's title."""
    if n.severity in _ICONS:
        return _ICONS[n.severity]
    return _TRADE_ICON if n.category is Category.TRADE else _INFO_ICON


def single(n: Notification) -> Outgoing:
    """Return one notification as its own message: a bold title, then the message."""
    return Outgoing(
        notifications=(n,),
        lines=(Line(f"{icon(n)} {title(n.kind)}", bold=True), Line(n.message)),
        kind=n.kind,
        severity=n.severity,
        category=n.category,
        priority=n.priority,
        data=dict(n.data),
    )


def repeat(members: Sequence[Notification]) -> Outgoing:
    """Return repeats of one notification as one message with their count and span."""
    first, last = members[0], members[-1]
    span = span_text(last.created_at_ms - first.created_at_ms)
    head = Line(f"{icon(last)} {title(last.kind)} \u00d7{len(members)} in {span}", bold=True)
    return Outgoing(
        notifications=tuple(members),
        lines=(head, Line(last.message)),
        kind=last.kind,
        severity=_worst(members),
        category=last.category,
        priority=min((n.priority for n in members), key=lambda p: p.rank),
        folded=True,
        data={**dict(last.data), "count": len(members)},
    )


def digest(cap: Cap, members: Sequence[Notification]) -> Outgoing:
    """Return what waited for ``cap`` as one digest: a count, then one line each (the first
    ``DIGEST_LINES``)."""
    listed = [
        Line(f"\u2022 {_first_line(n.message)}"[:DIGEST_LINE_CHARS]) for n in members[:DIGEST_LINES]
    ]
    rest = len(members) - len(listed)
    more = [Line(f"\u2026 and {rest} more")] if rest > 0 else []
    best = min(members, key=lambda n: n.priority.rank)
    return Outgoing(
        notifications=tuple(members),
        lines=(Line(f"{len(members)} more {_NOUNS[cap]}:", bold=True), *listed, *more),
        kind="digest",
        severity=_worst(members),
        category=best.category,
        priority=best.priority,
        folded=True,
        data={"count": len(members), "cap": cap.value},
        digest_of=cap,
    )


def _first_line(message: str) -> str:
    return message.splitlines()[0] if message else ""


def _worst(members: Sequence[Notification]) -> Severity:
    return max((n.severity for n in members), key=lambda s: _SEVERITY_RANK[s])
