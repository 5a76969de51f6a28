"""The port every notification channel implements, and what a send can come to.

A transport (Telegram's chat, the webhook) renders a message into parts and sends one part;
it translates its library's errors into a ``NotSent`` with one of the ``Failure`` reasons, so
the worker decides retries the same way for every channel.
"""

import enum
from dataclasses import dataclass
from typing import Protocol

from paper_trader.interfaces.notify.pacing import Pacer
from paper_trader.interfaces.notify.policy import Outgoing
from paper_trader.interfaces.telegram.text import Message


class Failure(enum.StrEnum):
    """Why a part was not sent, by what the worker must do about it."""

    RATE_LIMITED = "rate_limited"  # wait retry_after_s (nothing to that destination), retry
    UNPARSEABLE = "unparseable"  # the formatting was refused: resend once as plain text
    UNCERTAIN = "uncertain"  # timed out: it may have arrived; resend once, marked
    UNREACHABLE = "unreachable"  # down or a network error: back off, retry
    REFUSED = "refused"  # blocked, chat not found, token or webhook rejected: keep, back off
    REJECTED = "rejected"  # this message can never be sent: fail it with the reason


@dataclass(frozen=True, slots=True)
class Sent:
    """The part arrived; ``message_id`` is the channel's id for it."""

    message_id: str


@dataclass(frozen=True, slots=True)
class NotSent:
    """The part did not arrive (or may not have: ``UNCERTAIN``)."""

    failure: Failure
    detail: str
    retry_after_s: float | None = None


Outcome = Sent | NotSent


class Transport(Protocol):
    """One destination of notifications."""

    @property
    def name(self) -> str:
        """Return the channel's name in the outbox (``telegram:<chat id>``, ``webhook``)."""
        ...

    @property
    def pacer(self) -> Pacer:
        """Return the limits sends to this destination are under."""
        ...

    def parts(self, outgoing: Outgoing) -> tuple[Message, ...]:
        """Return the message as the parts it is sent in (the same for the same message)."""
        ...

    async def send(self, part: Message, outgoing: Outgoing, *, plain: bool) -> Outcome:
        """Send one part (``plain``: without formatting); never raise for a send's failure."""
        ...

    async def answering(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a sign that the destination answers again (after it
        was unreachable); return whether one came."""
        ...
