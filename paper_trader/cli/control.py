"""``pause``, ``resume``, ``close``, ``emergency-stop``: commands to a running daemon.

Each sends one request over the daemon's control socket (``DB_PATH.sock``, see
``interfaces/control_socket.py``) and prints the answer as JSON. Exit codes: 0 when the daemon
did what was asked, 1 when it answered that it could not (the JSON says why, and its message
goes to stderr) or when no daemon is running on the database (one line on stderr). Their
parsers are built in ``main.py`` (``_add_daemon_parser``). ``status`` reads the daemon's HTTP
service instead (``status.py``).
"""

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from paper_trader.domain.symbols import normalise_symbol
from paper_trader.interfaces.control_socket import DaemonUnreachable, request, socket_path
from paper_trader.settings import Settings

EXIT_REFUSED = 1


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
    ("pause", "resume", "close", "emergency-stop"), ask_daemon
)
