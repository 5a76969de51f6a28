"""``python -m paper_trader.simulator``: its flags, its usage errors (exit 2), and serving
until the market is finished or SIGTERM (exit 0)."""

import asyncio
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from conftest import ROOT, eventually, subprocess_env
from fakes.simulator_rig import MINUTE, START_MS, http_get


def _cli(*args: str, tmp_path: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paper_trader.simulator", *args],
        cwd=ROOT,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_help_exits_zero(tmp_path: Path) -> None:
    """`--help` documents the flags and exits 0."""
    result = _cli("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "--drop-every" in result.stdout
    assert "--exit-when-finished" in result.stdout


def test_cli_rejects_a_bad_csv_with_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    """An invalid CSV is a usage error: exit 2, one line naming file:line."""
    csv = tmp_path / "bad.csv"
    csv.write_text(
        "timestamp_ms,open,high,low,close,volume\n1672531200000,1,2,0.5,1.5,3\nx,1,2,3\n"
    )
    result = _cli("--csv", str(csv), "--symbol", "BTCUSDT", tmp_path=tmp_path)
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert f"{csv}:3" in error


def test_cli_rejects_bad_arguments_with_exit_2(tmp_path: Path) -> None:
    """A bad speed or rate is reported by argparse with exit 2."""
    assert _cli("--speed", "fast", tmp_path=tmp_path).returncode == 2
    result = _cli("--duplicate-rate", "1.5", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "duplicate_rate" in result.stderr


def test_cli_exits_zero_when_the_market_is_finished(tmp_path: Path) -> None:
    """`--exit-when-finished` stops serving after the last candle; the port file is written."""
    port_file = tmp_path / "port"
    args = ["--speed", "max", "--start-now", "--candles", "30", "--history", "5"]
    result = _cli(
        *args, "--exit-when-finished", "0", "--port-file", str(port_file), tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stderr
    port = int(port_file.read_text())
    assert result.stdout.splitlines() == [f"simulator listening on http://127.0.0.1:{port}"]


@asynccontextmanager
async def _serving(tmp_path: Path, *args: str) -> AsyncIterator[tuple[Process, str]]:
    """Run the CLI with ``args``; yield the process and its REST base URL once it listens;
    stop it (SIGTERM, then SIGKILL) if it still runs at the end."""
    port_file = tmp_path / "port"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "paper_trader.simulator",
        "--port-file",
        str(port_file),
        *args,
        cwd=ROOT,
        env=subprocess_env(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await eventually(port_file.exists, timeout=20)
        yield process, f"http://127.0.0.1:{int(port_file.read_text())}/api/v3"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.communicate(), 20)
            except TimeoutError:
                process.kill()
                await process.communicate()


async def test_cli_serves_rest_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    """The CLI serves the REST API until SIGTERM, then exits 0."""
    async with _serving(tmp_path) as (process, base), aiohttp.ClientSession() as http:
        _, body, _ = await http_get(http, f"{base}/time")
        assert body == {"serverTime": START_MS + 1000 * MINUTE}  # the default --history
        process.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0
        assert out.decode().startswith("simulator listening on http://127.0.0.1:")


async def test_cli_history_alone_is_all_closed_and_a_live_market_follows(tmp_path: Path) -> None:
    """`--history 3000` without `--candles`: 3,000 candles are closed at start and the synthetic
    market goes on after them (it used to hold 1,000 in all: those closed, and nothing after)."""
    args = ["--history", "3000", "--speed", "max", "--exit-when-finished", "0"]
    async with _serving(tmp_path, *args) as (process, base), aiohttp.ClientSession() as http:
        _, body, _ = await http_get(http, f"{base}/time")
        _, rows, _ = await http_get(http, f"{base}/klines?symbol=BTCUSDT&interval=1m&limit=1000")
        assert body == {"serverTime": START_MS + 3000 * MINUTE}
        # Binance's newest row is the candle still open: the first one after the history.
        assert [row[0] for row in rows[-2:]] == [START_MS + 2999 * MINUTE, START_MS + 3000 * MINUTE]
        assert process.returncode is None  # still serving: the live candles have not run yet
