"""The fake Telegram Bot API server, driven by the real python-telegram-bot over loopback.

Each test builds a PTB ``Application`` the way the daemon does (``base_url`` at the fake) and
checks one behaviour of Telegram's wire protocol the bot and notifier rely on.
"""

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from conftest import eventually
from fakes.telegram_html import parse_text
from fakes.telegram_server import ALL, FakeTelegram, fake_telegram_thread
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

CHAT = 111  # a private chat: its id is the user's
GROUP = -1001234567890
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000002000000030806000000") + b"\0" * 16
Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


pytestmark = pytest.mark.usefixtures("ptb_timedelta")


def build(tg: FakeTelegram, token: str | None = None) -> Application:
    """Build the Application as the daemon does, pointed at the fake."""
    return (
        ApplicationBuilder()
        .token(token or tg.token)
        .base_url(f"{tg.api_url}/bot")
        .get_updates_read_timeout(2.0)
        .build()
    )


@pytest.fixture
async def bot_app(tg: FakeTelegram) -> AsyncIterator[Application]:
    """Yield an initialized Application (not polling); shut down after the test."""
    app = build(tg)
    async with app:
        yield app


async def polling(app: Application, **kwargs: Any) -> None:
    """Run the embedded lifecycle up to polling (the daemon's sequence, never run_polling)."""
    await app.initialize()
    await app.start()
    assert app.updater is not None
    kwargs.setdefault("timeout", timedelta(seconds=1))
    await app.updater.start_polling(**kwargs)


async def stop(app: Application) -> None:
    """Stop in the daemon's order: updater, application, shutdown."""
    assert app.updater is not None
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


def echo(log: list[Update]) -> Callback:
    """Return a handler that records the update and answers ``ok``."""

    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.append(update)
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "<b>ok</b>", parse_mode="HTML")

    return handle


# -- start-up -------------------------------------------------------------------------------


async def test_initialize_calls_get_me_with_username(tg: FakeTelegram) -> None:
    """initialize() makes one getMe; the bot learns its username."""
    async with build(tg) as app:
        assert app.bot.username == tg.username
        assert app.bot.id == tg.bot_id
    assert [c.method for c in tg.calls] == ["getMe"]


async def test_wrong_token_is_invalid_token(tg: FakeTelegram) -> None:
    """A token the server does not know is a 401, which PTB raises as InvalidToken."""
    app = build(tg, token="999:WRONG")
    with pytest.raises(InvalidToken, match="was rejected by the server"):
        await app.initialize()
    await app.bot.shutdown()  # app.shutdown() skips a half-initialized app: its sockets leak


async def test_wire_protocol_edges(tg: FakeTelegram) -> None:
    """Errors carry HTTP codes; JSON, query-string and case-insensitive methods are served."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.api_url}/bot1:BAD/getMe") as wrong:
            assert wrong.status == 401
            assert await wrong.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.post(f"{tg.base_url}{tg.token}/fooBar") as unknown:
            assert unknown.status == 404
            assert (await unknown.json())["description"] == "Not Found: method not found"
        url = f"{tg.base_url}{tg.token}/SENDMESSAGE?chat_id={CHAT}"
        async with http.post(url, json={"text": "hi", "disable_notification": True}) as sent:
            body = await sent.json()
            assert sent.status == 200
            assert body["ok"] is True
            assert body["result"]["chat"]["id"] == CHAT
    call = tg.calls_to("sendMessage")[0]
    assert call.params == {"chat_id": "111", "text": "hi", "disable_notification": "true"}


# -- the embedded lifecycle and updates -----------------------------------------------------


async def test_embedded_lifecycle_answers_a_command(tg: FakeTelegram) -> None:
    """initialize → start → start_polling answers /status; stop confirms the update."""
    app = build(tg)
    seen: list[Update] = []
    app.add_handler(CommandHandler("status", echo(seen), filters=filters.UpdateType.MESSAGE))
    await polling(app, drop_pending_updates=True, timeout=timedelta(seconds=20))
    message_id = tg.send_command(CHAT, CHAT, "/status BTC")
    [reply] = await tg.wait_for_messages(CHAT, 1, after=message_id)
    await stop(app)
    await eventually(lambda: tg.in_flight == 0, timeout=1)  # the abandoned 20 s poll ended
    assert reply.text == "ok"
    assert reply.raw == "<b>ok</b>"
    assert seen[0].message is not None
    assert seen[0].message.text == "/status BTC"
    assert [c.method for c in tg.calls[:3]] == ["getMe", "deleteWebhook", "getUpdates"]
    assert tg.calls_to("deleteWebhook")[0].params == {"drop_pending_updates": "true"}
    final = tg.calls_to("getUpdates")[-1]
    assert final.params["timeout"] == "0"
    assert int(final.params["offset"]) == seen[0].update_id + 1
    assert tg.pending_updates == []


async def test_unconfirmed_update_is_redelivered_to_a_new_application(tg: FakeTelegram) -> None:
    """An update fetched but never confirmed by a later offset reaches the next poller."""
    tg.send_command(CHAT, CHAT, "/status")
    async with build(tg) as first:
        [update] = await first.bot.get_updates(timeout=0)
    second = build(tg)
    seen: list[Update] = []
    second.add_handler(CommandHandler("status", echo(seen)))
    await polling(second)
    await tg.wait_for_messages(CHAT, 1)
    await stop(second)
    assert [u.update_id for u in seen] == [update.update_id]
    async with build(tg) as third:
        assert await third.bot.get_updates(timeout=0) == ()


async def test_long_poll_waits_for_timeout_and_wakes_on_an_update(
    tg: FakeTelegram, bot_app: Application
) -> None:
    """An empty long poll lasts ``timeout``; one with an update arriving returns at once."""
    started = time.monotonic()
    assert await bot_app.bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 0.95
    asyncio.get_running_loop().call_later(0.1, tg.send_text, CHAT, CHAT, "hello")
    started = time.monotonic()
    [update] = await bot_app.bot.get_updates(timeout=10)
    assert time.monotonic() - started < 5
    assert update.message is not None
    assert update.message.text == "hello"
    assert update.message.entities == ()


async def test_drop_pending_updates_and_allowed_updates(
    tg: FakeTelegram, bot_app: Application
) -> None:
    """deleteWebhook(drop_pending_updates) forgets updates; allowed_updates filters types."""
    tg.send_command(CHAT, CHAT, "/status")
    await bot_app.bot.delete_webhook(drop_pending_updates=True)
    assert await bot_app.bot.get_updates(timeout=0) == ()
    sent = await bot_app.bot.send_message(CHAT, "pick", reply_markup=keyboard("yes"))
    tg.press_button(CHAT, CHAT, sent.message_id, "yes")
    tg.send_text(CHAT, CHAT, "hi")
    updates = await bot_app.bot.get_updates(timeout=0, allowed_updates=["message"])
    assert [u.message.text for u in updates if u.message] == ["hi"]
    assert len(updates) == 1


# -- sending --------------------------------------------------------------------------------


def keyboard(*data: str) -> InlineKeyboardMarkup:
    """Return an inline keyboard with one button per callback datum."""
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in data]])


async def test_send_photo_is_multipart(tg: FakeTelegram, bot_app: Application) -> None:
    """sendPhoto uploads the bytes as a multipart part; the caption is parsed and limited."""
    message = await bot_app.bot.send_photo(
        CHAT, photo=PNG, caption="<b>Daily</b> PnL", parse_mode=ParseMode.HTML, filename="d.png"
    )
    assert message.photo[0].width == 2
    assert message.photo[0].height == 3
    assert message.caption == "Daily PnL"
    [sent] = tg.delivered(CHAT)
    assert sent.photo == PNG
    assert sent.text == "Daily PnL"
    upload = tg.calls_to("sendPhoto")[0].files["photo"]
    assert (upload.filename, upload.content_type) == ("d.png", "image/png")
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot_app.bot.send_photo(CHAT, photo=PNG, caption="x" * 1025)
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot_app.bot.send_photo(CHAT, photo=b"not an image", filename="x.png")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<b>bold", 'can\'t find end tag corresponding to start tag "b"'),
        ("P<5% now", 'unsupported start tag "5%" at byte offset 1'),
        ("P<5%", "unclosed start tag at byte offset 1"),
        ("a < b", 'unsupported start tag "" at byte offset 2'),
        ("<unknown>x</unknown>", 'unsupported start tag "unknown" at byte offset 0'),
        ("<b>x</i>", 'unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("P&L", "character '&' must be escaped as \"&amp;\" at byte offset 1"),
        ("<b", "unclosed start tag at byte offset 0"),
    ],
)
async def test_bad_html_is_bad_request(
    tg: FakeTelegram, bot_app: Application, text: str, error: str
) -> None:
    """HTML Telegram cannot parse is a 400 "can't parse entities", never delivered."""
    with pytest.raises(BadRequest) as refused:
        await bot_app.bot.send_message(CHAT, text, parse_mode=ParseMode.HTML)
    assert str(refused.value).lower() == f"can't parse entities: {error}"
    assert tg.delivered() == []


def test_telegram_html_is_parsed_to_its_plain_text() -> None:
    """Every tag Telegram supports is accepted; entities are decoded in the plain text."""
    raw = (
        "<b>B</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k"
        '</strike><del>d</del><span class="tg-spoiler">p</span><tg-spoiler>t</tg-spoiler>'
        '<a href="https://x.org/?a=1&amp;b=2">link</a><code>c</code><pre>p</pre>'
        '<pre><code class="language-python">x = 1</code></pre><blockquote>q</blockquote>'
        "<blockquote expandable>w</blockquote> &lt;5% &gt; 3 &amp; &quot;q&quot; &#38; &#x41;"
    )
    plain = 'Bsieunskdptlinkcpx = 1qw <5% > 3 & "q" & A'
    assert parse_text(raw, "HTML") == plain
    assert parse_text("P&L <b>", None) == "P&L <b>"
    assert parse_text("P&L", "HTML", strict_ampersand=False) == "P&L"


async def test_length_is_counted_on_the_parsed_text(tg: FakeTelegram, bot_app: Application) -> None:
    """4096 characters of text are accepted however long the markup; 4097 are refused."""
    await bot_app.bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    await bot_app.bot.send_message(CHAT, "&lt;" * 4096, parse_mode="HTML")
    assert [len(m.text) for m in tg.delivered(CHAT)] == [4096, 4096]
    assert [len(m.raw) for m in tg.delivered(CHAT)] == [4103, 4 * 4096]
    with pytest.raises(BadRequest, match=r"^Message is too long$"):
        await bot_app.bot.send_message(CHAT, "<i>" + "y" * 4097 + "</i>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"^Message text is empty$"):
        await bot_app.bot.send_message(CHAT, "<b></b>", parse_mode="HTML")
    assert len(tg.delivered(CHAT)) == 2


async def test_edit_delete_and_command_menu(tg: FakeTelegram, bot_app: Application) -> None:
    """editMessageText/ReplyMarkup, deleteMessage and set/getMyCommands act on the fake."""
    bot = bot_app.bot
    first = await bot.send_message(CHAT, "Close BTC?", reply_markup=keyboard("yes", "no"))
    second = await bot.send_message(CHAT, "next")
    assert second.message_id == first.message_id + 1
    assert tg.message(CHAT, first.message_id).buttons() == ["yes", "no"]
    await bot.edit_message_reply_markup(CHAT, first.message_id, reply_markup=keyboard("ok"))
    assert tg.message(CHAT, first.message_id).buttons() == ["ok"]
    edited = await bot.edit_message_text("<i>Closed</i>", CHAT, first.message_id, parse_mode="HTML")
    assert isinstance(edited, type(first))
    assert edited.text == "Closed"
    sent = tg.message(CHAT, first.message_id)
    assert (sent.text, sent.edits, sent.buttons()) == ("Closed", ["Close BTC?"], [])
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("<i>Closed</i>", CHAT, first.message_id, parse_mode="HTML")
    assert await bot.delete_message(CHAT, second.message_id)
    assert tg.message(CHAT, second.message_id).deleted
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(CHAT, second.message_id)
    await bot.set_my_commands([("status", "State and PnL"), ("pause", "Stop entering")])
    assert [c["command"] for c in tg.my_commands()] == ["status", "pause"]
    assert [c.command for c in await bot.get_my_commands()] == ["status", "pause"]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Emergency-Stop", "no")])


# -- faults ---------------------------------------------------------------------------------


async def test_flood_is_retry_after_as_timedelta(tg: FakeTelegram, bot_app: Application) -> None:
    """A 429 is RetryAfter with retry_after a timedelta; an early resend is detectable."""
    tg.flood(7)
    with pytest.raises(RetryAfter) as refused:
        await bot_app.bot.send_message(CHAT, "alert")
    assert refused.value.retry_after == timedelta(seconds=7)
    assert not isinstance(refused.value, NetworkError)
    [refusal] = tg.refusals(429)
    assert (refusal.chat_id, refusal.retry_after) == (CHAT, 7)
    assert tg.delivered() == []
    await bot_app.bot.send_message(CHAT, "too early")
    await bot_app.bot.send_message(CHAT + 1, "another chat")
    assert [c.params["text"] for c in tg.early_sends()] == ["too early"]
    assert len(tg.early_sends(per_chat=False)) == 2
    assert (tg.busiest(CHAT), tg.busiest(window_s=60)) == (1, 2)


async def test_flood_for_a_duration_tells_what_is_left(
    tg: FakeTelegram, bot_app: Application
) -> None:
    """A timed 429 storm refuses every send, then accepts; retry_after is the time left."""
    storm = tg.flood(seconds=1.0)
    for chat in (CHAT, GROUP):
        with pytest.raises(RetryAfter) as refused:
            await bot_app.bot.send_photo(chat, photo=PNG)
        assert refused.value.retry_after == timedelta(seconds=1)
    assert await bot_app.bot.get_me()  # only sends are refused
    await eventually(lambda: not storm.is_active(time.monotonic()), timeout=3)
    await bot_app.bot.send_message(CHAT, "after")
    assert storm.hits == 2
    assert [m.text for m in tg.delivered()] == ["after"]


async def test_blocked_and_missing_chats(tg: FakeTelegram, bot_app: Application) -> None:
    """403 is Forbidden and 400 "chat not found" BadRequest, for the chat they target."""
    tg.block(chat_id=CHAT, times=2)
    tg.chat_not_found(chat_id=GROUP)
    with pytest.raises(Forbidden, match=r"^Forbidden: bot was blocked by the user$"):
        await bot_app.bot.send_message(CHAT, "x")
    with pytest.raises(BadRequest, match=r"^Chat not found$"):
        await bot_app.bot.send_message(GROUP, "x")
    await bot_app.bot.send_message(CHAT + 1, "fine")
    with pytest.raises(Forbidden):
        await bot_app.bot.send_message(CHAT, "x")
    await bot_app.bot.send_message(CHAT, "unblocked")
    assert [m.chat_id for m in tg.delivered()] == [CHAT + 1, CHAT]


@pytest.mark.parametrize("status", [500, 502])
async def test_server_errors_are_network_errors(
    tg: FakeTelegram, bot_app: Application, status: int
) -> None:
    """5xx answers are NetworkError (not BadRequest); a custom 400 text reaches PTB."""
    tg.server_error(status, method=ALL)
    with pytest.raises(NetworkError) as failed:
        await bot_app.bot.get_me()
    assert type(failed.value) is NetworkError
    tg.fail(400, "Bad Request: message thread not found", method="sendMessage")
    with pytest.raises(BadRequest, match=r"^Message thread not found$"):
        await bot_app.bot.send_message(CHAT, "x")


async def test_conflict_on_polling_reaches_error_callback(tg: FakeTelegram) -> None:
    """A 409 on getUpdates is Conflict for the error callback; polling then goes on."""
    app = build(tg)
    errors: list[TelegramError] = []
    seen: list[Update] = []
    app.add_handler(CommandHandler("status", echo(seen)))
    tg.conflict()
    await polling(app, error_callback=errors.append)
    tg.send_command(CHAT, CHAT, "/status")
    await tg.wait_for_messages(CHAT, 1, timeout=5)
    await stop(app)
    assert [type(e) for e in errors] == [Conflict]
    assert "terminated by other getUpdates request" in str(errors[0])


async def test_a_second_poller_ends_the_first_with_conflict(tg: FakeTelegram) -> None:
    """Two Applications polling one token: the older long poll is answered 409."""
    first, second = build(tg), build(tg)
    errors: list[TelegramError] = []
    await polling(first, error_callback=errors.append, timeout=timedelta(seconds=10))
    await eventually(lambda: tg.in_flight == 1)
    await polling(second, timeout=timedelta(seconds=10))
    await eventually(lambda: bool(errors))
    await stop(second)
    await stop(first)
    assert isinstance(errors[0], Conflict)


async def test_delay_times_out_yet_delivers_and_hang_does_not(
    tg: FakeTelegram, bot_app: Application
) -> None:
    """A slow answer is TimedOut though the message was delivered; a hang delivers nothing."""
    slow = tg.delay(1.0, method="sendMessage")
    with pytest.raises(TimedOut):
        await bot_app.bot.send_message(CHAT, "maybe", read_timeout=0.2)
    assert [m.text for m in tg.delivered(CHAT)] == ["maybe"]
    assert slow.hits == 1
    tg.hang()
    with pytest.raises(TimedOut):
        await bot_app.bot.send_message(CHAT, "never", read_timeout=0.2)
    assert [m.text for m in tg.delivered(CHAT)] == ["maybe"]
    assert tg.calls_to("sendMessage")[-1].status == 0


async def test_down_is_connection_refused_then_back_on_the_same_port(
    tg: FakeTelegram, bot_app: Application
) -> None:
    """Down: NetworkError (not TimedOut); back up on the same URL, the bot works again."""
    url = tg.api_url
    await tg.go_down()
    assert not tg.is_up
    with pytest.raises(NetworkError) as refused:
        await bot_app.bot.send_message(CHAT, "lost")
    assert not isinstance(refused.value, TimedOut)
    await tg.come_up()
    assert tg.api_url == url
    await bot_app.bot.send_message(CHAT, "back")
    await tg.go_down(for_s=0.2)
    await eventually(lambda: tg.is_up, timeout=2)
    await bot_app.bot.send_message(CHAT, "again")
    assert [m.text for m in tg.delivered()] == ["back", "again"]


async def test_going_down_ends_a_long_poll_at_once(tg: FakeTelegram, bot_app: Application) -> None:
    """A long poll waiting when the server goes down fails then, not at its timeout."""
    poll = asyncio.create_task(bot_app.bot.get_updates(timeout=30, read_timeout=1))
    await eventually(lambda: tg.in_flight == 1)
    await tg.go_down()
    with pytest.raises(NetworkError):
        await asyncio.wait_for(poll, 5)
    assert tg.in_flight == 0
    await tg.come_up()
    tg.send_text(CHAT, CHAT, "after the outage")
    [update] = await bot_app.bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.text == "after the outage"


# -- updates from users ---------------------------------------------------------------------


async def test_edited_message_and_callback_query_reach_handlers(tg: FakeTelegram) -> None:
    """An edited command fires only the edited-message handler; a button press its handler."""
    app = build(tg)
    commands: list[Update] = []
    edits: list[Update] = []
    presses: list[Update] = []

    async def on_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        edits.append(update)

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        presses.append(update)
        assert update.callback_query is not None
        await update.callback_query.answer("done")

    stop_filter = filters.Chat(GROUP) & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler("emergency_stop", echo(commands), filters=stop_filter))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_edit))
    app.add_handler(CallbackQueryHandler(on_press))
    await polling(app)
    command_id = tg.send_command(
        GROUP, 7, "/emergency_stop@paper_trader_test_bot", chat_type="supergroup"
    )
    [reply] = await tg.wait_for_messages(GROUP, 1, after=command_id)
    await app.bot.edit_message_reply_markup(
        GROUP, reply.message_id, reply_markup=keyboard("confirm")
    )
    tg.edit_message(GROUP, command_id, "/emergency_stop")
    query_id = tg.press_button(GROUP, 7, reply.message_id, "confirm")
    await eventually(lambda: bool(edits and presses))
    await eventually(lambda: query_id in tg.answered_callbacks)
    await stop(app)
    assert len(commands) == 1
    assert edits[0].edited_message is not None
    assert edits[0].edited_message.message_id == command_id
    query = presses[0].callback_query
    assert query is not None
    assert (query.data, query.from_user.id) == ("confirm", 7)
    assert query.message is not None
    assert query.message.message_id == reply.message_id
    assert tg.answered_callbacks[query_id]["text"] == "done"
    with pytest.raises(LookupError):
        tg.press_button(GROUP, 7, reply.message_id, "cancel")


def test_threaded_fake_serves_a_synchronous_test() -> None:
    """In its own thread the fake serves another loop or process; its API works synchronously."""
    with fake_telegram_thread(username="other_bot") as tg:
        root = f"{tg.base_url}{tg.token}"

        def post(method: str, **params: object) -> dict[str, Any]:
            body = json.dumps(params).encode()
            request = urllib.request.Request(
                f"{root}/{method}", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                return json.loads(answer.read())  # type: ignore[no-any-return]

        assert post("getMe")["result"]["username"] == "other_bot"
        tg.send_command(CHAT, CHAT, "/status")
        [update] = post("getUpdates", timeout=1)["result"]
        assert update["message"]["entities"][0]["type"] == "bot_command"
        post("sendMessage", chat_id=CHAT, text="<b>up</b>", parse_mode="HTML")
        [reply] = tg.wait_for_messages(CHAT, 1, timeout=2)
        assert reply.text == "up"
        tg.go_down()
        with pytest.raises(urllib.error.URLError):
            post("getMe")
        tg.come_up()
        assert post("getMe")["ok"] is True
