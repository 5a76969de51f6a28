"""The composition root's prediction part: predictor, monitor, log and model lifecycle.

Split out of ``app.py`` for size; like it, this module only wires parts that were built
elsewhere, from the settings.
"""

import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from paper_trader.clock import Clock
from paper_trader.domain import PredictionOutcome, PredictionRow
from paper_trader.features.spec import FeatureSpec
from paper_trader.prediction.ensemble import SignalThresholds
from paper_trader.prediction.lifecycle import LifecycleConfig, ModelLifecycle
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.predictor import Predictor, PredictorConfig
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.scorecard import WeightPolicy
from paper_trader.prediction.stage import PredictionStage
from paper_trader.runtime.events import EventSink
from paper_trader.settings import Settings
from paper_trader.storage import RecordPredictions, ResolvePredictions, StorageWriter

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
RETRAIN_NICE = 10
# The daemon's (re)training: the `train` command as a separate, lower-priority process. The
# contest with the current model decides; --force keeps a first model that loses to the prior
# (its summary says so in prior_check), as the daemon did before `train` refused those.
RETRAIN_COMMAND = (
    sys.executable, "-m", "paper_trader", "train", "--from-db", "--promote-if-better",
    "--force", "--nice", str(RETRAIN_NICE),
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelParts:
    """What the daemon's prediction needs: the stage for the engine, the lifecycle service."""

    stage: PredictionStage
    lifecycle: ModelLifecycle | None


def predictor_config(settings: Settings) -> PredictorConfig:
    """Return live inference limits and signal rules from the settings."""
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


def build_model_parts(
    settings: Settings,
    spec: FeatureSpec,
    writer: StorageWriter,
    events: EventSink,
    clock: Clock,
    *,
    retrain: bool,
    start_gate: Callable[[], Awaitable[None]] | None = None,
    pending: Callable[[], Awaitable[Sequence[PredictionRow]]] | None = None,
) -> ModelParts:
    """Wire the prediction stage; with ``retrain``, also the lifecycle that (re)trains."""
    predictor = Predictor(
        spec,
        predictor_config(settings),
        events=events,
        now_ms=clock.now_ms,
    )
    lifecycle: ModelLifecycle | None = None

    def on_drift(reason: str) -> None:
        if lifecycle is not None:
            lifecycle.request_retrain(f"drift: {reason}")

    monitor = PredictionMonitor(
        MonitorConfig(
            window=settings.ensemble_window,
            accuracy_margin=settings.drift_accuracy_margin,
            psi_threshold=settings.drift_psi_threshold,
        ),
        events=events,
        now_ms=clock.now_ms,
        on_drift=on_drift,
    )

    async def record(rows: tuple[PredictionRow, ...]) -> None:
        await writer.submit(RecordPredictions(rows=rows))

    async def resolve(outcomes: tuple[PredictionOutcome, ...]) -> None:
        await writer.submit(ResolvePredictions(outcomes=outcomes))

    stage = PredictionStage(
        predictor,
        monitor,
        record=record,
        resolve=resolve,
        pending=pending,
    )
    lifecycle = ModelLifecycle(
        stage,
        ModelRegistry(settings.models_dir, keep=settings.model_keep_versions),
        spec,
        lifecycle_config(settings, retrain=retrain),
        monotonic=clock.monotonic,
        start_gate=start_gate,
    )
    stage.prepare = lifecycle.load_at_start
    return ModelParts(stage=stage, lifecycle=lifecycle if retrain else None)


def lifecycle_config(settings: Settings, *, retrain: bool) -> LifecycleConfig:
    """Return when and how the daemon trains; without ``retrain`` it only loads."""
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
