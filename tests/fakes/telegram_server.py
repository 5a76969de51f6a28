"""A fake Telegram Bot API server on ``127.0.0.1:0`` that the real python-telegram-bot talks to.

One route, ``/bot{token}/{method}`` (methods case-insensitive, any HTTP verb; form-urlencoded,
multipart, JSON and query-string parameters), answering with Telegram's envelopes and real HTTP
status codes. ``FakeTelegram.api_url`` is the server root (the daemon's ``TELEGRAM_API_URL``);
PTB is built with ``.base_url(f"{api_url}/bot")``.

Updates behave as on Telegram: kept until a later ``offset`` confirms them (an abandoned long
poll consumes nothing), long polls wait up to ``timeout`` (at most 50 s) and wake on a new update,
and a new long poll ends the one still waiting with 409 (two pollers on one token).
Simulated users queue updates (``send_command``, ``send_text``, ``edit_message``,
``press_button``); what the bot delivered is in ``delivered()`` with its parsed and raw text.
Every request is a ``Call``; faults (``fail``, ``flood``, ``delay``, ``hang``, ``go_down`` …)
answer with the status Telegram would use. A delayed send is delivered before the pause, so a
client that times out has still sent it, as with Telegram; a hung send is never delivered.

HTML follows Telegram's parser (tdlib ``parse_html``) and its error texts, with one deliberate
strictness: a bare ``&`` is refused (Telegram keeps it literally) so unescaped values are caught;
``FakeTelegram(strict_ampersand=False)`` restores Telegram's leniency.

Synchronous tests (the daemon as a subprocess) use ``with fake_telegram_thread() as tg:``: the
same server in a thread of its own, every method called from the test's thread and run on the
fake's loop (``tg.wait_for_messages(...)`` then blocks, bounded by its timeout).

Why this runs past 600 lines: twelve methods with the validation Telegram does (lengths,
entities, keyboards, photos, "not modified", commands), fault injection and the user simulation
share the one server's state (Telegram's HTML parser is in `telegram_html`).
"""

import asyncio
import contextlib
import inspect
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from fakes.telegram_html import ApiError, parse_text

SENDS = frozenset({"sendMessage", "sendPhoto", "editMessageText", "editMessageReplyMarkup"})
ALL = None  # a fault for every method
LONG_POLL_MAX_S = 50.0
HANG_LIMIT_S = 120.0
TEXT_MAX, CAPTION_MAX, CALLBACK_DATA_MAX = 4096, 1024, 64
DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]+)?")
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"RIFF")


class _Closing(Exception):
    """The server is going down: drop the connection instead of answering."""


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A multipart file part as received."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass(eq=False, slots=True)
class Call:
    """One request: canonical ``method``, wire ``params`` (strings), ``files``, arrival ``at``.

    ``at`` is ``time.monotonic()`` (system-wide on Linux, so comparable across processes).
    ``status`` is the HTTP status answered (0 while unanswered, or if dropped or hung).
    """

    method: str
    params: dict[str, str]
    files: dict[str, UploadedFile]
    at: float
    chat_id: int | None = None
    status: int = 0
    description: str = ""
    retry_after: int | None = None


@dataclass(eq=False, slots=True)
class SentMessage:
    """A message the bot delivered: ``text`` as the user sees it, ``raw`` as the bot sent it."""

    chat_id: int
    message_id: int
    text: str
    raw: str
    parse_mode: str | None
    at: float
    method: str = "sendMessage"
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    reply_to: int | None = None  # the message it quotes (reply_parameters.message_id)
    edited_at: float | None = None
    deleted: bool = False
    edits: list[str] = field(default_factory=list)  # earlier raw texts, oldest first

    def buttons(self) -> list[str]:
        """Return the callback data of the inline keyboard's buttons, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


@dataclass(eq=False, slots=True)
class Fault:
    """An injected fault; ``hits`` counts the requests it answered."""

    methods: frozenset[str] | None
    chat_id: int | None
    status: int
    description: str
    retry_after: int | None
    delay_s: float
    times: int | None
    until: float | None
    hits: int = 0

    def is_active(self, now: float) -> bool:
        """Say whether the fault still applies (calls left, time left)."""
        in_time = self.until is None or now < self.until
        return in_time and (self.times is None or self.hits < self.times)

    def matches(self, method: str, chat_id: int | None, now: float) -> bool:
        """Say whether the fault answers this request."""
        wanted = self.methods is None or method.lower() in self.methods
        chat = self.chat_id is None or chat_id == self.chat_id
        return wanted and chat and self.is_active(now)


def _methods(method: str | Iterable[str] | None) -> frozenset[str] | None:
    if method is None:
        return None
    names = [method] if isinstance(method, str) else list(method)
    return frozenset(name.lower() for name in names)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _json(value: str | None, error: str) -> Any:
    if value in (None, ""):
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(400, f"Bad Request: {error}") from None


# -- the server -----------------------------------------------------------------------------


class FakeTelegram:
    """The fake Bot API server; use as ``async with FakeTelegram() as tg:``."""

    def __init__(
        self,
        *,
        token: str = "123456789:AAHfakeTokenForPaperTraderTests0001",
        username: str = "paper_trader_test_bot",
        first_update_id: int = 1000,
        strict_ampersand: bool = True,
    ) -> None:
        self.token, self.username, self.strict_ampersand = token, username, strict_ampersand
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 123456789
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # by scope JSON (+ language)
        self.answered_callbacks: dict[str, dict[str, str]] = {}
        self._updates: list[dict[str, Any]] = []  # unconfirmed, in update_id order
        self._next_update_id = first_update_id
        self._allowed: frozenset[str] | None = None  # sticky, as on Telegram
        self._polls = 0  # long polls started: a newer one ends an older one with 409
        self._sent: list[SentMessage] = []
        self._user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._callbacks: dict[str, tuple[int, int]] = {}
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._down_task: asyncio.Task[None] | None = None
        self.in_flight = 0  # requests being handled now (long polls included)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Return the server root, ``http://127.0.0.1:PORT`` (the daemon's TELEGRAM_API_URL)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """Return what PTB's ``ApplicationBuilder().base_url(...)`` takes: ``{api_url}/bot``."""
        return f"{self.api_url}/bot"

    @property
    def is_up(self) -> bool:
        """Say whether the server is listening."""
        return self._runner is not None

    async def __aenter__(self) -> Self:
        await self._listen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._down_task is not None:
            self._down_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._down_task
        await self.go_down()

    async def go_down(self, *, for_s: float | None = None) -> None:
        """Stop listening and drop every connection (connection refused); ``for_s``: come back."""
        if self._runner is not None:
            self._closing = True
            self._notify()
            runner, self._runner = self._runner, None
            await runner.cleanup()
            self._closing = False
        if for_s is not None:
            self._down_task = asyncio.create_task(self._come_up_after(for_s), name="fake-tg-up")

    async def come_up(self) -> None:
        """Listen again on the same port."""
        if self._runner is None:
            await self._listen()

    async def _come_up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.come_up()

    async def _listen(self) -> None:
        app = web.Application(client_max_size=20 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = runner.addresses[0][1]
        self._runner = runner

    # -- simulated users ----------------------------------------------------------------------

    def send_text(
        self, chat_id: int, user_id: int, text: str, *, chat_type: str = "private", age_s: int = 0
    ) -> int:
        """Queue a user's text message (a leading /command gets its entity), sent ``age_s``
        seconds ago (typed while the bot was away); return its id."""
        message = self._user_message(chat_id, user_id, text, chat_type)
        message["date"] -= age_s
        self._queue("message", message)
        return int(message["message_id"])

    def send_command(
        self, chat_id: int, user_id: int, text: str, *, chat_type: str = "private", age_s: int = 0
    ) -> int:
        """Queue ``/command args`` with its bot_command entity at offset 0; return its id."""
        if _COMMAND.match(text) is None:
            raise ValueError(f"not a command: {text!r}")
        return self.send_text(chat_id, user_id, text, chat_type=chat_type, age_s=age_s)

    def edit_message(self, chat_id: int, message_id: int, text: str) -> None:
        """Queue an ``edited_message`` update: the user edited an earlier message of theirs."""
        message = dict(self._user_messages[(chat_id, message_id)])
        message.update(text=text, edit_date=int(time.time()))
        message.pop("entities", None)
        message.update(self._entities(text))
        self._user_messages[(chat_id, message_id)] = message
        self._queue("edited_message", message)

    def press_button(
        self, chat_id: int, user_id: int, message_id: int, data: str, *, stale: bool = False
    ) -> str:
        """Queue a ``callback_query`` for a button of a bot message; return the query id.

        The button must be on the message's current keyboard unless ``stale`` (a client that
        still shows a keyboard the bot has since removed).
        """
        sent = self.message(chat_id, message_id)
        if not stale and data not in sent.buttons():
            raise LookupError(f"no button {data!r} on message {message_id}: {sent.buttons()}")
        query_id = f"cbq-{len(self._callbacks) + 1}"
        self._callbacks[query_id] = (chat_id, message_id)
        self._queue(
            "callback_query",
            {
                "id": query_id,
                "from": self._user(user_id),
                "message": self._message_json(sent),
                "chat_instance": f"ci-{chat_id}",
                "data": data,
            },
        )
        return query_id

    def _user(self, user_id: int) -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "username": f"user{user_id}",
            "language_code": "en",
        }

    def _user_message(self, chat_id: int, user_id: int, text: str, kind: str) -> dict[str, Any]:
        if kind == "private" and chat_id != user_id:
            raise ValueError("a private chat's id is its user's id")
        if kind not in {"private", "group", "supergroup"}:
            raise ValueError(f"unknown chat type {kind!r}")
        chat: dict[str, Any] = {"id": chat_id, "type": kind}
        chat.update({"first_name": f"User{user_id}"} if kind == "private" else {"title": "Ops"})
        self._chats[chat_id] = chat
        message = {
            "message_id": self._message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(user_id),
            "text": text,
            **self._entities(text),
        }
        self._user_messages[(chat_id, message["message_id"])] = message
        return message

    @staticmethod
    def _entities(text: str) -> dict[str, Any]:
        match = _COMMAND.match(text)
        if match is None:
            return {}
        return {"entities": [{"type": "bot_command", "offset": 0, "length": match.end()}]}

    def _queue(self, kind: str, payload: dict[str, Any]) -> None:
        self._updates.append({"update_id": self._next_update_id, kind: payload})
        self._next_update_id += 1
        self._notify()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Return the updates not confirmed yet (delivered or not)."""
        return list(self._updates)

    # -- what the bot did ---------------------------------------------------------------------

    def delivered(self, chat_id: int | None = None) -> list[SentMessage]:
        """Return the bot's delivered messages (to ``chat_id``, or all), in delivery order."""
        return [m for m in self._sent if chat_id is None or m.chat_id == chat_id]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        """Return the bot's message ``message_id`` in ``chat_id`` (``LookupError`` if none)."""
        for sent in self._sent:
            if sent.chat_id == chat_id and sent.message_id == message_id:
                return sent
        raise LookupError(f"the bot sent no message {message_id} to chat {chat_id}")

    async def wait_for_messages(
        self, chat_id: int, n: int = 1, timeout: float = 5.0, *, after: int = 0
    ) -> list[SentMessage]:
        """Wait until ``n`` messages with an id above ``after`` reached ``chat_id``; return all.

        Raises ``AssertionError`` naming what arrived when ``timeout`` seconds pass first.
        """

        def arrived() -> list[SentMessage]:
            return [m for m in self.delivered(chat_id) if m.message_id > after]

        await self._wait(timeout, lambda: len(arrived()) >= n, abort_on_close=False)
        if len(arrived()) < n:
            texts = [m.text[:80] for m in arrived()]
            raise AssertionError(
                f"chat {chat_id}: {len(texts)} of {n} messages in {timeout} s: "
                f"{texts}; calls: {[c.method for c in self.calls][-20:]}"
            )
        return arrived()

    def calls_to(self, method: str) -> list[Call]:
        """Return the calls of ``method`` (case-insensitive), in arrival order."""
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def refusals(self, status: int | None = None) -> list[Call]:
        """Return the calls answered with an error (of ``status``, or any)."""
        return [c for c in self.calls if c.status >= 400 and status in (None, c.status)]

    def early_sends(self, *, per_chat: bool = True) -> list[Call]:
        """Return accepted sends that arrived before an earlier 429's ``retry_after`` passed."""
        floods = [c for c in self.calls if c.status == 429 and c.method in SENDS]
        early = []
        for call in self.calls:
            if call.status != 200 or call.method not in SENDS:
                continue
            if any(
                f.at < call.at < f.at + (f.retry_after or 0)
                and (not per_chat or f.chat_id == call.chat_id)
                for f in floods
            ):
                early.append(call)
        return early

    def busiest(self, chat_id: int | None = None, window_s: float = 1.0) -> int:
        """Return the most sends accepted (to ``chat_id``, or all) within any ``window_s``."""
        times = [
            c.at
            for c in self.calls
            if c.status == 200 and c.method in SENDS and chat_id in (None, c.chat_id)
        ]
        return max((sum(t <= u < t + window_s for u in times) for t in times), default=0)

    # -- fault injection ----------------------------------------------------------------------

    def fail(
        self,
        status: int,
        description: str | None = None,
        *,
        method: str | Iterable[str] | None = SENDS,
        chat_id: int | None = None,
        times: int | None = None,
        seconds: float | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer matching requests with ``status``: the next ``times`` or for ``seconds``.

        ``method``: a name, names, ``SENDS`` (default) or ``ALL``. Without ``times`` and
        ``seconds`` the fault answers one request. A 429 without ``retry_after`` during
        ``seconds`` tells what is left of the window, rounded up.
        """
        fault = Fault(
            methods=_methods(method),
            chat_id=chat_id,
            status=status,
            description=description or "",
            retry_after=retry_after,
            delay_s=0.0,
            times=1 if times is None and seconds is None else times,
            until=None if seconds is None else time.monotonic() + seconds,
        )
        self.faults.append(fault)
        return fault

    def flood(self, retry_after: int | None = None, **where: Any) -> Fault:
        """Refuse with 429 and ``parameters.retry_after`` (see ``fail`` for ``where``)."""
        if retry_after is None and where.get("seconds") is None:
            retry_after = 1
        return self.fail(429, retry_after=retry_after, **where)

    def block(self, **where: Any) -> Fault:
        """Refuse with 403 "Forbidden: bot was blocked by the user"."""
        return self.fail(403, **where)

    def chat_not_found(self, **where: Any) -> Fault:
        """Refuse with 400 "Bad Request: chat not found"."""
        return self.fail(400, "Bad Request: chat not found", **where)

    def conflict(self, **where: Any) -> Fault:
        """Refuse getUpdates with 409 (another poller took over)."""
        return self.fail(409, method="getUpdates", **where)

    def server_error(self, status: int = 500, **where: Any) -> Fault:
        """Answer 500 or 502 (PTB: NetworkError)."""
        return self.fail(status, **where)

    def delay(self, delay_s: float, **where: Any) -> Fault:
        """Serve matching requests normally (a send is delivered), then wait ``delay_s``."""
        fault = self.fail(200, **where)
        fault.delay_s = delay_s
        return fault

    def hang(self, **where: Any) -> Fault:
        """Never answer matching requests (nothing delivered) until the client gives up."""
        fault = self.fail(0, **where)
        fault.delay_s = HANG_LIMIT_S
        return fault

    def clear_faults(self) -> None:
        """Remove every fault."""
        self.faults.clear()

    # -- the wire -----------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiter (long polls, pauses, ``wait_for_messages``)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(
        self, timeout: float, done: Callable[[], bool], *, abort_on_close: bool = True
    ) -> None:
        """Wait until ``done()`` or ``timeout`` s; raise ``_Closing`` if the server goes down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            if abort_on_close and self._closing:
                raise _Closing
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(ApiError(404, "Not Found"))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        name = request.match_info["method"]
        method = _CANONICAL.get(name.lower(), name)
        params, files = await _read(request)
        chat = params.get("chat_id", "")
        call = Call(
            method,
            params,
            files,
            time.monotonic(),
            chat_id=int(chat) if chat.lstrip("-").isdigit() else None,
        )
        self.calls.append(call)
        fault = self._fault(call)
        self.in_flight += 1
        try:
            response = await self._answer(call, fault)
            if fault is not None and fault.status == 200:
                await self._wait(fault.delay_s, lambda: False)
        except _Closing:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        finally:
            self.in_flight -= 1
        return response

    async def _answer(self, call: Call, fault: Fault | None) -> web.Response:
        try:
            if fault is not None and fault.status == 0:
                await self._wait(fault.delay_s, lambda: False)
                raise ApiError(500, "Internal Server Error")
            if fault is not None and fault.status != 200:
                raise self._refusal(fault)
            handler = getattr(self, f"_m_{call.method}", None)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(call)
        except ApiError as exc:
            call.status, call.description, call.retry_after = (
                exc.status,
                exc.description,
                exc.retry_after,
            )
            return _error(exc)
        call.status = 200
        return web.json_response({"ok": True, "result": result})

    def _fault(self, call: Call) -> Fault | None:
        now = time.monotonic()
        self.faults = [f for f in self.faults if f.is_active(now)]
        for fault in self.faults:
            if fault.matches(call.method, call.chat_id, now):
                fault.hits += 1
                return fault
        return None

    @staticmethod
    def _refusal(fault: Fault) -> ApiError:
        retry_after = fault.retry_after
        if fault.status == 429 and retry_after is None:
            assert fault.until is not None
            retry_after = max(1, math.ceil(fault.until - time.monotonic()))
        default = DESCRIPTIONS.get(fault.status, f"Error {fault.status}")
        if fault.status == 429:
            default = f"Too Many Requests: retry after {retry_after}"
        return ApiError(fault.status, fault.description or default, retry_after)

    # -- methods (``_m_<name>``: a JSON result, or ``ApiError``) -------------------------------

    async def _m_getMe(self, call: Call) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_deleteWebhook(self, call: Call) -> bool:
        if call.params.get("drop_pending_updates", "").lower() in {"true", "1"}:
            self._updates.clear()
        return True

    async def _m_getUpdates(self, call: Call) -> list[dict[str, Any]]:
        params = call.params
        offset = _int(params.get("offset"))
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        try:
            timeout = min(max(float(params.get("timeout") or 0), 0.0), LONG_POLL_MAX_S)
        except ValueError:
            raise ApiError(400, "Bad Request: invalid timeout specified") from None
        allowed = _json(params.get("allowed_updates"), "can't parse allowed updates")
        if allowed is not None:
            self._allowed = frozenset(allowed) or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if timeout > 0 and not self._ready():  # a long poll: the one waiting before it is over
            self._polls += 1
            mine = self._polls
            self._notify()
            await self._wait(timeout, lambda: bool(self._ready()) or self._polls != mine)
            if self._polls != mine:
                raise ApiError(409, DESCRIPTIONS[409])
        return self._ready()[:limit]

    def _ready(self) -> list[dict[str, Any]]:
        if self._allowed is not None:  # Telegram does not keep what the bot does not want
            allowed = self._allowed
            self._updates = [u for u in self._updates if set(u) - {"update_id"} <= allowed]
        return self._updates

    async def _m_sendMessage(self, call: Call) -> dict[str, Any]:
        chat_id = self._target(call)
        raw, mode = call.params.get("text", ""), call.params.get("parse_mode")
        text = self._text(raw, mode, TEXT_MAX, "message is too long")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        sent = SentMessage(
            chat_id,
            self._message_id(chat_id),
            text,
            raw,
            mode,
            call.at,
            reply_markup=self._markup(call),
            reply_to=self._reply_to(call),
        )
        self._deliver(sent)
        return self._message_json(sent)

    async def _m_sendPhoto(self, call: Call) -> dict[str, Any]:
        chat_id = self._target(call)
        raw, mode = call.params.get("caption", ""), call.params.get("parse_mode")
        caption = self._text(raw, mode, CAPTION_MAX, "message caption is too long")
        photo = self._photo(call)
        sent = SentMessage(
            chat_id,
            self._message_id(chat_id),
            caption,
            raw,
            mode,
            call.at,
            method="sendPhoto",
            reply_markup=self._markup(call),
            photo=photo,
            reply_to=self._reply_to(call),
        )
        self._deliver(sent)
        return self._message_json(sent)

    async def _m_editMessageText(self, call: Call) -> dict[str, Any]:
        sent = self._bot_message(call, "message to edit not found")
        raw, mode = call.params.get("text", ""), call.params.get("parse_mode")
        text = self._text(raw, mode, TEXT_MAX, "message is too long")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if sent.method != "sendMessage":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = self._markup(call)  # no reply_markup: the keyboard goes, as on Telegram
        if (text, raw, markup) == (sent.text, sent.raw, sent.reply_markup):
            raise _not_modified()
        sent.edits.append(sent.raw)
        sent.text, sent.raw, sent.parse_mode, sent.reply_markup = text, raw, mode, markup
        sent.edited_at = call.at
        self._notify()
        return self._message_json(sent)

    async def _m_editMessageReplyMarkup(self, call: Call) -> dict[str, Any]:
        sent = self._bot_message(call, "message to edit not found")
        markup = self._markup(call)
        if markup == sent.reply_markup:
            raise _not_modified()
        sent.reply_markup, sent.edited_at = markup, call.at
        self._notify()
        return self._message_json(sent)

    async def _m_deleteMessage(self, call: Call) -> bool:
        self._bot_message(call, "message to delete not found").deleted = True
        self._notify()
        return True

    async def _m_answerCallbackQuery(self, call: Call) -> bool:
        query_id = call.params.get("callback_query_id", "")
        if query_id not in self._callbacks or query_id in self.answered_callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        if len(call.params.get("text", "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered_callbacks[query_id] = call.params
        return True

    async def _m_setMyCommands(self, call: Call) -> bool:
        commands = _json(call.params.get("commands"), "can't parse commands JSON object")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100")
        for command in commands:
            if not _BOT_COMMAND.fullmatch(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[_scope_key(call.params)] = commands
        return True

    async def _m_sendChatAction(self, call: Call) -> bool:
        self._target(call)
        return True

    async def _m_getMyCommands(self, call: Call) -> list[dict[str, Any]]:
        return self.commands.get(_scope_key(call.params), [])

    def my_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[Any]:
        """Return the command menu set for ``scope`` (default scope) and ``language_code``."""
        params = {"language_code": language_code}
        if scope is not None:
            params["scope"] = json.dumps(scope)
        return self.commands.get(_scope_key(params), [])

    # -- helpers of the methods ---------------------------------------------------------------

    def _text(self, raw: str, mode: str | None, limit: int, too_long: str) -> str:
        text = parse_text(raw, mode, strict_ampersand=self.strict_ampersand)
        if len(text) > limit:
            raise ApiError(400, f"Bad Request: {too_long}")
        return text

    @staticmethod
    def _target(call: Call) -> int:
        if not call.params.get("chat_id"):
            raise ApiError(400, "Bad Request: chat_id is empty")
        if call.chat_id is None:
            raise ApiError(400, "Bad Request: chat not found")
        return call.chat_id

    def _bot_message(self, call: Call, missing: str) -> SentMessage:
        chat_id, message_id = self._target(call), _int(call.params.get("message_id"))
        if not message_id:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        try:
            sent = self.message(chat_id, message_id)
        except LookupError:
            raise ApiError(400, f"Bad Request: {missing}") from None
        if sent.deleted:
            raise ApiError(400, f"Bad Request: {missing}")
        return sent

    @staticmethod
    def _reply_to(call: Call) -> int | None:
        quoted = _json(call.params.get("reply_parameters"), "can't parse reply parameters JSON")
        if isinstance(quoted, dict) and "message_id" in quoted:
            return int(quoted["message_id"])
        return _int(call.params.get("reply_to_message_id"), 0) or None

    @staticmethod
    def _markup(call: Call) -> dict[str, Any] | None:
        error = "can't parse reply keyboard markup JSON object"
        markup = _json(call.params.get("reply_markup"), error)
        if markup is not None and not isinstance(markup, dict):
            raise ApiError(400, f"Bad Request: {error}")
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_MAX:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    @staticmethod
    def _photo(call: Call) -> bytes | None:
        value = call.params.get("photo", "")
        part = call.files.get(value.removeprefix("attach://") if value else "photo")
        if part is None:
            if value:
                return None  # a file_id or URL, taken as given
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if not part.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        if not part.data.startswith(_IMAGE_MAGIC):
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        return part.data

    def _message_id(self, chat_id: int) -> int:
        self._next_message_id[chat_id] = self._next_message_id.get(chat_id, 0) + 1
        return self._next_message_id[chat_id]

    def _deliver(self, sent: SentMessage) -> None:
        self._sent.append(sent)
        self._notify()

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "PaperTrader",
            "username": self.username,
        }

    def _chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Ops"}

    def _message_json(self, sent: SentMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": self._chat(sent.chat_id),
            "from": self._bot_user(),
        }
        if sent.method == "sendPhoto":
            width, height = _png_size(sent.photo or b"")
            body["photo"] = [
                {
                    "file_id": f"photo-{sent.chat_id}-{sent.message_id}",
                    "file_unique_id": f"u{sent.chat_id}x{sent.message_id}",
                    "width": width,
                    "height": height,
                    "file_size": len(sent.photo or b""),
                }
            ]
            if sent.text:
                body["caption"] = sent.text
        else:
            body["text"] = sent.text
        if sent.reply_markup and "inline_keyboard" in sent.reply_markup:
            body["reply_markup"] = sent.reply_markup
        if sent.edited_at is not None:
            body["edit_date"] = int(time.time())
        return body


_CANONICAL = {name[3:].lower(): name[3:] for name in vars(FakeTelegram) if name.startswith("_m_")}


def _png_size(data: bytes) -> tuple[int, int]:
    if data.startswith(_IMAGE_MAGIC[0]) and len(data) >= 24:
        return int.from_bytes(data[16:20]), int.from_bytes(data[20:24])
    return 1, 1


def _not_modified() -> ApiError:
    return ApiError(
        400,
        "Bad Request: message is not modified: specified new message content "
        "and reply markup are exactly the same as a current content and reply "
        "markup of the message",
    )


def _scope_key(params: dict[str, str]) -> str:
    scope = _json(params.get("scope"), "can't parse BotCommandScope") or {"type": "default"}
    return f"{json.dumps(scope, sort_keys=True)}|{params.get('language_code', '')}"


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.status, "description": exc.description}
    if exc.retry_after is not None:
        body["parameters"] = {"retry_after": exc.retry_after}
    return web.json_response(body, status=exc.status)


async def _read(request: web.Request) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Return the request's parameters (query string and body) and its uploaded files."""
    params, files = dict(request.query), {}
    if request.content_type == "application/json" and request.can_read_body:
        with contextlib.suppress(ValueError):
            body = await request.json()
            if isinstance(body, dict):
                params.update(
                    {
                        k: v if isinstance(v, str) else json.dumps(v)
                        for k, v in body.items()
                        if v is not None
                    }
                )
    elif request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value if isinstance(value, str) else bytes(value).decode()
    return params, files


class ThreadedTelegram:
    """A ``FakeTelegram`` running on its own loop in a thread; its API, called synchronously."""

    def __init__(self, fake: FakeTelegram, loop: asyncio.AbstractEventLoop) -> None:
        self._fake, self._loop = fake, loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._fake, name)
        if not callable(value):
            return value

        def on_the_fakes_loop(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                result = value(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result

            return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

        return on_the_fakes_loop


@contextlib.contextmanager
def fake_telegram_thread(**options: Any) -> Iterator[ThreadedTelegram]:
    """Run ``FakeTelegram(**options)`` in a thread with its own loop; stop it on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-telegram", daemon=True)
    thread.start()

    async def start() -> FakeTelegram:
        fake = FakeTelegram(**options)
        return await fake.__aenter__()

    try:
        fake = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield ThreadedTelegram(fake, loop)
        finally:
            stopping = fake.__aexit__(None, None, None)
            asyncio.run_coroutine_threadsafe(stopping, loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
