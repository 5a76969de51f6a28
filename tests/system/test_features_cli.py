"""``run_paper_trader.py features``: feature CSVs from both engines, through the real CLI."""

import csv
import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from conftest import subprocess_env
from daemon_harness import daemon, run_cli

from paper_trader.features.spec import default_spec

MINUTE_MS = 60_000
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % (60 * MINUTE_MS)  # aligned to the hour
SPEC = default_spec()
WARMUP = SPEC.warmup
HEADER = ["timestamp_ms", *SPEC.names]
IMPOSSIBLE = (1500, 2500)  # rows of the shared file with high below low, and a zero close
# The higher-timeframe columns fill once their buckets are complete: from an hour-aligned start
# the last of them (the EMA of 10 one-hour buckets) has a value on candle 601, before the spec's
# conservative warm-up of 60 * (10 + 1) candles.
FIRST_COMPLETE = 60 * 10


def candles(
    n: int, *, seed: int = 5, steps: npt.NDArray[np.int64] | None = None, step_ms: int = MINUTE_MS
) -> tuple[list[int], npt.NDArray[np.float64]]:
    """Return open times and a (5, n) OHLCV random walk in cents, with a flat zero-volume halt."""
    rng = np.random.default_rng(seed)
    close = np.round(30_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.001, (2, n))) * close
    high = np.round(np.maximum(open_, close) + wick[0], 2)
    low = np.round(np.minimum(open_, close) - wick[1], 2)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 6)
    halt = slice(n // 5, n // 5 + 40)
    open_[halt] = high[halt] = low[halt] = close[halt] = close[n // 5 - 1]
    volume[halt] = 0.0
    offsets = np.cumsum(np.ones(n, dtype=np.int64) if steps is None else steps) - 1
    return (START_MS + offsets * step_ms).tolist(), np.vstack([open_, high, low, close, volume])


def write_candles(path: Path, times: list[int], ohlcv: npt.NDArray[np.float64]) -> Path:
    """Write a candle CSV with its header, prices to 2 decimals and volume to 6."""
    lines = ["timestamp_ms,open,high,low,close,volume"]
    for t, (o, h, lo, c, v) in zip(times, ohlcv.T.tolist(), strict=True):
        lines.append(f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def features(
    tmp_path: Path, source: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the features command on ``source`` into ``out``."""
    args = ["features", "--csv", str(source), "--out", str(out), *extra]
    return run_cli(args, subprocess_env(tmp_path))


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Return the header and the data rows of a feature CSV."""
    with path.open(newline="") as handle:
        header, *rows = csv.reader(handle)
    return header, rows


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """Return the one JSON line a successful run printed."""
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def ready_rows(rows: list[list[str]]) -> list[bool]:
    """Return, per row, whether every feature cell has a value."""
    return ["" not in row[1:] for row in rows]


def assert_warms_up_from(rows: list[list[str]], start: int, end: int) -> None:
    """Check each column fills at its warm-up from ``start`` (htf: no later) and stays filled."""
    for column in SPEC.columns:
        j = HEADER.index(column.name)
        filled = [i for i in range(start, end) if rows[i][j] != ""]
        due = start + column.warmup - 1
        if column.name.startswith("htf_"):
            assert filled[0] <= due, column.name
        else:
            assert filled[0] == due, column.name
        assert filled == list(range(filled[0], end)), column.name
    assert all(ready_rows(rows[start + WARMUP - 1 : end]))


def cells_agree(a: str, b: str) -> bool:
    """Both empty, or equal to 1e-9 relative with a floor of 1 on the magnitude."""
    if a == "" or b == "":
        return a == b
    x, y = float(a), float(b)
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


@dataclass(frozen=True)
class Dumped:
    """One candle file run through both engines."""

    times: list[int]
    out: dict[str, Path]
    summary: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def dumped(tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    """Run 4000 candles with two impossible ones through both engines, once for the module."""
    workdir = tmp_path_factory.mktemp("features")
    times, ohlcv = candles(4000)
    ohlcv[2, IMPOSSIBLE[0]] = ohlcv[1, IMPOSSIBLE[0]] + 5.0  # low above high
    ohlcv[3, IMPOSSIBLE[1]] = 0.0  # a zero close: CandleCsv accepts it, the engines cannot
    source = write_candles(workdir / "candles.csv", times, ohlcv)
    out = {engine: workdir / f"{engine}.csv" for engine in ("incremental", "batch")}
    summary = {
        engine: summary_of(features(workdir, source, path, "--engine", engine))
        for engine, path in out.items()
    }
    return Dumped(times=times, out=out, summary=summary)


def test_header_is_timestamp_then_every_spec_column_in_order(dumped: Dumped) -> None:
    """Both files start with timestamp_ms and then default_spec().names, nothing else."""
    for path in dumped.out.values():
        header, rows = read_table(path)
        assert header == HEADER
        assert {len(row) for row in rows} == {len(HEADER)}


def test_every_candle_has_one_row_with_its_timestamp(dumped: Dumped) -> None:
    """The rows follow the candle file one to one, impossible candles included."""
    for path in dumped.out.values():
        _, rows = read_table(path)
        assert [int(row[0]) for row in rows] == dumped.times


def test_incremental_and_batch_files_agree_cell_by_cell(dumped: Dumped) -> None:
    """Every cell is empty in both files or equal to 1e-9 relative (floor 1)."""
    _, incremental = read_table(dumped.out["incremental"])
    _, batch = read_table(dumped.out["batch"])
    assert len(incremental) == len(batch)
    for i, (a, b) in enumerate(zip(incremental, batch, strict=True)):
        bad = [
            HEADER[j] for j, (x, y) in enumerate(zip(a, b, strict=True)) if not cells_agree(x, y)
        ]
        assert not bad, f"row {i} differs in {bad}"


def test_values_are_written_with_round_trip_precision(dumped: Dumped) -> None:
    """Every value cell is the repr of its float, so reading it back loses nothing."""
    for path in dumped.out.values():
        _, rows = read_table(path)
        for row in rows[WARMUP::97]:
            assert all(repr(float(cell)) == cell for cell in row[1:] if cell)


def test_every_column_is_empty_until_its_warmup_and_all_are_full_by_the_spec_warmup(
    dumped: Dumped,
) -> None:
    """Each column fills at its own warm-up (htf: once its buckets close) and stays filled."""
    for path in dumped.out.values():
        _, rows = read_table(path)
        assert_warms_up_from(rows, 0, IMPOSSIBLE[0])


def test_summary_names_the_first_row_without_an_empty_cell(dumped: Dumped) -> None:
    """The first complete row follows the tenth closed hour bucket, within the spec warm-up."""
    for engine, path in dumped.out.items():
        _, rows = read_table(path)
        assert ready_rows(rows).index(True) == FIRST_COMPLETE <= WARMUP - 1
        assert dumped.summary[engine]["first_ready_timestamp_ms"] == dumped.times[FIRST_COMPLETE]


def test_impossible_candle_gives_an_empty_row_and_warmup_starts_again(dumped: Dumped) -> None:
    """High below low and a zero close: empty rows, counted; the run carries on and re-warms."""
    for engine, path in dumped.out.items():
        _, rows = read_table(path)
        for at, end in zip(IMPOSSIBLE, (*IMPOSSIBLE[1:], len(rows)), strict=True):
            assert rows[at][1:] == [""] * len(SPEC.names)
            assert_warms_up_from(rows, at + 1, end)
        assert dumped.summary[engine]["impossible_candles"] == len(IMPOSSIBLE)


def test_summary_is_one_json_line_with_rows_engine_hash_and_output(dumped: Dumped) -> None:
    """The summary counts the rows and names the engine, spec hash, columns and file."""
    for engine, path in dumped.out.items():
        assert dumped.summary[engine] == {
            "rows": 4000,
            "engine": engine,
            "spec_hash": SPEC.version_hash,
            "columns": len(SPEC.names),
            "first_ready_timestamp_ms": dumped.times[FIRST_COMPLETE],
            "impossible_candles": 2,
            "out": str(path),
        }


def test_successful_run_leaves_no_temporary_file(dumped: Dumped) -> None:
    """The output is moved into place: only the candle file and the two outputs remain."""
    directory = dumped.out["batch"].parent
    assert sorted(p.name for p in directory.iterdir()) == [
        "batch.csv",
        "candles.csv",
        "incremental.csv",
    ]


def test_long_gap_restarts_warmup_in_both_engines_and_short_gap_does_not(tmp_path: Path) -> None:
    """A 100-interval hole resets every indicator; a 30-interval hole is bridged."""
    steps = np.ones(2000, dtype=np.int64)
    steps[500] += 30  # bridged: within the spec's max_bridged_gap
    steps[1000] += 100  # longer than the spec bridges
    times, ohlcv = candles(2000, seed=11, steps=steps)
    source = write_candles(tmp_path / "gaps.csv", times, ohlcv)
    tables = {}
    for engine in ("incremental", "batch"):
        out = tmp_path / f"{engine}.csv"
        summary = summary_of(features(tmp_path, source, out, "--engine", engine))
        _, tables[engine] = read_table(out)
        first = ready_rows(tables[engine]).index(True)
        assert summary["first_ready_timestamp_ms"] == times[first]
        assert_warms_up_from(tables[engine], 0, 1000)
        assert_warms_up_from(tables[engine], 1000, 2000)
    pairs = zip(tables["incremental"], tables["batch"], strict=True)
    assert all(cells_agree(x, y) for a, b in pairs for x, y in zip(a, b, strict=True))


def test_interval_sets_the_higher_timeframe_buckets(tmp_path: Path) -> None:
    """5m candles read as 5m and as 1m share the plain averages but not the htf columns."""
    times, ohlcv = candles(1000, seed=13, step_ms=5 * MINUTE_MS)
    source = write_candles(tmp_path / "5m.csv", times, ohlcv)
    tables = {}
    for interval in ("5m", "1m"):
        out = tmp_path / f"as_{interval}.csv"
        summary_of(features(tmp_path, source, out, "--interval", interval))
        _, tables[interval] = read_table(out)
    sma, htf = HEADER.index("sma_20"), HEADER.index("htf_trend_5x_10")
    assert [r[sma] for r in tables["5m"]] == [r[sma] for r in tables["1m"]]
    assert [r[htf] for r in tables["5m"]] != [r[htf] for r in tables["1m"]]


@pytest.mark.parametrize(
    ("line", "field", "value", "extra", "problem"),
    [
        (12, 4, "abc", (), "close 'abc' is not a number"),
        (7, 0, str(START_MS + 5 * MINUTE_MS + 1), (), "is not aligned to the 1m interval"),
        (2, 0, str(START_MS + 60_000), ("--interval", "5m"), "is not aligned to the 5m interval"),
    ],
)
def test_bad_candle_file_exits_2_naming_the_line_and_writes_nothing(
    tmp_path: Path, line: int, field: int, value: str, extra: tuple[str, ...], problem: str
) -> None:
    """One stderr line names FILE:LINE and the problem; the previous output is untouched."""
    times, ohlcv = candles(50)
    source = write_candles(tmp_path / "bad.csv", times, ohlcv)
    lines = source.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[field] = value
    lines[line - 1] = ",".join(fields)
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "features.csv"
    out.write_text("previous\n")
    result = features(tmp_path, source, out, *extra)
    assert result.returncode == 2
    assert result.stdout == ""
    message, *others = result.stderr.splitlines()  # one line per bad row, this one first
    assert message.startswith(f"paper-trader: bad input: bad candle file: {source}:{line}: ")
    assert problem in message
    assert all(o.startswith(f"paper-trader: bad input: bad candle file: {source}") for o in others)
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == []


def test_missing_candle_file_exits_2_with_one_line(tmp_path: Path) -> None:
    """A --csv that does not exist is one line (the file, not the settings); no output."""
    out = tmp_path / "features.csv"
    result = features(tmp_path, tmp_path / "nope.csv", out)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"paper-trader: cannot proceed: cannot read {tmp_path / 'nope.csv'}: "
        "No such file or directory"
    ]
    assert not out.exists()


def test_killed_run_leaves_the_previous_output_intact(tmp_path: Path) -> None:
    """SIGKILL while the rows are being written: --out still holds the old file, whole."""
    times, ohlcv = candles(100_000, seed=17)
    source = write_candles(tmp_path / "big.csv", times, ohlcv)
    out = tmp_path / "features.csv"
    out.write_text("previous\n")
    args = ("features", "--csv", str(source), "--out", str(out))
    with daemon(subprocess_env(tmp_path), *args) as process:
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size for p in tmp_path.glob(".features.csv.*.tmp")):
            assert process.poll() is None, "the run ended before it was interrupted"
            assert time.monotonic() < deadline, "no temporary output appeared"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert out.read_text() == "previous\n"


def test_help_lists_every_option(tmp_path: Path) -> None:
    """`features --help` shows --csv, --engine with both engines, --interval and --out."""
    result = run_cli(["features", "--help"], subprocess_env(tmp_path))
    assert result.returncode == 0
    for text in ("--csv", "--engine", "incremental", "batch", "--interval", "1m", "--out"):
        assert text in result.stdout


def test_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    """--engine other than incremental or batch exits 2 before reading anything."""
    result = features(tmp_path, tmp_path / "c.csv", tmp_path / "o.csv", "--engine", "fast")
    assert result.returncode == 2
    assert "invalid choice: 'fast'" in result.stderr
