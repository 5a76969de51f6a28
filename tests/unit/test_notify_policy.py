"""The notifier's pure policy: categories and priorities, the order of the queue, caps folded
into digests, repeats counted, and the choice of when to look again (a fake wall clock: the
times are arguments)."""

from collections.abc import Mapping

from paper_trader.domain import EventKind, Severity
from paper_trader.domain.notifications import (
    CLASSES,
    LEDGER_KINDS,
    Category,
    Notification,
    Priority,
    SentNotification,
    classify,
)
from paper_trader.interfaces.notify.policy import (
    HOUR_MS,
    REPEAT_WINDOW_MS,
    Cap,
    Caps,
    DeliveryPolicy,
    Outgoing,
)
from paper_trader.interfaces.telegram.text import plain_text

T0 = 1_700_000_000_000
MINUTE = 60_000
NO_CAPS = Caps(per_hour={})


def note(
    id_: int,
    kind: EventKind = EventKind.TRADE_OPENED,
    *,
    at_ms: int = T0,
    severity: Severity = Severity.INFO,
    data: Mapping[str, str | int | float] | None = None,
    message: str = "",
    source: str = "trader",
    next_attempt_at_ms: int = 0,
) -> Notification:
    """Return a pending delivery of an event of ``kind``, classified as the outbox does."""
    category, priority = classify(kind, severity)
    return Notification(
        id=id_,
        channel="telegram:111",
        created_at_ms=at_ms,
        kind=kind.value,
        severity=severity,
        source=source,
        message=message or f"message {id_}",
        category=category,
        priority=priority,
        data=data or {},
        next_attempt_at_ms=next_attempt_at_ms,
    )


def drain(policy: DeliveryPolicy, pending: list[Notification], now_ms: int) -> list[Outgoing]:
    """Choose and record messages at ``now_ms`` until none is ready; return them in order."""
    sent = []
    left = list(pending)
    while (outgoing := policy.choose(left, now_ms).outgoing) is not None:
        policy.record(outgoing, now_ms)
        sent.append(outgoing)
        left = [n for n in left if n.id not in outgoing.ids]
    return sent


def texts(outgoing: Outgoing) -> list[str]:
    """Return the plain lines of a message."""
    return plain_text(outgoing.lines).splitlines()


def test_every_event_kind_has_a_category_and_a_priority() -> None:
    """The table is total; a CRITICAL event is critical whatever its kind."""
    assert set(CLASSES) == set(EventKind)
    for kind in EventKind:
        category, priority = classify(kind, Severity.INFO)
        assert category in Category
        assert priority in Priority
        assert classify(kind, Severity.CRITICAL)[1] is Priority.CRITICAL
    assert classify(EventKind.TRADE_CLOSED, Severity.INFO) == (Category.TRADE, Priority.HIGH)
    assert classify(EventKind.SERVICE_CRASH_LOOP, Severity.WARNING)[1] is Priority.CRITICAL
    assert classify("a_kind_from_a_newer_version", "info") == (
        Category.LIFECYCLE,
        Priority.NORMAL,
    )
    assert {classify(k, Severity.INFO)[0] for k in LEDGER_KINDS} == {
        Category.TRADE,
        Category.BREAKER,
        Category.REPORT,
    }


def test_the_queue_is_served_by_priority_then_age() -> None:
    """Critical first, then high, normal, low; the oldest first within a priority."""
    pending = [
        note(1, EventKind.MODEL_LOADED, at_ms=T0),  # low
        note(2, EventKind.DATA_GAP, at_ms=T0 + 1),  # normal
        note(3, EventKind.TRADE_OPENED, at_ms=T0 + 2),  # high
        note(4, EventKind.SERVICE_CRASH_LOOP, at_ms=T0 + 3, severity=Severity.CRITICAL),
        note(5, EventKind.TRADE_CLOSED, at_ms=T0 + 1),  # high, older than 3
        note(6, EventKind.DAEMON_STARTED, at_ms=T0 - 5),  # normal, the oldest
    ]
    order = [o.ids for o in drain(DeliveryPolicy(NO_CAPS), pending, T0 + 10)]
    assert order == [(4,), (5,), (3,), (6,), (2,), (1,)]


def test_over_its_cap_a_category_waits_and_is_folded_into_one_digest() -> None:
    """Three trades an hour: the first three go; the other seven wait for the hour, then go
    as one digest that lists them; nothing is dropped."""
    policy = DeliveryPolicy(Caps(per_hour={Cap.TRADE: 3}))
    pending = [
        note(i, at_ms=T0 + i, message=f"BTC-USDT: long {i} at 100", data={"symbol": "BTC-USDT"})
        for i in range(1, 11)
    ]
    first = drain(policy, pending, T0 + 100)
    assert [o.ids for o in first] == [(1,), (2,), (3,)]
    rest = pending[3:]
    waiting = policy.choose(rest, T0 + 30 * MINUTE)
    assert waiting.outgoing is None
    assert waiting.wake_at_ms == T0 + 100 + HOUR_MS
    [digest] = drain(policy, rest, T0 + 100 + HOUR_MS)
    assert digest.ids == tuple(range(4, 11))
    assert digest.folded
    assert digest.kind == "digest"
    assert texts(digest)[0] == "7 more trades:"
    assert texts(digest)[1:] == [f"\u2022 BTC-USDT: long {i} at 100" for i in range(4, 11)]


def test_a_digest_lists_fifteen_and_counts_the_rest() -> None:
    """A digest stays one short message: 15 lines, then "… and N more"."""
    policy = DeliveryPolicy(Caps(per_hour={Cap.ERROR: 1}))
    drain(policy, [note(0, EventKind.SERVICE_RESTARTED, data={"service": "s0"})], T0)
    pending = [
        note(i, EventKind.SERVICE_RESTARTED, data={"service": f"s{i}"}) for i in range(1, 41)
    ]
    assert policy.choose(pending, T0 + 1).outgoing is None
    [digest] = drain(policy, pending, T0 + HOUR_MS)
    assert len(digest.ids) == 40
    assert texts(digest)[0] == "40 more errors:"
    assert len(texts(digest)) == 1 + 15 + 1
    assert texts(digest)[-1] == "\u2026 and 25 more"


def test_critical_notifications_are_never_capped() -> None:
    """With the error cap used up, a crash loop still goes at once, and is not counted."""
    policy = DeliveryPolicy(Caps(per_hour={Cap.ERROR: 1}))
    drain(policy, [note(1, EventKind.SERVICE_RESTARTED)], T0)
    crashes = [
        note(i, EventKind.SERVICE_CRASH_LOOP, severity=Severity.CRITICAL, data={"service": "x"})
        for i in range(2, 6)
    ]
    sent = drain(policy, crashes, T0 + 1)
    assert [o.ids for o in sent] == [(2,), (3,), (4,), (5,)]
    assert policy.used(Cap.ERROR, T0 + 1) == 1


def test_reports_are_never_capped_nor_folded() -> None:
    """With the status cap used up by a data gap, a day's and a week's reports still go
    alone, at once, and are not counted."""
    policy = DeliveryPolicy(Caps(per_hour={Cap.STATUS: 1}))
    drain(policy, [note(1, EventKind.DATA_GAP)], T0)
    reports = [
        note(2, EventKind.DAILY_REPORT, data={"period": "day", "start_ms": 0}),
        note(3, EventKind.WEEKLY_REPORT, data={"period": "week", "start_ms": 0}),
    ]
    sent = drain(policy, reports, T0 + 1)
    assert [(o.ids, o.folded) for o in sent] == [((2,), False), ((3,), False)]
    assert policy.used(Cap.STATUS, T0 + 1) == 1


def test_repeats_within_the_window_are_sent_once_with_their_count() -> None:
    """A reconnect storm seven more times in the ten minutes after the first is sent once,
    at the window's end, with its count and span; another source is not folded with it."""
    policy = DeliveryPolicy(NO_CAPS)

    def storm(id_: int, minute: int, source: str = "feed") -> Notification:
        return note(
            id_,
            EventKind.FEED_RECONNECT_STORM,
            at_ms=T0 + minute * MINUTE,
            severity=Severity.WARNING,
            source=source,
            message=f"reconnected {id_} times",
        )

    [first] = drain(policy, [storm(1, 0)], T0)
    assert first.ids == (1,)
    repeats = [storm(i, i - 1) for i in range(2, 9)]
    other = storm(20, 3, source="feed-kraken")
    now = T0 + 7 * MINUTE
    assert [o.ids for o in drain(policy, [*repeats, other], now)] == [(20,)]
    held = policy.choose(repeats, now)
    assert held.outgoing is None
    assert held.wake_at_ms == T0 + REPEAT_WINDOW_MS
    [folded] = drain(policy, repeats, T0 + REPEAT_WINDOW_MS)
    assert folded.ids == tuple(range(2, 9))
    assert folded.folded
    assert texts(folded) == [
        "\u26a0\ufe0f Feed reconnect storm \u00d77 in 6 min",
        "reconnected 8 times",
    ]
    assert folded.data["count"] == 7


def test_trades_are_never_folded_as_repeats() -> None:
    """Two entries in one symbol are two messages, at once."""
    policy = DeliveryPolicy(NO_CAPS)
    pending = [note(i, data={"symbol": "BTC-USDT"}) for i in (1, 2)]
    assert [o.ids for o in drain(policy, pending, T0)] == [(1,), (2,)]


def test_sends_of_an_earlier_run_count_against_the_cap() -> None:
    """Restored sends fill the window: the next trade waits for the oldest to leave it."""
    policy = DeliveryPolicy(Caps(per_hour={Cap.TRADE: 2}))
    sent = [
        SentNotification(
            category=Category.TRADE,
            priority=Priority.HIGH,
            repeat_key=("trade_opened", "trader", "X"),
            sent_at_ms=T0 + i * MINUTE,
        )
        for i in (0, 1)
    ]
    policy.restore(sent)
    choice = policy.choose([note(1, at_ms=T0 + 2 * MINUTE)], T0 + 2 * MINUTE)
    assert choice.outgoing is None
    assert choice.wake_at_ms == T0 + HOUR_MS
    assert policy.used(Cap.TRADE, T0 + HOUR_MS) == 1
    outgoing = policy.choose([note(1)], T0 + HOUR_MS).outgoing
    assert outgoing is not None
    assert outgoing.ids == (1,)


def test_a_deferred_row_waits_for_its_next_attempt() -> None:
    """A row deferred (a backoff) is not ready before its time; others go meanwhile."""
    policy = DeliveryPolicy(NO_CAPS)
    deferred = note(1, EventKind.TRADE_CLOSED, next_attempt_at_ms=T0 + 5_000)
    later = note(2, EventKind.MODEL_LOADED)
    assert [o.ids for o in drain(policy, [deferred, later], T0)] == [(2,)]
    choice = policy.choose([deferred], T0)
    assert (choice.outgoing, choice.wake_at_ms) == (None, T0 + 5_000)
    chosen = policy.choose([deferred], T0, due_ms=T0 + 5_000).outgoing
    assert chosen is not None
    assert chosen.ids == (1,)


def test_a_cap_of_zero_means_no_cap() -> None:
    """ERROR_NOTIFICATIONS_PER_HOUR=0: every error goes."""
    policy = DeliveryPolicy(Caps(per_hour={Cap.ERROR: 0}))
    pending = [note(i, EventKind.SERVICE_RESTARTED, data={"service": f"s{i}"}) for i in range(50)]
    assert len(drain(policy, pending, T0)) == 50
