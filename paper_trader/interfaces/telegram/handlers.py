"""The bot's PTB handlers: the gate, the commands, unknown commands, confirmation buttons.

Group -1 is the gate: an update from a chat or sender that may not command is logged (chat,
user, command; throttled per chat), counted, and stopped there, with no answer. Group 0 holds
one ``CommandHandler`` per command with the filter ``Chat & [User] & UpdateType.MESSAGE`` (an
edited old ``/emergency_stop`` never fires), then the unknown-command answer, then the
buttons. Each accepted command's answer is committed to the audit before it is sent.

Updates waiting at Telegram when the bot starts are served (``drop_pending_updates=False``:
a question typed while the daemon restarted is answered), but a command that changes the
trading and was typed more than ``stale_after_s`` ago is not run: the answer says when it was
sent and to send it again, so a ``/close all`` from before an outage never fires by surprise.
"""

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from paper_trader.clock import Clock
from paper_trader.control.console import Console
from paper_trader.interfaces.telegram.auth import Authorisation, Confirmations
from paper_trader.interfaces.telegram.commands import (
    COMMANDS,
    CONFIRMED,
    SOURCE,
    Command,
    Reply,
    UsageError,
)
from paper_trader.interfaces.telegram.replies import CANCEL, CONFIRM, Replier, confirm_markup
from paper_trader.interfaces.telegram.text import Line
from paper_trader.runtime.logs import get_logger

log = get_logger("telegram")

Context = ContextTypes.DEFAULT_TYPE
REFUSED_LOG_EVERY_S = 60.0  # an unauthorised chat's attempts are logged at most this often
MAX_REFUSED_CHATS = 1_000
_BUTTON = re.compile(rf"^({CONFIRM}|{CANCEL}):")


@dataclass(slots=True)
class HandlerStats:
    """What the handlers have seen since the bot started."""

    accepted: int = 0
    unauthorised: int = 0
    unknown: int = 0
    failed: int = 0
    pressed: int = 0
    stale_presses: int = 0
    stale: int = 0  # trading commands not run: typed too long ago


class Handlers:
    """The callbacks PTB runs for the bot's updates."""

    def __init__(
        self,
        console: Console,
        auth: Authorisation,
        confirmations: Confirmations,
        replier: Replier,
        clock: Clock,
        *,
        stale_after_s: float,
    ) -> None:
        self._console = console
        self._stale_after_s = stale_after_s
        self._auth = auth
        self._confirmations = confirmations
        self._replier = replier
        self._clock = clock
        self._refused_logged: dict[int | None, float] = {}
        self.stats = HandlerStats()

    def install(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Add the gate, the commands, the unknown-command answer and the buttons to ``app``."""
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        allowed = filters.Chat(chat_id=self._auth.chats) & filters.UpdateType.MESSAGE
        if self._auth.users:
            allowed = allowed & filters.User(user_id=self._auth.users)
        for command in COMMANDS:
            callback = functools.partial(self._command, command)
            app.add_handler(CommandHandler(command.name, callback, filters=allowed))
        app.add_handler(MessageHandler(filters.COMMAND & allowed, self._unknown))
        app.add_handler(CallbackQueryHandler(self._pressed, pattern=_BUTTON))
        app.add_error_handler(self._error)

    async def _gate(self, update: Update, _context: Context) -> None:
        chat, user = update.effective_chat, update.effective_user
        chat_id, user_id = (chat.id if chat else None), (user.id if user else None)
        if self._auth.allows(chat_id, user_id):
            return
        self.stats.unauthorised += 1
        now = self._clock.monotonic()
        last = self._refused_logged.get(chat_id)
        if last is None or now - last >= REFUSED_LOG_EVERY_S:
            if len(self._refused_logged) >= MAX_REFUSED_CHATS:
                self._refused_logged.clear()
            self._refused_logged[chat_id] = now
            log.warning(
                "telegram_unauthorised",
                chat_id=chat_id,
                user_id=user_id,
                command=_attempted(update),
                refused=self.stats.unauthorised,
            )
        raise ApplicationHandlerStop

    async def _command(self, command: Command, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None:
            return
        chat_id, user_id = message.chat_id, _user_id(update)
        args = tuple(context.args or ())
        age_s = self._clock.now_ms() / 1000 - message.date.timestamp()
        if command.acts and age_s > self._stale_after_s:
            self.stats.stale += 1
            reply = _stale(command, message.date, age_s)
        else:
            reply = await self._run(command, args)
        markup = None
        if reply.ask is not None:
            ask = reply.ask
            token = self._confirmations.issue(ask.action, ask.argument, chat_id, user_id)
            markup = confirm_markup(token, ask.label)
        await self._audit(chat_id, user_id, command.name, args, reply)
        self.stats.accepted += 1
        await self._replier.send(context.bot, chat_id, reply, markup, reply_to=message.message_id)

    async def _run(self, command: Command, args: tuple[str, ...]) -> Reply:
        try:
            return await command.run(self._console, args)
        except UsageError as exc:
            return Reply(parts=(Line(f"Usage: {command.usage} ({exc})"),), ok=False)
        except Exception as exc:
            self.stats.failed += 1
            log.exception("telegram_command_failed", command=command.name)
            return Reply(parts=(Line(f"/{command.name} failed: {type(exc).__name__}"),), ok=False)

    async def _unknown(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is None or not message.text:
            return
        name, _, addressee = message.text.split()[0][1:].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in the same group
        self.stats.unknown += 1
        reply = Reply(
            parts=(Line(f"Unknown command /{name[:32]}: /help lists the commands."),), ok=False
        )
        chat_id, user_id = message.chat_id, _user_id(update)
        await self._audit(chat_id, user_id, name[:32] or "?", (), reply)
        await self._replier.send(context.bot, chat_id, reply, reply_to=message.message_id)

    async def _pressed(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None or query.message is None:
            return
        verb, _, token = (query.data or "").partition(":")
        chat_id, message_id = query.message.chat.id, query.message.message_id
        pending = self._confirmations.redeem(token, chat_id)
        if pending is None:
            self.stats.stale_presses += 1
            await _answer(query, "This button has expired or was already used.")
            return
        self.stats.pressed += 1
        await _answer(query, "")
        if verb == CONFIRM:
            reply = await self._confirmed(pending.action, pending.argument)
            args = (pending.argument, "confirmed")
        else:
            reply = Reply(parts=(Line("Cancelled: nothing was done.", bold=True),), ok=False)
            args = (pending.argument, "cancelled")
        await self._audit(chat_id, query.from_user.id, pending.action, args, reply)
        await self._replier.edit(context.bot, chat_id, message_id, reply)

    async def _confirmed(self, action: str, argument: str) -> Reply:
        try:
            return await CONFIRMED[action](self._console, argument)
        except Exception as exc:
            self.stats.failed += 1
            log.exception("telegram_command_failed", command=action)
            return Reply(parts=(Line(f"/{action} failed: {type(exc).__name__}"),), ok=False)

    async def _audit(
        self,
        chat_id: int,
        user_id: int | None,
        command: str,
        args: tuple[str, ...],
        reply: Reply,
    ) -> None:
        result = f"asked to confirm: {reply.summary}" if reply.ask else reply.summary
        try:
            await self._console.audit.record(
                SOURCE, chat_id, user_id, command, args, result, ok=reply.ok
            )
        except Exception:
            log.exception("telegram_audit_failed", command=command)

    async def _error(self, update: object, context: Context) -> None:
        self.stats.failed += 1
        error = context.error
        log.error(
            "telegram_handler_error",
            error=f"{type(error).__name__}: {error}" if error else "unknown",
            has_update=update is not None,
        )


def _user_id(update: Update) -> int | None:
    user = update.effective_user
    return user.id if user else None


def _attempted(update: Update) -> str:
    """Return what an update tried, cut short: a message's first word, a button's verb."""
    if update.callback_query is not None:
        return "button:" + (update.callback_query.data or "").partition(":")[0][:8]
    message = update.effective_message
    text = (message.text or message.caption or "") if message else ""
    words = text.split()
    return words[0][:64] if words else f"({_kind(update)})"


def _kind(update: Update) -> str:
    if update.edited_message is not None:
        return "edited message"
    return "message" if update.effective_message is not None else "update"


async def _answer(query: Any, text: str) -> None:
    try:
        await query.answer(text or None)
    except TelegramError as exc:
        log.warning("telegram_answer_failed", error=f"{type(exc).__name__}: {exc}")


def _stale(command: Command, sent: datetime, age_s: float) -> Reply:
    """Return the answer to a trading command typed too long ago: not run, and why."""
    at = sent.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    minutes = max(1, round(age_s / 60))
    text = (
        f"Not run: /{command.name} was sent at {at}, {minutes} min ago, while the bot was "
        "not answering. Send it again to run it now."
    )
    return Reply(parts=(Line(text),), ok=False)
