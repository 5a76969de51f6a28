"""The command line's way into a running daemon: a Unix socket beside the database.

``DB_PATH.sock``, mode 0600 (only the daemon's user may connect), bound once the ledger is
restored and removed at stop; one left behind by a ``kill -9`` is replaced at the next start
(the database lock proves that no other daemon serves it). One JSON request and one JSON
answer, each a line, per connection::

    {"command": "status"}
    {"command": "pause", "reason": "news at 14:00"}        reason optional
    {"command": "resume"}
    {"command": "close", "symbol": "BTC-USDT"}              or "symbol": "all"
    {"command": "emergency_stop", "reason": "..."}          reason optional

The answer is ``{"ok": true|false, ...}``: a command's ``message``, ``transitions`` and
``trades``; the status's ``status`` and ``positions``; or an ``error`` for a bad request.
Everything goes through ``Control``, which logs each command (``command_accepted``, source
``cli``) after its changes committed. The Telegram bot and the status feed will call the same
``Control``.
"""

import asyncio
import contextlib
import dataclasses
import enum
import json
import os
import socket
import stat
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from paper_trader.control.api import CommandResult, Control
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.errors import PaperTraderError
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("control_socket")

MAX_REQUEST_BYTES = 4096
MAX_REASON_CHARS = 200
READ_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 30.0  # the client's wait: a command waits for the decision task's lock
SUN_PATH_MAX = 107  # bytes of a Unix socket path (108 with the terminating NUL)

Answer = dict[str, Any]
Handler = Callable[[Control, Mapping[str, Any], str], Awaitable[Answer]]


class BadRequest(PaperTraderError):
    """A request that is not one of the commands, or lacks what its command needs."""


class DaemonUnreachable(PaperTraderError):
    """No daemon answered on the control socket (none running, or it could not be reached)."""


def socket_path(db_path: Path) -> Path:
    """Return the control socket of the daemon that owns ``db_path``."""
    return db_path.with_name(db_path.name + ".sock")


class ControlSocket:
    """Serve ``Control`` on a Unix socket, one request per connection."""

    name = "control_socket"

    def __init__(self, control: Control, path: Path, *, source: str = "cli") -> None:
        self._control = control
        self.path = path
        self._source = source
        self._problem = ""
        self.answered = 0

    def health(self) -> ComponentHealth:
        """Return OK while serving, DEGRADED if the socket could not be bound."""
        if self._problem:
            return ComponentHealth(
                component=self.name, status=HealthStatus.DEGRADED, detail=self._problem
            )
        return ComponentHealth(
            component=self.name, status=HealthStatus.OK, detail=f"{self.answered} answered"
        )

    async def run(self, ready: Readiness) -> None:
        """Bind once the ledger is restored, serve until cancelled, remove the socket."""
        await self._control.wait_started()
        try:
            listener = _bind(self.path)
        except OSError as exc:
            # The daemon trades on without it; the operator sees why and how to fix it.
            self._problem = f"no control socket at {self.path}: {exc.strerror or exc}"
            log.error("control_socket_unavailable", path=str(self.path), error=self._problem)  # noqa: TRY400
            ready.set()
            await asyncio.Event().wait()
            return
        try:
            server = await asyncio.start_unix_server(
                self._serve, sock=listener, limit=MAX_REQUEST_BYTES
            )
            log.info("control_socket_listening", path=str(self.path))
            ready.set()
            async with server:
                await server.serve_forever()
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._answer(reader)
            writer.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
            await writer.drain()
            self.answered += 1
        except Exception as exc:  # noqa: BLE001 -- one connection's failure never stops the service
            log.error("control_request_failed", error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> Answer:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                line = await reader.readline()
            request = _parse(line)
        except BadRequest as exc:
            return self._refuse(str(exc))
        except TimeoutError:
            return self._refuse(f"no request within {READ_TIMEOUT_S:g} s")
        except ValueError:  # the line is over the stream's limit
            return self._refuse(f"a request is one JSON line of at most {MAX_REQUEST_BYTES} bytes")
        try:
            return await _HANDLERS[request["command"]](self._control, request, self._source)
        except BadRequest as exc:
            return self._refuse(str(exc))

    def _refuse(self, error: str) -> Answer:
        log.warning("command_refused", source=self._source, error=error)
        return {"ok": False, "error": error}


def _bind(path: Path) -> socket.socket:
    """Return a listening socket at ``path``, mode 0600; replace a stale socket file.

    Raise ``OSError`` if the path is too long, is something else than a socket, or cannot
    be bound.
    """
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise OSError(
            f"the path is longer than the {SUN_PATH_MAX} bytes a Unix socket allows; "
            "use a shorter DB_PATH"
        )
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise OSError(f"{path} exists and is not a socket; move it away")
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chmod(path, 0o600)  # before listen(): nobody can connect in between
        listener.listen(16)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


def _parse(line: bytes) -> dict[str, Any]:
    """Return the request as a JSON object with a known ``command``; raise ``BadRequest``."""
    if not line.endswith(b"\n"):
        raise BadRequest(f"a request is one JSON line of at most {MAX_REQUEST_BYTES} bytes")
    try:
        request = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over 4,300 digits
        raise BadRequest(f"not JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("not JSON: nested too deep") from None
    command = request.get("command") if isinstance(request, dict) else None
    if not isinstance(request, dict) or not isinstance(command, str) or command not in _HANDLERS:
        known = ", ".join(sorted(_HANDLERS))
        raise BadRequest(f"unknown command; expected one of {known}")
    return request


def _text(request: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = request.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{request['command']}: {key!r} must be a non-empty string")
    if len(value) > MAX_REASON_CHARS:
        raise BadRequest(f"{request['command']}: {key!r} is over {MAX_REASON_CHARS} characters")
    return value.strip()


async def _status(control: Control, _request: Mapping[str, Any], _source: str) -> Answer:
    status = await control.status()
    positions = await control.positions()
    return {"ok": True, "status": to_json(status), "positions": to_json(positions)}


async def _pause(control: Control, request: Mapping[str, Any], source: str) -> Answer:
    reason = _text(request, "reason", "paused from the command line")
    return _result(await control.pause(reason, source=source))


async def _resume(control: Control, _request: Mapping[str, Any], source: str) -> Answer:
    return _result(await control.resume(source=source))


async def _close(control: Control, request: Mapping[str, Any], source: str) -> Answer:
    symbol = _text(request, "symbol")
    if symbol.lower() == "all":
        return _result(await control.close_all(source=source))
    return _result(await control.close(symbol, source=source))


async def _emergency_stop(control: Control, request: Mapping[str, Any], source: str) -> Answer:
    reason = _text(request, "reason", "emergency stop from the command line")
    return _result(await control.emergency_stop(reason, source=source))


_HANDLERS: dict[str, Handler] = {
    "status": _status,
    "pause": _pause,
    "resume": _resume,
    "close": _close,
    "emergency_stop": _emergency_stop,
}


def _result(result: CommandResult) -> Answer:
    answer: Answer = to_json(result)
    return answer


def to_json(value: object) -> Any:
    """Return a frozen value (dataclasses, Decimals, enums, tuples) as JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def request(
    path: Path, message: Mapping[str, Any], *, timeout_s: float = ANSWER_TIMEOUT_S
) -> Answer:
    """Send one request to the daemon serving ``path``; return its answer.

    Raise ``DaemonUnreachable`` with one line when no daemon answers.
    """
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise DaemonUnreachable(
            f"the control socket path {path} is longer than a Unix socket allows "
            f"({SUN_PATH_MAX} bytes); the daemon could not serve it either: use a shorter DB_PATH"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = _read_line(sock)
        except (FileNotFoundError, ConnectionRefusedError):
            raise DaemonUnreachable(
                f"no daemon is running on this database (nothing listens at {path})"
            ) from None
        except TimeoutError:
            raise DaemonUnreachable(f"the daemon did not answer within {timeout_s:g} s") from None
        except OSError as exc:
            raise DaemonUnreachable(f"cannot reach the daemon at {path}: {exc.strerror}") from None
    try:
        answer = json.loads(data)
    except json.JSONDecodeError:
        raise DaemonUnreachable("the daemon closed the connection without an answer") from None
    if not isinstance(answer, dict):
        raise DaemonUnreachable("the daemon's answer is not a JSON object")
    return answer


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while not chunks or not chunks[-1].endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
