"""Small real models for the tests: trained in seconds on synthetic candles, published for real."""

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from paper_trader.cli.train import TrainOutcome, TrainRequest, run_training
from paper_trader.domain import Candle, Interval, Venue
from paper_trader.prediction.dataset import LabelRule
from paper_trader.prediction.models import ModelConfig
from paper_trader.simulator.synthetic import generate_candles, write_csv

CENT = Decimal("0.01")
FAST = ModelConfig(xgb_trees=30, forest_trees=15, n_jobs=1)
RULE = LabelRule(horizon=5, fee_rate=0.001, slippage_bps=5.0)


def candle_csv(path: Path, *, count: int = 2_600, seed: int = 11, mirrored: bool = False) -> Path:
    """Write ``count`` synthetic 1m candles to ``path`` and return it.

    ``mirrored`` turns the market upside down (every price p becomes K / p), so that a
    falling market rises: a model trained on it leans to "up" and takes long entries.
    """
    candles = generate_candles(count=count, seed=seed)
    write_csv(map(_mirror, candles) if mirrored else candles, path)
    return path


def _mirror(candle: Candle) -> Candle:
    k = Decimal(900_000_000)
    return replace(
        candle,
        open=(k / candle.open).quantize(CENT),
        high=(k / candle.low).quantize(CENT),
        low=(k / candle.high).quantize(CENT),
        close=(k / candle.close).quantize(CENT),
    )


def publish_model(
    models_dir: Path, *, seed: int = 11, count: int = 2_600, keep: int = 5, mirrored: bool = False
) -> TrainOutcome:
    """Train a fast model on synthetic candles and publish it in ``models_dir`` as current.

    ``force``: a random walk's model usually loses to the prior, and the tests need a working
    model, not a good one.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    csv = candle_csv(
        models_dir.parent / f"candles-{seed}.csv", count=count, seed=seed, mirrored=mirrored
    )
    request = TrainRequest(
        symbols=("BTC-USDT",),
        interval=Interval.M1,
        venue=Venue.BINANCE,
        models_dir=models_dir,
        rule=RULE,
        csvs=(csv,),
        folds=2,
        keep=keep,
        config=FAST,
        force=True,
    )
    return run_training(request)
