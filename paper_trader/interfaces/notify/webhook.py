"""A webhook as a second notification channel: the same notifications POSTed as JSON.

``json``: one body per message, ``{"kind", "severity", "category", "priority", "message",
"at", "source", "data"}`` (``message``: the text as Telegram shows it, plain; ``at``: the
event's time, ISO 8601 UTC; a digest's ``kind`` is "digest" and a repeat's ``data`` has its
``count``). ``discord``: Discord's webhook shape, ``{"content": …}`` of at most
2000 characters (a long message is split at line boundaries), mentions disabled. A 429 is
honoured from the ``Retry-After`` header or Discord's ``retry_after`` body (seconds). The URL
is a secret (Discord's holds the webhook's token): it never goes into an error text.
"""

import asyncio
import enum
import json
from typing import Any

import aiohttp

from paper_trader.clock import iso_ms
from paper_trader.interfaces.notify.channel import Failure, NotSent, Outcome, Sent
from paper_trader.interfaces.notify.pacing import Bucket, Pacer, Window
from paper_trader.interfaces.notify.policy import Outgoing
from paper_trader.interfaces.notify.render import DISCORD_LIMIT, split
from paper_trader.interfaces.telegram.text import Message

_UNBOUNDED = 1_000_000  # a JSON body is one message, however long
_REFUSING = frozenset({401, 403, 404, 410})  # the webhook is gone or not ours: keep, back off


class WebhookFormat(enum.StrEnum):
    """The body the webhook takes."""

    JSON = "json"
    DISCORD = "discord"


class Webhook:
    """A ``Transport`` to one webhook URL, over one aiohttp session (opened on first use)."""

    name = "webhook"

    def __init__(self, url: str, fmt: WebhookFormat, *, timeout_s: float = 10.0) -> None:
        self._url = url
        self._format = fmt
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        # Discord allows 5 requests per 2 s per webhook; elsewhere one a second, bursts of 3.
        limit = Window(5, 2.0) if fmt is WebhookFormat.DISCORD else Bucket(1.0, 3)
        self._pacer = Pacer([limit])

    @property
    def pacer(self) -> Pacer:
        """Return the webhook's limit."""
        return self._pacer

    def parts(self, outgoing: Outgoing) -> tuple[Message, ...]:
        """Return one part for JSON; Discord's 2000-character parts otherwise."""
        limit = DISCORD_LIMIT if self._format is WebhookFormat.DISCORD else _UNBOUNDED
        return split(outgoing.lines, limit)

    async def answering(self, timeout_s: float) -> bool:
        """Wait out ``timeout_s``: nothing else tells when the webhook answers again."""
        await asyncio.sleep(timeout_s)
        return False

    async def send(self, part: Message, outgoing: Outgoing, *, plain: bool) -> Outcome:
        """POST one part; translate the answer (``plain`` changes nothing: always plain)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, json=self._body(part, outgoing)) as answer:
                body = await answer.read()
                return _outcome(answer.status, answer.headers.get("Retry-After"), body, outgoing)
        except TimeoutError:
            return NotSent(Failure.UNCERTAIN, "the webhook timed out")
        except aiohttp.ClientError as exc:
            return NotSent(Failure.UNREACHABLE, f"webhook unreachable ({type(exc).__name__})")

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _body(self, part: Message, outgoing: Outgoing) -> dict[str, Any]:
        if self._format is WebhookFormat.DISCORD:
            return {"content": part.plain, "allowed_mentions": {"parse": []}}
        head = outgoing.head
        return {
            "kind": outgoing.kind,
            "severity": outgoing.severity.value,
            "category": outgoing.category.value,
            "priority": outgoing.priority.value,
            "message": part.plain,
            "at": iso_ms(head.created_at_ms),
            "source": head.source if len(outgoing.notifications) == 1 else "notifier",
            "data": dict(outgoing.data),
        }


def _outcome(status: int, retry_after: str | None, body: bytes, outgoing: Outgoing) -> Outcome:
    """Return what the webhook's answer means."""
    if 200 <= status < 300:
        return Sent(_message_id(body) or f"webhook:{outgoing.ids[0]}")
    detail = f"webhook answered HTTP {status}"
    if status == 429:
        return NotSent(Failure.RATE_LIMITED, detail, retry_after_s=_retry_after(retry_after, body))
    if status >= 500:
        return NotSent(Failure.UNREACHABLE, detail)
    if status in _REFUSING:
        return NotSent(Failure.REFUSED, detail)
    return NotSent(Failure.REJECTED, detail)


def _message_id(body: bytes) -> str | None:
    """Return the id a Discord webhook gives its message (with ``?wait=true``), if any."""
    value = _json(body)
    if isinstance(value, dict) and isinstance(value.get("id"), str | int):
        return str(value["id"])
    return None


def _retry_after(header: str | None, body: bytes) -> float:
    """Return the wait the webhook asked for: the header's seconds, else the body's."""
    for candidate in (header, _body_retry_after(body)):
        try:
            seconds = float(candidate) if candidate is not None else None
        except ValueError:
            seconds = None
        if seconds is not None and seconds >= 0:
            return seconds
    return 1.0


def _body_retry_after(body: bytes) -> str | None:
    value = _json(body)
    if isinstance(value, dict) and isinstance(value.get("retry_after"), int | float):
        return str(value["retry_after"])
    return None


def _json(body: bytes) -> object:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
