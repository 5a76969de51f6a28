"""Telegram as a notification channel: one transport per chat, over one PTB ``Bot``.

The bot here only sends (``sendMessage``, HTML parse mode); it needs no ``getMe`` to start,
so Telegram being down at start delays messages, never the daemon. PTB's errors are
translated into the worker's ``Failure`` reasons at this boundary (PTB's hierarchy puts
``BadRequest`` and ``TimedOut`` under ``NetworkError``: the order of the checks matters).
"""

import asyncio

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from paper_trader.interfaces.notify.channel import Failure, NotSent, Outcome, Sent
from paper_trader.interfaces.notify.pacing import Pacer, Signal
from paper_trader.interfaces.notify.policy import Outgoing
from paper_trader.interfaces.notify.render import (
    CAPTION_LIMIT,
    TELEGRAM_LIMIT,
    split,
    split_captioned,
)
from paper_trader.interfaces.telegram.replies import NO_PREVIEW, retry_after_s
from paper_trader.interfaces.telegram.text import Message


class TelegramApi:
    """The Bot API through PTB: a send-only ``Bot`` and the HTTP pool it owns.

    ``api_url`` is the server's root (``https://api.telegram.org``); requests go to
    ``{api_url}/bot{token}/{method}``. ``timeout_s`` bounds each request.
    """

    def __init__(self, token: str, api_url: str, *, timeout_s: float = 10.0) -> None:
        self._request = HTTPXRequest(
            connection_pool_size=8,
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            write_timeout=timeout_s,
            pool_timeout=timeout_s,
        )
        self._updates_request = HTTPXRequest(connection_pool_size=1)
        self.bot = Bot(
            token,
            base_url=f"{api_url.rstrip('/')}/bot",
            request=self._request,
            get_updates_request=self._updates_request,
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._request.shutdown()
        await self._updates_request.shutdown()


class TelegramChat:
    """A ``Transport`` to one chat: HTML parts of at most 4096 parsed characters."""

    def __init__(
        self, api: TelegramApi, chat_id: int, pacer: Pacer, answering: Signal | None = None
    ) -> None:
        """``pacer`` is the chat's (``TelegramPacing.chat``), shared with the bot's answers;
        ``answering`` the bot's sign that Telegram answers again (its long poll)."""
        self._bot = api.bot
        self._chat_id = chat_id
        self._pacer = pacer
        self._answering = answering

    @property
    def name(self) -> str:
        """Return ``telegram:<chat id>``."""
        return f"telegram:{self._chat_id}"

    @property
    def pacer(self) -> Pacer:
        """Return the chat's limits (and the bot's overall one)."""
        return self._pacer

    async def answering(self, timeout_s: float) -> bool:
        """Wait for the bot's next successful long poll, up to ``timeout_s``."""
        if self._answering is None:
            await asyncio.sleep(timeout_s)
            return False
        return await self._answering.wait(timeout_s)

    def parts(self, outgoing: Outgoing) -> tuple[Message, ...]:
        """Split the message at line boundaries under Telegram's 4096 characters; with a
        photo, the first lines are its caption (1024)."""
        if outgoing.photo is not None:
            return split_captioned(outgoing.lines, outgoing.photo, CAPTION_LIMIT, TELEGRAM_LIMIT)
        return split(outgoing.lines, TELEGRAM_LIMIT)

    async def send(self, part: Message, outgoing: Outgoing, *, plain: bool) -> Outcome:
        """Send one part with ``sendMessage`` (``sendPhoto`` with a photo); translate PTB's
        errors."""
        text = part.plain if plain else part.html
        mode = None if plain else ParseMode.HTML
        try:
            if part.photo is not None:
                message = await self._bot.send_photo(
                    self._chat_id, part.photo, caption=text, parse_mode=mode
                )
            else:
                message = await self._bot.send_message(
                    self._chat_id, text, parse_mode=mode, link_preview_options=NO_PREVIEW
                )
        except TelegramError as exc:
            return failure_of(exc)
        return Sent(str(message.message_id))


def failure_of(exc: TelegramError) -> NotSent:
    """Return what a PTB error means for the message (see ``Failure``)."""
    detail = str(exc)
    if isinstance(exc, RetryAfter):
        return NotSent(Failure.RATE_LIMITED, detail, retry_after_s=retry_after_s(exc))
    if isinstance(exc, ChatMigrated):
        return NotSent(Failure.REFUSED, f"the group became supergroup {exc.new_chat_id}")
    return NotSent(_failure(exc, detail.lower()), detail)


def _failure(exc: TelegramError, lower: str) -> Failure:
    if isinstance(exc, BadRequest):
        if "can't parse entities" in lower:
            return Failure.UNPARSEABLE
        return Failure.REFUSED if "chat not found" in lower else Failure.REJECTED
    if isinstance(exc, TimedOut):
        # A pool timeout means the request never left; any other timeout may have arrived.
        return Failure.UNREACHABLE if "not* sent" in lower else Failure.UNCERTAIN
    if isinstance(exc, Forbidden | InvalidToken):
        return Failure.REFUSED
    return Failure.UNREACHABLE  # NetworkError, 5xx, Conflict, …
