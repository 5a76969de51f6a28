"""Logging set-up: structlog over stdlib logging, behind a bounded queue.

Callers (the event loop included) only enqueue records; a `QueueListener` thread renders them
with structlog's `ProcessorFormatter` and writes them to stderr and, when a directory is given,
to ``paper_trader.log`` (every record) and ``errors.log`` (warnings and above) as JSON lines.
``write_performance`` records go only to ``performance.log``, one JSON object a line, whatever
the level; every file rotates by size and reopens a path an external logrotate moved.
Configured secret values and the values of token/secret/password keys are masked everywhere.
"""

import copy
import enum
import functools
import json
import logging
import logging.handlers
import os
import queue
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_MASK = "**********"
_SENSITIVE_KEY_PARTS = ("token", "secret", "password")
# Keys the redactor must leave alone: formatter bookkeeping and the live exception, which is
# redacted once it has been formatted into text.
_UNTOUCHED_KEYS = frozenset({"_record", "_from_structlog", "exc_info"})
_MAX_DEPTH = 2
_QUEUE_CAPACITY = 10_000
_NOISY_LOGGERS = ("asyncio", "aiosqlite", "hpack", "httpcore", "httpx", "telegram", "websockets")
MAIN_LOG = "paper_trader.log"
ERROR_LOG = "errors.log"
PERFORMANCE_LOG = "performance.log"
_PERFORMANCE_LOGGER = "paper_trader.performance"


class LogFormat(enum.StrEnum):
    """Rendering of the console (stderr) stream."""

    AUTO = "auto"
    CONSOLE = "console"
    JSON = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """Logging settings; ``directory=None`` writes no files."""

    level: str = "INFO"
    format: LogFormat = LogFormat.AUTO
    directory: Path | None = None
    max_bytes: int = 10_000_000
    backups: int = 5
    secrets: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1024)
def _is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, Sized) and len(value) == 0)


class _Redactor:
    """Processor that masks secret values and the values of sensitive-looking keys."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another one is masked whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            if key not in _UNTOUCHED_KEYS:
                redacted = self._redact_item(str(key), value, 0)
                if redacted is not value:
                    event_dict[key] = redacted
        return event_dict

    def _redact_item(self, key: str, value: object, depth: int) -> object:
        if _is_sensitive_key(key) and not _is_empty(value):
            return _MASK
        return self._redact_value(value, depth)

    def _redact_value(self, value: object, depth: int) -> object:
        if isinstance(value, str):
            return self._scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth < _MAX_DEPTH and isinstance(value, dict):
            return {k: self._redact_item(str(k), v, depth + 1) for k, v in value.items()}
        if depth < _MAX_DEPTH and isinstance(value, list | tuple):
            items = [self._redact_value(v, depth + 1) for v in value]
            return items if isinstance(value, list) else tuple(items)
        return self._scrub_object(value)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text

    def _scrub_object(self, value: object) -> object:
        """Replace an object whose rendering (``str`` in JSON, ``repr`` on a console) leaks."""
        if not self._secrets:
            return value
        try:
            texts = (str(value), repr(value))
        except Exception:  # noqa: BLE001 - a broken __repr__ must not make logging raise
            return "<unrenderable>"
        for text in texts:
            if any(secret in text for secret in self._secrets):
                return self._scrub(text)
        return value


def _capture_exc_info(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Resolve ``exc_info=True`` in the caller's thread; the listener thread has no exception."""
    value = event_dict.get("exc_info")
    if isinstance(value, BaseException | tuple):
        return event_dict
    exc_info = sys.exc_info() if value else (None, None, None)
    if exc_info[0] is None:
        event_dict.pop("exc_info", None)
    else:
        event_dict["exc_info"] = exc_info
    return event_dict


def _add_record_timestamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Stamp a foreign record with its creation time, not the time the listener renders it."""
    record = event_dict.get("_record")
    created = record.created if isinstance(record, logging.LogRecord) else time.time()
    stamp = datetime.fromtimestamp(created, tz=UTC).isoformat()
    event_dict["timestamp"] = stamp.replace("+00:00", "Z")
    return event_dict


def _formatter(
    redactor: _Redactor, renderer: Processor | None = None
) -> structlog.stdlib.ProcessorFormatter:
    """Build a formatter; the renderer defaults to JSON (non-serialisable values via ``str``)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _add_record_timestamp,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            renderer or structlog.processors.JSONRenderer(default=str),
        ],
    )


def _file_identity(stream: TextIO) -> tuple[int, int]:
    status = os.fstat(stream.fileno())
    return status.st_dev, status.st_ino


class _WatchedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotate by size, and reopen the path when an external logrotate moved or removed it.

    The file is opened in append mode, so after a copytruncate writes land at the new end.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        super().__init__(path, mode="a", maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        assert self.stream is not None
        self._identity = _file_identity(self.stream)

    def _current_stream(self) -> TextIO:
        """Return the open stream, reopening the path if it was moved, removed or closed."""
        stream = self.stream
        try:
            status = os.stat(self.baseFilename)
        except FileNotFoundError:
            status = None
        if stream is None or status is None or (status.st_dev, status.st_ino) != self._identity:
            if stream is not None:
                stream.close()
            stream = self.stream = self._open()
            self._identity = _file_identity(stream)
        return stream

    def doRollover(self) -> None:
        """Rotate the files and remember the identity of the new one."""
        super().doRollover()
        assert self.stream is not None
        self._identity = _file_identity(self.stream)

    def emit(self, record: logging.LogRecord) -> None:
        """Format once, reopen or rotate if needed, then append the line."""
        try:
            stream = self._current_stream()
            message = self.format(record) + self.terminator
            size = stream.seek(0, os.SEEK_END) if self.maxBytes > 0 else 0
            if size > 0 and size + len(message) >= self.maxBytes:
                self.doRollover()
                stream = self._current_stream()
            stream.write(message)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging must never raise; handleError reports it
            self.handleError(record)


_RecordQueue = queue.Queue[logging.LogRecord | None]


class _BoundedQueueHandler(logging.handlers.QueueHandler):
    """Enqueue records without blocking; when the queue is full, drop and count them."""

    def __init__(self, records: _RecordQueue) -> None:
        super().__init__(records)
        self.dropped = 0
        self.close_pipeline: Callable[[], None] = lambda: None

    def enqueue(self, record: logging.LogRecord) -> None:
        """Put the record on the queue, or count it as dropped."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Copy the record, keeping structlog's event dict for the listener's formatters."""
        prepared = copy.copy(record)
        if not isinstance(prepared.msg, dict):
            prepared.msg = prepared.getMessage()
            prepared.args = None
        return prepared


class _DrainingQueueListener(logging.handlers.QueueListener):
    """Listener whose stop waits for room in a full queue instead of raising `queue.Full`."""

    def enqueue_sentinel(self) -> None:
        """Put the stop marker (the stdlib sentinel ``None``), waiting while the queue is full."""
        cast(_RecordQueue, self.queue).put(None)


class LoggingHandle:
    """Own the logging pipeline that `configure_logging` installed."""

    def __init__(
        self,
        queue_handler: _BoundedQueueHandler,
        listener: logging.handlers.QueueListener,
        sinks: list[logging.Handler],
        saved_levels: dict[str, int],
    ) -> None:
        self._queue_handler = queue_handler
        self._listener = listener
        self._sinks = sinks
        self._saved_levels = saved_levels
        self._closed = False

    def close(self) -> None:
        """Flush what was logged so far, stop the listener and remove the handlers."""
        if self._closed:
            return
        self._closed = True
        logging.getLogger().removeHandler(self._queue_handler)
        self._listener.stop()
        for sink in self._sinks:
            sink.close()
        for name, level in self._saved_levels.items():
            logging.getLogger(name).setLevel(level)

    @property
    def dropped(self) -> int:
        """Return how many records were dropped because the queue was full."""
        return self._queue_handler.dropped


def _console_handler(config: LogConfig, stream: TextIO, redactor: _Redactor) -> logging.Handler:
    is_tty = stream.isatty()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_is_not_performance)
    is_text = config.format is LogFormat.CONSOLE or (config.format is LogFormat.AUTO and is_tty)
    renderer = structlog.dev.ConsoleRenderer(colors=is_tty) if is_text else None
    handler.setFormatter(_formatter(redactor, renderer))
    return handler


def _is_performance(record: logging.LogRecord) -> bool:
    return record.name == _PERFORMANCE_LOGGER


def _is_not_performance(record: logging.LogRecord) -> bool:
    return record.name != _PERFORMANCE_LOGGER


class _JsonLineFormatter(logging.Formatter):
    """Render a record whose message is a dict as that dict's JSON (on the listener thread)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON object (non-serialisable values via ``str``)."""
        return json.dumps(record.msg, default=str)


def write_performance(fields: Mapping[str, object]) -> None:
    """Queue one JSON line for ``performance.log`` (dropped and counted when the queue is full,
    nothing written without a log directory)."""
    logging.getLogger(_PERFORMANCE_LOGGER).info(dict(fields))


def _file_handlers(
    config: LogConfig, directory: Path, redactor: _Redactor
) -> list[logging.Handler]:
    directory.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = []
    files = ((MAIN_LOG, logging.NOTSET), (ERROR_LOG, logging.WARNING), (PERFORMANCE_LOG, 0))
    try:
        for name, level in files:
            handler = _WatchedRotatingFileHandler(
                directory / name, max_bytes=config.max_bytes, backups=config.backups
            )
            handler.setLevel(level)
            is_performance = name == PERFORMANCE_LOG
            handler.addFilter(_is_performance if is_performance else _is_not_performance)
            handler.setFormatter(_JsonLineFormatter() if is_performance else _formatter(redactor))
            handlers.append(handler)
    except OSError:
        for opened in handlers:
            opened.close()
        raise
    return handlers


def _configure_structlog(redactor: _Redactor) -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            _capture_exc_info,
            redactor,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _set_levels(level: int) -> dict[str, int]:
    """Set the root and third-party levels; return the previous ones, keyed by logger name."""
    names = ("", *_NOISY_LOGGERS, _PERFORMANCE_LOGGER)
    saved = {name: logging.getLogger(name).level for name in names}
    logging.getLogger().setLevel(level)
    logging.getLogger(_PERFORMANCE_LOGGER).setLevel(logging.INFO)  # written at any LOG_LEVEL
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return saved


def configure_logging(config: LogConfig, *, stream: TextIO | None = None) -> LoggingHandle:
    """Install structlog and the queued handlers; close any pipeline installed before.

    ``stream`` defaults to ``sys.stderr`` at call time. Loggers from `get_logger` pick up the
    new configuration on their next call, wherever they were created.
    """
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _BoundedQueueHandler):
            existing.close_pipeline()
    redactor = _Redactor(config.secrets)
    sinks = [_console_handler(config, sys.stderr if stream is None else stream, redactor)]
    if config.directory is not None:
        sinks += _file_handlers(config, config.directory, redactor)
    records: _RecordQueue = queue.Queue(_QUEUE_CAPACITY)
    queue_handler = _BoundedQueueHandler(records)
    listener = _DrainingQueueListener(records, *sinks, respect_handler_level=True)
    saved_levels = _set_levels(logging.getLevelNamesMapping()[config.level.upper()])
    _configure_structlog(redactor)
    handle = LoggingHandle(queue_handler, listener, sinks, saved_levels)
    queue_handler.close_pipeline = handle.close
    listener.start()
    root.addHandler(queue_handler)
    return handle


def get_logger(component: str) -> structlog.stdlib.BoundLogger:
    """Return a logger bound to ``component``, named ``paper_trader.<component>``."""
    return structlog.stdlib.get_logger(f"paper_trader.{component}", component=component)
