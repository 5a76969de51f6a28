"""``train``: build the dataset, evaluate walk-forward, fit, and publish a model version.

Candles come from CSV files (one per symbol, validated like ``replay`` validates them) or from
the SQLite candle table (the last ``TRAINING_CANDLES`` of each configured symbol). The labels
follow ``PREDICTION_HORIZON``, the fee (``FEE_RATE`` or the venue's) and ``SLIPPAGE_BPS``.
The walk-forward table is printed to stderr and saved in the version's ``metadata.json``
with the out-of-sample predictions it was computed from. A version whose ensemble loses to the
prior (the training classes' frequencies) out of sample, in log loss, is published but not
made current unless ``force``; the summary says so (``prior_check``, ``prior_note``).
"""

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from paper_trader.app.configs import label_rule
from paper_trader.cli.command import console_logging, symbol_argument
from paper_trader.domain import Interval, Venue
from paper_trader.errors import CannotProceed, ConfigError, DataIntegrityError
from paper_trader.features.engine import candle_values
from paper_trader.features.spec import FeatureSpec, default_spec
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.prediction import drift
from paper_trader.prediction.dataset import Dataset, LabelRule, build_dataset
from paper_trader.prediction.folds import FoldPlan
from paper_trader.prediction.models import ModelConfig
from paper_trader.prediction.promotion import contest, hold_out_recent
from paper_trader.prediction.registry import Artifacts, ModelRegistry
from paper_trader.prediction.training import SCORED, TrainingResult, train
from paper_trader.runtime.progress import ProgressBar
from paper_trader.settings import Settings
from paper_trader.storage import repository
from paper_trader.storage.database import open_reader

Series = dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainRequest:
    """Where the candles come from, how to label them and where the model goes."""

    symbols: tuple[str, ...]
    interval: Interval
    venue: Venue
    models_dir: Path
    rule: LabelRule
    csvs: tuple[Path, ...] = ()
    db_path: Path | None = None  # --from-db
    max_candles: int = 43_200
    folds: int = 4
    keep: int = 5
    config: ModelConfig = field(default_factory=ModelConfig)
    challenge: bool = False  # hold out the most recent data; promote only if better there
    holdout_fraction: float = 0.15
    force: bool = False  # make it current even if it loses to the prior out of sample


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainOutcome:
    """The published version and what it was measured to do."""

    version: str
    metadata: dict[str, Any]
    table: str
    promoted: bool
    prior_note: str = ""  # what a loss to the prior did to the version (made current or not)

    def to_json(self) -> dict[str, Any]:
        """Return the summary the CLI prints."""
        training = self.metadata["training"]
        return {
            "version": self.version,
            "promoted": self.promoted,
            "prior_check": self.metadata.get("prior_check"),
            "prior_note": self.prior_note or None,
            "contest": self.metadata.get("contest"),
            "spec_hash": self.metadata["spec_hash"],
            "samples": training["samples"],
            "series": self.metadata["series"],
            "from_ms": training["start_ms"],
            "to_ms": training["end_ms"],
            "walk_forward": self.metadata["metrics"]["summary"],
        }


def train_command(settings: Settings, args: argparse.Namespace) -> int:
    """Train and publish; print the metrics table to stderr and the JSON summary to stdout."""
    request = _train_request(settings, args)
    if args.nice:
        os.nice(max(0, min(19, args.nice)))
    with console_logging(settings):
        outcome = run_training(request)
    print(outcome.table, file=sys.stderr)
    if outcome.prior_note:
        print(f"paper-trader: {outcome.prior_note}", file=sys.stderr)
    print(json.dumps(outcome.to_json(), indent=2))
    return 0


def _train_request(settings: Settings, args: argparse.Namespace) -> TrainRequest:
    """Return what the arguments ask for; the settings fill in what they leave out."""
    symbols = (
        tuple(symbol_argument(s) for s in args.symbol) if args.symbol else tuple(settings.symbols)
    )
    folds = settings.walk_forward_folds if args.folds is None else args.folds
    if not 1 <= folds <= 20:
        raise ConfigError(f"--folds {folds}: expected a whole number from 1 to 20")
    return TrainRequest(
        symbols=symbols,
        interval=args.interval or settings.interval,
        venue=args.venue or settings.exchange,
        models_dir=settings.models_dir,
        rule=label_rule(settings),
        csvs=tuple(args.csv or ()),
        db_path=(args.db or settings.db_path) if args.from_db else None,
        max_candles=settings.training_candles,
        folds=folds,
        keep=settings.model_keep_versions,
        challenge=args.promote_if_better,
        force=args.force,
    )


def load_csv_series(request: TrainRequest) -> Series:
    """Read and validate one candle CSV per symbol; raise ``DataIntegrityError`` on a bad one."""
    if len(request.csvs) != len(request.symbols):
        raise ConfigError(
            f"{len(request.csvs)} --csv file(s) but {len(request.symbols)} --symbol(s): "
            "give one symbol per file, in the same order"
        )
    series: Series = {}
    for path, symbol in zip(request.csvs, request.symbols, strict=True):
        candles = CandleCsv(path, venue=request.venue, symbol=symbol, interval=request.interval)
        try:
            candles.validate()
        except UnicodeDecodeError:
            raise DataIntegrityError(f"bad candle file: {path}: not UTF-8 text") from None
        rows = [
            (c.open_time_ms, candle_values(c)) for chunk in candles.chunks(10_000) for c in chunk
        ]
        series[symbol] = _arrays(rows)
    return series


async def load_db_series(request: TrainRequest) -> Series:
    """Read the last ``max_candles`` stored candles of each symbol (read-only)."""
    assert request.db_path is not None
    if not request.db_path.is_file():
        raise CannotProceed(f"--from-db: no database at {request.db_path} (DB_PATH)")
    reader = await open_reader(request.db_path)
    try:
        series: Series = {}
        for symbol in request.symbols:
            candles = await repository.candles_to_resume(
                reader,
                request.venue,
                symbol,
                request.interval,
                after_ms=None,
                count=request.max_candles,
            )
            series[symbol] = _arrays([(c.open_time_ms, candle_values(c)) for c in candles])
    except sqlite3.Error as exc:
        raise CannotProceed(f"--from-db: cannot read {request.db_path} ({exc})") from exc
    finally:
        await reader.close()
    return series


def _arrays(
    rows: Sequence[tuple[int, tuple[float, ...]]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    times = np.array([t for t, _ in rows], dtype=np.int64)
    values = np.array([v for _, v in rows], dtype=np.float64).reshape(-1, 5).T
    return times, np.ascontiguousarray(values)


def run_training(
    request: TrainRequest, spec: FeatureSpec | None = None, progress: TextIO = sys.stderr
) -> TrainOutcome:
    """Train and publish; raise ``ConfigError``/``DataIntegrityError`` with a clear message.

    ``MODELS_DIR`` is created if it does not exist yet.
    """
    try:
        request.models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"MODELS_DIR {request.models_dir}: cannot create it ({exc.strerror or exc})"
        ) from None
    ModelRegistry(request.models_dir).require_root()
    if request.db_path is not None:
        series = asyncio.run(load_db_series(request))
    else:
        series = load_csv_series(request)
    return train_and_publish(request, series, spec, progress)


def train_and_publish(
    request: TrainRequest,
    series: Series,
    spec: FeatureSpec | None = None,
    progress: TextIO = sys.stderr,
) -> TrainOutcome:
    """Train on candles already loaded (symbol -> (open times, (5, n) OHLCV)) and publish."""
    spec = spec or default_spec()
    registry = ModelRegistry(request.models_dir, keep=request.keep)
    registry.require_root()
    data = build_dataset(spec, series, request.interval.ms, request.rule)
    plan = FoldPlan(
        folds=request.folds,
        horizon=request.rule.horizon,
        embargo=request.rule.horizon,
        interval_ms=request.interval.ms,
    )
    recent = None
    if request.challenge:
        data, recent = hold_out_recent(data, request.holdout_fraction, plan.gap_ms)
    result = _train_with_progress(data, plan, request.config, progress)
    metadata = describe(request, spec, data, plan, result, series=series)
    promoted = True
    if recent is not None:
        outcome = contest(result.models, recent, registry, spec, request.interval)
        metadata["contest"] = outcome.to_json()
        promoted = outcome.promoted
    check = prior_check(metadata["metrics"]["summary"], force=request.force)
    metadata["prior_check"] = check
    promoted = promoted and (check["beats_prior"] or request.force)
    version = _publish(registry, result, metadata, make_current=promoted)
    return TrainOutcome(
        version=version,
        metadata=registry.metadata(version),
        table=render_table(result),
        promoted=promoted,
        prior_note=_prior_note(version, check, promoted=promoted),
    )


def _train_with_progress(
    data: Dataset, plan: FoldPlan, config: ModelConfig, progress: TextIO
) -> TrainingResult:
    """Train, with a progress bar on ``progress`` (shown only on a terminal)."""
    bar = ProgressBar(progress)
    try:
        return train(data, plan, config, lambda d, t, what: bar.show(d, t, f"{what:<24}"))
    finally:
        bar.done()


def _publish(
    registry: ModelRegistry,
    result: TrainingResult,
    metadata: dict[str, Any],
    *,
    make_current: bool,
) -> str:
    """Publish the fitted models and their out-of-sample predictions; return the version."""
    return registry.publish(
        Artifacts(
            estimators={n: m.estimator for n, m in result.models.items()},
            calibrators={n: m.calibrator for n, m in result.models.items()},
            predictions=result.evaluation.predictions,
            metadata=metadata,
        ),
        make_current=make_current,
    )


def prior_check(summary: dict[str, Any], *, force: bool) -> dict[str, Any]:
    """Return whether the ensemble's walk-forward log loss beats the prior's (lower is better)."""
    mine, prior = summary["ensemble"]["log_loss"], summary["prior"]["log_loss"]
    beats = mine is None or prior is None or mine < prior
    return {
        "ensemble_log_loss": mine,
        "prior_log_loss": prior,
        "beats_prior": beats,
        "forced": force and not beats,
    }


def _prior_note(version: str, check: dict[str, Any], *, promoted: bool) -> str:
    if check["beats_prior"]:
        return ""
    lost = (
        f"version {version} loses to the prior out of sample (walk-forward log loss "
        f"{check['ensemble_log_loss']:.4f} vs {check['prior_log_loss']:.4f})"
    )
    if check["forced"] and promoted:
        return f"{lost}; made current anyway (--force)"
    if check["forced"]:
        return f"{lost}; not made current: it lost the contest with the current model"
    return f"{lost}: published but not made current; --force makes it current anyway"


def describe(
    request: TrainRequest,
    spec: FeatureSpec,
    data: Dataset,
    plan: FoldPlan,
    result: TrainingResult,
    *,
    series: Series,
) -> dict[str, Any]:
    """Return the content of ``metadata.json`` that training determines."""
    return {
        "spec_hash": spec.version_hash,
        "feature_names": list(spec.model_inputs),
        "interval": request.interval.value,
        "venue": request.venue.value,
        "series": list(data.series_names),
        "label": request.rule.to_json(),
        "training": {
            "samples": len(data),
            "candles": {name: len(times) for name, (times, _) in series.items()},
            "start_ms": int(data.open_times_ms.min()),
            "end_ms": int(data.open_times_ms.max()),
            "class_counts": np.bincount(data.labels, minlength=3).tolist(),
            "walk_forward": {"folds": plan.folds, "embargo": plan.embargo, "window": "expanding"},
            "models": request.config.to_json(),
        },
        "metrics": {
            "folds": [fold.to_json() for fold in result.evaluation.folds],
            "summary": result.evaluation.summary(),
        },
        "drift_reference": drift.reference_from(data.features, spec.model_inputs).to_json(),
    }


def render_table(result: TrainingResult) -> str:
    """Return the per-fold, per-model metrics as a fixed-width text table."""
    header = (
        f"{'fold':>4}  {'model':<12}{'acc':>7}{'bal_acc':>9}{'auc':>7}{'logloss':>9}{'brier':>8}"
    )
    lines = [header, "-" * len(header)]
    rows = [(str(f.number), f.scores) for f in result.evaluation.folds]
    rows.append(("mean", result.evaluation.summary()))
    for label, scores in rows:
        for name in SCORED:
            s = scores[name]
            lines.append(
                f"{label:>4}  {name:<12}{_cell(s['accuracy'], 7)}{_cell(s['balanced_accuracy'], 9)}"
                f"{_cell(s['roc_auc'], 7)}{_cell(s['log_loss'], 9)}{_cell(s['brier'], 8)}"
            )
    return "\n".join(lines)


def _cell(value: float | None, width: int) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:>{width}.3f}"
