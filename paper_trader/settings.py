"""Settings from the environment and ``.env``, validated with one clear line per mistake.

Over 400 lines on purpose: one pydantic model holds every setting with the form it expects,
because its validators weigh settings against each other (risk levels, thresholds, secrets)
and ``check-config``, the config hash and the error lines all read that one model.

Names are the ones users of this kind of bot already have in their ``.env``. Every setting is
documented in ``.env.example``. Environment variables override the ``.env`` file; a key in the
file that is not a setting is an error (a typo must not silently fall back to a default).
"""

import hashlib
import ipaddress
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from paper_trader.domain import Interval, Venue
from paper_trader.domain.symbols import normalise_symbol
from paper_trader.domain.trading import SizingMethod
from paper_trader.errors import ConfigError

_WS_URL = re.compile(r"^wss?://[^\s/?#]+(/[^\s?#]*)?$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")  # scheme://host[:port], no path
MIN_TOKEN_LENGTH = 16
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$|^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$")  # name, IPv4/6
_WEBHOOK_URL = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")
# Entry-level taker fees per side, from each venue's published fee schedule.
VENUE_TAKER_FEES = {Venue.BINANCE: 0.001, Venue.BITVAVO: 0.0025, Venue.KRAKEN: 0.004}
# Venues where a paper short stands for something a user could really do (margin trading).
VENUES_WITH_SHORTING = frozenset({Venue.KRAKEN})
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _expect(form: str, **kwargs: Any) -> Any:
    """Return a ``Field`` whose description is the expected form, quoted in error messages."""
    return Field(description=form, **kwargs)


class Settings(BaseSettings):
    """Every setting of the daemon; field names are the variable names in lower case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        case_sensitive=False,
        frozen=True,
        validate_default=True,
    )

    # Market
    exchange: Venue = _expect("one of binance, bitvavo, kraken", default=Venue.BINANCE)
    symbols: Annotated[list[str], NoDecode] = _expect(
        "a comma-separated list of symbols in the venue's spelling, such as BTCUSDT,ETHUSDT, "
        "BTC-EUR or BTC/USD",
        default=["BTC-USDT"],
    )
    interval: Interval = _expect("one of " + ", ".join(i.value for i in Interval), default="1m")
    initial_balance: Decimal = _expect(
        "a positive amount such as 10000", default=Decimal(10000), gt=0
    )

    # Exchange endpoints (ws:// and http:// are accepted, so a loopback server can stand in)
    binance_ws_url: str = _expect(
        "a ws:// or wss:// URL", default="wss://stream.binance.com:9443", pattern=_WS_URL
    )
    binance_rest_url: str = _expect(
        "an http:// or https:// URL", default="https://api.binance.com", pattern=_HTTP_URL
    )
    bitvavo_ws_url: str = _expect(
        "a ws:// or wss:// URL", default="wss://ws.bitvavo.com/v2/", pattern=_WS_URL
    )
    bitvavo_rest_url: str = _expect(
        "an http:// or https:// URL", default="https://api.bitvavo.com/v2", pattern=_HTTP_URL
    )
    kraken_ws_url: str = _expect(
        "a ws:// or wss:// URL", default="wss://ws.kraken.com/v2", pattern=_WS_URL
    )
    kraken_rest_url: str = _expect(
        "an http:// or https:// URL", default="https://api.kraken.com", pattern=_HTTP_URL
    )

    # Market data
    warmup_candles: int = _expect("a whole number from 0 to 100000", default=1000, ge=0, le=100_000)
    stream_silence_timeout: float = _expect("seconds, from 5 to 3600", default=60.0, ge=5, le=3600)
    reconnect_backoff_base: float = _expect("seconds, more than 0", default=1.0, gt=0)
    reconnect_backoff_max: float = _expect("seconds, more than 0", default=60.0, gt=0)
    reconnect_storm_count: int = _expect("a whole number from 2 to 1000", default=5, ge=2, le=1000)
    reconnect_storm_window: float = _expect("seconds, more than 0", default=300.0, gt=0)
    min_data_quality: float = _expect("a score from 0 to 100", default=80.0, ge=0, le=100)
    data_quality_window: int = _expect(
        "a whole number of candles from 10 to 100000", default=120, ge=10, le=100_000
    )
    price_jump_multiple: float = _expect(
        "a multiple of recent volatility, more than 1", default=10.0, gt=1
    )
    series_stall_timeout: float = _expect(
        "seconds, from 10 to 86400", default=600.0, ge=10, le=86_400
    )

    # Files
    db_path: Path = _expect("a file path", default=Path("paper_trader.db"))
    log_dir: Path = _expect("a directory path", default=Path("logs"))
    models_dir: Path = _expect("a directory path", default=Path("models"))
    cache_dir: Path = _expect("a directory path", default=Path("cache"))

    # Logging
    log_level: LogLevel = _expect("one of DEBUG, INFO, WARNING, ERROR, CRITICAL", default="INFO")
    log_format: Literal["auto", "console", "json"] = _expect(
        "one of auto, console, json", default="auto"
    )
    log_max_bytes: int = _expect("a whole number of bytes, 0 or more", default=10_000_000, ge=0)
    log_backups: int = _expect("a whole number from 0 to 100", default=5, ge=0, le=100)

    # Telegram
    telegram_bot_token: SecretStr | None = _expect("the token BotFather gave you", default=None)
    telegram_chat_id: Annotated[list[int], NoDecode] = _expect(
        "a comma-separated list of numeric chat ids such as 123456789,-1001234567890", default=[]
    )
    telegram_allowed_users: Annotated[list[int], NoDecode] = _expect(
        "a comma-separated list of numeric user ids such as 123456789, or empty for anyone "
        "in TELEGRAM_CHAT_ID's chats",
        default=[],
    )
    telegram_api_url: str = _expect(
        "an http:// or https:// URL (the Bot API server's root)",
        default="https://api.telegram.org",
        pattern=_HTTP_URL,
    )
    error_notifications_per_hour: int = _expect(
        "a whole number from 0 (no cap) to 3600", default=30, ge=0, le=3600
    )
    trade_notifications_per_hour: int = _expect(
        "a whole number from 0 (no cap) to 3600", default=100, ge=0, le=3600
    )
    status_notifications_per_hour: int = _expect(
        "a whole number from 0 (no cap) to 3600", default=10, ge=0, le=3600
    )
    notification_late_s: float = _expect("seconds, from 1 to 86400", default=300.0, ge=1, le=86_400)
    notification_retention_days: int = _expect(
        "a whole number of days from 1 to 3650", default=30, ge=1, le=3650
    )
    webhook_url: SecretStr | None = _expect(
        "an http:// or https:// URL (a Discord webhook's, or any that takes JSON)", default=None
    )
    webhook_format: Literal["json", "discord"] = _expect("json or discord", default="json")

    # Trading and risk
    max_positions: int = _expect("a whole number from 1 to 100", default=3, ge=1, le=100)
    enable_circuit_breakers: bool = _expect("true or false", default=True)
    enable_data_quality_checks: bool = _expect("true or false", default=True)
    max_daily_loss: float = _expect(
        "a fraction of equity above 0, at most 1", default=0.05, gt=0, le=1
    )
    max_drawdown: float = _expect(
        "a fraction of equity above 0, at most 1", default=0.15, gt=0, le=1
    )
    max_consecutive_losses: int = _expect("a whole number from 1 to 1000", default=5, ge=1, le=1000)
    losing_streak_cooldown: float = _expect(
        "seconds of candle time, 0 or more", default=3600.0, ge=0
    )
    min_time_between_trades: float = _expect(
        "seconds of candle time, 0 or more", default=300.0, ge=0
    )
    stop_loss_cooldown: float = _expect("seconds of candle time, 0 or more", default=1800.0, ge=0)
    volatility_breaker_multiple: float = _expect(
        "a multiple of the median ATR %, more than 1", default=3.0, gt=1
    )
    volatility_window: int = _expect(
        "a whole number of candles from 20 to 100000", default=1440, ge=20, le=100_000
    )
    max_position_size: float = _expect(
        "a fraction of equity above 0, at most 1", default=0.25, gt=0, le=1
    )
    max_total_exposure: float = _expect(
        "a fraction of equity above 0, at most 1", default=0.75, gt=0, le=1
    )
    min_notional: Decimal = _expect(
        "an amount of quote currency, 0 or more", default=Decimal(10), ge=0
    )
    min_confidence: float = _expect("a confidence from 0 to 1", default=0.05, ge=0, le=1)
    correlation_limit: float = _expect("a correlation above 0, at most 1", default=0.7, gt=0, le=1)
    correlation_window: int = _expect(
        "a whole number of candles from 10 to 10000", default=100, ge=10, le=10_000
    )
    allow_short: bool = _expect("true or false (only on venues with shorting)", default=False)
    short_margin: float = _expect(
        "a fraction of a short's notional from 0.05 to 10", default=0.5, ge=0.05, le=10
    )
    min_edge_cost_multiple: float = _expect(
        "a multiple of the round trip's costs from 0 (off) to 100", default=2.0, ge=0, le=100
    )
    position_sizing: SizingMethod = _expect(
        "one of fixed_fractional, half_kelly, volatility", default=SizingMethod.FIXED_FRACTIONAL
    )
    risk_per_trade: float = _expect(
        "a fraction of equity above 0, at most 0.1", default=0.01, gt=0, le=0.1
    )
    kelly_min_trades: int = _expect("a whole number from 5 to 10000", default=30, ge=5, le=10_000)
    kelly_cap: float = _expect("a fraction of equity above 0, at most 1", default=0.05, gt=0, le=1)
    volatility_target: float = _expect(
        "a fraction of equity above 0, at most 0.1", default=0.005, gt=0, le=0.1
    )
    confidence_full_size: float = _expect(
        "a confidence above 0, at most 1", default=0.5, gt=0, le=1
    )
    stop_loss_atr_multiplier: float = _expect(
        "a multiple of ATR above 0, at most 50", default=2.0, gt=0, le=50
    )
    take_profit_risk_reward: float = _expect(
        "a ratio above 0, at most 50", default=2.0, gt=0, le=50
    )
    trailing_stop: bool = _expect("true or false", default=True)
    trailing_activation: float = _expect(
        "stop distances of profit, 0 or more", default=1.0, ge=0, le=50
    )
    trailing_atr_multiplier: float = _expect(
        "a multiple of ATR above 0, at most 50", default=1.5, gt=0, le=50
    )
    max_holding_time: float = _expect(
        "seconds of candle time, 0 for no limit", default=14_400.0, ge=0
    )
    exit_on_opposite_signal: bool = _expect("true or false", default=True)
    slippage_impact_bps: float = _expect(
        "basis points per 1 % of the candle's volume, 0 to 1000", default=10.0, ge=0, le=1000
    )
    catchup_limit: int = _expect(
        "a whole number of candles, 0 or more", default=60, ge=0, le=10_000_000
    )

    # Prediction
    max_concurrent_predictions: int = _expect("a whole number from 1 to 64", default=4, ge=1, le=64)
    prediction_failure_threshold: int = _expect(
        "a whole number from 1 to 1000", default=5, ge=1, le=1000
    )
    prediction_recovery_timeout: float = _expect("seconds, more than 0", default=300.0, gt=0)
    prediction_timeout: float = _expect("seconds, from 0.1 to 60", default=2.0, ge=0.1, le=60)
    prediction_horizon: int = _expect(
        "a whole number of candles from 1 to 1000", default=15, ge=1, le=1000
    )
    fee_rate: float | None = _expect(
        "a fraction per side from 0 to 0.05 such as 0.001, or empty for the venue's taker fee",
        default=None,
        ge=0,
        le=0.05,
    )
    slippage_bps: float = _expect("basis points per side, from 0 to 500", default=5.0, ge=0, le=500)
    auto_train: bool = _expect("true or false", default=True)
    training_candles: int = _expect(
        "a whole number of candles per symbol from 2000 to 2000000",
        default=43_200,
        ge=2000,
        le=2_000_000,
    )
    walk_forward_folds: int = _expect("a whole number from 1 to 20", default=4, ge=1, le=20)
    retrain_timeout: float = _expect("seconds, from 60 to 86400", default=3600.0, ge=60, le=86_400)
    retrain_interval: float = _expect(
        "seconds between retrainings, 0 to disable, else at least 600", default=86_400.0, ge=0
    )
    model_keep_versions: int = _expect("a whole number from 1 to 100", default=5, ge=1, le=100)
    ensemble_window: int = _expect(
        "a whole number of resolved predictions from 10 to 100000",
        default=200,
        ge=10,
        le=100_000,
    )
    ensemble_weight_floor: float = _expect("a share from 0 to 0.99", default=0.2, ge=0, le=0.99)
    signal_buy_threshold: float = _expect(
        "a score from 0.01 to 1 (p_up - p_down)", default=0.1, ge=0.01, le=1
    )
    signal_strong_threshold: float = _expect(
        "a score from 0.01 to 1, above SIGNAL_BUY_THRESHOLD", default=0.3, ge=0.01, le=1
    )
    drift_accuracy_margin: float = _expect("a share from 0 to 1", default=0.05, ge=0, le=1)
    drift_psi_threshold: float = _expect("a PSI value more than 0", default=0.25, gt=0)
    data_collection_failure_threshold: int = _expect(
        "a whole number from 1 to 1000", default=5, ge=1, le=1000
    )

    # Feature cache
    cache_features: bool = _expect("true or false", default=True)
    feature_cache_size: int = _expect(
        "a whole number from 1 to 1000000", default=1000, ge=1, le=1_000_000
    )
    cache_ttl_seconds: float = _expect("seconds, more than 0", default=3600.0, gt=0)
    max_cache_memory_mb: int = _expect(
        "a whole number of MiB from 1 to 65536", default=256, ge=1, le=65536
    )

    # Reports: the Monte Carlo of the closed trades in `report`, /daily, the daily report and
    # the dashboard (broker/montecarlo.py)
    monte_carlo_runs: int = _expect(
        "a whole number of runs, 0 (off) or from 100 to 100000", default=1000, ge=0, le=100_000
    )

    # Retention: what the database forgets (storage/retention.py); 0 keeps everything. Days
    # of candle time back from the newest row, except the command audit's (wall clock).
    decision_retention_days: int = _expect(
        "a whole number of days from 0 (keep all) to 36500", default=90, ge=0, le=36_500
    )
    equity_detail_days: int = _expect(
        "a whole number of days from 0 (keep all) to 36500", default=30, ge=0, le=36_500
    )
    candle_retention_days: int = _expect(
        "a whole number of days from 0 (keep all) to 36500; never less than training and "
        "warm-up need",
        default=365,
        ge=0,
        le=36_500,
    )
    audit_retention_days: int = _expect(
        "a whole number of days from 0 (keep all) to 36500", default=365, ge=0, le=36_500
    )

    # HTTP: /health, /metrics and the read-only /api (loopback unless configured otherwise)
    health_host: str = _expect(
        "a host name or IP address to listen on, such as 127.0.0.1, ::1 or 0.0.0.0",
        default="127.0.0.1",
        pattern=_HOST,
    )
    health_port: int = _expect(
        "a TCP port from 1 to 65535, or 0 for any free one", default=8766, ge=0, le=65535
    )

    # Status feed: a WebSocket of the daemon's state and events (docs/status-protocol.md)
    status_ws_host: str = _expect(
        "a host name or IP address to listen on, such as 127.0.0.1, ::1 or 0.0.0.0",
        default="127.0.0.1",
        pattern=_HOST,
    )
    status_ws_port: int = _expect(
        "a TCP port from 1 to 65535, or 0 for any free one", default=8765, ge=0, le=65535
    )
    status_ws_token: SecretStr | None = _expect(
        "a secret of at least 16 characters that clients send (needed off loopback)",
        default=None,
    )
    status_ws_origins: Annotated[list[str], NoDecode] = _expect(
        "a comma-separated list of page origins allowed besides the dashboard's, such as "
        "https://grafana.example.org",
        default=[],
    )
    status_ws_max_clients: int = _expect(
        "a whole number from 1 to 10000", default=100, ge=1, le=10000
    )

    # Daemon
    health_check_interval: float = _expect("seconds, from 1 to 3600", default=60.0, ge=1, le=3600)
    shutdown_timeout: float = _expect("seconds, from 1 to 300", default=10.0, ge=1, le=300)
    restart_backoff_base: float = _expect("seconds, more than 0", default=0.5, gt=0)
    restart_backoff_max: float = _expect("seconds, more than 0", default=60.0, gt=0)
    restart_healthy_after: float = _expect("seconds, more than 0", default=60.0, gt=0)
    crash_loop_restarts: int = _expect("a whole number from 2 to 1000", default=5, ge=2, le=1000)
    crash_loop_window: float = _expect("seconds, more than 0", default=300.0, gt=0)

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.replace(" ", "").split(",") if part]
        if isinstance(value, list):
            if not value:
                raise ValueError("no symbol given")
            symbols = [normalise_symbol(str(v)) for v in value]  # ValueError names the symbol
            if len(set(symbols)) != len(symbols):
                raise ValueError("a symbol is listed twice")
            return symbols
        return value

    @field_validator("telegram_chat_id", "telegram_allowed_users", mode="before")
    @classmethod
    def _split_chat_ids(cls, value: object) -> object:
        if isinstance(value, int):
            return [value]
        if isinstance(value, str):
            return [part for part in value.replace(" ", "").split(",") if part]
        return value

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook_http(cls, value: object) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            if not text.strip():
                return None
            if not _WEBHOOK_URL.match(text.strip()):
                raise ValueError("not an http:// or https:// URL")
            return text.strip()
        return value

    @field_validator("status_ws_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for origin in value:
                if not _ORIGIN.match(str(origin)):
                    raise ValueError(f"{origin!r} is not an origin such as https://host:port")
        return value

    @field_validator("status_ws_token", mode="before")
    @classmethod
    def _long_token(cls, value: object) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            if not text.strip():
                return None
            if len(text.strip()) < MIN_TOKEN_LENGTH:
                raise ValueError(f"shorter than {MIN_TOKEN_LENGTH} characters")
            return text.strip()
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "log_format", "exchange", "interval", "position_sizing", "webhook_format", mode="before"
    )
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("restart_backoff_max", "reconnect_backoff_max")
    @classmethod
    def _cap_above_base(cls, value: float, info: ValidationInfo) -> float:
        base_name = str(info.field_name).replace("_max", "_base")
        base = info.data.get(base_name)
        if base is not None and value < base:
            raise ValueError(f"must not be below {base_name.upper()}")
        return value

    @field_validator("fee_rate", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("retrain_interval")
    @classmethod
    def _retrain_off_or_sane(cls, value: float) -> float:
        if 0 < value < 600:
            raise ValueError("must be 0 (off) or at least 600 seconds")
        return value

    @field_validator("monte_carlo_runs")
    @classmethod
    def _monte_carlo_off_or_enough(cls, value: int) -> int:
        if 0 < value < 100:
            raise ValueError("fewer than 100 runs make the percentiles noise")
        return value

    @field_validator("signal_strong_threshold")
    @classmethod
    def _strong_above_buy(cls, value: float, info: ValidationInfo) -> float:
        buy = info.data.get("signal_buy_threshold")
        if buy is not None and value <= buy:
            raise ValueError("must be above SIGNAL_BUY_THRESHOLD")
        return value

    @model_validator(mode="after")
    def _consistent_risk(self) -> "Settings":
        """Refuse risk settings that contradict each other (exit 2, one line naming them)."""
        if self.max_position_size > self.max_total_exposure:
            raise ValueError(
                f"MAX_POSITION_SIZE ({self.max_position_size}) is above MAX_TOTAL_EXPOSURE "
                f"({self.max_total_exposure}): no position could ever reach its size"
            )
        largest = self.initial_balance * Decimal(str(self.max_position_size))
        if self.min_notional > largest:
            raise ValueError(
                f"MIN_NOTIONAL ({self.min_notional}) is above INITIAL_BALANCE * "
                f"MAX_POSITION_SIZE ({largest}): no entry could ever be taken"
            )
        if self.allow_short and self.exchange not in VENUES_WITH_SHORTING:
            raise ValueError(
                f"ALLOW_SHORT=true but EXCHANGE={self.exchange.value} has no shorting on spot; "
                "set ALLOW_SHORT=false"
            )
        return self

    @model_validator(mode="after")
    def _feed_closed_off_loopback(self) -> "Settings":
        """Refuse a status feed on a network address without a token (exit 2, naming it)."""
        if self.status_ws_token is None and not is_loopback(self.status_ws_host):
            raise ValueError(
                f"STATUS_WS_TOKEN: not set, but STATUS_WS_HOST={self.status_ws_host} is not a "
                "loopback address: anyone who reaches it could read the feed; set a token of "
                f"at least {MIN_TOKEN_LENGTH} characters, or STATUS_WS_HOST=127.0.0.1"
            )
        return self

    @property
    def taker_fee(self) -> float:
        """Return ``FEE_RATE``, or the venue's usual taker fee when it is not set."""
        return VENUE_TAKER_FEES[self.exchange] if self.fee_rate is None else self.fee_rate

    def endpoints(self, venue: Venue | None = None) -> tuple[str, str]:
        """Return the WebSocket and REST base URLs of ``venue`` (default: ``EXCHANGE``)."""
        name = (venue or self.exchange).value
        return getattr(self, f"{name}_ws_url"), getattr(self, f"{name}_rest_url")

    def secrets(self) -> tuple[str, ...]:
        """Return the literal secret values (the bot token, the webhook URL, the status feed's
        token), for the log redactor."""
        found = (self.telegram_bot_token, self.webhook_url, self.status_ws_token)
        return tuple(s.get_secret_value() for s in found if s and s.get_secret_value())

    def effective(self) -> dict[str, str]:
        """Return every setting as ``NAME -> value`` text, secrets masked."""
        rows: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "**********" if value.get_secret_value() else ""
            elif value is None:
                text = ""
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            rows[name.upper()] = text
        return rows

    def config_hash(self) -> str:
        """Return a short SHA-256 of the effective settings (secrets excluded, masks included)."""
        canonical = json.dumps(self.effective(), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def is_loopback(host: str) -> bool:
    """Return True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def load_settings(env_file: Path | None = Path(".env"), *, required: bool = False) -> Settings:
    """Read and validate the settings; raise ``ConfigError`` with one line per problem.

    ``env_file`` is read if it exists (an explicit ``--env-file`` must exist: ``required``).
    """
    if env_file is not None and required and not env_file.is_file():
        raise ConfigError(f"--env-file {env_file}: no such file")
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(error) for error in exc.errors())) from None


def _describe(error: Any) -> str:
    """Turn one pydantic error into ``NAME: value … problem (expected …)``."""
    if not error.get("loc"):  # a rule across settings: its message names them
        return str(error.get("msg", "invalid")).removeprefix("Value error, ")
    location = error.get("loc")
    field = str(location[0])
    name = field.upper()
    if error.get("type") == "extra_forbidden":
        return f"{name}: not a setting paper-trader knows (a typo?); .env.example lists them all"
    info = Settings.model_fields.get(field)
    expected = f" (expected {info.description})" if info and info.description else ""
    secret = "token" in field or field == "webhook_url"
    shown = "**********" if secret else repr(_shorten(error.get("input")))
    problem = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{name}={shown}: {problem}{expected}"


def _shorten(value: object) -> object:
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    return value
