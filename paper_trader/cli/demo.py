"""``demo``: the real daemon against the built-in simulated exchange, offline.

The simulator runs as a child process on loopback (a synthetic market at an accelerated
speed, optionally with faults on the wire); the daemon is the same one ``run`` starts, only
its Binance endpoints point at the simulator. After ``seconds`` (0: at Ctrl-C or SIGTERM) it
stops as on SIGTERM and the database is summarised: report's table and a line on the run, or
with ``--json`` report's JSON plus the run's figures. While it runs, the dashboard is on the HTTP
port (its URL goes to stderr as the daemon starts).

The demo keeps its models, its trade files and its feature cache next to its database, never
in ``LOG_DIR``, ``MODELS_DIR`` or ``CACHE_DIR``. When there is no model yet, it first trains a
bootstrap model on synthetic history from the simulator's own market generator, with another
seed than the simulated market, so the demo never predicts candles its model was trained on.
A random walk is hard to beat: the bootstrap model is made current even when it loses to the
prior (``train --force``), and the log says so (``beats_prior``).
"""

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paper_trader.app.chores import report
from paper_trader.app.configs import log_config
from paper_trader.app.daemon import DaemonRun, run_live
from paper_trader.cli.report import WIDTH, summary_lines
from paper_trader.control.report import Report
from paper_trader.domain import Venue
from paper_trader.domain.symbols import normalise_symbol
from paper_trader.errors import FatalError
from paper_trader.features.engine import candle_values
from paper_trader.runtime.logs import configure_logging, get_logger
from paper_trader.settings import Settings
from paper_trader.simulator.market import synthetic_series

if TYPE_CHECKING:  # numpy, scikit-learn and XGBoost load only when there is something to train
    from paper_trader.cli.train import Series

FAULTS = (
    "--drop-every", "10",
    "--duplicate-rate", "0.02",
    "--reorder-rate", "0.02",
    "--garbage-rate", "0.01",
    "--rest-5xx-rate", "0.02",
)  # fmt: skip


HISTORY = 1_200  # closed candles the simulated market starts with (covers the default warm-up)
OPEN_ENDED_S = 3_600.0  # ``--seconds 0``: the simulated market holds an hour's candles
BOOTSTRAP_CANDLES = 4_000  # per symbol, for the bootstrap model
BOOTSTRAP_FOLDS = 2
log = get_logger("demo")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRequest:
    """How the demo runs."""

    db_path: Path
    seconds: float
    speed: float
    symbols: tuple[str, ...]
    faults: bool
    seed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """How the demo went, and the summary of its database."""

    run: DaemonRun
    report: Report

    def to_json(self) -> dict[str, object]:
        """Return the report plus this run's figures."""
        engine = self.run.engine
        return {
            **self.report.to_json(),
            "demo": {
                "candles_processed": engine.candles_processed,
                "candles_rejected": engine.candles_rejected,
                "elapsed_s": round(self.run.elapsed_s, 3),
                "exit_code": self.run.outcome.exit_code,
            },
        }


def demo_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run the demo; print the summary of its database (the table, or ``--json``)."""
    request = DemoRequest(
        db_path=args.db,
        seconds=args.seconds,
        speed=args.speed,
        symbols=tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
        faults=args.faults,
        seed=args.seed,
    )
    result = run_demo(settings, request)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print("\n".join(demo_lines(result, settings.monte_carlo_runs)))
    return result.run.exit_code


def demo_lines(result: DemoResult, runs: int) -> list[str]:
    """Return report's table of the demo's database, then a line on the run."""
    run, engine = result.run, result.run.engine
    line = (
        f"{engine.candles_processed:,} candles processed, {engine.candles_rejected:,} "
        f"rejected, in {run.elapsed_s:.1f} s; exit {run.outcome.exit_code}"
    )
    return [*summary_lines(result.report.to_json(), runs), f"{'demo':<{WIDTH}}{line}"]


def run_demo(settings: Settings, request: DemoRequest) -> DemoResult:
    """Start the simulator, run the daemon against it for ``seconds``, then summarise."""
    request.db_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = request.db_path.with_suffix(".simulator.log")
    with _simulator(request, log_path) as port:
        demo_settings = _demo_settings(settings, request, port)
        logs = configure_logging(log_config(demo_settings))
        try:
            ensure_bootstrap_model(demo_settings, request.seed)
        finally:
            logs.close()
        print(dashboard_notice(demo_settings, request.seconds), file=sys.stderr, flush=True)
        run = run_live(demo_settings, mode="demo", stop_after_s=request.seconds)
    summary = report(request.db_path, monte_carlo_runs=settings.monte_carlo_runs)
    return DemoResult(run=run, report=summary)


def dashboard_notice(settings: Settings, seconds: float) -> str:
    """Return the line that says where the dashboard is and for how long."""
    host = settings.health_host
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 -- naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    where = (
        f"http://{host}:{settings.health_port}/"
        if settings.health_port
        else "on a free port (HEALTH_PORT=0): see the log's http_listening line"
    )
    until = "until Ctrl-C" if not seconds else f"for {seconds:g} s (--seconds 0: until Ctrl-C)"
    return f"paper-trader demo: the dashboard is at {where}, {until}"


def _demo_settings(settings: Settings, request: DemoRequest, port: int) -> Settings:
    """Return the settings with the simulator's endpoints and the demo's own files."""
    return settings.model_copy(
        update={
            "exchange": Venue.BINANCE,
            "symbols": [normalise_symbol(s) for s in request.symbols],
            "binance_ws_url": f"ws://127.0.0.1:{port}",
            "binance_rest_url": f"http://127.0.0.1:{port}",
            "db_path": request.db_path,
            # Its own feature cache: the demo's market must never meet the real daemon's.
            "cache_dir": request.db_path.with_suffix(".cache"),
            "stream_silence_timeout": 10.0,
            "models_dir": request.db_path.with_suffix(".models"),
            # A livelier risk profile, so that a short demo shows breakers at work too;
            # wider levels, since on 1-minute candles a target 4 ATRs away cannot pay a
            # round trip's fees and slippage (cost_edge), and a ten-minute holding limit.
            "stop_loss_atr_multiplier": 3.0,
            "take_profit_risk_reward": 3.0,
            "max_holding_time": 600.0,
            "min_time_between_trades": 60.0,
            "stop_loss_cooldown": 600.0,
            "max_consecutive_losses": 3,
            "losing_streak_cooldown": 1800.0,
        }
    )


def ensure_bootstrap_model(settings: Settings, seed: int) -> None:
    """Train and publish a bootstrap model into ``MODELS_DIR`` unless one is current."""
    if (settings.models_dir / "current").is_file():
        return
    # scikit-learn and XGBoost load only when there is something to train.
    from paper_trader.app.configs import label_rule  # noqa: PLC0415
    from paper_trader.cli.train import TrainRequest, train_and_publish  # noqa: PLC0415
    from paper_trader.prediction.models import ModelConfig  # noqa: PLC0415

    settings.models_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "demo_bootstrap_training",
        symbols=settings.symbols,
        candles=BOOTSTRAP_CANDLES,
        note="no model yet: training one on synthetic history (simulator generator, other seed)",
    )
    series = _bootstrap_history(settings, seed)
    request = TrainRequest(
        symbols=tuple(settings.symbols),
        interval=settings.interval,
        venue=settings.exchange,
        models_dir=settings.models_dir,
        rule=label_rule(settings),
        folds=BOOTSTRAP_FOLDS,
        config=ModelConfig(xgb_trees=100, forest_trees=50),  # half the trees: a quick start
        force=True,
    )
    outcome = train_and_publish(request, series)
    _log_bootstrap_model(outcome.version, outcome.metadata)


def _bootstrap_history(settings: Settings, seed: int) -> "Series":
    """Return synthetic candles of the simulator's generator, with another seed than its market."""
    # numpy loads only when there is something to train.
    import numpy as np  # noqa: PLC0415

    end = int(time.time() * 1000) // settings.interval.ms * settings.interval.ms
    history = synthetic_series(
        [s.replace("-", "") for s in settings.symbols],
        seed=seed + 1,
        count=BOOTSTRAP_CANDLES,
        interval=settings.interval,
        start_ms=end - (BOOTSTRAP_CANDLES + HISTORY) * settings.interval.ms,
    )
    return {
        symbol: (
            np.array([c.open_time_ms for c in candles], dtype=np.int64),
            np.array([candle_values(c) for c in candles], dtype=np.float64).T.copy(),
        )
        for symbol, candles in zip(settings.symbols, history.values(), strict=True)
    }


def _log_bootstrap_model(version: str, metadata: dict[str, Any]) -> None:
    summary = metadata["metrics"]["summary"]
    log.info(
        "demo_bootstrap_model",
        version=version,
        samples=metadata["training"]["samples"],
        ensemble_log_loss=summary["ensemble"]["log_loss"],
        prior_log_loss=summary["prior"]["log_loss"],
        ensemble_accuracy=summary["ensemble"]["accuracy"],
        beats_prior=metadata["prior_check"]["beats_prior"],
    )


@contextlib.contextmanager
def _simulator(request: DemoRequest, log_path: Path) -> Iterator[int]:
    """Run the simulator as a child process; yield its port; stop it afterwards."""
    with tempfile.TemporaryDirectory(prefix="paper-trader-demo-") as tmp:
        port_file = Path(tmp) / "port"
        args = [
            sys.executable,
            "-m",
            "paper_trader.simulator",
            "--port-file", str(port_file),
            "--symbols", ",".join(request.symbols),
            "--seed", str(request.seed),
            "--history", str(HISTORY),
            "--candles", str(_market_candles(request)),
            "--speed", f"{request.speed:g}",
            *(FAULTS if request.faults else ()),
        ]  # fmt: skip
        with log_path.open("w") as log:
            child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
            try:
                yield _await_port(child, port_file, log_path)
            finally:
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def _market_candles(request: DemoRequest) -> int:
    """Return how many candles per symbol the simulated market needs for the demo's run."""
    seconds = request.seconds or OPEN_ENDED_S
    return HISTORY + int(seconds * request.speed / 60 * 1.5) + 100


def _await_port(child: subprocess.Popen[bytes], port_file: Path, log_path: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text())
        if child.poll() is not None:
            break
        time.sleep(0.05)
    raise FatalError(f"the simulator did not start; see {log_path}")
