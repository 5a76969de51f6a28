"""Settings: parsing of the user's .env spellings, validation messages, masking."""

from decimal import Decimal
from pathlib import Path

import pytest

from paper_trader.domain import Interval, Venue
from paper_trader.errors import ConfigError
from paper_trader.settings import Settings, load_settings

pytestmark = pytest.mark.usefixtures("settings_free_environment")


def test_lists_accept_the_comma_separated_spelling(tmp_path: Path) -> None:
    """SYMBOLS and TELEGRAM_CHAT_ID take comma-separated values, spaces and case tolerated."""
    settings = load_settings_from(
        tmp_path, "SYMBOLS=btcusdt, ETH-EUR ,btc/usd\nTELEGRAM_CHAT_ID=12, -100345\n"
    )
    assert settings.symbols == ["BTC-USDT", "ETH-EUR", "BTC-USD"]
    assert settings.telegram_chat_id == [12, -100345]


def test_enums_and_decimals_are_parsed(tmp_path: Path) -> None:
    """EXCHANGE, INTERVAL and LOG_LEVEL are case-insensitive; INITIAL_BALANCE is exact."""
    settings = load_settings_from(
        tmp_path, "EXCHANGE=Kraken\nINTERVAL=1H\nLOG_LEVEL=debug\nINITIAL_BALANCE=1234.56\n"
    )
    assert settings.exchange is Venue.KRAKEN
    assert settings.interval is Interval.H1
    assert settings.log_level == "DEBUG"
    assert settings.initial_balance == Decimal("1234.56")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("SYMBOLS=", "SYMBOLS='': no symbol given"),
        ("SYMBOLS=BTC USDT$", "has no known quote asset"),
        ("SYMBOLS=BTCUSDT,BTC-USDT", "a symbol is listed twice"),
        ("BINANCE_WS_URL=https://example.test", "expected a ws:// or wss:// URL"),
        (
            "RECONNECT_BACKOFF_BASE=5\nRECONNECT_BACKOFF_MAX=1",
            "must not be below RECONNECT_BACKOFF_BASE",
        ),
        ("INITIAL_BALANCE=-5", "INITIAL_BALANCE='-5'"),
        ("ENABLE_CIRCUIT_BREAKERS=maybe", "(expected true or false)"),
        ("SHUTDOWN_TIMEOUT=0", "(expected seconds, from 1 to 300)"),
        ("TELEGRAM_CHAT_ID=me", "TELEGRAM_CHAT_ID="),
        ("RESTART_BACKOFF_BASE=5\nRESTART_BACKOFF_MAX=1", "must not be below RESTART_BACKOFF_BASE"),
        ("MONTE_CARLO_RUNS=50", "MONTE_CARLO_RUNS='50': fewer than 100 runs make the percentiles"),
        ("MONTE_CARLO_RUNS=100001", "(expected a whole number of runs, 0 (off) or from 100"),
    ],
)
def test_bad_values_name_the_variable_and_the_problem(
    tmp_path: Path, line: str, expected: str
) -> None:
    """Each invalid value gives exactly one line, naming the variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings_from(tmp_path, line + "\n")
    message = str(caught.value)
    assert expected in message
    assert len(message.splitlines()) == 1


def test_monte_carlo_runs_default_to_a_thousand_and_zero_is_off(tmp_path: Path) -> None:
    """MONTE_CARLO_RUNS: 1000 unless set; 0 turns the Monte Carlo off."""
    assert load_settings_from(tmp_path, "").monte_carlo_runs == 1000
    assert load_settings_from(tmp_path, "MONTE_CARLO_RUNS=0\n").monte_carlo_runs == 0
    assert load_settings_from(tmp_path, "MONTE_CARLO_RUNS=100\n").monte_carlo_runs == 100


def test_a_bad_token_value_is_never_echoed(tmp_path: Path) -> None:
    """An error about the token masks its value."""
    long_token = "x" * 5000
    with pytest.raises(ConfigError) as caught:
        load_settings_from(tmp_path, f"TELEGRAM_BOT_TOKEN={long_token}\nFOO=1\n")
    assert long_token[:20] not in str(caught.value)


def test_effective_settings_mask_the_token_and_hash_ignores_it(tmp_path: Path) -> None:
    """check-config output masks the token; the config hash does not depend on its value."""
    one = load_settings_from(tmp_path, "TELEGRAM_BOT_TOKEN=111:aaa\n")
    two = load_settings_from(tmp_path, "TELEGRAM_BOT_TOKEN=222:bbb\n")
    assert one.effective()["TELEGRAM_BOT_TOKEN"] == "**********"
    assert one.secrets() == ("111:aaa",)
    assert one.config_hash() == two.config_hash()
    other = load_settings_from(tmp_path, "MAX_POSITIONS=9\n")
    assert other.config_hash() != one.config_hash()


def test_notification_defaults_are_the_users_guide_caps(tmp_path: Path) -> None:
    """The caps per hour default to 30 errors, 100 trades, 10 status messages; late after 5
    minutes, kept 30 days, no webhook."""
    settings = load_settings_from(tmp_path, "")
    caps = (
        settings.error_notifications_per_hour,
        settings.trade_notifications_per_hour,
        settings.status_notifications_per_hour,
    )
    assert caps == (30, 100, 10)
    assert settings.notification_late_s == 300
    assert settings.notification_retention_days == 30
    assert settings.webhook_url is None
    assert settings.webhook_format == "json"


def test_the_webhook_url_is_a_secret_and_must_be_http(tmp_path: Path) -> None:
    """WEBHOOK_URL (a Discord one holds its token) is masked, redacted and never echoed."""
    url = "https://discord.com/api/webhooks/123/very-secret-token?wait=true"
    settings = load_settings_from(tmp_path, f"WEBHOOK_URL={url}\nWEBHOOK_FORMAT=Discord\n")
    assert settings.webhook_url is not None
    assert settings.webhook_url.get_secret_value() == url
    assert settings.webhook_format == "discord"
    assert settings.effective()["WEBHOOK_URL"] == "**********"
    assert url in settings.secrets()
    with pytest.raises(ConfigError) as caught:
        load_settings_from(tmp_path, "WEBHOOK_URL=ftp://very-secret-token\n")
    assert "WEBHOOK_URL=**********: not an http:// or https:// URL" in str(caught.value)
    assert "very-secret" not in str(caught.value)
    empty = load_settings_from(tmp_path, "WEBHOOK_URL=\n")
    assert empty.webhook_url is None


def load_settings_from(tmp_path: Path, text: str) -> Settings:
    """Load settings from ``text`` written to an env file (the environment still applies)."""
    env_file = tmp_path / "test.env"
    env_file.write_text(text)
    return load_settings(env_file, required=True)
