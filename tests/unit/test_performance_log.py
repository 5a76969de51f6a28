"""Tests for performance.log: its lines go to it alone, as JSON, whatever the level."""

import io
import json
from pathlib import Path

from paper_trader.runtime.logs import (
    ERROR_LOG,
    MAIN_LOG,
    PERFORMANCE_LOG,
    LogConfig,
    configure_logging,
    get_logger,
    write_performance,
)


def test_performance_lines_go_only_to_performance_log_even_at_warning_level(
    tmp_path: Path,
) -> None:
    """A performance record is one JSON object in performance.log, nowhere else; other
    records never reach performance.log."""
    console = io.StringIO()
    handle = configure_logging(LogConfig(level="WARNING", directory=tmp_path), stream=console)
    try:
        write_performance({"status": "ok", "rss_mb": 12.5, "candle_age_s": {"BTC-USDT": 3.0}})
        get_logger("engine").warning("something_odd")
    finally:
        handle.close()

    lines = (tmp_path / PERFORMANCE_LOG).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"status": "ok", "rss_mb": 12.5, "candle_age_s": {"BTC-USDT": 3.0}}
    ]
    for other in (MAIN_LOG, ERROR_LOG):
        text = (tmp_path / other).read_text(encoding="utf-8")
        assert "something_odd" in text
        assert "rss_mb" not in text
    assert "rss_mb" not in console.getvalue()


def test_performance_log_rotates_by_size_like_the_others(tmp_path: Path) -> None:
    """LOG_MAX_BYTES and LOG_BACKUPS apply to performance.log as well."""
    config = LogConfig(directory=tmp_path, max_bytes=300, backups=2)
    handle = configure_logging(config, stream=io.StringIO())
    try:
        for n in range(40):
            write_performance({"n": n, "padding": "x" * 40})
    finally:
        handle.close()

    rotated = sorted(p.name for p in tmp_path.glob(f"{PERFORMANCE_LOG}*"))
    assert rotated == [PERFORMANCE_LOG, f"{PERFORMANCE_LOG}.1", f"{PERFORMANCE_LOG}.2"]
    last = (tmp_path / PERFORMANCE_LOG).read_text(encoding="utf-8").splitlines()[-1]
    assert json.loads(last)["n"] == 39
