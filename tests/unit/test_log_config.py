"""Tests for the structlog logging set-up: files, rotation, redaction and the console stream."""

import io
import json
import logging
import logging.handlers
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paper_trader.runtime.logs import (
    LogConfig,
    LogFormat,
    LoggingHandle,
    configure_logging,
    get_logger,
)

TOKEN = "123456:ABC-secret-token"

Start = Callable[..., LoggingHandle]


class FakeTty(io.StringIO):
    """A text stream that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class BlockingStream(io.StringIO):
    """A stream whose writes wait until released, to keep the listener thread busy."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(timeout=30)
        return super().write(text)


@pytest.fixture
def start() -> Iterator[Start]:
    """Configure logging (console into a StringIO by default) and close every handle after."""
    handles: list[LoggingHandle] = []

    def configure(config: LogConfig, stream: io.StringIO | None = None) -> LoggingHandle:
        handle = configure_logging(config, stream=io.StringIO() if stream is None else stream)
        handles.append(handle)
        return handle

    yield configure
    for handle in reversed(handles):
        handle.close()


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Parse every line of a log file; fail if any line is not a JSON object."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_main_log_gets_json_lines_with_timestamp_level_event_and_component(
    start: Start, tmp_path: Path
) -> None:
    """paper_trader.log holds one JSON object per line with the standard keys."""
    handle = start(LogConfig(directory=tmp_path))
    get_logger("writer").info("candle_stored", n=3)
    handle.close()

    [line] = read_json_lines(tmp_path / "paper_trader.log")
    assert line["event"] == "candle_stored"
    assert line["level"] == "info"
    assert line["component"] == "writer"
    assert line["n"] == 3
    assert line["timestamp"].endswith(("Z", "+00:00"))
    assert "T" in line["timestamp"]


def test_errors_log_receives_warnings_and_errors_but_not_info(start: Start, tmp_path: Path) -> None:
    """errors.log keeps WARNING and above while paper_trader.log keeps everything."""
    handle = start(LogConfig(directory=tmp_path))
    log = get_logger("risk")
    log.info("order_sized")
    log.warning("spread_wide")
    log.error("breaker_tripped")
    handle.close()

    errors = [line["event"] for line in read_json_lines(tmp_path / "errors.log")]
    main = [line["event"] for line in read_json_lines(tmp_path / "paper_trader.log")]
    assert errors == ["spread_wide", "breaker_tripped"]
    assert main == ["order_sized", "spread_wide", "breaker_tripped"]


def test_records_below_configured_level_are_not_written(start: Start, tmp_path: Path) -> None:
    """With level WARNING, debug and info events are dropped."""
    handle = start(LogConfig(level="WARNING", directory=tmp_path))
    log = get_logger("feed")
    log.debug("frame_received")
    log.info("feed_connected")
    logging.getLogger("some.lib").info("chatter")
    log.warning("feed_stale")
    handle.close()

    events = [line["event"] for line in read_json_lines(tmp_path / "paper_trader.log")]
    assert events == ["feed_stale"]


def test_stdlib_logger_record_is_rendered_as_json_in_both_files(
    start: Start, tmp_path: Path
) -> None:
    """A plain stdlib logger's warning is rendered like a structlog event, logger name included."""
    handle = start(LogConfig(directory=tmp_path))
    logging.getLogger("some.lib").warning("disk %s is %d%% full", "/var", 93)
    handle.close()

    for name in ("paper_trader.log", "errors.log"):
        [line] = read_json_lines(tmp_path / name)
        assert line["event"] == "disk /var is 93% full"
        assert line["level"] == "warning"
        assert line["logger"] == "some.lib"
        assert line["timestamp"].endswith(("Z", "+00:00"))


def test_logged_exception_carries_traceback_text(start: Start, tmp_path: Path) -> None:
    """log.exception() adds an ``exception`` field with the formatted traceback."""
    handle = start(LogConfig(directory=tmp_path))
    try:
        raise ValueError("bad candle")
    except ValueError:
        get_logger("writer").exception("write_failed")
    handle.close()

    [line] = read_json_lines(tmp_path / "errors.log")
    assert line["event"] == "write_failed"
    assert line["level"] == "error"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "ValueError: bad candle" in line["exception"]


def test_values_that_are_not_json_serialisable_are_rendered_as_text(
    start: Start, tmp_path: Path
) -> None:
    """Objects json cannot encode are written with str() instead of breaking the line."""
    handle = start(LogConfig(directory=tmp_path))
    get_logger("ledger").info("fill", path=Path("/srv/db"), tags={"a"})
    handle.close()

    [line] = read_json_lines(tmp_path / "paper_trader.log")
    assert line["path"] == "/srv/db"
    assert line["tags"] == "{'a'}"


def test_size_rotation_keeps_at_most_backups_files(start: Start, tmp_path: Path) -> None:
    """A tiny max_bytes rotates paper_trader.log and keeps no more than ``backups`` old files."""
    handle = start(LogConfig(directory=tmp_path, max_bytes=400, backups=2))
    log = get_logger("writer")
    for n in range(60):
        log.info("candle_stored", n=n)
    handle.close()

    rotated = sorted(p.name for p in tmp_path.glob("paper_trader.log.*"))
    assert rotated == ["paper_trader.log.1", "paper_trader.log.2"]
    for path in tmp_path.glob("paper_trader.log*"):
        assert read_json_lines(path)
    newest = read_json_lines(tmp_path / "paper_trader.log")
    assert newest[-1]["n"] == 59


def test_zero_max_bytes_disables_size_rotation(start: Start, tmp_path: Path) -> None:
    """max_bytes=0 never rotates."""
    handle = start(LogConfig(directory=tmp_path, max_bytes=0, backups=2))
    log = get_logger("writer")
    for n in range(60):
        log.info("candle_stored", n=n)
    handle.close()

    assert not list(tmp_path.glob("paper_trader.log.*"))
    assert len(read_json_lines(tmp_path / "paper_trader.log")) == 60


def test_renamed_log_file_is_reopened_at_its_path(start: Start, tmp_path: Path) -> None:
    """After an external rename, new lines go to a fresh paper_trader.log."""
    path = tmp_path / "paper_trader.log"
    handle = start(LogConfig(directory=tmp_path))
    log = get_logger("writer")
    log.info("before_rotate")
    wait_until(lambda: "before_rotate" in path.read_text(encoding="utf-8"))
    path.rename(tmp_path / "paper_trader.log.old")
    log.info("after_rotate")
    handle.close()

    old = [line["event"] for line in read_json_lines(tmp_path / "paper_trader.log.old")]
    new = [line["event"] for line in read_json_lines(path)]
    assert old == ["before_rotate"]
    assert new == ["after_rotate"]


def test_truncated_log_file_gets_appended_without_holes(start: Start, tmp_path: Path) -> None:
    """After a copytruncate, writes continue at the new end and the file stays JSON lines."""
    path = tmp_path / "paper_trader.log"
    handle = start(LogConfig(directory=tmp_path))
    log = get_logger("writer")
    for n in range(20):
        log.info("before_truncate", n=n)
    wait_until(lambda: path.read_text(encoding="utf-8").count("before_truncate") == 20)
    os.truncate(path, 0)
    log.info("after_truncate")
    handle.close()

    content = path.read_bytes()
    assert content.startswith(b"{")
    assert b"\x00" not in content
    assert [line["event"] for line in read_json_lines(path)] == ["after_truncate"]


def test_secrets_never_reach_files_or_console(start: Start, tmp_path: Path) -> None:
    """The configured token is masked in messages, values, stdlib records and tracebacks."""
    console = io.StringIO()
    handle = start(LogConfig(directory=tmp_path, secrets=(TOKEN,)), console)
    log = get_logger("telegram")
    log.warning(f"send failed for {TOKEN}")
    log.warning("request", url=f"https://api.telegram.org/bot{TOKEN}/sendMessage")
    log.warning("nested", detail={"url": TOKEN}, parts=[TOKEN])
    log.warning("configured", bot_token="something-else-entirely")
    logging.getLogger("httpx").warning(f"POST https://api.telegram.org/bot{TOKEN}/getMe")
    try:
        raise RuntimeError(f"rejected {TOKEN}")
    except RuntimeError:
        log.exception("send_crashed")
        logging.getLogger("telegram.ext").exception("handler crashed")
    handle.close()

    outputs = {
        "console": console.getvalue(),
        "main": (tmp_path / "paper_trader.log").read_text(encoding="utf-8"),
        "errors": (tmp_path / "errors.log").read_text(encoding="utf-8"),
    }
    for name, text in outputs.items():
        assert TOKEN not in text, name
        assert "something-else-entirely" not in text, name
        assert text.count("**********") >= 8, name
    masked = {line["event"]: line for line in read_json_lines(tmp_path / "errors.log")}
    assert masked["configured"]["bot_token"] == "**********"
    assert "RuntimeError: rejected **********" in masked["send_crashed"]["exception"]


def test_sensitive_key_with_empty_value_is_left_as_is(start: Start, tmp_path: Path) -> None:
    """An empty or None value under a token-like key is not masked, so its absence shows."""
    handle = start(LogConfig(directory=tmp_path))
    get_logger("settings").info("loaded", api_token="", db_password=None)
    handle.close()

    [line] = read_json_lines(tmp_path / "paper_trader.log")
    assert line["api_token"] == ""
    assert line["db_password"] is None


def test_auto_format_on_non_tty_stream_writes_json_lines(start: Start) -> None:
    """AUTO renders JSON lines when the console stream is not a terminal."""
    console = io.StringIO()
    handle = start(LogConfig(), console)
    get_logger("writer").info("candle_stored", n=3)
    handle.close()

    [line] = [json.loads(text) for text in console.getvalue().splitlines()]
    assert line["event"] == "candle_stored"
    assert line["component"] == "writer"


def test_console_format_writes_human_text(start: Start) -> None:
    """CONSOLE renders readable text, not JSON, even to a non-terminal."""
    console = io.StringIO()
    handle = start(LogConfig(format=LogFormat.CONSOLE), console)
    get_logger("writer").info("candle_stored", n=3)
    handle.close()

    text = console.getvalue()
    assert "candle_stored" in text
    assert "component=writer" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text


def test_auto_format_on_tty_writes_human_text(start: Start) -> None:
    """AUTO renders coloured text when the console stream is a terminal."""
    console = FakeTty()
    handle = start(LogConfig(), console)
    get_logger("writer").info("candle_stored", n=3)
    handle.close()

    text = console.getvalue()
    assert "candle_stored" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" in text


def test_json_format_on_tty_writes_json_lines(start: Start) -> None:
    """JSON forces JSON lines even on a terminal."""
    console = FakeTty()
    handle = start(LogConfig(format=LogFormat.JSON), console)
    get_logger("writer").info("candle_stored")
    handle.close()

    assert json.loads(console.getvalue())["event"] == "candle_stored"


def test_no_directory_writes_no_files(start: Start, tmp_path: Path) -> None:
    """Without a directory only the console stream is written."""
    console = io.StringIO()
    handle = start(LogConfig(), console)
    get_logger("cli").info("config_ok")
    handle.close()

    assert "config_ok" in console.getvalue()
    assert not list(tmp_path.iterdir())


def test_missing_directory_is_created(start: Start, tmp_path: Path) -> None:
    """A log directory that does not exist yet is created."""
    directory = tmp_path / "nested" / "logs"
    handle = start(LogConfig(directory=directory))
    get_logger("app").info("started")
    handle.close()

    assert read_json_lines(directory / "paper_trader.log")[0]["event"] == "started"


def test_noisy_third_party_info_is_not_written(start: Start, tmp_path: Path) -> None:
    """httpx and friends are held at WARNING even when the daemon logs at DEBUG."""
    handle = start(LogConfig(level="DEBUG", directory=tmp_path))
    logging.getLogger("httpx").info("HTTP Request: GET https://example.test")
    logging.getLogger("httpx").warning("retrying")
    handle.close()

    events = [line["event"] for line in read_json_lines(tmp_path / "paper_trader.log")]
    assert events == ["retrying"]


def test_logger_created_before_configuration_uses_it(start: Start, tmp_path: Path) -> None:
    """A module-level logger obtained before configure_logging still writes to the files."""
    log = get_logger("early")
    handle = start(LogConfig(directory=tmp_path))
    log.info("late_call")
    handle.close()

    [line] = read_json_lines(tmp_path / "paper_trader.log")
    assert line["event"] == "late_call"
    assert line["component"] == "early"


def test_configuring_again_replaces_previous_pipeline(start: Start, tmp_path: Path) -> None:
    """A second configure_logging closes the first pipeline; events go only to the new one."""
    first, second = tmp_path / "first", tmp_path / "second"
    start(LogConfig(directory=first))
    handle = start(LogConfig(directory=second))
    get_logger("app").info("after_reconfigure")
    handle.close()

    assert (first / "paper_trader.log").read_text(encoding="utf-8") == ""
    assert read_json_lines(second / "paper_trader.log")[0]["event"] == "after_reconfigure"
    assert (
        sum(isinstance(h, logging.handlers.QueueHandler) for h in logging.getLogger().handlers) == 0
    )


def test_close_is_idempotent_and_removes_the_queue_handler(start: Start) -> None:
    """close() can be called twice and leaves no queue handler on the root logger."""
    handle = start(LogConfig())
    handle.close()
    handle.close()

    assert not any(
        isinstance(h, logging.handlers.QueueHandler) for h in logging.getLogger().handlers
    )


def test_dropped_starts_at_zero(start: Start) -> None:
    """A fresh pipeline has dropped nothing."""
    handle = start(LogConfig())
    get_logger("app").info("started")

    assert handle.dropped == 0


def test_full_queue_drops_and_counts_instead_of_blocking(start: Start) -> None:
    """While the listener is stuck, records beyond the queue's capacity are dropped and counted."""
    console = BlockingStream()
    handle = start(LogConfig(), console)
    log = get_logger("feed")
    try:
        for n in range(10_100):
            log.info("tick", n=n)
        assert handle.dropped >= 99
    finally:
        console.release.set()
    handle.close()

    assert handle.dropped < 10_100
