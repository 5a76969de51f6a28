"""The embedded Telegram bot: a supervised service running PTB's ``Application`` in our loop.

One session is ``initialize`` (getMe) → ``setMyCommands`` → ``start`` →
``updater.start_polling``, then a watchdog, then ``updater.stop`` → ``stop`` → ``shutdown``:
each start-up step bounded by ``step_timeout_s``, each teardown step by ``stop_timeout_s`` and
in its own ``try`` (never ``run_polling``, which owns the loop and its signals). Requests go to
``{api_url}/bot{token}/{method}``.

* The token refused (401 on getMe) before any session started: ``ConfigError`` naming
  ``TELEGRAM_BOT_TOKEN`` (the daemon exits 2).
* Telegram unreachable, at start or later: the session ends, health says DEGRADED, and a new
  session is tried after a capped, jittered backoff; the service never fails, the daemon
  trades on.
* The watchdog: every ``watch_every_s`` the age of the last successful ``getUpdates`` is
  checked (``polling.PollingRequest``); past ``stall_after_s`` the poller is restarted.

Readiness is set after the first attempt, whether it connected or not: a Telegram outage must
not keep the daemon from being ready.
"""

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import BotCommand
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from paper_trader.clock import Clock
from paper_trader.control.console import Console
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.errors import ConfigError
from paper_trader.interfaces.notify.pacing import TelegramPacing
from paper_trader.interfaces.telegram.auth import Authorisation, Confirmations
from paper_trader.interfaces.telegram.commands import COMMANDS
from paper_trader.interfaces.telegram.handlers import Handlers, HandlerStats
from paper_trader.interfaces.telegram.polling import PollErrors, PollingRequest
from paper_trader.interfaces.telegram.replies import Replier
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.logs import get_logger
from paper_trader.runtime.service import Readiness

log = get_logger("telegram")

REFUSAL = (
    "TELEGRAM_BOT_TOKEN: the Telegram Bot API refused the token (401 Unauthorized on getMe); "
    "copy it again from @BotFather, or leave it empty to run without Telegram"
)
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
App = Application[Any, Any, Any, Any, Any, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class BotConfig:
    """The bot's settings; times are seconds of wall-clock time."""

    token: str = field(repr=False)
    api_url: str = "https://api.telegram.org"
    chats: frozenset[int] = frozenset()
    users: frozenset[int] = frozenset()
    poll_timeout_s: float = 10.0  # getUpdates' long poll
    request_timeout_s: float = 5.0  # connect, read (beyond the long poll), write, pool
    step_timeout_s: float = 15.0  # each start-up step
    stop_timeout_s: float = 3.0  # each teardown step: the daemon's stop has a deadline
    stall_after_s: float = 60.0  # no successful getUpdates for this long: restart the poller
    watch_every_s: float = 5.0
    retry: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, cap_s=300.0))
    healthy_after_s: float = 60.0  # a session this long resets the retry backoff
    confirm_ttl_s: float = 60.0
    stale_after_s: float = 300.0  # a trading command typed longer ago than this is not run
    part_gap_s: float = 1.0  # between the messages of one long answer
    concurrent_updates: int = 8  # a slow /daily never holds up /emergency_stop
    # Updates fetched but not yet handled; when full, polling waits and Telegram keeps the
    # rest (unconfirmed), so a flood of messages costs no memory beyond this.
    update_queue: int = 1000


class _Unreachable(Exception):
    """The Bot API could not be reached, or refused a session after it once worked."""


class TelegramBot:
    """The ``telegram`` service."""

    name = "telegram"

    def __init__(
        self,
        config: BotConfig,
        console: Console,
        *,
        clock: Clock,
        pacing: TelegramPacing | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``pacing`` is the bot's, shared with the notifier (default: the bot's own)."""
        self._config = config
        self._console = console
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 -- backoff jitter, not cryptography
        self.confirmations = Confirmations(monotonic=clock.monotonic, ttl_s=config.confirm_ttl_s)
        self._pacing = pacing or TelegramPacing()
        self.replier = Replier(self._pacing, clock.monotonic, part_gap_s=config.part_gap_s)
        self._handlers = Handlers(
            console,
            Authorisation(config.chats, config.users),
            self.confirmations,
            self.replier,
            clock,
            stale_after_s=config.stale_after_s,
        )
        self.poll_errors = PollErrors()
        self._poll_request: PollingRequest | None = None
        self._polling_since: float | None = None  # None: no poller running
        self._accepted_once = False
        self._problem = "connecting"
        self.sessions = 0
        self.poller_restarts = 0

    @property
    def stats(self) -> HandlerStats:
        """Return the handlers' counters."""
        return self._handlers.stats

    def poll_age_s(self) -> float | None:
        """Return the seconds since the last successful getUpdates (or since polling began);
        None while no poller runs."""
        if self._polling_since is None:
            return None
        last = self._poll_request.last_ok if self._poll_request else None
        since = max(self._polling_since, last if last is not None else self._polling_since)
        return self._clock.monotonic() - since

    def health(self) -> ComponentHealth:
        """OK while polling within the stall limit; DEGRADED otherwise (the daemon trades on)."""
        stats = self.stats
        counts = f"{stats.accepted} commands, {stats.unauthorised} refused"
        age = self.poll_age_s()
        if age is None:
            retrying = "; retrying" if self.sessions > 1 or self._problem != "connecting" else ""
            detail = f"{self._problem}{retrying} ({counts})"
            return ComponentHealth(component=self.name, status=HealthStatus.DEGRADED, detail=detail)
        if age > self._config.stall_after_s:
            error = f", last error {self.poll_errors.last}" if self.poll_errors.last else ""
            detail = f"no successful getUpdates for {age:.0f} s{error} ({counts})"
            return ComponentHealth(component=self.name, status=HealthStatus.DEGRADED, detail=detail)
        detail = f"polling, last getUpdates {age:.1f} s ago ({counts})"
        return ComponentHealth(component=self.name, status=HealthStatus.OK, detail=detail)

    async def run(self, ready: Readiness) -> None:
        """Run sessions until cancelled; after one ends, wait a backoff and start another.

        The first starts once the ledger is restored: a command before that acts on nothing.
        """
        await self._console.control.wait_started()
        attempt = 0
        while True:
            started = self._clock.monotonic()
            try:
                await self._session(ready)
            except _Unreachable as exc:
                self._problem = str(exc)
            ready.set()
            if self._clock.monotonic() - started >= self._config.healthy_after_s:
                attempt = 0
            delay = self._config.retry.delay(attempt, self._rng)
            attempt += 1
            log.warning("telegram_unreachable", error=self._problem, retry_in_s=round(delay, 1))
            await asyncio.sleep(delay)

    async def _session(self, ready: Readiness) -> None:
        """Connect, serve and watch until the Bot API fails us; tear everything down."""
        app = self._application()
        self.sessions += 1
        try:
            await self._start(app)
            self._problem = ""
            log.info("telegram_bot_started", username=app.bot.username, session=self.sessions)
            ready.set()
            await self._watch(app)
        except InvalidToken:
            if not self._accepted_once:
                raise ConfigError(REFUSAL) from None
            raise _Unreachable("the Bot API refused the token (401)") from None
        except (TelegramError, TimeoutError) as exc:
            raise _Unreachable(_describe(exc)) from None
        finally:
            self._polling_since = None
            await self._teardown(app)

    def _application(self) -> App:
        config = self._config
        api = config.api_url.rstrip("/")
        timeout = config.request_timeout_s
        self._poll_request = PollingRequest(
            monotonic=self._clock.monotonic, timeout_s=timeout, on_ok=self._pacing.answering.fire
        )
        app: App = (
            ApplicationBuilder()
            .token(config.token)
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            .request(
                HTTPXRequest(
                    connection_pool_size=8,
                    read_timeout=timeout,
                    write_timeout=timeout,
                    connect_timeout=timeout,
                    pool_timeout=timeout,
                )
            )
            .get_updates_request(self._poll_request)
            .concurrent_updates(config.concurrent_updates)
            .update_queue(asyncio.Queue(maxsize=config.update_queue))
            .job_queue(None)
            .build()
        )
        self._handlers.install(app)
        return app

    async def _start(self, app: App) -> None:
        await self._bounded(app.initialize())
        self._accepted_once = True
        menu = [BotCommand(c.name, c.description) for c in COMMANDS]
        try:
            await self._bounded(app.bot.set_my_commands(menu))
        except BadRequest as exc:  # the menu is a convenience; the commands work without it
            log.warning("telegram_menu_refused", error=str(exc))
        await self._bounded(app.start())
        await self._start_polling(app)

    async def _start_polling(self, app: App) -> None:
        assert app.updater is not None  # built with the default updater
        self.poll_errors.clear()
        await self._bounded(
            app.updater.start_polling(
                timeout=int(self._config.poll_timeout_s),
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=False,
                error_callback=self.poll_errors,
            )
        )
        self._polling_since = self._clock.monotonic()

    async def _watch(self, app: App) -> None:
        """Restart the poller whenever no getUpdates succeeded for ``stall_after_s``."""
        while True:
            await asyncio.sleep(self._config.watch_every_s)
            age = self.poll_age_s()
            if age is None or age <= self._config.stall_after_s:
                if self.poll_errors.last and age is not None and age < self._config.watch_every_s:
                    self.poll_errors.clear()  # polling works again: a new outage is logged anew
                continue
            self.poller_restarts += 1
            log.warning(
                "telegram_poller_stalled",
                since_s=round(age, 1),
                error=self.poll_errors.last,
                restarts=self.poller_restarts,
            )
            await self._stop_polling(app)
            await self._start_polling(app)

    async def _stop_polling(self, app: App) -> None:
        self._polling_since = None
        if app.updater is None or not app.updater.running:
            return
        try:
            await self._bounded(app.updater.stop(), self._config.stop_timeout_s)
        except (TelegramError, TimeoutError, RuntimeError) as exc:  # a dead poller may raise
            log.warning("telegram_updater_stop_failed", error=_describe(exc))

    async def _teardown(self, app: App) -> None:
        """``updater.stop`` → ``stop`` → ``shutdown``, each bounded and in its own try."""
        await self._stop_polling(app)
        if app.running:
            try:
                await self._bounded(app.stop(), self._config.stop_timeout_s)
            except (TelegramError, TimeoutError, RuntimeError) as exc:
                log.warning("telegram_stop_failed", error=_describe(exc))
        try:
            await self._bounded(app.shutdown(), self._config.stop_timeout_s)
            # Closes the HTTP clients when initialize failed (then shutdown did nothing).
            await self._bounded(app.bot.shutdown(), self._config.stop_timeout_s)
        except (TelegramError, TimeoutError, RuntimeError) as exc:
            log.warning("telegram_shutdown_failed", error=_describe(exc))

    async def _bounded(self, step: Awaitable[T], timeout_s: float | None = None) -> T:
        async with asyncio.timeout(timeout_s or self._config.step_timeout_s):
            return await step


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"
