"""Exceptions classified by what their handler must do.

The supervisor and the CLI map these to behaviour: a ``TransientError`` restarts the service
that raised it, a ``ConfigError`` at start-up exits with code 2, anything else stops the daemon
with exit code 1. Adapters translate library exceptions into these at their boundary.
"""


class PaperTraderError(Exception):
    """Base of every project exception; never raised directly."""


class ConfigError(PaperTraderError):
    """Invalid settings or artifacts (database, model files); exit code 2 at start-up.

    ``label`` is what the command line calls it (``paper-trader: LABEL: message``).
    """

    label = "configuration error"


class ModelError(ConfigError):
    """A model artifact is missing, corrupt, tampered with, or does not fit the running spec."""

    label = "model error"


class CannotProceed(ConfigError):
    """Not the settings but a file in the way: a database missing, damaged or held by another
    process, a backup target that exists, a CSV that cannot be read. Exit code 2 as well."""

    label = "cannot proceed"


class TransientError(PaperTraderError):
    """Retrying may succeed: the supervisor restarts the service after a backoff."""


class RateLimited(TransientError):
    """The remote side asked us to slow down; wait at least ``retry_after_s`` before retrying."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DataIntegrityError(PaperTraderError):
    """Input data is impossible or inconsistent (a malformed row, a gap, a bad candle)."""


class FatalError(PaperTraderError):
    """A broken invariant: stop the daemon cleanly rather than corrupt state."""
