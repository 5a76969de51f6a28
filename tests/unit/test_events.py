"""Events have one way to be built: a component's `EventSource`, which freezes their data."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from paper_trader.domain import Event, EventKind, EventSource, Severity
from paper_trader.domain.trading import BreakerTransition, TradingState
from paper_trader.engine import stall_event
from paper_trader.market.aligner import Stall
from paper_trader.trading.events import breaker_event

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "paper_trader"
FACTORY = "paper_trader/domain/events.py"
EVENT_MODULES = {"paper_trader.domain", "paper_trader.domain.events"}


def test_source_builds_event_with_its_name_severity_and_read_only_data() -> None:
    """The factory stamps its source, keeps kind, message and time, and freezes a copy of data."""
    data: dict[str, str | int | float] = {"service": "feed", "restarts": 3, "ratio": 0.5}
    event = EventSource("supervisor").event(
        EventKind.SERVICE_RESTARTED, Severity.WARNING, "feed restarted", at_ms=7, data=data
    )
    data["restarts"] = 4

    assert event == Event(
        kind=EventKind.SERVICE_RESTARTED,
        severity=Severity.WARNING,
        message="feed restarted",
        at_ms=7,
        source="supervisor",
        data={"service": "feed", "restarts": 3, "ratio": 0.5},
    )
    with pytest.raises(TypeError):
        event.data["restarts"] = 5  # type: ignore[index]  # the point: data is read-only


@pytest.mark.parametrize("severity", list(Severity))
def test_severity_shortcuts_give_their_severity_and_empty_read_only_data(
    severity: Severity,
) -> None:
    """`info`, `warning` and `critical` differ only in severity; no data is an empty mapping."""
    build = getattr(EventSource("trader"), severity.value)
    event = build(EventKind.TRADE_OPENED, "opened", at_ms=1)

    assert (event.source, event.severity, dict(event.data)) == ("trader", severity, {})
    with pytest.raises(TypeError):
        event.data["x"] = 1  # the point: data is read-only


def test_event_freezes_data_given_as_any_mapping() -> None:
    """An Event built from a plain dict still holds a read-only copy of it."""
    data: dict[str, str | int | float] = {"symbol": "BTCUSDT"}
    event = Event(
        kind=EventKind.DATA_GAP, severity=Severity.INFO, message="m", at_ms=1, source="s", data=data
    )
    data.clear()

    assert event.data == {"symbol": "BTCUSDT"}
    with pytest.raises(TypeError):
        event.data["symbol"] = "ETHUSDT"  # type: ignore[index]  # the point: data is read-only


def test_built_events_keep_their_source_and_fields() -> None:
    """Converted builders give the same event as before: source, severity, message and data."""
    stall = Stall(key=("binance", "ETHUSDT", "1m"), through_ms=None, waiting_ms=60, reason="idle")
    transition = BreakerTransition(
        breaker="daily_loss",
        tripped=True,
        state=TradingState.HALTED,
        reason="loss over limit",
        threshold="50",
        observed="61.5",
        candle_time_ms=120,
    )

    assert stall_event(stall, 5) == Event(
        kind=EventKind.SERIES_STALLED,
        severity=Severity.WARNING,
        message=(
            "ETHUSDT: stopped waiting for its candles (idle); the other symbols go on without it, "
            "and a replay may differ"
        ),
        at_ms=5,
        source="decision_engine",
        data={"symbol": "ETHUSDT", "candle_time_ms": 60, "through_ms": -1, "reason": "idle"},
    )
    assert breaker_event(transition, 9) == Event(
        kind=EventKind.BREAKER_TRIPPED,
        severity=Severity.WARNING,
        message=(
            "daily_loss tripped: loss over limit (threshold 50, observed 61.5); trading halted"
        ),
        at_ms=9,
        source="trader",
        data={
            "breaker": "daily_loss",
            "state": "halted",
            "reason": "loss over limit",
            "threshold": "50",
            "observed": "61.5",
            "candle_time_ms": 120,
        },
    )


def direct_event_calls(source: str) -> Iterator[int]:
    """Yield the line of each call of the domain's `Event` in ``source``, however imported."""
    tree = ast.parse(source)
    names: set[str] = set()  # local names of the Event class
    modules: set[str] = set()  # local names of a module that holds it
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                local = alias.asname or alias.name
                if node.module in EVENT_MODULES and alias.name == "Event":
                    names.add(local)
                elif f"{node.module}.{alias.name}" in EVENT_MODULES:
                    modules.add(local)
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name in EVENT_MODULES}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_event_class(node.func, names, modules):
            yield node.lineno


def _is_event_class(func: ast.expr, names: set[str], modules: set[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in names
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "Event"
        and ast.unparse(func.value) in modules
    )


@pytest.mark.parametrize(
    "source",
    [
        "from paper_trader.domain import Event\nEvent(kind=k)",
        "from paper_trader.domain.events import Event as E\nE(kind=k)",
        "from paper_trader import domain\ndomain.Event(kind=k)",
        "import paper_trader.domain.events as ev\nev.Event(kind=k)",
        "import paper_trader.domain\npaper_trader.domain.Event(kind=k)",
        "from paper_trader.domain import events\nevents.Event(kind=k)",
    ],
)
def test_walk_finds_an_event_built_by_hand(source: str) -> None:
    """The walk below sees a direct call whichever way Event was imported."""
    assert list(direct_event_calls(source)) == [2]


def test_walk_ignores_other_events() -> None:
    """asyncio's and threading's Event are not the domain's."""
    source = "import asyncio, threading\nfrom asyncio import Event\nasyncio.Event()\nEvent()\n"
    assert list(direct_event_calls(source + "threading.Event()\n")) == []


def test_only_the_factory_builds_an_event() -> None:
    """No module but domain/events.py calls `Event(...)`: components use an EventSource."""
    offenders: dict[str, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        lines = list(direct_event_calls(path.read_text(encoding="utf-8")))
        if lines and name != FACTORY:
            offenders[name] = lines
    assert offenders == {}, f"build these with an EventSource: {offenders}"
