"""Training in a separate process from SQLite, promotion by contest, swap without a pause."""

import asyncio
import json
import sys
from pathlib import Path

import psutil
import pytest
from conftest import eventually, subprocess_env
from fakes.models import FAST, RULE, publish_model
from fakes.storage import migrated_database

from paper_trader.app.configs import RETRAIN_COMMAND
from paper_trader.cli.train import TrainOutcome, TrainRequest, run_training
from paper_trader.domain import Interval, PredictionLog, Venue
from paper_trader.features.spec import default_spec
from paper_trader.prediction.lifecycle import LifecycleConfig, ModelLifecycle
from paper_trader.prediction.monitor import MonitorConfig, PredictionMonitor
from paper_trader.prediction.predictor import Predictor, PredictorConfig
from paper_trader.prediction.registry import ModelRegistry
from paper_trader.prediction.stage import PredictionStage
from paper_trader.simulator.synthetic import generate_candles, write_csv
from paper_trader.storage import UpsertCandles, apply_transaction

SPEC = default_spec()


async def stored_market(db: Path, count: int = 3_000) -> None:
    async with migrated_database(db) as conn:
        candles = tuple(generate_candles(count=count, seed=21, symbol="BTC-USDT"))
        await apply_transaction(conn, [UpsertCandles(candles=candles)])


async def _ignore(_log: PredictionLog) -> None:
    return None


def publish_stored_market(directory: Path) -> TrainOutcome:
    """Train a model on every candle ``stored_market`` wrote and publish it as current."""
    csv = directory / "stored.csv"
    write_csv(generate_candles(count=3_000, seed=21, symbol="BTC-USDT"), csv)
    request = TrainRequest(
        symbols=("BTC-USDT",),
        interval=Interval.M1,
        venue=Venue.BINANCE,
        models_dir=directory / "models",
        rule=RULE,
        csvs=(csv,),
        folds=1,
        keep=5,
        config=FAST,
    )
    return run_training(request)


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
    stage = PredictionStage(predictor, monitor, record=_ignore)
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
    training = asyncio.create_task(life.retrain("test"))
    await eventually(lambda: bool(psutil.Process().children(recursive=True)), timeout=60)
    await asyncio.sleep(0.2)  # the loop turns while the training process works
    assert not training.done()
    assert psutil.Process().children(recursive=True)
    result = await asyncio.wait_for(training, timeout=180)
    assert result.exit_code == 0, result.output_tail
    assert result.summary is not None
    assert result.summary["promoted"] is True
    assert stage.predictor.bundle is not None
    assert stage.predictor.bundle.version == registry.current_version()
    assert stage.predictor.entries_blocked() is None


@TRAINING
async def test_a_candidate_that_beats_the_current_model_replaces_it(market: Path) -> None:
    """The current model learnt an upside-down market: the candidate wins the contest on the
    recent candles and becomes current."""
    current = publish_model(market / "models", seed=5, count=3_000, mirrored=True)
    life, stage, registry = lifecycle(market)
    assert await life.load(None)
    result = await asyncio.wait_for(life.retrain("contest"), timeout=180)
    assert result.exit_code == 0, result.output_tail
    assert result.summary is not None
    contest = result.summary["contest"]
    assert isinstance(contest, dict)
    assert contest["current_version"] == current.version
    assert contest["candidate_log_loss"] < contest["current_log_loss"]
    assert result.summary["promoted"] is True
    assert registry.current_version() == result.summary["version"]
    assert stage.predictor.bundle is not None
    assert stage.predictor.bundle.version == result.summary["version"]


@TRAINING
async def test_a_candidate_that_loses_is_published_but_not_made_current(market: Path) -> None:
    """The current model was trained on every stored candle, the contest window included:
    the candidate, which never saw that window, loses; the current model stays in use."""
    current = publish_stored_market(market)
    life, stage, registry = lifecycle(market)
    assert await life.load(None)
    in_use = stage.predictor.bundle
    result = await asyncio.wait_for(life.retrain("contest"), timeout=180)
    assert result.exit_code == 0, result.output_tail
    assert result.summary is not None
    contest = result.summary["contest"]
    assert isinstance(contest, dict)
    assert contest["candidate_log_loss"] >= contest["current_log_loss"]
    assert result.summary["promoted"] is False
    meta = json.loads(
        (market / "models" / str(result.summary["version"]) / "metadata.json").read_text()
    )
    assert meta["contest"]["promoted"] is False
    assert registry.current_version() == current.version
    assert stage.predictor.bundle is in_use


async def test_a_training_past_its_timeout_is_killed_and_reported(tmp_path: Path) -> None:
    """RETRAIN_TIMEOUT: a training process that never ends is killed; nothing is installed."""
    predictor = Predictor(SPEC, PredictorConfig(), now_ms=lambda: 0)
    monitor = PredictionMonitor(MonitorConfig(), now_ms=lambda: 0)
    stage = PredictionStage(predictor, monitor, record=_ignore)
    hang = (sys.executable, "-c", "import time; time.sleep(600)")
    config = LifecycleConfig(
        interval=Interval.M1, command=hang, environment={}, retrain_interval_s=0, timeout_s=0.5
    )
    life = ModelLifecycle(stage, ModelRegistry(tmp_path / "models"), SPEC, config)
    result = await asyncio.wait_for(life.retrain("hangs"), timeout=30)
    assert result.exit_code != 0
    assert "RETRAIN_TIMEOUT" in result.output_tail
    assert psutil.Process().children(recursive=True) == []
    assert stage.predictor.bundle is None


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


PRINT_WAIT = (
    sys.executable,
    "-c",
    "import json, os; print(json.dumps({k: os.environ.get(k) for k in "
    "('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'KEPT')}))",
)


@pytest.mark.parametrize(
    ("daemon_env", "seen"),
    [
        ({"KEPT": "1"}, {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": None, "KEPT": "1"}),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": None}),
        ({"GOMP_SPINCOUNT": "1000"}, {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "1000"}),
    ],
)
async def test_the_training_process_gets_the_passive_wait_policy_unless_one_is_set(
    tmp_path: Path, daemon_env: dict[str, str], seen: dict[str, str | None]
) -> None:
    """OpenMP threads that spin-wait slow a training beside a busy process many times over."""
    predictor = Predictor(SPEC, PredictorConfig(), now_ms=lambda: 0)
    monitor = PredictionMonitor(MonitorConfig(), now_ms=lambda: 0)
    stage = PredictionStage(predictor, monitor, record=_ignore)
    config = LifecycleConfig(
        interval=Interval.M1, command=PRINT_WAIT, environment=daemon_env, retrain_interval_s=0
    )
    life = ModelLifecycle(stage, ModelRegistry(tmp_path / "models"), SPEC, config)
    result = await asyncio.wait_for(life.retrain("prints its environment"), timeout=30)
    assert result.exit_code == 0
    assert result.summary == {"KEPT": None} | seen
