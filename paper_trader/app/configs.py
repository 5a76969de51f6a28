"""Settings → component configuration: every translation of ``Settings`` in one place.

Each function passes a component the narrowest thing it needs (plain values, not ``Settings``).
The prediction stack (scikit-learn, XGBoost) takes seconds to import, so its configurations
import it only when they are asked for: the CLI's chores never pay.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from paper_trader.broker.config import FillConfig
from paper_trader.domain import Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.bitvavo import BitvavoAdapter
from paper_trader.exchange.feed import FeedConfig
from paper_trader.exchange.kraken import KrakenAdapter
from paper_trader.exchange.wire import Subscription, VenueAdapter
from paper_trader.features.cache import CacheConfig
from paper_trader.features.engine import SeriesKey
from paper_trader.market.quality import QualityConfig
from paper_trader.risk.config import BreakerConfig, ExitConfig, LimitsConfig, SizingConfig, exact
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.logs import LogConfig, LogFormat
from paper_trader.runtime.supervisor import RestartPolicy
from paper_trader.settings import Settings
from paper_trader.trading.values import TraderConfig

if TYPE_CHECKING:  # the prediction stack loads only where it runs
    from paper_trader.prediction.dataset import LabelRule
    from paper_trader.prediction.lifecycle import LifecycleConfig
    from paper_trader.prediction.monitor import MonitorConfig
    from paper_trader.prediction.predictor import PredictorConfig

AdapterFactory = Callable[..., VenueAdapter]
_ADAPTERS: dict[Venue, AdapterFactory] = {
    Venue.BINANCE: BinanceAdapter,
    Venue.BITVAVO: BitvavoAdapter,
    Venue.KRAKEN: KrakenAdapter,
}
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds paper_trader/
RETRAIN_NICE = 10
# The daemon's (re)training: the `train` command as a separate, lower-priority process. The
# contest with the current model decides; --force keeps a first model that loses to the prior
# (its summary says so in prior_check), as the daemon did before `train` refused those.
RETRAIN_COMMAND = (
    sys.executable, "-m", "paper_trader", "train", "--from-db", "--promote-if-better",
    "--force", "--nice", str(RETRAIN_NICE),
)  # fmt: skip


def log_config(settings: Settings, *, files: bool = True) -> LogConfig:
    """Return the logging configuration the settings describe."""
    return LogConfig(
        level=settings.log_level,
        format=LogFormat(settings.log_format),
        directory=settings.log_dir if files else None,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
        secrets=settings.secrets(),
    )


def subscriptions(settings: Settings) -> list[Subscription]:
    """Return the series that ``SYMBOLS`` and ``INTERVAL`` describe."""
    return [Subscription(parse_pair(symbol), settings.interval) for symbol in settings.symbols]


def traded_series(settings: Settings) -> list[SeriesKey]:
    """Return the series that ``EXCHANGE``, ``SYMBOLS`` and ``INTERVAL`` describe."""
    return [(settings.exchange, s.symbol, s.interval) for s in subscriptions(settings)]


def venue_adapter(
    settings: Settings, venue: Venue | None = None, subs: list[Subscription] | None = None
) -> VenueAdapter:
    """Return the adapter of ``venue`` (default ``EXCHANGE``) at its configured endpoints.

    Raise ``ConfigError`` if the venue does not stream the interval.
    """
    venue = venue or settings.exchange
    ws_url, rest_url = settings.endpoints(venue)
    subs = subscriptions(settings) if subs is None else subs
    return _ADAPTERS[venue](subs, ws_base=ws_url, rest_base=rest_url)


def feed_config(settings: Settings) -> FeedConfig:
    """Return the feed's connection behaviour from the settings.

    With ``AUTO_TRAIN`` and no model yet, the warm-up reaches back ``TRAINING_CANDLES`` so that
    the first training has its history.
    """
    warmup = settings.warmup_candles
    if settings.auto_train and not (settings.models_dir / "current").is_file():
        warmup = max(warmup, settings.training_candles)
    return FeedConfig(
        warmup_candles=warmup,
        silence_timeout_s=settings.stream_silence_timeout,
        reconnect_base_s=settings.reconnect_backoff_base,
        reconnect_max_s=settings.reconnect_backoff_max,
        storm_reconnects=settings.reconnect_storm_count,
        storm_window_s=settings.reconnect_storm_window,
        failures_before_critical=settings.data_collection_failure_threshold,
    )


def quality_config(settings: Settings) -> QualityConfig:
    """Return the data-quality gate's settings."""
    return QualityConfig(
        enabled=settings.enable_data_quality_checks,
        min_score=settings.min_data_quality,
        window=settings.data_quality_window,
        jump_multiple=settings.price_jump_multiple,
        jump_history=min(30, settings.data_quality_window),
        recover_margin=min(5.0, 100.0 - settings.min_data_quality),
    )


def restart_policy(settings: Settings) -> RestartPolicy:
    """Return how the supervisor restarts a failed service, and when it gives up."""
    return RestartPolicy(
        backoff=Backoff(base_s=settings.restart_backoff_base, cap_s=settings.restart_backoff_max),
        healthy_run_s=settings.restart_healthy_after,
        crash_loop_restarts=settings.crash_loop_restarts,
        crash_loop_window_s=settings.crash_loop_window,
    )


def feature_cache_config(settings: Settings, *, keep_rows: int) -> CacheConfig:
    """Return where and for how long the feature cache keeps ``keep_rows`` rows per series."""
    return CacheConfig(
        directory=settings.cache_dir / "features",
        ttl_s=settings.cache_ttl_seconds,
        keep_rows=keep_rows,
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def trader_config(settings: Settings) -> TraderConfig:
    """Return every trading rule the settings describe."""
    return TraderConfig(
        breakers=_breaker_config(settings),
        limits=_limits_config(settings),
        sizing=SizingConfig(
            method=settings.position_sizing,
            risk_per_trade=settings.risk_per_trade,
            kelly_min_trades=settings.kelly_min_trades,
            kelly_cap=settings.kelly_cap,
            volatility_target=settings.volatility_target,
            confidence_full_size=settings.confidence_full_size,
        ),
        exits=_exit_config(settings),
        fills=FillConfig(
            fee_rate=exact(settings.taker_fee),
            slippage_bps=exact(settings.slippage_bps),
            impact_bps=exact(settings.slippage_impact_bps),
        ),
    )


def _breaker_config(settings: Settings) -> BreakerConfig:
    return BreakerConfig(
        enabled=settings.enable_circuit_breakers,
        max_daily_loss=settings.max_daily_loss,
        max_drawdown=settings.max_drawdown,
        max_consecutive_losses=settings.max_consecutive_losses,
        losing_streak_cooldown_ms=_ms(settings.losing_streak_cooldown),
        min_time_between_trades_ms=_ms(settings.min_time_between_trades),
        stop_loss_cooldown_ms=_ms(settings.stop_loss_cooldown),
        volatility_multiple=settings.volatility_breaker_multiple,
        volatility_window=settings.volatility_window,
        volatility_min_samples=min(120, settings.volatility_window),
    )


def _limits_config(settings: Settings) -> LimitsConfig:
    return LimitsConfig(
        max_positions=settings.max_positions,
        max_position_size=settings.max_position_size,
        max_total_exposure=settings.max_total_exposure,
        min_notional=settings.min_notional,
        min_confidence=settings.min_confidence,
        correlation_limit=settings.correlation_limit,
        correlation_window=settings.correlation_window,
        allow_short=settings.allow_short,
        short_margin=exact(settings.short_margin),
        min_edge_cost_multiple=settings.min_edge_cost_multiple,
    )


def _exit_config(settings: Settings) -> ExitConfig:
    return ExitConfig(
        stop_loss_atr_multiplier=settings.stop_loss_atr_multiplier,
        take_profit_risk_reward=settings.take_profit_risk_reward,
        trailing_stop=settings.trailing_stop,
        trailing_activation_r=settings.trailing_activation,
        trailing_atr_multiplier=settings.trailing_atr_multiplier,
        max_holding_ms=_ms(settings.max_holding_time),
        exit_on_opposite_signal=settings.exit_on_opposite_signal,
    )


def predictor_config(settings: Settings) -> "PredictorConfig":
    """Return live inference limits and signal rules from the settings."""
    from paper_trader.prediction.ensemble import SignalThresholds  # noqa: PLC0415
    from paper_trader.prediction.predictor import PredictorConfig  # noqa: PLC0415
    from paper_trader.prediction.scorecard import WeightPolicy  # noqa: PLC0415

    return PredictorConfig(
        max_concurrent=settings.max_concurrent_predictions,
        timeout_s=settings.prediction_timeout,
        failure_threshold=settings.prediction_failure_threshold,
        recovery_timeout_s=settings.prediction_recovery_timeout,
        thresholds=SignalThresholds(
            buy=settings.signal_buy_threshold, strong=settings.signal_strong_threshold
        ),
        policy=WeightPolicy(
            window=settings.ensemble_window,
            min_resolved=min(30, settings.ensemble_window),
            floor=settings.ensemble_weight_floor,
        ),
    )


def label_rule(settings: Settings) -> "LabelRule":
    """Return the label rule the settings define: horizon, fee and slippage."""
    from paper_trader.prediction.dataset import LabelRule  # noqa: PLC0415

    return LabelRule(
        horizon=settings.prediction_horizon,
        fee_rate=settings.taker_fee,
        slippage_bps=settings.slippage_bps,
    )


def monitor_config(settings: Settings) -> "MonitorConfig":
    """Return the live accuracy and drift monitor's window and alert thresholds."""
    from paper_trader.prediction.monitor import MonitorConfig  # noqa: PLC0415

    return MonitorConfig(
        window=settings.ensemble_window,
        accuracy_margin=settings.drift_accuracy_margin,
        psi_threshold=settings.drift_psi_threshold,
    )


def lifecycle_config(settings: Settings, *, retrain: bool) -> "LifecycleConfig":
    """Return when and how the daemon trains; without ``retrain`` it only loads."""
    from paper_trader.prediction.lifecycle import LifecycleConfig  # noqa: PLC0415

    return LifecycleConfig(
        interval=settings.interval,
        command=RETRAIN_COMMAND,
        environment=training_environment(settings),
        auto_train=retrain and settings.auto_train,
        retrain_interval_s=settings.retrain_interval if retrain else 0.0,
        timeout_s=settings.retrain_timeout,
    )


def training_environment(settings: Settings) -> dict[str, str]:
    """Return the training process's environment: the daemon's effective settings, no secret."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(settings.effective())
    env["TELEGRAM_BOT_TOKEN"] = ""
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    return env
