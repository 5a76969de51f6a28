"""Run services in one TaskGroup: restart the transient failures, stop on anything else.

Policy, per service:

* ``TransientError`` → restart after a capped full-jitter backoff (at least ``retry_after_s``
  for ``RateLimited``); the backoff resets once a run has lasted ``healthy_run_s``.
* ``crash_loop_restarts`` restarts within ``crash_loop_window_s`` → the service is in a crash
  loop: health CRITICAL and a ``SERVICE_CRASH_LOOP`` event; it keeps being restarted, and a
  healthy run clears the state with a ``SERVICE_RECOVERED`` event.
* ``ConfigError`` (a setting the outside world refuses, e.g. a symbol the venue does not
  list) → the daemon stops in order and exits 2, like a configuration error at start-up.
* any other exception → the daemon stops in order and exits 1 (crash-only).
* returning normally → the service is done; if it ``ends_daemon``, the daemon stops with 0.

Stopping (a signal, a fatal error, or the end of a replay) cancels the services one at a time
in the reverse of their start order, within one overall deadline. Tasks still running after it
are logged with their stacks and the outcome says so; the caller then exits the process.
"""

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from paper_trader.clock import Clock
from paper_trader.domain import ComponentHealth, EventKind, EventSource, HealthStatus, Severity
from paper_trader.errors import ConfigError, RateLimited, TransientError
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.events import EventSink
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness, Service

log = get_logger("supervisor")
_SOURCE = EventSource("supervisor")

LATE_CANCEL_GRACE_S = 0.2
EXIT_CONFIG_ERROR = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """How the supervisor restarts services that raise ``TransientError``."""

    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=0.5, cap_s=60.0))
    healthy_run_s: float = 60.0
    crash_loop_restarts: int = 5
    crash_loop_window_s: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Supervised:
    """A service and what its normal return means."""

    service: Service
    ends_daemon: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How the supervised run ended."""

    exit_code: int
    reason: str
    deadline_exceeded: bool = False
    refusal: str = ""  # the ConfigError that stopped the daemon (exit code 2), if one did


@dataclass(slots=True)
class _State:
    name: str
    restarts: deque[float] = field(default_factory=deque)
    attempt: int = 0
    started_at: float = 0.0
    running: bool = False
    ready: bool = False
    finished: bool = False
    exited: bool = False
    crash_loop: bool = False
    last_error: str = ""


class Supervisor:
    """Own every service task; restart, escalate, stop in order."""

    def __init__(
        self,
        *,
        policy: RestartPolicy,
        clock: Clock,
        events: EventSink,
        shutdown_timeout_s: float,
        on_ready: Callable[[], None] | None = None,
        on_stopping: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._services: list[Supervised] = []
        self._policy = policy
        self._clock = clock
        self._events = events
        self._shutdown_timeout_s = shutdown_timeout_s
        self._on_ready = on_ready
        self._on_stopping = on_stopping
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        self._states: dict[str, _State] = {}
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._exit_code = 0
        self._refusal = ""
        self._announced_ready = False
        self.restarts = 0  # transient failures restarted, all services, since the start
        self._tasks: list[asyncio.Task[None]] = []
        self._recovery: asyncio.Task[None] | None = None

    # -- public API -------------------------------------------------------------------------

    def add(self, service: Service, *, ends_daemon: bool = False) -> None:
        """Register ``service``; services start in the order added and stop in reverse.

        A service that ``ends_daemon`` stops the daemon (exit 0) when it returns normally.
        """
        if service.name in self._states:
            raise ValueError(f"a service named {service.name!r} is already registered")
        self._services.append(Supervised(service=service, ends_daemon=ends_daemon))
        self._states[service.name] = _State(service.name)

    def request_stop(self, reason: str) -> None:
        """Begin an orderly stop (idempotent: the first reason is kept)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    @property
    def stop_reason(self) -> str:
        """Return why the daemon stops ("" before a stop is requested)."""
        return self._stop_reason

    @property
    def is_ready(self) -> bool:
        """Return whether every service has declared itself ready (or finished)."""
        return all(s.ready or s.finished for s in self._states.values())

    def health(self) -> ComponentHealth:
        """Return CRITICAL while any service is in a crash loop, DEGRADED while any restarts."""
        looping = [s.name for s in self._states.values() if s.crash_loop]
        if looping:
            return ComponentHealth(
                component="supervisor",
                status=HealthStatus.CRITICAL,
                detail="crash loop: " + ", ".join(looping),
            )
        restarting = [s.name for s in self._states.values() if not s.running and not s.finished]
        if restarting and self._announced_ready and not self._stop.is_set():
            return ComponentHealth(
                component="supervisor",
                status=HealthStatus.DEGRADED,
                detail="restarting: " + ", ".join(restarting),
            )
        return ComponentHealth(component="supervisor", status=HealthStatus.OK)

    async def run(self) -> Outcome:
        """Run every service until they finish or a stop is requested; return the outcome."""
        group = asyncio.create_task(self._run_group(), name="supervisor-group")
        stop_wait = asyncio.create_task(self._stop.wait(), name="supervisor-stop-wait")
        try:
            await asyncio.wait({group, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if group.done():
            await group
            return self._outcome(self._stop_reason or "all services finished")
        log.info("daemon_stopping", reason=self._stop_reason)
        if self._on_stopping is not None:
            self._on_stopping()
        pending = await self._stop_in_order()
        if pending:
            self._log_pending(pending)
            return Outcome(exit_code=1, reason=self._stop_reason, deadline_exceeded=True)
        await group
        return self._outcome(self._stop_reason)

    # -- internals --------------------------------------------------------------------------

    def _outcome(self, reason: str) -> Outcome:
        return Outcome(exit_code=self._exit_code, reason=reason, refusal=self._refusal)

    async def _run_group(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._tasks = [
                group.create_task(self._supervise(s), name=f"service:{s.service.name}")
                for s in self._services
            ]
            self._recovery = group.create_task(self._watch_recovery(), name="supervisor-recovery")

    async def _supervise(self, supervised: Supervised) -> None:
        service = supervised.service
        state = self._states[service.name]
        bound = log.bind(service=service.name)
        while True:
            state.started_at = self._clock.monotonic()
            state.running, state.ready = True, False
            try:
                await service.run(Readiness(on_set=lambda: self._mark_ready(state)))
            except TransientError as exc:
                state.running = False
                if self._stop.is_set():  # failing while being stopped: nothing to restart
                    state.exited = True
                    bound.info("service_stopped_with_error", error=f"{type(exc).__name__}: {exc}")
                    return
                await asyncio.sleep(self._after_transient(state, exc, bound))
                continue
            except Exception as exc:  # noqa: BLE001 -- supervisor boundary: any other error is fatal
                state.running, state.exited = False, True
                self._fail(state, exc, bound)
                return
            state.running, state.finished, state.exited = False, True, True
            bound.info("service_finished")
            self._announce_if_ready()
            if supervised.ends_daemon:
                self.request_stop(f"{service.name} finished")
            return

    def _mark_ready(self, state: _State) -> None:
        state.ready = True
        log.info("service_ready", service=state.name)
        self._announce_if_ready()

    def _announce_if_ready(self) -> None:
        if not self._announced_ready and self.is_ready and not self._stop.is_set():
            self._announced_ready = True
            log.info("daemon_ready", services=len(self._states))
            if self._on_ready is not None:
                self._on_ready()

    def _after_transient(
        self, state: _State, exc: TransientError, bound: structlog.stdlib.BoundLogger
    ) -> float:
        """Record a transient failure and return how long to wait before restarting."""
        now = self._clock.monotonic()
        if now - state.started_at >= self._policy.healthy_run_s:
            state.attempt = 0
        delay = self._policy.backoff.delay(state.attempt, self._rng)
        if isinstance(exc, RateLimited):
            delay = max(delay, exc.retry_after_s)
        state.attempt += 1
        self.restarts += 1
        state.last_error = f"{type(exc).__name__}: {exc}"
        state.restarts.append(now)
        while state.restarts and now - state.restarts[0] > self._policy.crash_loop_window_s:
            state.restarts.popleft()
        bound.warning(
            "service_restarting",
            error=state.last_error,
            delay_s=round(delay, 3),
            restarts_in_window=len(state.restarts),
        )
        if len(state.restarts) >= self._policy.crash_loop_restarts and not state.crash_loop:
            state.crash_loop = True
            message = (
                f"{state.name} is in a crash loop: {len(state.restarts)} restarts in "
                f"{self._policy.crash_loop_window_s:g} s; last error: {state.last_error}"
            )
            bound.error("service_crash_loop", restarts=len(state.restarts), error=state.last_error)
            self._publish(EventKind.SERVICE_CRASH_LOOP, Severity.CRITICAL, state, message)
        return delay

    def _fail(self, state: _State, exc: Exception, bound: structlog.stdlib.BoundLogger) -> None:
        state.last_error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ConfigError):  # a refusal found at run time: exit 2, no traceback
            self._exit_code = max(self._exit_code, EXIT_CONFIG_ERROR)
            self._refusal = self._refusal or str(exc)
            bound.error("service_refused_configuration", error=str(exc))
        else:
            self._exit_code = max(self._exit_code, 1)
            bound.error("service_failed", error=state.last_error, exc_info=exc)
        message = f"{state.name} failed and the daemon is stopping: {state.last_error}"
        self._publish(EventKind.SERVICE_FAILED, Severity.CRITICAL, state, message)
        self.request_stop(f"{state.name} failed: {state.last_error}")

    async def _watch_recovery(self) -> None:
        """Clear a crash loop once the service has run healthily for ``healthy_run_s``."""
        period = min(1.0, self._policy.healthy_run_s / 4)
        while not all(state.exited for state in self._states.values()):
            await asyncio.sleep(period)
            now = self._clock.monotonic()
            for state in self._states.values():
                healthy = state.running and now - state.started_at >= self._policy.healthy_run_s
                if state.crash_loop and healthy:
                    state.crash_loop = False
                    state.restarts.clear()
                    log.info("service_recovered", service=state.name)
                    message = f"{state.name} recovered after a crash loop"
                    self._publish(EventKind.SERVICE_RECOVERED, Severity.INFO, state, message)

    def _publish(self, kind: EventKind, severity: Severity, state: _State, message: str) -> None:
        data: dict[str, str | int | float] = {
            "service": state.name,
            "restarts": len(state.restarts),
            "error": state.last_error,
        }
        self._events.publish(
            _SOURCE.event(kind, severity, message, at_ms=self._clock.now_ms(), data=data)
        )

    async def _stop_in_order(self) -> list[asyncio.Task[None]]:
        """Cancel services last-started first; return the tasks still running at the deadline."""
        deadline = self._clock.monotonic() + self._shutdown_timeout_s
        if self._recovery is not None:
            self._recovery.cancel()
        tasks = list(reversed(self._tasks))
        for index, task in enumerate(tasks):
            if task.done():
                continue
            task.cancel()
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                done: set[asyncio.Task[None]] = set()
            else:
                done, _ = await asyncio.wait({task}, timeout=remaining)
            if task not in done:
                rest = tasks[index + 1 :]
                for later in rest:
                    later.cancel()
                if rest:  # a moment for the well-behaved ones to finish their cancellation
                    await asyncio.wait(rest, timeout=LATE_CANCEL_GRACE_S)
                return [t for t in tasks[index:] if not t.done()]
        return []

    def _log_pending(self, pending: list[asyncio.Task[None]]) -> None:
        for task in pending:
            log.error(
                "shutdown_deadline_exceeded",
                task=task.get_name(),
                timeout_s=self._shutdown_timeout_s,
                stack=await_stack(task),
            )


def await_stack(task: asyncio.Task[None]) -> str:
    """Return where ``task`` is waiting: every coroutine along its ``await`` chain.

    ``Task.print_stack`` shows only the outermost coroutine; the service's own frames, where
    it is really stuck, are further down the chain of awaited coroutines.
    """
    lines: list[str] = []
    awaited: object = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines) if lines else "(no coroutine frames)"
