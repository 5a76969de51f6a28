"""What the command modules share: the handler's shape, the ``--symbol`` check, console logs."""

import argparse
import contextlib
from collections.abc import Callable, Iterator

from paper_trader.app.configs import log_config
from paper_trader.domain.symbols import normalise_symbol
from paper_trader.errors import ConfigError
from paper_trader.runtime.logs import configure_logging
from paper_trader.settings import Settings

# A command: the settings and the parsed arguments in, the exit code out.
Handler = Callable[[Settings, argparse.Namespace], int]


def symbol_argument(text: str) -> str:
    """Return ``--symbol``'s value in the canonical spelling; raise ``ConfigError`` if invalid."""
    try:
        return normalise_symbol(text)
    except ValueError as exc:
        raise ConfigError(f"--symbol: {exc}") from None


@contextlib.contextmanager
def console_logging(settings: Settings) -> Iterator[None]:
    """Log to stderr only (stdout carries the command's JSON), for the one-shot chores."""
    handle = configure_logging(log_config(settings, files=False))
    try:
        yield
    finally:
        handle.close()
