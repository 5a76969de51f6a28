"""``python run_paper_trader.py <command>``: argument parsing and exit codes.

Over 400 lines for now: one parser of every command; issue 14 splits the command line into
``cli/``, one module per command family, with the parser built from per-command builders.

Exit codes: 0 clean, 1 fatal error, 2 bad configuration or bad input (one line per problem
on stderr, no traceback).
"""

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from paper_trader import __version__
from paper_trader.app import daemon as app
from paper_trader.app.ledger import fresh_replay_database
from paper_trader.cli import control as cli_control
from paper_trader.cli.demo import DemoRequest, run_demo
from paper_trader.cli.features import ENGINES, DumpRequest, dump_features
from paper_trader.clock import SystemClock
from paper_trader.domain import Interval, Venue
from paper_trader.domain.symbols import normalise_symbol
from paper_trader.errors import ConfigError, DataIntegrityError
from paper_trader.runtime.logs import configure_logging
from paper_trader.settings import Settings, load_settings

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every command."""
    parser = argparse.ArgumentParser(
        prog="run_paper_trader.py",
        description="Paper-trade crypto on live exchange data. Without a command: run.",
    )
    parser.add_argument("--version", action="version", version=f"paper-trader {__version__}")
    parser.add_argument(
        "--env-file", type=Path, help="settings file to read instead of ./.env (must exist)"
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("run", help="run the daemon (the default)", description=_RUN_HELP)
    commands.add_parser(
        "check-config",
        help="validate the settings and print them, secrets masked",
        description="Validate the settings from the environment and .env; print the effective "
        "values with secrets masked. Exit 2 on the first invalid setting.",
    )
    replay = commands.add_parser(
        "replay",
        help="stream recorded candles through the daemon into SQLite and print a JSON summary",
        description="Stream a candle CSV (timestamp_ms,open,high,low,close,volume) through the "
        "supervised daemon as fast as possible, then print the summary as JSON. The file is "
        "validated first: a bad row is reported as FILE:LINE and nothing is written. "
        "Interrupted (SIGINT/SIGTERM), it exits 128 + the signal (130 for Ctrl-C) and its "
        "summary says partial.",
    )
    replay.add_argument(
        "--csv",
        type=Path,
        nargs="+",
        action="extend",
        required=True,
        help="candle CSV file(s), one per symbol; several are merged by time",
    )
    replay.add_argument(
        "--symbol",
        nargs="+",
        action="extend",
        help="the symbol of each CSV, in the same order (default: SYMBOLS)",
    )
    replay.add_argument(
        "--report", type=Path, help="also write the JSON summary to this file (replaced)"
    )
    replay.add_argument("--interval", type=Interval, required=True, help="candle interval, e.g. 1m")
    replay.add_argument("--venue", type=Venue, help="venue to file the candles under (EXCHANGE)")
    replay.add_argument(
        "--db",
        type=Path,
        help="database to write or continue (default: a new one, "
        "CACHE_DIR/replays/replay-<time>.db; never DB_PATH)",
    )
    demo = commands.add_parser(
        "demo",
        help="run the daemon against the built-in simulated exchange (offline)",
        description="Start the simulated exchange on loopback (a seeded synthetic market at an "
        "accelerated speed), run the real daemon against it for SECONDS, then print the JSON "
        "summary of the database. Works offline on a fresh machine.",
    )
    demo.add_argument("--seconds", type=float, default=30.0, help="how long to run (30)")
    demo.add_argument(
        "--speed",
        type=float,
        default=600.0,
        help="market speed, x real time (600: 10 1m candles/s)",
    )
    demo.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="simulated symbols")
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic market (7)")
    demo.add_argument(
        "--faults", action="store_true", help="inject drops, duplicates, reordering and garbage"
    )
    demo.add_argument("--db", type=Path, default=Path("cache/demo.db"), help="database to write")
    fetch = commands.add_parser(
        "download",
        help="download closed candles over REST into a CSV (resumable)",
        description="Download the last DAYS of closed candles of one symbol over REST into a CSV "
        "(timestamp_ms,open,high,low,close,volume) that replay reads. Requests are paced to the "
        "venue's rate limits. An existing file is continued after its last row, so the same "
        "command run again fetches only what is missing. A progress bar shows on a terminal.",
    )
    fetch.add_argument("--exchange", type=Venue, help="venue to download from (EXCHANGE)")
    fetch.add_argument(
        "--symbol", required=True, help="symbol in the venue's spelling, e.g. BTCUSDT"
    )
    fetch.add_argument("--interval", type=Interval, help="candle interval (INTERVAL)")
    fetch.add_argument("--days", type=_positive_days, required=True, help="how many days back")
    fetch.add_argument("--out", type=Path, required=True, help="CSV file to write or continue")
    report = commands.add_parser(
        "report",
        help="print the JSON summary of a database",
        description="Print the same JSON summary as replay, rebuilt from a database (read-only).",
    )
    report.add_argument("--db", type=Path, help="database to read (DB_PATH)")
    features = commands.add_parser(
        "features",
        help="compute the feature spec over a candle CSV into a CSV and print a JSON summary",
        description="Compute every feature column of the spec over a candle CSV "
        "(timestamp_ms,open,high,low,close,volume) and write one row per candle: timestamp_ms, "
        "then the spec's columns, empty until each column's warm-up. The file is validated "
        "first, like replay's: a bad row is reported as FILE:LINE and nothing is written. An "
        "impossible candle (zero price, high below low) gives an empty row and is counted. "
        "The output is replaced atomically; a one-line JSON summary goes to stdout.",
    )
    features.add_argument("--csv", type=Path, required=True, help="candle CSV file")
    features.add_argument(
        "--engine",
        choices=ENGINES,
        default="incremental",
        help="incremental: the daemon's engine, candle by candle (default); "
        "batch: the vectorised reference",
    )
    features.add_argument(
        "--interval",
        type=Interval,
        default=Interval.M1,
        help=f"the candles' interval: {', '.join(Interval)} (default 1m); it sets the "
        "higher-timeframe buckets and the gap rule",
    )
    features.add_argument("--out", type=Path, required=True, help="feature CSV file to write")
    trainer = commands.add_parser(
        "train",
        help="train, measure walk-forward and publish a model version",
        description="Build labelled samples from candles (one CSV per --symbol, in the same "
        "order, or --from-db: the last TRAINING_CANDLES stored candles of each symbol), measure "
        "the models walk-forward with a purge and an embargo, fit them on everything, and "
        "publish a new version under MODELS_DIR. The metrics table goes to stderr, a JSON "
        "summary to stdout. Exit 2 on bad candles or too little data; nothing is published.",
    )
    source = trainer.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, action="append", help="candle CSV (repeatable)")
    source.add_argument(
        "--from-db", action="store_true", help="train on the candles in the database"
    )
    trainer.add_argument(
        "--symbol", action="append", help="symbol of each --csv, in order (default SYMBOLS)"
    )
    trainer.add_argument("--interval", type=Interval, help="candle interval (INTERVAL)")
    trainer.add_argument("--venue", type=Venue, help="venue of the candles (EXCHANGE)")
    trainer.add_argument("--db", type=Path, help="database for --from-db (DB_PATH)")
    trainer.add_argument("--folds", type=int, help="walk-forward folds (WALK_FORWARD_FOLDS)")
    trainer.add_argument(
        "--promote-if-better",
        action="store_true",
        help="hold out the most recent 15%% of the data, and make the new version current only "
        "if it beats the current model there (what the daemon's retraining does)",
    )
    trainer.add_argument(
        "--force",
        action="store_true",
        help="make the new version current even if its ensemble loses to the prior (class "
        "frequencies) out of sample in log loss; without it such a version is published but "
        "not made current",
    )
    trainer.add_argument(
        "--nice", type=int, default=0, help="lower this process's CPU priority by N (0-19)"
    )
    _add_backup_parser(commands)
    cli_control.add_parsers(commands)
    return parser


def _add_backup_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    backup = commands.add_parser(
        "backup",
        help="copy the database with SQLite's online backup API (safe while running)",
        description="Copy the database to FILE with SQLite's online backup API. Safe while the "
        "daemon runs; the copy is checked with PRAGMA quick_check before it is moved into place.",
    )
    backup.add_argument("--out", type=Path, required=True, help="file to write the copy to")
    backup.add_argument("--db", type=Path, help="database to copy (DB_PATH)")
    backup.add_argument("--force", action="store_true", help="overwrite --out if it exists")


_RUN_HELP = (
    "Run the daemon until SIGTERM or SIGINT: supervised services, SQLite store, logs under "
    "LOG_DIR, systemd notification when NOTIFY_SOCKET is set. Stops gracefully within "
    "SHUTDOWN_TIMEOUT seconds."
)


def _check_config(settings: Settings, _args: argparse.Namespace) -> int:
    print("configuration ok")
    for name, value in settings.effective().items():
        print(f"{name}={value}")
    return 0


def _run(settings: Settings, _args: argparse.Namespace) -> int:
    return app.run_daemon(settings)


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    symbols = tuple(_symbol(s) for s in args.symbol) if args.symbol else tuple(settings.symbols)
    request = app.ReplayRequest(
        csvs=tuple(args.csv),
        symbols=symbols,
        interval=args.interval,
        venue=args.venue or settings.exchange,
        db_path=args.db or fresh_replay_database(settings, SystemClock().now_ms()),
    )
    result = app.run_replay(settings, request)
    text = json.dumps(result.to_json(), indent=2)
    if args.report is not None:
        _write_atomically(args.report, text + "\n")
    print(text)
    if result.run.interrupted_by is not None:
        print(
            f"paper-trader: replay interrupted by {result.run.interrupted_by}: the summary is "
            f"partial ({result.run.engine.candles_processed} candles handled)",
            file=sys.stderr,
        )
    return result.run.exit_code


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (a temporary file renamed over it)."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise ConfigError(f"--report {path}: cannot write ({exc.strerror})") from None


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= 3650:
        raise argparse.ArgumentTypeError(f"{text!r}: expected more than 0 and at most 3650 days")
    return days


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    request = DemoRequest(
        db_path=args.db,
        seconds=args.seconds,
        speed=args.speed,
        symbols=tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
        faults=args.faults,
        seed=args.seed,
    )
    result = run_demo(settings, request)
    print(json.dumps(result.to_json(), indent=2))
    return result.run.exit_code


def _symbol(text: str) -> str:
    try:
        return normalise_symbol(text)
    except ValueError as exc:
        raise ConfigError(f"--symbol: {exc}") from None


def _download(settings: Settings, args: argparse.Namespace) -> int:
    request = app.DownloadRequest(
        venue=args.exchange or settings.exchange,
        symbol=_symbol(args.symbol),
        interval=args.interval or settings.interval,
        days=args.days,
        out=args.out,
    )
    with _console_logging(settings):
        result = app.download_candles(settings, request)
    print(
        json.dumps(
            {
                "out": str(result.out),
                "from_ms": result.start_ms,
                "to_ms": result.end_ms,
                "rows_before": result.existing_rows,
                "written": result.written,
                "missing_at_venue": result.missing,
                "requests": result.requests,
            }
        )
    )
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    with _console_logging(settings):
        report = app.report(args.db or settings.db_path)
    print(json.dumps(report.to_json(), indent=2))
    return 0


def _features(_settings: Settings, args: argparse.Namespace) -> int:
    request = DumpRequest(csv=args.csv, out=args.out, interval=args.interval, engine=args.engine)
    result = dump_features(request)
    print(json.dumps(result.to_json()))
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    # numpy, pandas, scikit-learn and XGBoost take a second to import: only `train` pays.
    from paper_trader.cli.train import TrainRequest, label_rule, run_training  # noqa: PLC0415

    symbols = tuple(_symbol(s) for s in args.symbol) if args.symbol else tuple(settings.symbols)
    folds = settings.walk_forward_folds if args.folds is None else args.folds
    if not 1 <= folds <= 20:
        raise ConfigError(f"--folds {folds}: expected a whole number from 1 to 20")
    request = TrainRequest(
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
    if args.nice:
        os.nice(max(0, min(19, args.nice)))
    with _console_logging(settings):
        outcome = run_training(request)
    print(outcome.table, file=sys.stderr)
    if outcome.prior_note:
        print(f"paper-trader: {outcome.prior_note}", file=sys.stderr)
    print(json.dumps(outcome.to_json(), indent=2))
    return 0


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    with _console_logging(settings):
        result = app.backup(args.db or settings.db_path, args.out, overwrite=args.force)
    print(
        json.dumps(
            {
                "out": str(result.out),
                "bytes": result.bytes,
                "pages": result.pages,
                "seconds": round(result.seconds, 3),
            }
        )
    )
    return 0


@contextlib.contextmanager
def _console_logging(settings: Settings) -> Iterator[None]:
    """Log to stderr only (stdout carries the command's JSON), for the one-shot chores."""
    handle = configure_logging(app.log_config(settings, files=False))
    try:
        yield
    finally:
        handle.close()


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "run": _run,
    "check-config": _check_config,
    "replay": _replay,
    "demo": _demo,
    "download": _download,
    "report": _report,
    "features": _features,
    "train": _train,
    "backup": _backup,
    **cli_control.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.env_file or Path(".env"), required=args.env_file is not None)
        return COMMANDS[args.command or "run"](settings, args)
    except (ConfigError, DataIntegrityError) as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "bad input"
        for line in str(exc).splitlines():
            print(f"paper-trader: {kind}: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
