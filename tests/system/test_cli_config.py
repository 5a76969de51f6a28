"""Configuration errors: one line naming the variable, exit code 2, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import CLI, run_cli


def test_bad_value_exits_2_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    """MAX_POSITIONS=abc is reported as one line with the expected form."""
    result = run_cli(["check-config"], subprocess_env(tmp_path, MAX_POSITIONS="abc"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "MAX_POSITIONS='abc'" in lines[0]
    assert "expected a whole number from 1 to 100" in lines[0]


def test_bad_value_stops_run_before_anything_starts(tmp_path: Path) -> None:
    """`run` with an invalid interval exits 2 and creates no database."""
    result = run_cli(["run"], subprocess_env(tmp_path, INTERVAL="7m"))
    assert result.returncode == 2
    assert "INTERVAL='7m'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "paper_trader.db").exists()


def test_unknown_key_in_env_file_is_refused(tmp_path: Path) -> None:
    """A misspelt key in the .env file is an error, not a silent default."""
    env_file = tmp_path / "settings.env"
    env_file.write_text("MAX_POSITON=4\n")
    result = run_cli(["--env-file", str(env_file), "check-config"], subprocess_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "paper-trader: configuration error: MAX_POSITON: not a setting paper-trader knows "
        "(a typo?); .env.example lists them all"
    )


def test_missing_env_file_is_refused(tmp_path: Path) -> None:
    """An explicit --env-file that does not exist is an error."""
    result = run_cli(
        ["--env-file", str(tmp_path / "nope.env"), "check-config"], subprocess_env(tmp_path)
    )
    assert result.returncode == 2
    assert "nope.env" in result.stderr


def test_check_config_prints_effective_settings_with_the_token_masked(tmp_path: Path) -> None:
    """Values from the env file and the environment are shown; the token never is."""
    env_file = tmp_path / "settings.env"
    env_file.write_text("SYMBOLS=btcusdt, ETH-EUR\nTELEGRAM_BOT_TOKEN=123456:very-secret\n")
    env = subprocess_env(tmp_path, MAX_POSITIONS="7")
    result = run_cli(["--env-file", str(env_file), "check-config"], env)
    assert result.returncode == 0, result.stderr
    assert "SYMBOLS=BTC-USDT,ETH-EUR" in result.stdout
    assert "MAX_POSITIONS=7" in result.stdout
    assert "TELEGRAM_BOT_TOKEN=**********" in result.stdout
    assert "very-secret" not in result.stdout + result.stderr


def test_the_example_env_file_is_valid_and_complete(tmp_path: Path) -> None:
    """.env.example passes check-config and documents every setting there is."""
    example = Path(__file__).resolve().parents[2] / ".env.example"
    result = run_cli(["--env-file", str(example), "check-config"], subprocess_env(tmp_path))
    assert result.returncode == 0, result.stderr
    shown = {line.split("=", 1)[0] for line in result.stdout.splitlines()[1:]}
    documented = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert shown == documented


def test_every_command_has_help(tmp_path: Path) -> None:
    """`--help` works for the program and each command."""
    for args in ([], ["run"], ["check-config"], ["replay"], ["report"], ["backup"]):
        result = run_cli([*args, "--help"], subprocess_env(tmp_path))
        assert result.returncode == 0
        assert "usage:" in result.stdout


def test_check_config_into_a_pipe_nobody_reads_ends_quietly(tmp_path: Path) -> None:
    """``check-config | head`` and the like: a reader that left is no traceback (141, as a
    tool killed by SIGPIPE)."""
    env = subprocess_env(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, CLI, "check-config"],
            env=env,
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_check_config_shows_the_fee_the_venue_implies_when_fee_rate_is_unset(
    tmp_path: Path,
) -> None:
    """FEE_RATE empty means the venue's taker fee: check-config says which."""
    result = run_cli(["check-config"], subprocess_env(tmp_path, EXCHANGE="kraken"))
    assert result.returncode == 0, result.stderr
    assert "FEE_RATE=0.004  # unset: kraken's taker fee" in result.stdout.splitlines()
    result = run_cli(["check-config"], subprocess_env(tmp_path, FEE_RATE="0.002"))
    assert "FEE_RATE=0.002" in result.stdout.splitlines()
