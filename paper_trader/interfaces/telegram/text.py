"""Telegram HTML for answers: escaping, tables, and splitting long answers into messages.

An answer is built as parts (``Line``: a line of text, bold for the summary; ``Pre``: a block
of monospaced lines, a table) and only then rendered. Telegram counts a message's 4096
characters on the text *after* it parsed the tags, and a ``<pre>`` cut in two is a 400, so
``render`` measures the plain text, splits at line boundaries, and wraps each message's share
of a block in its own ``<pre>``. Every value is escaped (``<``, ``>``, ``&``): the only tags in
a message are the ones added here.
"""

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

MAX_MESSAGE_CHARS = 4096  # Telegram's limit on a message's text after entity parsing
MAX_CAPTION_CHARS = 1024
SAFE_MESSAGE_CHARS = 4000  # headroom under the limit


@dataclass(frozen=True, slots=True)
class Line:
    """One line of text; ``bold`` for a summary or a heading."""

    text: str
    bold: bool = False


@dataclass(frozen=True, slots=True)
class Pre:
    """Lines shown monospaced (a table), never split across two ``<pre>`` of one message."""

    lines: tuple[str, ...]


Part = Line | Pre


@dataclass(frozen=True, slots=True)
class Message:
    """One message as sent: its HTML, its plain text (what Telegram counts, and what is sent
    if Telegram cannot parse the HTML); with a ``photo``, the text is the photo's caption."""

    html: str
    plain: str
    photo: bytes | None = None

    def prefixed(self, prefix: str) -> "Message":
        """Return the message with ``prefix`` (plain text) in front."""
        if not prefix:
            return self
        return Message(esc(prefix) + self.html, prefix + self.plain, self.photo)


@dataclass(frozen=True, slots=True)
class _Unit:
    """One line of a message: its text, and the part it comes from."""

    text: str
    part: int
    pre: bool
    bold: bool


def esc(value: object) -> str:
    """Return ``value`` as text safe inside Telegram HTML (``<``, ``>``, ``&`` escaped)."""
    return html.escape(str(value), quote=False)


def money(value: Decimal, places: int = 2) -> str:
    """Return an amount with ``places`` decimals and thousands separators: ``10,012.50``."""
    return f"{value:,.{places}f}"


def signed(value: Decimal, places: int = 2) -> str:
    """Return an amount with its sign always shown: ``+12.50``, ``-3.00``."""
    return f"{value:+,.{places}f}"


def pct(value: float | Decimal, places: int = 2) -> str:
    """Return a percentage given in percent, sign shown: ``+1.25 %``."""
    return f"{float(value):+.{places}f} %"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Pre:
    """Return a monospaced table: the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        padded = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return Pre(tuple(lines))


def pairs(rows: Iterable[tuple[str, object]]) -> Pre:
    """Return ``name  value`` lines, names padded to one width."""
    items = [(name, str(value)) for name, value in rows]
    width = max((len(name) for name, _ in items), default=0)
    return Pre(tuple(f"{name.ljust(width)}  {value}".rstrip() for name, value in items))


def messages(
    parts: Sequence[Part], *, limit: int = SAFE_MESSAGE_CHARS, first: int | None = None
) -> list[Message]:
    """Return the parts as messages whose parsed text is at most ``limit`` characters (the
    first at most ``first``, if given: a caption, or room for a prefix).

    Messages break between lines; a line longer than a message is cut into pieces. Blank
    lines at the edges of a message are dropped (Telegram trims them, and an all-blank
    message is refused).
    """
    first = limit if first is None else first
    groups = _split(_units(parts, min(limit, first)), limit, first)
    return [Message(_html(units), "\n".join(u.text for u in units)) for units in groups]


def render(parts: Sequence[Part], *, limit: int = SAFE_MESSAGE_CHARS) -> list[str]:
    """Return the parts as HTML messages (``messages``)."""
    return [m.html for m in messages(parts, limit=limit)]


def render_plain(parts: Sequence[Part], *, limit: int = SAFE_MESSAGE_CHARS) -> list[str]:
    """Return the parts as plain-text messages, split like ``render`` (the fallback when
    Telegram refuses a message's entities)."""
    return [m.plain for m in messages(parts, limit=limit)]


def plain_text(parts: Sequence[Part]) -> str:
    """Return all the parts' text, lines joined, without any markup (for captions and logs)."""
    return "\n".join(u.text for u in _units(parts, 1 << 30))


def _units(parts: Sequence[Part], limit: int) -> list[_Unit]:
    units = []
    for index, part in enumerate(parts):
        if isinstance(part, Line):
            lines: Sequence[str] = part.text.split("\n")
            pre, bold = False, part.bold
        else:
            lines, pre, bold = part.lines, True, False
        for line in lines:
            for start in range(0, max(len(line), 1), limit):
                units.append(_Unit(line[start : start + limit], index, pre, bold))
    return units


def _split(units: list[_Unit], limit: int, first: int) -> list[list[_Unit]]:
    """Group lines greedily into messages of at most ``limit`` parsed characters (the first
    at most ``first``)."""
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    size = 0
    for unit in units:
        extra = len(unit.text) + (1 if current else 0)
        if current and size + extra > (limit if groups else first):
            groups.append(current)
            current, size = [], 0
            extra = len(unit.text)
        current.append(unit)
        size += extra
    if current:
        groups.append(current)
    trimmed = [_trim(m) for m in groups]
    return [m for m in trimmed if m]


def _trim(units: list[_Unit]) -> list[_Unit]:
    start, end = 0, len(units)
    while start < end and not units[start].text.strip():
        start += 1
    while end > start and not units[end - 1].text.strip():
        end -= 1
    return units[start:end]


def _html(units: list[_Unit]) -> str:
    """Render one message: runs of lines from the same block share one ``<pre>``."""
    out: list[str] = []
    index = 0
    while index < len(units):
        unit = units[index]
        if unit.pre:
            run = index
            while run < len(units) and units[run].pre and units[run].part == unit.part:
                run += 1
            body = "\n".join(esc(u.text) for u in units[index:run])
            out.append(f"<pre>{body}</pre>")
            index = run
            continue
        out.append(f"<b>{esc(unit.text)}</b>" if unit.bold and unit.text else esc(unit.text))
        index += 1
    return "\n".join(out)
