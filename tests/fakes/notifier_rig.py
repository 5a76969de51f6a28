"""The notifier over a real migrated SQLite file and the real PTB ``Bot``, pointed at the fake
Bot API server (and the fake webhook) on loopback: queue events, run, look at what arrived."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiosqlite
from fakes.telegram_server import FakeTelegram
from fakes.webhook_server import FakeWebhook

from paper_trader.clock import SystemClock
from paper_trader.control.outbox import Outbox
from paper_trader.domain import Event, EventKind, EventSource, Severity
from paper_trader.interfaces.notify.channel import Transport
from paper_trader.interfaces.notify.pacing import Bucket, Pacer, TelegramPacing
from paper_trader.interfaces.notify.policy import Caps, DeliveryPolicy, Outgoing
from paper_trader.interfaces.notify.service import Notifier, NotifierConfig
from paper_trader.interfaces.notify.telegram import TelegramApi, TelegramChat
from paper_trader.interfaces.notify.webhook import Webhook, WebhookFormat
from paper_trader.interfaces.notify.worker import ChannelWorker, DeliveryStats, WorkerConfig
from paper_trader.runtime.backoff import Backoff
from paper_trader.runtime.service import Readiness
from paper_trader.storage import AppendOutbox, StorageWriter, outbox_entries

CHAT = 111
GROUP = -1001234567890
NO_CAPS = Caps(per_hour={})
SOURCE = EventSource("feed")
CLOCK = SystemClock()


def event(
    kind: EventKind = EventKind.DATA_GAP,
    message: str = "BTC-USDT: 3 candles missing",
    *,
    severity: Severity = Severity.INFO,
    at_ms: int | None = None,
    **data: str | int | float,
) -> Event:
    """Return an event of ``kind`` that happened now (or at ``at_ms``)."""
    at = CLOCK.now_ms() if at_ms is None else at_ms
    return SOURCE.event(kind, severity, message, at_ms=at, data=data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How a rig's notifier is built: caps, lateness, timeouts, pacing, its channels."""

    caps: Caps = NO_CAPS
    late_s: float = 300.0
    timeout_s: float = 2.0
    chats: Sequence[int] = (CHAT,)
    paced: bool = False  # Telegram's real limits; else fast (tests of other things)
    webhook: WebhookFormat | None = None
    expand: Callable[[Outgoing], Awaitable[Outgoing]] | None = None  # the reports' maker
    pacing: TelegramPacing | None = None  # the bot's, when a test runs the bot as well
    backoff_s: float = 0.05  # the first wait after a network failure (at most 0.3 s or it)


@dataclass
class Rig:
    """A running notifier and the database it reads."""

    notifier: Notifier
    writer: StorageWriter
    reader: aiosqlite.Connection

    async def queue(self, *events: Event) -> None:
        """Commit ``events`` to the outbox, as the daemon's recorder does."""
        for e in events:
            await self.writer.write(AppendOutbox(event=e))

    def stats(self, channel: str = f"telegram:{CHAT}") -> DeliveryStats:
        """Return a channel's counters."""
        return self.notifier.stats()[channel]

    async def statuses(self) -> list[str]:
        """Return every outbox row's status, by id."""
        return [e.status for e in await outbox_entries(self.reader)]


def build(
    writer: StorageWriter,
    reader: aiosqlite.Connection,
    tg: FakeTelegram | None,
    options: Options,
    hook: FakeWebhook | None = None,
) -> Notifier:
    """Return a notifier whose channels are ``tg``'s chats and ``hook``."""
    outbox = Outbox(reader, writer)
    transports: list[Transport] = []
    closing = []
    if tg is not None:
        api = TelegramApi(tg.token, tg.api_url, timeout_s=options.timeout_s)
        pacing = options.pacing or TelegramPacing()
        for chat in options.chats:
            pacer = pacing.chat(chat) if options.paced else Pacer([Bucket(200.0, 50)])
            transports.append(TelegramChat(api, chat, pacer, pacing.answering))
        closing.append(api.close)
    if hook is not None and options.webhook is not None:
        webhook = Webhook(hook.url, options.webhook, timeout_s=options.timeout_s)
        transports.append(webhook)
        closing.append(webhook.close)
    config = WorkerConfig(
        late_ms=round(options.late_s * 1000),
        backoff=Backoff(base_s=options.backoff_s, cap_s=max(0.3, options.backoff_s)),
        refused_backoff=Backoff(base_s=0.1, cap_s=0.3),
        idle_s=0.05,
    )
    workers = [
        ChannelWorker(
            t,
            outbox,
            DeliveryPolicy(options.caps),
            clock=CLOCK,
            config=config,
            expand=options.expand,
        )
        for t in transports
    ]
    return Notifier(
        outbox,
        workers,
        clock=CLOCK,
        config=NotifierConfig(retention_days=30, poll_s=0.02, flush_s=0.5),
        closing=closing,
    )


@contextlib.asynccontextmanager
async def running(
    writer: StorageWriter,
    reader: aiosqlite.Connection,
    tg: FakeTelegram | None,
    options: Options | None = None,
    hook: FakeWebhook | None = None,
) -> AsyncIterator[Rig]:
    """Run a notifier until the block ends, then stop it as the supervisor does."""
    notifier = build(writer, reader, tg, options or Options(), hook)
    ready = Readiness()
    task = asyncio.create_task(notifier.run(ready), name=notifier.name)
    try:
        async with asyncio.timeout(5):
            await ready.wait()
        yield Rig(notifier, writer, reader)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
