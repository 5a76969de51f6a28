"""The composition root's prediction part: predictor, monitor, log and model lifecycle.

Like the rest of ``app/``, this module only wires parts that were built elsewhere; their
configurations come from ``app/configs.py``. It imports scikit-learn and XGBoost, so
``app/stages.py`` imports it only when a run builds its prediction stage.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from paper_trader.app.configs import lifecycle_config, monitor_config, predictor_config
from paper_trader.clock import Clock
from paper_trader.domain import PredictionLog, PredictionRow
from paper_trader.features.spec import FeatureSpec
from paper_trader.prediction.lifecycle import ModelLifecycle
from paper_trader.prediction.monitor import PredictionMonitor
from paper_trader.prediction.predictor import Predictor
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.stage import PredictionStage
from paper_trader.runtime.events import EventSink
from paper_trader.settings import Settings
from paper_trader.storage import RecordPredictionLog, StorageWriter


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelParts:
    """What the daemon's prediction needs: the stage for the engine, the lifecycle service."""

    stage: PredictionStage
    lifecycle: ModelLifecycle | None


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
    state: Callable[[str], Awaitable[bytes | None]] | None = None,
) -> ModelParts:
    """Wire the prediction stage; with ``retrain``, also the lifecycle that (re)trains.

    ``pending`` and ``state`` read, at start, the predictions a previous run left pending and
    the scorecard it last committed for a model version."""
    lifecycle: ModelLifecycle | None = None

    def on_drift(reason: str) -> None:
        if lifecycle is not None:
            lifecycle.request_retrain(f"drift: {reason}")

    stage = _prediction_stage(
        settings, spec, writer, events, clock, on_drift, pending=pending, state=state
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


def _prediction_stage(  # noqa: PLR0917 -- build_model_parts hands over what it was given
    settings: Settings,
    spec: FeatureSpec,
    writer: StorageWriter,
    events: EventSink,
    clock: Clock,
    on_drift: Callable[[str], None],
    *,
    pending: Callable[[], Awaitable[Sequence[PredictionRow]]] | None,
    state: Callable[[str], Awaitable[bytes | None]] | None,
) -> PredictionStage:
    """Wire the predictor, the drift monitor and the prediction log's own writes (those no
    decision commit carries)."""
    predictor = Predictor(spec, predictor_config(settings), events=events, now_ms=clock.now_ms)
    monitor = PredictionMonitor(
        monitor_config(settings), events=events, now_ms=clock.now_ms, on_drift=on_drift
    )

    async def record(log: PredictionLog) -> None:
        await writer.submit(RecordPredictionLog(log=log))

    return PredictionStage(predictor, monitor, record=record, pending=pending, state=state)
