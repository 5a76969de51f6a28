"""``run_paper_trader.py download``: the real CLI against the simulator, both as subprocesses."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import subprocess_env
from daemon_harness import run_cli, simulator

MINUTE_MS = 60_000
# The simulator's clock starts at the first WebSocket subscriber: REST alone leaves it still,
# so 1500 candles stay closed and the next one never opens during the test.
SIMULATOR_ARGS = ("--history", "1500", "--speed", "1")


def download_args(out: Path, *, symbol: str = "BTCUSDT", days: str = "0.5") -> list[str]:
    return ["download", "--symbol", symbol, "--interval", "1m", "--days", days, "--out", str(out)]


@dataclass(frozen=True)
class Downloaded:
    """One download run by the CLI: its environment, output file and process result."""

    env: dict[str, str]
    out: Path
    result: subprocess.CompletedProcess[str]

    @property
    def summary(self) -> dict[str, Any]:
        """Return the JSON line the command printed."""
        [line] = self.result.stdout.splitlines()
        parsed: dict[str, Any] = json.loads(line)
        return parsed


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Downloaded:
    """Download half a day of BTCUSDT 1m from a simulator subprocess, once for the module."""
    workdir = tmp_path_factory.mktemp("download")
    out = workdir / "btc.csv"
    env = subprocess_env(workdir)
    with simulator(env, *SIMULATOR_ARGS) as sim:
        result = run_cli(download_args(out), {**env, **sim.env})
    return Downloaded(env=env, out=out, result=result)


def test_download_prints_one_json_line_describing_what_it_wrote(downloaded: Downloaded) -> None:
    """Exit 0 and one JSON line: the file, the range of 720 candles, the counts, the requests."""
    assert downloaded.result.returncode == 0, downloaded.result.stderr
    summary = downloaded.summary
    assert summary == {
        "out": str(downloaded.out),
        "from_ms": summary["to_ms"] - 720 * MINUTE_MS,
        "to_ms": summary["to_ms"],
        "rows_before": 0,
        "written": 720,
        "missing_at_venue": 0,
        "requests": 2,  # server time + one page
    }


def test_downloaded_file_holds_every_candle_of_the_range_once(downloaded: Downloaded) -> None:
    """The CSV has the header and one 6-field row per minute of [from_ms, to_ms), ascending."""
    summary = downloaded.summary
    lines = downloaded.out.read_text(encoding="utf-8").splitlines()

    assert lines[0] == "timestamp_ms,open,high,low,close,volume"
    times = [int(row.split(",", 1)[0]) for row in lines[1:]]
    assert times == list(range(summary["from_ms"], summary["to_ms"], MINUTE_MS))
    assert all(len(row.split(",")) == 6 for row in lines[1:])


def test_replay_accepts_the_downloaded_file(downloaded: Downloaded) -> None:
    """`replay --csv` of the download exits 0 and stores all 720 candles."""
    args = ["replay", "--csv", str(downloaded.out), "--symbol", "BTCUSDT", "--interval", "1m"]
    db = downloaded.out.with_name("replay.db")

    replay = run_cli([*args, "--db", str(db)], downloaded.env)

    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)["candles"] == 720


def test_unknown_symbol_exits_2_with_one_configuration_error_line(tmp_path: Path) -> None:
    """A symbol the venue does not list is one stderr line naming SYMBOLS, no traceback."""
    env = subprocess_env(tmp_path)
    with simulator(env, *SIMULATOR_ARGS) as sim:
        result = run_cli(download_args(tmp_path / "foo.csv", symbol="FOOUSDT"), {**env, **sim.env})

    assert result.returncode == 2
    assert result.stdout == ""
    errors = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("paper-trader: configuration error:")
    ]
    assert len(errors) == 1, result.stderr
    assert "SYMBOLS" in errors[0]
    assert "Traceback" not in result.stderr


def test_zero_days_is_refused_by_the_argument_parser(tmp_path: Path) -> None:
    """--days 0 is a usage error (exit 2) before anything is fetched or written."""
    out = tmp_path / "btc.csv"

    result = run_cli(download_args(out, days="0"), subprocess_env(tmp_path))

    assert result.returncode == 2
    assert "--days" in result.stderr
    assert not out.exists()
