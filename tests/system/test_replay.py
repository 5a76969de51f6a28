"""The first vertical slice: a candle CSV through the supervised daemon into SQLite."""

import contextlib
import json
import signal
import sqlite3
import time
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import daemon, run_cli

from paper_trader.domain import Interval
from paper_trader.simulator.synthetic import generate_candles, write_csv


def _csv(tmp_path: Path, count: int, *, skip: frozenset[int] = frozenset()) -> Path:
    path = tmp_path / "candles.csv"
    candles = (c for i, c in enumerate(generate_candles(count=count, seed=3)) if i not in skip)
    write_csv(candles, path)
    return path


def _replay(tmp_path: Path, csv: Path, *extra: str) -> tuple[int, str, str]:
    args = ["replay", "--csv", str(csv), "--symbol", "BTCUSDT", "--interval", "1m", *extra]
    result = run_cli(args, subprocess_env(tmp_path))
    return result.returncode, result.stdout, result.stderr


def test_replay_stores_every_candle_exactly_and_prints_the_summary(tmp_path: Path) -> None:
    """All rows land in SQLite with the CSV's exact values; the JSON summary counts them."""
    csv = _csv(tmp_path, 3000)
    code, out, err = _replay(tmp_path, csv)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["replay"]["candles_processed"] == 3000
    assert summary["replay"]["exit_code"] == 0
    assert summary["candles"] == 3000
    [series] = summary["series"]
    assert series == {
        "venue": "binance",
        "symbol": "BTC-USDT",
        "interval": "1m",
        "candles": 3000,
        "first_open_time": "2023-01-01T00:00:00Z",
        "last_open_time": "2023-01-03T01:59:00Z",
        "missing_candles": 0,
    }
    rows = csv.read_text().splitlines()[1:]
    with sqlite3.connect(summary["db"]) as conn:
        stored = conn.execute(
            "SELECT open_time_ms, open, high, low, close, volume FROM candles ORDER BY open_time_ms"
        ).fetchall()
    assert [",".join(str(v) for v in row) for row in stored] == rows


def test_report_rebuilds_the_replay_summary_from_the_database(tmp_path: Path) -> None:
    """`report --db` prints the same series, candle and run figures as the replay did."""
    csv = _csv(tmp_path, 500, skip=frozenset({100, 101, 102, 300}))
    code, out, err = _replay(tmp_path, csv)
    assert code == 0, err
    replayed = json.loads(out)
    report = run_cli(["report", "--db", replayed["db"], "--json"], subprocess_env(tmp_path))
    assert report.returncode == 0, report.stderr
    reported = json.loads(report.stdout)
    replayed.pop("replay")
    assert reported == replayed
    assert reported["series"][0]["missing_candles"] == 4


def test_replaying_the_same_file_twice_does_not_duplicate_candles(tmp_path: Path) -> None:
    """Candles are upserts keyed by venue, symbol, interval and open time."""
    csv = _csv(tmp_path, 200)
    db = ["--db", str(tmp_path / "replay.db")]
    assert _replay(tmp_path, csv, *db)[0] == 0
    code, out, _ = _replay(tmp_path, csv, *db)
    assert code == 0
    summary = json.loads(out)
    assert summary["candles"] == 200
    assert summary["runs"] == 2


def test_bad_row_is_reported_with_file_and_line_and_nothing_is_written(tmp_path: Path) -> None:
    """A malformed row gives FILE:LINE, exit 2, no traceback, and no candle in the database."""
    csv = _csv(tmp_path, 100)
    lines = csv.read_text().splitlines()
    lines[49] = lines[49].replace(",", ",abc,", 1).rsplit(",", 1)[0]  # line 50: 'abc' as open
    csv.write_text("\n".join(lines) + "\n")
    code, out, err = _replay(tmp_path, csv)
    assert code == 2
    assert f"{csv}:50: open 'abc' is not a number" in err
    assert "Traceback" not in err
    assert out == ""
    for db in tmp_path.glob("**/*.db"):
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM candles").fetchone() == (0,)


def test_rows_out_of_order_and_misaligned_times_are_reported(tmp_path: Path) -> None:
    """Each problem line is named, up to a limit, one stderr line each."""
    interval = Interval.M1.ms
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "timestamp_ms,open,high,low,close,volume\n"
        f"{interval * 10},1,2,0.5,1.5,10\n"
        f"{interval * 10},1,2,0.5,1.5,10\n"
        f"{interval * 11 + 7},1,2,0.5,1.5,10\n"
        f"{interval * 12},1,2,0.5,nan,10\n"
        f"{interval * 13},1,2,0.5,1.5\n"
    )
    code, _, err = _replay(tmp_path, csv)
    assert code == 2
    assert f"{csv}:3: timestamp_ms {interval * 10} duplicates the previous row" in err
    assert f"{csv}:4: timestamp_ms {interval * 11 + 7} is not aligned to the 1m interval" in err
    assert f"{csv}:5: close 'nan' must be a finite number" in err
    assert f"{csv}:6: expected 6 fields" in err
    lines = err.splitlines()
    prefix = f"paper-trader: bad input: bad candle file: {csv}"
    assert [line[: len(prefix) + 3] for line in lines] == [f"{prefix}:{n}:" for n in (3, 4, 5, 6)]


def test_missing_csv_is_a_clear_error(tmp_path: Path) -> None:
    """A CSV path that does not exist is named in a one-line error."""
    code, _, err = _replay(tmp_path, tmp_path / "missing.csv")
    assert code == 2
    assert err.startswith("paper-trader: cannot proceed: ")  # a file, not the settings
    assert "missing.csv" in err
    assert "Traceback" not in err


def test_kill_9_mid_replay_leaves_a_consistent_database_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    """Crash-only: after SIGKILL the stored candles are a gap-free prefix and a rerun finishes."""
    count = 60_000
    csv = _csv(tmp_path, count)
    db = tmp_path / "paper_trader.db"
    args = ["replay", "--csv", str(csv), "--symbol", "BTCUSDT", "--interval", "1m", "--db", str(db)]
    with daemon(subprocess_env(tmp_path), *args) as process:
        stored = 0
        deadline = time.monotonic() + 30
        while stored == 0 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            if db.exists():
                with contextlib.suppress(sqlite3.OperationalError):
                    stored = _candle_count(db)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert stored > 0, "the replay never stored a candle before the kill"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        first, last, rows = conn.execute(
            "SELECT min(open_time_ms), max(open_time_ms), count(*) FROM candles"
        ).fetchone()
        assert (last - first) // 60_000 + 1 == rows  # whole transactions only: no holes
        assert conn.execute("SELECT exit_code FROM runs").fetchall() == [(None,)]
    code, out, err = _replay(tmp_path, csv, "--db", str(db))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["candles"] == count
    assert summary["series"][0]["missing_candles"] == 0


def _candle_count(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM candles").fetchone()[0])
