"""The long poll's liveness: when ``getUpdates`` last succeeded, and what failed since.

PTB's ``updater.running`` stays True after its polling task died (a 401 while polling), and a
poller stuck on an exhausted connection pool logs nothing; neither can be seen from outside.
The bot therefore gives PTB its own request object for ``getUpdates`` (PTB sends only that
method through it): a ``HTTPXRequest`` that notes the time of every 2xx answer. The bot's
watchdog restarts the poller when that time is older than its limit.
"""

from collections.abc import Callable
from typing import Any

from telegram.error import Conflict, TelegramError
from telegram.request import HTTPXRequest, RequestData

from paper_trader.runtime.logs import get_logger

log = get_logger("telegram")

GET_UPDATES_POOL = 2  # one long poll plus the one `updater.stop` makes; PTB's default 1 starves


class PollingRequest(HTTPXRequest):
    """PTB's HTTPX request for ``getUpdates``, which records its last successful answer."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float],
        timeout_s: float,
        on_ok: Callable[[], None] | None = None,
    ) -> None:
        """``timeout_s`` bounds connect, write and pool waits, and the read beyond the long poll;
        ``on_ok`` is told of every 2xx answer (Telegram answers: the notifier may retry now)."""
        super().__init__(
            connection_pool_size=GET_UPDATES_POOL,
            read_timeout=timeout_s,
            write_timeout=timeout_s,
            connect_timeout=timeout_s,
            pool_timeout=timeout_s,
        )
        self._monotonic = monotonic
        self._on_ok = on_ok
        self.last_ok: float | None = None
        self.polls = 0

    async def do_request(  # noqa: PLR0917 -- PTB's signature, overridden as it is
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make the request; note the time when the server answered 2xx."""
        code, payload = await super().do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if 200 <= code < 300:
            self.last_ok = self._monotonic()
            self.polls += 1
            if self._on_ok is not None:
                self._on_ok()
        return code, payload


class PollErrors:
    """The poller's ``error_callback``: count errors, keep the last, log each kind once."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""
        self._logged: set[str] = set()

    def __call__(self, error: TelegramError) -> None:
        """Record one polling error (PTB retries by itself with a growing pause)."""
        self.count += 1
        kind = type(error).__name__
        self.last = f"{kind}: {error}"
        if kind in self._logged:
            return
        self._logged.add(kind)
        if isinstance(error, Conflict):
            log.error("telegram_poll_conflict", error=self.last, hint="another bot instance polls")
        else:
            log.warning("telegram_poll_failed", error=self.last, errors=self.count)

    def clear(self) -> None:
        """Forget the errors' kinds (after a good poll) so that a new outage is logged again."""
        self._logged.clear()
        self.last = ""
