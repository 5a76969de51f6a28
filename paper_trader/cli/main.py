"""``python run_paper_trader.py <command>``: the parser of every command, dispatch, exit codes.

Each command's parser is built by its own ``_add_<command>_parser``; its handler lives in the
module of its family (``run.py``, ``demo.py``, ``train.py``, …). ``train`` is imported only
when it runs: numpy, pandas, scikit-learn and XGBoost take seconds to import.

Exit codes: 0 clean, 1 fatal error, 2 bad configuration or bad input (one line per problem
on stderr, no traceback).
"""

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn, TypeAlias

from paper_trader import __version__
from paper_trader.cli import backup, control, demo, download, features, report, run, status
from paper_trader.cli.command import Handler
from paper_trader.domain import Interval, Venue
from paper_trader.errors import ConfigError, DataIntegrityError
from paper_trader.settings import Settings, load_settings

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 128 + 13  # as a process killed by SIGPIPE
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


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
    for add_parser in (
        _add_run_parser,
        _add_check_config_parser,
        _add_replay_parser,
        _add_demo_parser,
        _add_download_parser,
        _add_report_parser,
        _add_features_parser,
        _add_train_parser,
        _add_backup_parser,
        _add_pause_parser,
        _add_resume_parser,
        _add_close_parser,
        _add_emergency_stop_parser,
        _add_status_parser,
    ):
        add_parser(commands)
    return parser


def _add_run_parser(commands: Commands) -> None:
    commands.add_parser(
        "run",
        help="run the daemon (the default)",
        description="Run the daemon until SIGTERM or SIGINT: supervised services, SQLite "
        "store, logs under LOG_DIR, systemd notification when NOTIFY_SOCKET is set. Stops "
        "gracefully within SHUTDOWN_TIMEOUT seconds.",
    )


def _add_check_config_parser(commands: Commands) -> None:
    commands.add_parser(
        "check-config",
        help="validate the settings and print them, secrets masked",
        description="Validate the settings from the environment and .env; print the effective "
        "values with secrets masked. Exit 2 on the first invalid setting.",
    )


def _add_replay_parser(commands: Commands) -> None:
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


def _add_demo_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the daemon against the built-in simulated exchange (offline)",
        description="Start the simulated exchange on loopback (a seeded synthetic market at an "
        "accelerated speed), run the real daemon against it for SECONDS, then print the "
        "summary of the database as report does (a short table, or --json). Works offline on "
        "a fresh machine.",
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="how long to run (30); 0: until Ctrl-C"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=600.0,
        help="market speed, x real time (600: 10 1m candles/s)",
    )
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="simulated symbols")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic market (7)")
    parser.add_argument(
        "--faults", action="store_true", help="inject drops, duplicates, reordering and garbage"
    )
    parser.add_argument("--db", type=Path, default=Path("cache/demo.db"), help="database to write")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (report's, plus the run's)"
    )


def _add_download_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "download",
        help="download closed candles over REST into a CSV (resumable)",
        description="Download the last DAYS of closed candles of one symbol over REST into a CSV "
        "(timestamp_ms,open,high,low,close,volume) that replay reads. Requests are paced to the "
        "venue's rate limits. An existing file is continued after its last row, so the same "
        "command run again fetches only what is missing. A progress bar shows on a terminal.",
    )
    parser.add_argument("--exchange", type=Venue, help="venue to download from (EXCHANGE)")
    parser.add_argument(
        "--symbol", required=True, help="symbol in the venue's spelling, e.g. BTCUSDT"
    )
    parser.add_argument("--interval", type=Interval, help="candle interval (INTERVAL)")
    parser.add_argument(
        "--days", type=download.positive_days, required=True, help="how many days back"
    )
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write or continue")


def _add_report_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "report",
        help="print the summary of a database: a short table, or --json",
        description="Print the summary of a database (read-only): a short table of trades, "
        "PnL, equity, win rate, maximum drawdown, breaker trips and the Monte Carlo of the "
        "closed trades (MONTE_CARLO_RUNS runs resampling them: the 5th, 50th and 95th "
        "percentile of the final equity and of the maximum drawdown). --json prints the "
        "whole summary, the same JSON as replay's.",
    )
    parser.add_argument("--db", type=Path, help="database to read (DB_PATH)")
    parser.add_argument(
        "--json", action="store_true", help="print the whole summary as JSON, for scripts"
    )


def _add_features_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "features",
        help="compute the feature spec over a candle CSV into a CSV and print a JSON summary",
        description="Compute every feature column of the spec over a candle CSV "
        "(timestamp_ms,open,high,low,close,volume) and write one row per candle: timestamp_ms, "
        "then the spec's columns, empty until each column's warm-up. The file is validated "
        "first, like replay's: a bad row is reported as FILE:LINE and nothing is written. An "
        "impossible candle (zero price, high below low) gives an empty row and is counted. "
        "The output is replaced atomically; a one-line JSON summary goes to stdout.",
    )
    parser.add_argument("--csv", type=Path, required=True, help="candle CSV file")
    parser.add_argument(
        "--engine",
        choices=features.ENGINES,
        default="incremental",
        help="incremental: the daemon's engine, candle by candle (default); "
        "batch: the vectorised reference",
    )
    parser.add_argument(
        "--interval",
        type=Interval,
        default=Interval.M1,
        help=f"the candles' interval: {', '.join(Interval)} (default 1m); it sets the "
        "higher-timeframe buckets and the gap rule",
    )
    parser.add_argument("--out", type=Path, required=True, help="feature CSV file to write")


def _add_train_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train, measure walk-forward and publish a model version",
        description="Build labelled samples from candles (one CSV per --symbol, in the same "
        "order, or --from-db: the last TRAINING_CANDLES stored candles of each symbol), measure "
        "the models walk-forward with a purge and an embargo, fit them on everything, and "
        "publish a new version under MODELS_DIR. The metrics table goes to stderr, a JSON "
        "summary to stdout. Exit 2 on bad candles or too little data; nothing is published.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", type=Path, action="append", help="candle CSV (repeatable)")
    source.add_argument(
        "--from-db", action="store_true", help="train on the candles in the database"
    )
    parser.add_argument(
        "--symbol", action="append", help="symbol of each --csv, in order (default SYMBOLS)"
    )
    parser.add_argument("--interval", type=Interval, help="candle interval (INTERVAL)")
    parser.add_argument("--venue", type=Venue, help="venue of the candles (EXCHANGE)")
    parser.add_argument("--db", type=Path, help="database for --from-db (DB_PATH)")
    parser.add_argument("--folds", type=int, help="walk-forward folds (WALK_FORWARD_FOLDS)")
    _add_promotion_arguments(parser)
    parser.add_argument(
        "--nice", type=int, default=0, help="lower this process's CPU priority by N (0-19)"
    )


def _add_promotion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--promote-if-better",
        action="store_true",
        help="hold out the most recent 15%% of the data, and make the new version current only "
        "if it beats the current model there (what the daemon's retraining does)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="make the new version current even if its ensemble loses to the prior (class "
        "frequencies) out of sample in log loss; without it such a version is published but "
        "not made current",
    )


def _add_backup_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "backup",
        help="copy the database with SQLite's online backup API (safe while running)",
        description="Copy the database to FILE with SQLite's online backup API. Safe while the "
        "daemon runs; the copy is checked with PRAGMA quick_check before it is moved into place.",
    )
    parser.add_argument("--out", type=Path, required=True, help="file to write the copy to")
    parser.add_argument("--db", type=Path, help="database to copy (DB_PATH)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _add_pause_parser(commands: Commands) -> None:
    parser = _add_daemon_parser(commands, "pause", "stop new entries; exits keep running")
    parser.add_argument("reason", nargs="*", help="why (logged and kept with the breaker)")


def _add_resume_parser(commands: Commands) -> None:
    _add_daemon_parser(commands, "resume", "lift a pause, an emergency stop or a drawdown halt")


def _add_close_parser(commands: Commands) -> None:
    parser = _add_daemon_parser(commands, "close", "close a position (or all) at its last close")
    parser.add_argument("symbol", help="the symbol, e.g. BTCUSDT, or all")


def _add_emergency_stop_parser(commands: Commands) -> None:
    parser = _add_daemon_parser(commands, "emergency-stop", "halt trading and close every position")
    parser.add_argument("reason", nargs="*", help="why (logged and kept with the breaker)")


def _add_status_parser(commands: Commands) -> None:
    parser = commands.add_parser(
        "status",
        help="running daemon: print its trading state, portfolio, positions and health",
        description="Read /api/status and /api/positions from the running daemon's HTTP "
        "service (HEALTH_HOST:HEALTH_PORT; a wildcard host such as 0.0.0.0 is reached on "
        "loopback) and print a short summary: the trading state and tripped breakers, equity, "
        "cash and drawdown, the open positions at their marks with unrealised PnL, the health "
        "score and level, the last candle's time (UTC). Exit 1, with one line on stderr "
        "naming the URL, when no daemon answers there.",
    )
    parser.add_argument(
        "--url",
        type=status.url_argument,
        help="the daemon's HTTP service, http://HOST:PORT (default: from HEALTH_HOST and "
        "HEALTH_PORT)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the JSON for scripts: url, status, health and positions, as the API gives",
    )


def _add_daemon_parser(commands: Commands, name: str, what: str) -> argparse.ArgumentParser:
    """Add a command to a running daemon (``cli/control.py``): it names the daemon's ``--db``."""
    parser = commands.add_parser(
        name,
        help=f"running daemon: {what}",
        description=f"Ask the daemon running on the database to {what}, over its control "
        "socket (DB_PATH.sock); print its answer as JSON. Exit 0 if it did, 1 if it could "
        "not or if no daemon is running on that database.",
    )
    parser.add_argument("--db", type=Path, help="the daemon's database (DB_PATH)")
    return parser


def _train(settings: Settings, args: argparse.Namespace) -> int:
    # numpy, pandas, scikit-learn and XGBoost take a second to import: only `train` pays.
    from paper_trader.cli.train import train_command  # noqa: PLC0415

    return train_command(settings, args)


COMMANDS: dict[str, Handler] = {
    "run": run.run_command,
    "check-config": run.check_config_command,
    "replay": run.replay_command,
    "demo": demo.demo_command,
    "download": download.download_command,
    "report": report.report_command,
    "features": features.features_command,
    "train": _train,
    "backup": backup.backup_command,
    "status": status.status_command,
    **control.COMMANDS,
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.env_file or Path(".env"), required=args.env_file is not None)
        return COMMANDS[args.command or "run"](settings, args)
    except (ConfigError, DataIntegrityError) as exc:
        kind = exc.label if isinstance(exc, ConfigError) else "bad input"
        for line in str(exc).splitlines():
            print(f"paper-trader: {kind}: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT


def run_as_process() -> NoReturn:
    """Run ``main`` as the process and leave without tearing the interpreter down.

    Output into a pipe whose reader has gone ends the command quietly with 141, as a shell
    tool killed by SIGPIPE would.

    Every command has closed its files, databases and log handlers by the time ``main``
    returns; what is left is freeing the heap object by object (the daemon's frozen warm heap
    at 100 symbols: 0.7 s of a 2 s stop budget). Standard streams and logging are flushed, then
    the process exits with the command's code.
    """
    try:
        code = main()
        logging.shutdown()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (``check-config | head``): no traceback for it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    sys.stderr.flush()
    os._exit(code)
