"""Sending the bot's answers: split, paced, and never raising into the handler.

Every call takes its turn from the bot's ``TelegramPacing``, shared with the notifier: answers
and notifications together stay under Telegram's limits, and a chat the notifier was told to
wait for (a 429) gets no answer before its ``retry_after`` either. Telegram's failures each
have their own answer (reference §2, §6): a 429 is waited out (up to ``max_retry_after_s``)
and the message sent again once; entities Telegram cannot parse are sent
again once as plain text; a timeout may have delivered, so it is not resent; anything else is
logged and counted, and the rest of the answer dropped.
"""

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, RetryAfter, TelegramError, TimedOut

from paper_trader.interfaces.notify.pacing import TelegramPacing
from paper_trader.interfaces.telegram.commands import Reply
from paper_trader.interfaces.telegram.text import MAX_CAPTION_CHARS, render, render_plain
from paper_trader.runtime.logs import get_logger

log = get_logger("telegram")

CONFIRM, CANCEL = "ok", "no"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# One way of sending a message: (text, parse mode or None) -> what the Bot API returned.
_Attempt = Callable[[str, str | None], Awaitable[Message | bool]]


def retry_after_s(error: RetryAfter) -> float:
    """Return the wait a 429 asked for, in seconds (a timedelta with PTB_TIMEDELTA=1)."""
    value = error.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def confirm_markup(token: str, label: str) -> InlineKeyboardMarkup:
    """Return the confirm / cancel buttons of one pending command."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label, callback_data=f"{CONFIRM}:{token}"),
                InlineKeyboardButton("Cancel", callback_data=f"{CANCEL}:{token}"),
            ]
        ]
    )


class Replier:
    """Send answers to one bot's chats."""

    def __init__(
        self,
        pacing: TelegramPacing,
        monotonic: Callable[[], float],
        *,
        part_gap_s: float = 1.0,
        max_retry_after_s: float = 60.0,
    ) -> None:
        self._pacing = pacing
        self._monotonic = monotonic
        self._part_gap_s = part_gap_s
        self._max_retry_after_s = max_retry_after_s
        self.sent = 0
        self.failed = 0
        self.plain_resends = 0

    async def send(
        self,
        bot: Bot,
        chat_id: int,
        reply: Reply,
        markup: InlineKeyboardMarkup | None = None,
        *,
        reply_to: int | None = None,
    ) -> Message | None:
        """Send ``reply`` (the buttons on its last message); return the last message sent.

        With ``reply_to`` (the command's message id) every part quotes the command, so in a
        chat that also gets notifications an answer is never mistaken for one.
        """
        quote = (
            None
            if reply_to is None
            else ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        )
        if reply.photo is not None:
            photo = reply.photo

            async def send_photo(text: str, mode: str | None) -> Message | bool:
                return await bot.send_photo(
                    chat_id, photo=photo, caption=text, parse_mode=mode, reply_parameters=quote
                )

            caption = render(reply.parts[:1], limit=MAX_CAPTION_CHARS)[0]
            bare = render_plain(reply.parts[:1], limit=MAX_CAPTION_CHARS)[0]
            return await self._deliver(chat_id, send_photo, caption, bare)
        last: Message | None = None
        htmls, plains = render(reply.parts), render_plain(reply.parts)
        for index, (html, plain) in enumerate(zip(htmls, plains, strict=True)):
            if index:
                await asyncio.sleep(self._part_gap_s)
            buttons = markup if index == len(htmls) - 1 else None

            async def send_text(
                text: str, mode: str | None, buttons: InlineKeyboardMarkup | None = buttons
            ) -> Message | bool:
                return await bot.send_message(
                    chat_id,
                    text,
                    parse_mode=mode,
                    reply_markup=buttons,
                    link_preview_options=NO_PREVIEW,
                    reply_parameters=quote,
                )

            last = await self._deliver(chat_id, send_text, html, plain)
            if last is None:
                break
        return last

    async def edit(self, bot: Bot, chat_id: int, message_id: int, reply: Reply) -> None:
        """Replace a confirmation's text (and buttons) with the command's outcome."""
        head = Reply(parts=reply.parts[:1], ok=reply.ok)

        async def edit_text(text: str, mode: str | None) -> Message | bool:
            return await bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=mode
            )

        await self._deliver(chat_id, edit_text, render(head.parts)[0], render_plain(head.parts)[0])
        if len(reply.parts) > 1:
            await self.send(bot, chat_id, Reply(parts=reply.parts[1:], ok=reply.ok))

    async def _deliver(
        self, chat_id: int, attempt: _Attempt, html: str, plain: str
    ) -> Message | None:
        """Make the call with ``html``; after an entity error once more with ``plain``."""
        try:
            result = await self._retrying(chat_id, lambda: attempt(html, ParseMode.HTML))
        except BadRequest as exc:
            if "can't parse entities" not in str(exc).lower():
                self._failed(chat_id, exc)
                return None
            log.warning("telegram_reply_entities_refused", chat_id=chat_id, error=str(exc))
            self.plain_resends += 1
            try:
                result = await self._retrying(chat_id, lambda: attempt(plain, None))
            except TelegramError as again:
                self._failed(chat_id, again)
                return None
        except TelegramError as exc:
            self._failed(chat_id, exc)
            return None
        return result if isinstance(result, Message) else None

    async def _retrying(
        self, chat_id: int, call: Callable[[], Awaitable[Message | bool]]
    ) -> Message | bool:
        """Make the call in the chat's turn; after a 429 hold the chat as asked (for the
        notifier too) and, if the wait is not too long, make it once more."""
        await self._pacing.turn(chat_id, self._monotonic)
        try:
            result = await call()
        except RetryAfter as exc:
            wait = retry_after_s(exc)
            self._pacing.chat(chat_id).hold(self._monotonic() + wait)
            if wait > self._max_retry_after_s:
                raise
            log.info("telegram_reply_rate_limited", retry_after_s=wait)
            await self._pacing.turn(chat_id, self._monotonic)
            result = await call()
        self.sent += 1
        return result

    def _failed(self, chat_id: int, error: TelegramError) -> None:
        self.failed += 1
        timed_out = isinstance(error, TimedOut)  # may have been delivered: never resent
        event = "telegram_reply_timed_out" if timed_out else "telegram_reply_failed"
        log.warning(event, chat_id=chat_id, error=f"{type(error).__name__}: {error}")
