"""Wiring of the notifier: its channels, caps and timing from the settings.

Part of the composition root: one Telegram chat worker per ``TELEGRAM_CHAT_ID`` (when
``TELEGRAM_BOT_TOKEN`` is set), the webhook when ``WEBHOOK_URL`` is set; the outbox over the
run's read-only connection and the single writer. A channel that is off says so once at start.
"""

from collections.abc import Awaitable, Callable

import aiosqlite

from paper_trader.clock import Clock
from paper_trader.control.outbox import Outbox
from paper_trader.interfaces.notify.channel import Transport
from paper_trader.interfaces.notify.pacing import TelegramPacing
from paper_trader.interfaces.notify.policy import Cap, Caps, DeliveryPolicy, Outgoing
from paper_trader.interfaces.notify.service import Notifier, NotifierConfig
from paper_trader.interfaces.notify.telegram import TelegramApi, TelegramChat
from paper_trader.interfaces.notify.webhook import Webhook, WebhookFormat
from paper_trader.interfaces.notify.worker import ChannelWorker, WorkerConfig
from paper_trader.runtime.backoff import Backoff
from paper_trader.settings import Settings
from paper_trader.storage import StorageWriter

DEFAULT_API_URL = "https://api.telegram.org"
NETWORK_BACKOFF = Backoff(base_s=1.0, cap_s=60.0)
REFUSED_BACKOFF = Backoff(base_s=30.0, cap_s=900.0)  # blocked, chat not found: a human acts


def caps(settings: Settings) -> Caps:
    """Return the caps per hour of ``*_NOTIFICATIONS_PER_HOUR``."""
    return Caps(
        per_hour={
            Cap.ERROR: settings.error_notifications_per_hour,
            Cap.TRADE: settings.trade_notifications_per_hour,
            Cap.STATUS: settings.status_notifications_per_hour,
        }
    )


def build_notifier(
    settings: Settings,
    reader: aiosqlite.Connection,
    writer: StorageWriter,
    clock: Clock,
    *,
    telegram_api_url: str = DEFAULT_API_URL,
    expand: Callable[[Outgoing], Awaitable[Outgoing]] | None = None,
    pacing: TelegramPacing | None = None,
) -> Notifier:
    """Return the notifier service of this run (see the module's docstring).

    ``reader`` is a read-only connection to the database ``writer`` writes (``open_reader``);
    ``telegram_api_url`` the Bot API server's root (``TELEGRAM_API_URL``); ``expand`` makes
    the reports' text and chart (``ReportMaker.expand``); ``pacing`` is the bot's, shared with
    its answers to commands.
    """
    outbox = Outbox(reader, writer)
    transports, closing, off = _channels(settings, telegram_api_url, pacing or TelegramPacing())
    config = WorkerConfig(
        late_ms=round(settings.notification_late_s * 1000),
        backoff=NETWORK_BACKOFF,
        refused_backoff=REFUSED_BACKOFF,
    )
    workers = [
        ChannelWorker(
            t, outbox, DeliveryPolicy(caps(settings)), clock=clock, config=config, expand=expand
        )
        for t in transports
    ]
    return Notifier(
        outbox,
        workers,
        clock=clock,
        config=NotifierConfig(retention_days=settings.notification_retention_days, off=tuple(off)),
        closing=closing,
    )


def _channels(
    settings: Settings, api_url: str, pacing: TelegramPacing
) -> tuple[list[Transport], list[Callable[[], Awaitable[None]]], list[str]]:
    """Return the transports, what closes them, and why a channel is off."""
    transports: list[Transport] = []
    closing: list[Callable[[], Awaitable[None]]] = []
    off: list[str] = []
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value():
        off.append("telegram off: TELEGRAM_BOT_TOKEN is not set (the outbox still records)")
    elif not settings.telegram_chat_id:
        off.append("telegram off: TELEGRAM_CHAT_ID is empty")
    else:
        api = TelegramApi(token.get_secret_value(), api_url)
        chats = dict.fromkeys(settings.telegram_chat_id)  # a chat listed twice gets one copy
        transports += [
            TelegramChat(api, chat, pacing.chat(chat), pacing.answering) for chat in chats
        ]
        closing.append(api.close)
    if settings.webhook_url is not None:
        webhook = Webhook(
            settings.webhook_url.get_secret_value(), WebhookFormat(settings.webhook_format)
        )
        transports.append(webhook)
        closing.append(webhook.close)
    return transports, closing, off
