"""When the daily and weekly reports are due: at the first instant of a UTC day (and of a week,
Monday) in candle time, for the day (and week) before it, whatever the gap since the last."""

from datetime import UTC, datetime

import pytest

from paper_trader.domain import EventKind
from paper_trader.domain.trading import DAY_MS
from paper_trader.trading.events import report_events

MINUTE = 60_000
TUESDAY = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
MONDAY = TUESDAY + 6 * DAY_MS


def due(previous: int | None, now: int) -> list[tuple[EventKind, str, int]]:
    """Return (kind, period, window start) of the reports due at ``now``."""
    return [
        (e.kind, str(e.data["period"]), int(e.data["start_ms"]))
        for e in report_events(previous, now, now_ms=123)
    ]


def test_the_first_candle_of_a_day_reports_the_day_before() -> None:
    """23:59 → 00:00 is due; within a day nothing is."""
    assert due(TUESDAY + DAY_MS - MINUTE, TUESDAY + DAY_MS) == [
        (EventKind.DAILY_REPORT, "day", TUESDAY)
    ]
    assert due(TUESDAY, TUESDAY + DAY_MS - MINUTE) == []
    assert due(TUESDAY + DAY_MS, TUESDAY + DAY_MS) == []  # a command at the same instant


def test_monday_reports_the_week_before_it_as_well() -> None:
    """Sunday 23:59 → Monday 00:00: the Sunday and the week from the Monday before."""
    assert due(MONDAY - MINUTE, MONDAY) == [
        (EventKind.DAILY_REPORT, "day", MONDAY - DAY_MS),
        (EventKind.WEEKLY_REPORT, "week", MONDAY - 7 * DAY_MS),
    ]


@pytest.mark.parametrize("gap_days", [2, 9])
def test_after_a_gap_only_the_latest_day_and_week_are_reported(gap_days: int) -> None:
    """A daemon down for days reports yesterday (and last week if a Monday passed) once."""
    now = TUESDAY + gap_days * DAY_MS + 5 * MINUTE
    kinds = due(TUESDAY + 10 * MINUTE, now)
    day = now - now % DAY_MS
    assert kinds[0] == (EventKind.DAILY_REPORT, "day", day - DAY_MS)
    assert [k for k, _, _ in kinds] == [EventKind.DAILY_REPORT] + (
        [EventKind.WEEKLY_REPORT] if gap_days >= 6 else []
    )


def test_nothing_before_the_first_instant_and_the_message_names_the_window() -> None:
    """A fresh ledger reports nothing; the message says the window in UTC."""
    assert due(None, MONDAY) == []
    daily, weekly = report_events(MONDAY - MINUTE, MONDAY, now_ms=5)
    assert daily.message == "Daily report: Sun 06 Dec 2026 (UTC)"
    assert weekly.message == "Weekly report: Mon 30 Nov 2026 to Sun 06 Dec 2026 (UTC)"
    assert daily.at_ms == weekly.at_ms == 5
