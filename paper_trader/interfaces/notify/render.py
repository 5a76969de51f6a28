"""Notification text: a message as the bot's answers are built (``telegram/text.py``: every value
escaped, the length counted as Telegram counts it, after entity parsing), split into the
messages a channel sends, at line boundaries, never cutting a tag in two; and the prefixes and
times a notification shows.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from paper_trader.interfaces.telegram.text import Message, Part, messages

TELEGRAM_LIMIT = 4096
CAPTION_LIMIT = 1024  # a photo's caption, counted like a message
DISCORD_LIMIT = 2000
PREFIX_ROOM = 96  # the first message leaves room for the late and possible-repeat prefixes
POSSIBLE_REPEAT = "(possible repeat) "


def split(parts: Sequence[Part], limit: int) -> tuple[Message, ...]:
    """Return ``parts`` as messages of at most ``limit`` parsed characters, cut between
    lines; the first keeps ``PREFIX_ROOM`` characters free. A line longer than a message is
    cut into pieces."""
    return split_first(parts, limit - PREFIX_ROOM, limit)


def split_captioned(
    parts: Sequence[Part], photo: bytes, caption_limit: int, limit: int
) -> tuple[Message, ...]:
    """Return ``parts`` as a photo whose caption is as many whole lines as fit in
    ``caption_limit`` (less ``PREFIX_ROOM``), then the rest as messages of at most ``limit``."""
    caption, *rest = split_first(parts, caption_limit - PREFIX_ROOM, limit)
    return (Message(caption.html, caption.plain, photo), *rest)


def split_first(parts: Sequence[Part], first: int, limit: int) -> tuple[Message, ...]:
    """Return ``parts`` as messages: the first at most ``first``, the others ``limit``."""
    return tuple(messages(parts, limit=limit, first=first)) or (Message("", ""),)


def utc_text(at_ms: int) -> str:
    """Return a wall-clock time as ``2026-11-20 14:03:05 UTC``."""
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def late_prefix(at_ms: int) -> str:
    """Return the prefix of a message sent long after its event: the event's time."""
    return f"(event at {utc_text(at_ms)}) "


def span_text(ms: int) -> str:
    """Return a duration in whole minutes (at least 1), or hours past two hours."""
    minutes = max(1, -(-ms // 60_000))
    if minutes < 120:
        return f"{minutes} min"
    return f"{round(minutes / 60)} h"
