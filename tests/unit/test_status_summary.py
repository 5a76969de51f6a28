"""What ``status`` shows and where it looks: the summary's lines, the daemon's URL from the
settings (wildcards reached on loopback) and ``--url``'s form."""

import argparse
from typing import Any

import pytest

from paper_trader.cli.status import daemon_url, summary, url_argument
from paper_trader.errors import ConfigError
from paper_trader.settings import Settings

ANSWER: dict[str, Any] = {
    "status": {
        "state": "reducing",
        "tripped": [
            {"breaker": "manual_pause", "reason": "paused by the operator: news", "symbol": None},
            {"breaker": "stop_loss_cooldown", "reason": "2 stops", "symbol": "ETH-USDT"},
        ],
        "equity": "10012.504999",
        "cash": "8000",
        "peak_equity": "10100",
        "drawdown": 0.00866,
        "open_positions": 1,
        "last_candle_ms": 1_700_000_040_000,
        "entered": 3,
        "rejected": 40,
        "skipped": 0,
    },
    "health": {
        "score": 39,
        "level": "Critical",
        "status": "critical",
        "reason": "market_feed critical (gone): a vital component, so the score is at most 39",
        "problems": [{"component": "market_feed", "status": "critical", "detail": "gone"}],
    },
}
POSITION = {
    "position": {"symbol": "BTC-USDT", "side": "long", "quantity": "0.01230000",
                 "entry_price": "42000.123456"},
    "mark": "42100.5",
    "unrealised_pnl": "1.2346",
    "unrealised_pct": "0.239",
    "stop": "41000.000000001",
    "stop_reason": "trailing_stop",
}  # fmt: skip


def test_summary_shows_state_breakers_money_positions_health_and_the_last_candle() -> None:
    """One line each, a position at its mark with signed PnL, times in UTC ISO."""
    assert summary("http://127.0.0.1:8766", ANSWER, [POSITION]) == [
        "paper-trader at http://127.0.0.1:8766",
        "trading      reducing",
        "  tripped    manual_pause: paused by the operator: news",
        "  tripped    stop_loss_cooldown ETH-USDT: 2 stops",
        "equity       10012.50 (cash 8000.00, peak 10100.00, drawdown 0.87 %)",
        "entries      3 made, 40 refused, 0 skipped on stale candles",
        "positions    1 open",
        "  BTC-USDT   long 0.0123 @ 42000.12, mark 42100.50, unrealised +1.23 (+0.24 %), "
        "stop 41000.00 (trailing_stop)",
        "health       39/100 Critical (critical): market_feed critical (gone): a vital "
        "component, so the score is at most 39",
        "  critical   market_feed: gone",
        "last candle  2023-11-14T22:14:00Z (open time, UTC)",
    ]


def test_summary_before_any_candle_or_health_check_says_so() -> None:
    """A fresh daemon: no candle yet, health not checked yet, no position."""
    fresh = {"status": {**ANSWER["status"], "tripped": [], "last_candle_ms": None},
             "health": None}  # fmt: skip
    lines = summary("http://127.0.0.1:8766", fresh, [])
    assert "positions    0 open" in lines
    assert "health       not checked yet" in lines
    assert lines[-1] == "last candle  none yet"


@pytest.mark.usefixtures("settings_free_environment")
@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8766"),
        ("0.0.0.0", "http://127.0.0.1:8766"),
        ("::", "http://[::1]:8766"),
        ("::1", "http://[::1]:8766"),
        ("trader.lan", "http://trader.lan:8766"),
    ],
)
def test_the_daemons_url_comes_from_health_host_and_port(host: str, url: str) -> None:
    """A wildcard the daemon binds is reached on loopback; an IPv6 address in brackets."""
    settings = Settings(_env_file=None, health_host=host)  # type: ignore[call-arg]
    assert daemon_url(settings) == url


@pytest.mark.usefixtures("settings_free_environment")
def test_any_free_port_cannot_be_found_and_says_to_pass_url() -> None:
    """HEALTH_PORT=0: a configuration error naming --url."""
    settings = Settings(_env_file=None, health_port=0)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="pass --url http://HOST:PORT"):
        daemon_url(settings)


@pytest.mark.parametrize(
    ("text", "url"),
    [("http://127.0.0.1:8766", "http://127.0.0.1:8766"), ("http://[::1]:9000/", "http://[::1]:9000"),
     ("https://trader.lan:443", "https://trader.lan:443")],
)  # fmt: skip
def test_url_takes_a_scheme_host_and_port(text: str, url: str) -> None:
    """The daemon's address as the user writes it, a trailing slash allowed."""
    assert url_argument(text) == url


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1:8766", "http://127.0.0.1", "ftp://h:1", "http://h:1/api/status", "http://h:x"],
)
def test_url_refuses_anything_else(text: str) -> None:
    """No scheme, no port, another scheme or a path: refused with the expected form."""
    with pytest.raises(argparse.ArgumentTypeError, match="expected http://HOST:PORT"):
        url_argument(text)
