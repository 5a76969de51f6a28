"""The ledger is a function of the candles alone: a live run through every fault the simulator
has, a clean live run and a replay of the stored candles give the same ledger digest."""

from datetime import datetime
from pathlib import Path

import pytest
from conftest import subprocess_env
from fakes.models import publish_model
from parity import (
    ALL_FAULTS,
    START_MS,
    TRADING,
    candles,
    decisions,
    dirty_market,
    last_open_times,
    market_args,
    outbox_kinds,
    replay,
    report,
    run_live,
)

HISTORY = 700  # the features are ready from candle 660: no ready row is older than CATCHUP_LIMIT
LIVE = 360
HALT = range(HISTORY + 90, HISTORY + 160)  # ETH: 70 zero-volume flat candles, quality < 80
MISSING = range(HISTORY + 230, HISTORY + 236)  # BTC: 6 candles the venue never had
MINUTE = 60_000


@pytest.mark.timeout(900)
def test_every_fault_gives_the_ledger_of_a_clean_run_and_of_a_replay(tmp_path: Path) -> None:
    """Drops with and without a close, silence, serverShutdown, duplicates, reordering,
    garbage, missing final frames, REST 429/418/5xx with Retry-After, on dirty data (a halt,
    missing candles), CATCHUP_LIMIT 60: the stored candles, the decisions and the ledger
    digest equal a clean live run's and a replay's, and the report expects that parity."""
    publish_model(tmp_path / "models", mirrored=True)
    paths = dirty_market(tmp_path, HISTORY + LIVE, halt=HALT, missing=MISSING)
    until = last_open_times(paths)
    env = subprocess_env(
        tmp_path,
        **TRADING,
        SYMBOLS="BTCUSDT,ETHUSDT",
        WARMUP_CANDLES=str(HISTORY),
        CATCHUP_LIMIT="60",
        STREAM_SILENCE_TIMEOUT="5",
    )
    market = ["--speed", "300", "--history", str(HISTORY), *market_args(paths)]
    clean = run_live(tmp_path / "clean", env, market, until)
    faulty = run_live(tmp_path / "faulty", env, [*market, *ALL_FAULTS], until)

    counters = faulty.feed_counters()
    assert int(str(counters["reconnects"])) >= 2
    assert int(str(counters["malformed"])) + int(str(counters["venue_errors"])) >= 1
    assert int(str(counters["duplicates"])) >= 1
    assert any(e["event"] == "rest_rate_limited" for e in faulty.log)
    assert candles(faulty.db) == candles(clean.db)
    assert "symbol_not_tradable" in outbox_kinds(clean.db)  # the halt was judged as it came

    clean_report, faulty_report = report(clean.db, env), report(faulty.db, env)
    replayed = replay(faulty.db, tmp_path / "replay", env)
    for summary in (clean_report, faulty_report, replayed):
        assert summary["replay_parity"] == {"expected": True, "reasons": {}, "first": []}
    assert int(str(clean_report["trades"])) >= 3
    assert decisions(faulty.db) == decisions(clean.db)
    assert decisions(tmp_path / "replay" / "replay.db") == decisions(clean.db)
    assert (faulty_report["trades"], faulty_report["final_equity"]) == (
        clean_report["trades"],
        clean_report["final_equity"],
    )
    assert faulty_report["ledger_digest"] == clean_report["ledger_digest"]
    assert replayed["ledger_digest"] == clean_report["ledger_digest"]


@pytest.mark.timeout(600)
def test_a_warm_up_longer_than_any_wall_clock_stall_gives_the_replay_ledger(
    tmp_path: Path,
) -> None:
    """Each REST page of history takes 2.2 s: BTC's 6,000 candles alone take longer than the
    10 s the old aligner waited for ETH. The instants are still decided whole and in order."""
    history, live = 6_000, 150
    publish_model(tmp_path / "models", mirrored=True)
    env = subprocess_env(
        tmp_path,
        **TRADING,
        SYMBOLS="BTCUSDT,ETHUSDT",
        WARMUP_CANDLES=str(history),
        CATCHUP_LIMIT="10000000",
    )
    last = START_MS + (history + live - 1) * MINUTE
    market = [
        "--speed", "600", "--history", str(history), "--candles", str(history + live),
        "--symbols", "BTCUSDT,ETHUSDT", "--rest-latency", "2.2",
    ]  # fmt: skip
    run = run_live(tmp_path / "live", env, market, {"BTC-USDT": last, "ETH-USDT": last})

    warmed = [e for e in run.log if e["event"] == "feed_warmed_up"]
    assert [int(str(e["fetched"])) for e in warmed] == [history, history]
    started = next(e for e in run.log if e["event"] == "daemon_starting")
    took = _seconds(warmed[-1]) - _seconds(started)
    assert took > 10, f"the warm-up took {took:.1f} s, no longer than the old 10 s stall"
    live_report = report(run.db, env)
    replayed = replay(run.db, tmp_path / "replay", env)
    assert live_report["replay_parity"] == {"expected": True, "reasons": {}, "first": []}
    assert int(str(live_report["trades"])) >= 3
    assert decisions(tmp_path / "replay" / "replay.db") == decisions(run.db)
    assert replayed["ledger_digest"] == live_report["ledger_digest"]


def _seconds(line: dict[str, object]) -> float:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()
