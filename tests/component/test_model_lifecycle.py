"""Training in a separate process from SQLite, promotion by contest, swap without a pause."""

import asyncio
import json
from pathlib import Path

import psutil
import pytest
from conftest import subprocess_env

from paper_trader.app_models import RETRAIN_COMMAND
from paper_trader.domain import Interval, PredictionOutcome, PredictionRow
from paper_trader.exchange.synthetic import generate_candles
from paper_trader.features.spec import default_spec
from paper_trader.prediction.lifecycle import LifecycleConfig, ModelLifecycle
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.predictor import Predictor, PredictorConfig
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.stage import PredictionStage
from paper_trader.storage import UpsertCandles, migrate, open_database

SPEC = default_spec()


async def stored_market(db: Path, count: int = 3_000) -> None:
    conn = await open_database(db)
    try:
        await migrate(conn)
        candles = tuple(generate_candles(count=count, seed=21, symbol="BTC-USDT"))
        await UpsertCandles(candles=candles).apply(conn)
        await conn.commit()
    finally:
        await conn.close()


async def _ignore_rows(_rows: tuple[PredictionRow, ...]) -> None:
    return None


async def _ignore_outcomes(_outcomes: tuple[PredictionOutcome, ...]) -> None:
    return None


TRAINING = pytest.mark.timeout(300)  # real training processes, on a possibly busy machine


def lifecycle(tmp_path: Path) -> tuple[ModelLifecycle, PredictionStage, ModelRegistry]:
    env = subprocess_env(
        tmp_path,
        SYMBOLS="BTCUSDT",
        PREDICTION_HORIZON="5",
        WALK_FORWARD_FOLDS="2",
        TRAINING_CANDLES="3000",
    )
    predictor = Predictor(SPEC, PredictorConfig(), now_ms=lambda: 0)
    monitor = PredictionMonitor(MonitorConfig(), now_ms=lambda: 0)
    stage = PredictionStage(predictor, monitor, record=_ignore_rows, resolve=_ignore_outcomes)
    registry = ModelRegistry(tmp_path / "models")
    config = LifecycleConfig(
        interval=Interval.M1, command=RETRAIN_COMMAND, environment=env, retrain_interval_s=0
    )
    return ModelLifecycle(stage, registry, SPEC, config), stage, registry


@pytest.fixture
def market(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    asyncio.run(stored_market(tmp_path / "paper_trader.db"))
    return tmp_path


@TRAINING
async def test_no_model_then_a_trained_one_is_promoted_and_swapped_in(market: Path) -> None:
    """Start without a model (no entries, reason given); train; the new version is in use."""
    life, stage, registry = lifecycle(market)
    await life.load_at_start()
    assert "no trained model" in (stage.predictor.entries_blocked() or "")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await asyncio.wait_for(life.retrain("test"), timeout=180)
    task.cancel()
    assert result.exit_code == 0, result.output_tail
    assert result.summary is not None
    assert result.summary["promoted"] is True
    assert stage.predictor.bundle is not None
    assert stage.predictor.bundle.version == registry.current_version()
    assert stage.predictor.entries_blocked() is None
    assert ticks >= result.seconds * 100 * 0.3  # the loop kept turning throughout
    assert result.lag_max_ms >= 0.0


@TRAINING
async def test_a_candidate_replaces_the_current_model_only_if_it_wins(market: Path) -> None:
    """The second training holds a contest; the loser is published but not current."""
    life, stage, registry = lifecycle(market)
    first = await asyncio.wait_for(life.retrain("first"), timeout=180)
    assert first.summary is not None
    in_use = stage.predictor.bundle
    second = await asyncio.wait_for(life.retrain("second"), timeout=180)
    assert second.exit_code == 0, second.output_tail
    assert second.summary is not None
    contest = second.summary["contest"]
    assert isinstance(contest, dict)
    assert contest["current_version"] == first.summary["version"]
    won = contest["candidate_log_loss"] < contest["current_log_loss"]
    assert second.summary["promoted"] is won
    meta = json.loads(
        (market / "models" / str(second.summary["version"]) / "metadata.json").read_text()
    )
    assert meta["contest"]["promoted"] is won
    expected = second.summary["version"] if won else first.summary["version"]
    assert registry.current_version() == expected
    assert stage.predictor.bundle is not None
    if not won:
        assert stage.predictor.bundle is in_use


@TRAINING
async def test_a_failed_training_keeps_the_daemon_going_and_says_why(tmp_path: Path) -> None:
    """No candles in the database: exit 2 with the reason; nothing installed."""
    (tmp_path / "models").mkdir()
    life, stage, _ = lifecycle(tmp_path)
    result = await asyncio.wait_for(life.retrain("empty"), timeout=120)
    assert result.exit_code == 2
    assert "no database" in result.output_tail or "no usable samples" in result.output_tail
    assert stage.predictor.bundle is None


@TRAINING
async def test_stopping_during_training_kills_the_training_process(market: Path) -> None:
    """Cancellation (a daemon stop) never leaves a training process behind."""
    life, _, _ = lifecycle(market)
    task = asyncio.create_task(life.retrain("to be cancelled"))
    await asyncio.sleep(2.0)
    assert psutil.Process().children(recursive=True)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert psutil.Process().children(recursive=True) == []
