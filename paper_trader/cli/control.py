"""``pause``, ``resume``, ``close``, ``emergency-stop``, ``status``: commands to a running daemon.

Each sends one request over the daemon's control socket (``DB_PATH.sock``, see
``interfaces/control_socket.py``) and prints the answer as JSON. Exit codes: 0 when the daemon
did what was asked, 1 when it answered that it could not (the JSON says why, and its message
goes to stderr) or when no daemon is running on the database (one line on stderr).
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paper_trader.domain.symbols import normalise_symbol
from paper_trader.interfaces.control_socket import DaemonUnreachable, request, socket_path
from paper_trader.settings import Settings

EXIT_REFUSED = 1


def add_parsers(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the commands to a running daemon to the CLI's sub-parsers."""
    pause = _command(commands, "pause", "stop new entries; exits keep running")
    pause.add_argument("reason", nargs="*", help="why (logged and kept with the breaker)")
    _command(commands, "resume", "lift a pause, an emergency stop or a drawdown halt")
    close = _command(commands, "close", "close a position (or all) at its last close")
    close.add_argument("symbol", help="the symbol, e.g. BTCUSDT, or all")
    stop = _command(commands, "emergency-stop", "halt trading and close every position")
    stop.add_argument("reason", nargs="*", help="why (logged and kept with the breaker)")
    _command(commands, "status", "print the trading state, the portfolio and the positions")


def _command(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, what: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=f"running daemon: {what}",
        description=f"Ask the daemon running on the database to {what}, over its control "
        "socket (DB_PATH.sock); print its answer as JSON. Exit 0 if it did, 1 if it could "
        "not or if no daemon is running on that database.",
    )
    parser.add_argument("--db", type=Path, help="the daemon's database (DB_PATH)")
    return parser


def _message(args: argparse.Namespace) -> dict[str, Any]:
    command = args.command.replace("-", "_")
    message: dict[str, Any] = {"command": command}
    if getattr(args, "reason", None):
        message["reason"] = " ".join(args.reason)
    if command == "close":
        symbol = args.symbol.strip()
        message["symbol"] = "all" if symbol.lower() == "all" else _symbol(symbol)
    return message


def _symbol(text: str) -> str:
    try:
        return normalise_symbol(text)
    except ValueError:
        return text  # the daemon answers with the symbols it holds


def ask_daemon(settings: Settings, args: argparse.Namespace) -> int:
    """Send the command to the daemon, print its answer; return the exit code."""
    db = args.db or settings.db_path
    try:
        answer = request(socket_path(db), _message(args))
    except DaemonUnreachable as exc:
        sys.stderr.write(f"paper-trader: {exc}\n")
        return EXIT_REFUSED
    sys.stdout.write(json.dumps(answer, indent=2) + "\n")
    if answer.get("ok") is True:
        return 0
    sys.stderr.write(f"paper-trader: {answer.get('message') or answer.get('error')}\n")
    return EXIT_REFUSED


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = dict.fromkeys(
    ("pause", "resume", "close", "emergency-stop", "status"), ask_daemon
)
