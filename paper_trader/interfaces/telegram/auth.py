"""Who may command the bot, and the single-use confirmations of the commands that trade.

Closed by default (DESIGN invariant 7): a chat must be listed in ``TELEGRAM_CHAT_ID``, and when
``TELEGRAM_ALLOWED_USERS`` is set the sender must be listed there too (in a group, anyone else
is refused). ``/close`` and ``/emergency_stop`` first answer with a button; its token is
honoured once, within ``ttl_s``, from the chat it was issued in and from an authorised sender.
"""

import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

CONFIRM_TTL_S = 60.0
MAX_PENDING = 64  # confirmations outstanding at once; the oldest is forgotten past this


class Authorisation:
    """The chats, and optionally the users, allowed to command."""

    def __init__(self, chats: Iterable[int], users: Iterable[int] = ()) -> None:
        self.chats = frozenset(chats)
        self.users = frozenset(users)

    def allows(self, chat_id: int | None, user_id: int | None) -> bool:
        """Return whether a message from ``user_id`` in ``chat_id`` may command."""
        if chat_id is None or chat_id not in self.chats:
            return False
        return not self.users or (user_id is not None and user_id in self.users)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    """A command waiting for its button: what to do, and where it was asked."""

    action: str
    argument: str
    chat_id: int
    user_id: int | None
    expires_at: float


class Confirmations:
    """Single-use confirmation tokens with an expiry, on an injected monotonic clock."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float],
        ttl_s: float = CONFIRM_TTL_S,
        capacity: int = MAX_PENDING,
    ) -> None:
        self._monotonic = monotonic
        self._ttl_s = ttl_s
        self._capacity = capacity
        self._pending: OrderedDict[str, Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def issue(self, action: str, argument: str, chat_id: int, user_id: int | None) -> str:
        """Return a new token for ``action`` asked in ``chat_id`` (16 URL-safe characters)."""
        self._expire()
        token = secrets.token_urlsafe(12)
        self._pending[token] = Pending(
            action=action,
            argument=argument,
            chat_id=chat_id,
            user_id=user_id,
            expires_at=self._monotonic() + self._ttl_s,
        )
        while len(self._pending) > self._capacity:
            self._pending.popitem(last=False)
        return token

    def redeem(self, token: str, chat_id: int | None) -> Pending | None:
        """Return the pending command and forget it; None if unknown, used, expired, or
        pressed in another chat (then it stays usable where it was asked)."""
        self._expire()
        pending = self._pending.get(token)
        if pending is None or pending.chat_id != chat_id:
            return None
        del self._pending[token]
        return pending

    def _expire(self) -> None:
        now = self._monotonic()
        for token in [t for t, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[token]
