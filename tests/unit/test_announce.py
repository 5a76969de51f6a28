"""The start-up and shutdown notices' text: what the operator reads when the daemon comes and
goes, and how the run before ended when it did not stop cleanly."""

from decimal import Decimal

from paper_trader import __version__
from paper_trader.app.announce import RunFacts, started_text, stopping_text
from paper_trader.control.api import Status
from paper_trader.control.system import ModelInfo
from paper_trader.domain.trading import BreakerTransition, TradingState
from paper_trader.storage import RunRecord

FACTS = RunFacts(
    mode="run",
    exchange="kraken",
    interval="1m",
    symbols=("BTC-USD", "ETH-USD"),
    exit_only=("SOL-USD",),
)
PAUSE = BreakerTransition(
    breaker="manual_pause",
    tripped=True,
    state=TradingState.REDUCING,
    reason="paused by the operator: <maintenance>",
    threshold="",
    observed="",
    candle_time_ms=0,
)


def status(open_positions: int = 2) -> Status:
    """Return a paused portfolio of 10,250.50 with ``open_positions``."""
    return Status(
        state=TradingState.REDUCING,
        tripped=(PAUSE,),
        equity=Decimal("10250.5"),
        cash=Decimal("8000"),
        positions_value=Decimal("2250.5"),
        peak_equity=Decimal("10500"),
        drawdown=0.02376,
        open_positions=open_positions,
        last_candle_ms=None,
        entered=3,
        rejected=1,
        skipped=0,
    )


def run(exit_code: int | None, stopped: int | None) -> RunRecord:
    """Return an earlier run record started at 2025-12-01 10:00 UTC."""
    return RunRecord(
        id=1,
        started_at_ms=1_764_583_200_000,
        stopped_at_ms=stopped,
        mode="run",
        pid=7,
        app_version=__version__,
        config_hash="x",
        versions_json="{}",
        exit_code=exit_code,
    )


def test_the_start_notice_names_the_version_venue_symbols_model_and_state() -> None:
    model = ModelInfo(
        version="20261201-abc",
        walk_forward_accuracy=0.55,
        live_accuracy=None,
        resolved=0,
        pending=0,
    )
    assert started_text(FACTS, status(), model).splitlines() == [
        f"paper-trader {__version__} started (run) on kraken, 1m candles",
        "symbols: BTC-USD, ETH-USD",
        "followed for exits only: SOL-USD",
        "model: 20261201-abc",
        "trading: REDUCING",
        "equity 10,250.50 (cash 8,000.00), drawdown 2.38 %, 2 open positions",
        "tripped: manual_pause: paused by the operator: <maintenance>",
    ]


def test_a_start_after_a_kill_or_a_failure_says_how_the_run_before_ended() -> None:
    no_model = ModelInfo(
        version=None, walk_forward_accuracy=None, live_accuracy=None, resolved=0, pending=0
    )
    killed = started_text(FACTS, status(), no_model, run(None, None)).splitlines()
    failed = started_text(FACTS, status(), None, run(1, 1_764_583_300_000)).splitlines()
    clean = started_text(FACTS, status(), None, run(0, 1_764_583_300_000)).splitlines()
    assert killed[3] == "model: none (no entries until one is trained)"
    assert killed[-1] == (
        "the run started 2025-12-01 10:00:00 UTC ended without a clean stop "
        "(killed, or the machine went down)"
    )
    assert failed[-1] == "the run started 2025-12-01 10:00:00 UTC stopped with exit code 1"
    assert clean[-1].startswith("tripped: ")


def test_the_stop_notice_says_why_after_how_long_and_what_stays_open() -> None:
    lines = stopping_text("SIGTERM", 3 * 3600 + 25 * 60, status()).splitlines()
    assert lines[0] == f"paper-trader {__version__} stopping: SIGTERM"
    assert lines[1] == "ran 3 h 25 min"
    assert lines[-1] == "open positions are kept and followed again at the next start"
    assert stopping_text("SIGINT", 2 * 86_400 + 7200, status(0)).splitlines()[1] == "ran 2 d 2 h"
    assert "open positions are kept" not in stopping_text("SIGINT", 5, status(0))
