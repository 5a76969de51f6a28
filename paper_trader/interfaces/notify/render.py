"""Notification text: HTML for Telegram with every value escaped, the same text plain, and
the split of a long message into parts at line boundaries.

A message is built as ``Line`` values (each an HTML form and its plain, parsed form), so its
length is counted as Telegram counts it (the text after entity parsing) and a part is always
whole lines wrapped in their own tags: a split can never cut a tag in two.
"""

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

TELEGRAM_LIMIT = 4096
CAPTION_LIMIT = 1024  # a photo's caption, counted like a message
DISCORD_LIMIT = 2000
PREFIX_ROOM = 96  # the first part leaves room for the late and possible-repeat prefixes
POSSIBLE_REPEAT = "(possible repeat) "


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message: its HTML and its plain text (what Telegram counts)."""

    html: str
    plain: str


def text(value: str) -> Line:
    """Return a line of plain text, escaped for HTML."""
    return Line(html.escape(value, quote=False), value)


def bold(value: str) -> Line:
    """Return a line of bold text, escaped inside its tag."""
    return Line(f"<b>{html.escape(value, quote=False)}</b>", value)


def lines_of(message: str) -> list[Line]:
    """Return a multi-line message as escaped lines."""
    return [text(line) for line in message.splitlines() or [""]]


@dataclass(frozen=True, slots=True)
class Part:
    """One message as sent: HTML, and the plain text it is resent as if Telegram cannot parse
    the HTML; with a ``photo``, the text is the photo's caption."""

    html: str
    plain: str
    photo: bytes | None = None

    def prefixed(self, prefix: str) -> "Part":
        """Return the part with ``prefix`` (plain text) in front."""
        if not prefix:
            return self
        return Part(html.escape(prefix, quote=False) + self.html, prefix + self.plain, self.photo)


def split(lines: Sequence[Line], limit: int) -> tuple[Part, ...]:
    """Return ``lines`` as parts of at most ``limit`` parsed characters, cut between lines.

    The first part keeps ``PREFIX_ROOM`` characters free. A line longer than a part is cut
    into plain pieces (its tags dropped, its text kept).
    """
    parts: list[Part] = []
    chunk: list[Line] = []
    size = 0
    for line in _fitted(lines, limit - PREFIX_ROOM):
        room = limit - (PREFIX_ROOM if not parts else 0)
        extra = len(line.plain) + (1 if chunk else 0)
        if chunk and size + extra > room:
            parts.append(_join(chunk))
            chunk, size, extra = [], 0, len(line.plain)
        chunk.append(line)
        size += extra
    if chunk or not parts:
        parts.append(_join(chunk))
    return tuple(parts)


def split_captioned(
    lines: Sequence[Line], photo: bytes, caption_limit: int, limit: int
) -> tuple[Part, ...]:
    """Return ``lines`` as a photo whose caption is as many whole lines as fit in
    ``caption_limit``, then the rest as parts of at most ``limit``."""
    fitted = _fitted(lines, caption_limit - PREFIX_ROOM)
    size, taken = 0, 0
    for line in fitted:
        extra = len(line.plain) + (1 if taken else 0)
        if size + extra > caption_limit - PREFIX_ROOM:
            break
        size, taken = size + extra, taken + 1
    caption = _join(fitted[:taken])
    head = Part(caption.html, caption.plain, photo)
    rest = fitted[taken:]
    return (head, *(split(rest, limit) if rest else ()))


def _fitted(lines: Sequence[Line], most: int) -> list[Line]:
    out: list[Line] = []
    for line in lines:
        if len(line.plain) <= most:
            out.append(line)
            continue
        out.extend(text(line.plain[i : i + most]) for i in range(0, len(line.plain), most))
    return out


def _join(chunk: Sequence[Line]) -> Part:
    return Part("\n".join(line.html for line in chunk), "\n".join(line.plain for line in chunk))


def utc_text(at_ms: int) -> str:
    """Return a wall-clock time as ``2026-11-20 14:03:05 UTC``."""
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_text(at_ms: int) -> str:
    """Return a wall-clock time as ISO 8601 UTC (``2026-11-20T14:03:05.123Z``)."""
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}Z"


def late_prefix(at_ms: int) -> str:
    """Return the prefix of a message sent long after its event: the event's time."""
    return f"(event at {utc_text(at_ms)}) "


def span_text(ms: int) -> str:
    """Return a duration in whole minutes (at least 1), or hours past two hours."""
    minutes = max(1, -(-ms // 60_000))
    if minutes < 120:
        return f"{minutes} min"
    return f"{round(minutes / 60)} h"
