"""How trades, breaker transitions and the reports they add up to are told: event values and
log-line fields."""

from datetime import UTC, datetime

from paper_trader.domain import Event, EventKind, EventSource, Severity
from paper_trader.domain.trading import DAY_MS, BreakerTransition, ClosedTrade, Fill, Position

SOURCE = EventSource("trader")
WEEK_MS = 7 * DAY_MS
FIRST_MONDAY_MS = 4 * DAY_MS  # 1970-01-05: weeks start on Mondays, 00:00 UTC


def fill_fields(fill: Fill) -> dict[str, object]:
    """Return a fill as log-line fields (money as exact text)."""
    return {
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": format(fill.quantity, "f"),
        "price": format(fill.price, "f"),
        "fee": format(fill.fee, "f"),
        "fill_model": fill.fill_model.value,
        "candle_time_ms": fill.candle_time_ms,
        "fill_id": fill.fill_id,
    }


def trade_fields(trade: ClosedTrade) -> dict[str, object]:
    """Return a closed trade as log-line fields."""
    return {
        "symbol": trade.symbol,
        "side": trade.side.value,
        "quantity": format(trade.quantity, "f"),
        "entry_price": format(trade.entry_price, "f"),
        "exit_price": format(trade.exit_price, "f"),
        "net_pnl": format(trade.net_pnl, "f"),
        "fees": format(trade.fees, "f"),
        "exit_reason": trade.exit_reason.value,
        "fill_model": trade.exit_fill_model.value,
        "opened_candle_ms": trade.opened_candle_ms,
        "closed_candle_ms": trade.closed_candle_ms,
        "recovered": trade.recovered,
    }


def transition_fields(transition: BreakerTransition) -> dict[str, object]:
    """Return a breaker transition as log-line fields."""
    return {
        "breaker": transition.breaker,
        "symbol": transition.symbol,
        "state": transition.state.value,
        "reason": transition.reason,
        "threshold": transition.threshold,
        "observed": transition.observed,
        "candle_time_ms": transition.candle_time_ms,
    }


def trade_opened_event(fill: Fill, position: Position | None, now_ms: int) -> Event:
    """Return the event that tells a position was opened."""
    levels = ""
    if position is not None:
        target = position.take_profit_price
        levels = f", stop {position.stop_price:f}" + (f", target {target:f}" if target else "")
    side = "long" if fill.side.value == "buy" else "short"
    return SOURCE.info(
        EventKind.TRADE_OPENED,
        f"{fill.symbol}: {side} {fill.quantity:f} at {fill.price:f}{levels}",
        at_ms=now_ms,
        data=_strings(fill_fields(fill)),
    )


def trade_closed_event(trade: ClosedTrade, now_ms: int) -> Event:
    """Return the event that tells a position was closed, and how it went."""
    recovered = " (recovered after downtime)" if trade.recovered else ""
    pct = float(trade.return_pct) * 100
    return SOURCE.info(
        EventKind.TRADE_CLOSED,
        (
            f"{trade.symbol}: {trade.side.value} closed by {trade.exit_reason.value} at "
            f"{trade.exit_price:f}, net PnL {trade.net_pnl:.2f} ({pct:+.2f} %){recovered}"
        ),
        at_ms=now_ms,
        data=_strings(trade_fields(trade)),
    )


def breaker_event(transition: BreakerTransition, now_ms: int) -> Event:
    """Return the event that tells a breaker tripped or reset, with its numbers."""
    what = "tripped" if transition.tripped else "reset"
    where = f" on {transition.symbol}" if transition.symbol else ""
    return SOURCE.event(
        EventKind.BREAKER_TRIPPED if transition.tripped else EventKind.BREAKER_RESET,
        Severity.WARNING if transition.tripped else Severity.INFO,
        (
            f"{transition.breaker}{where} {what}: {transition.reason} "
            f"(threshold {transition.threshold}, observed {transition.observed}); "
            f"trading {transition.state.value}"
        ),
        at_ms=now_ms,
        data=_strings(transition_fields(transition)),
    )


def _strings(fields: dict[str, object]) -> dict[str, str | int | float]:
    """Keep JSON-ready values (numbers and text); anything else becomes text."""
    out: dict[str, str | int | float] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = str(value).lower()
        elif isinstance(value, int | float | str):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def report_events(previous_ms: int | None, time_ms: int, now_ms: int) -> list[Event]:
    """Return the reports due at the instant ``time_ms`` after the instant ``previous_ms``.

    In candle time: the first instant of a UTC day reports the day before it; the first of a
    week (Monday) the week before it too. Nothing before the ledger's first instant. The data
    say which window: ``period`` ("day" or "week") and ``start_ms``, the window being
    ``[start_ms, start_ms + its length)`` of candle open times.
    """
    if previous_ms is None:
        return []
    events: list[Event] = []
    day = time_ms - time_ms % DAY_MS
    if previous_ms < day:
        start = day - DAY_MS
        events.append(_report(EventKind.DAILY_REPORT, "day", start, _date(start), now_ms))
    week = time_ms - (time_ms - FIRST_MONDAY_MS) % WEEK_MS
    if previous_ms < week:
        start = week - WEEK_MS
        span = f"{_date(start)} to {_date(week - DAY_MS)}"
        events.append(_report(EventKind.WEEKLY_REPORT, "week", start, span, now_ms))
    return events


def _report(kind: EventKind, period: str, start_ms: int, span: str, now_ms: int) -> Event:
    title = "Daily" if period == "day" else "Weekly"
    data: dict[str, str | int | float] = {"period": period, "start_ms": start_ms}
    return SOURCE.info(kind, f"{title} report: {span} (UTC)", at_ms=now_ms, data=data)


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%a %d %b %Y")
