"""Telegram's HTML, as its parser reads it: the plain text a user sees, or Telegram's 400 error.

Follows tdlib's ``parse_html``: the tags Telegram supports, the named and numeric entities, and
its "can't parse entities" texts; a bare ``&`` is refused unless ``strict_ampersand=False`` (see
`telegram_server`).
"""

import re


class ApiError(Exception):
    """An error answer: HTTP ``status`` with Telegram's ``description`` (and ``retry_after``)."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


_TAG_NAMES = (
    "a b strong i em u ins s strike del span tg-spoiler tg-emoji tg-time code pre blockquote"
)
_TAGS = frozenset(_TAG_NAMES.split())
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")


def _entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode the HTML entity at ``text[i]`` ("&"): (character, end index), None if none."""
    match = _ENTITY.match(text, i)
    if match is None:
        return None
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        char = _NAMED.get(name)
        return None if char is None else (char, match.end())
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    return (chr(code), match.end()) if 0 < code <= 0x10FFFF else None


class _HtmlParser:
    """One pass over ``parse_mode=HTML`` text: the plain text, or ``ApiError`` 400."""

    def __init__(self, text: str, *, strict_ampersand: bool) -> None:
        self.text, self.strict, self.i = text, strict_ampersand, 0
        self.out: list[str] = []
        self.open: list[str] = []

    def fail(self, message: str, at: int | None = None) -> ApiError:
        where = "" if at is None else f" at byte offset {len(self.text[:at].encode())}"
        return ApiError(400, f"Bad Request: can't parse entities: {message}{where}")

    def parse(self) -> str:
        text = self.text
        while self.i < len(text):
            char = text[self.i]
            if char == "&":
                self.ampersand()
            elif char == "<":
                self.tag()
            else:
                self.out.append(char)
                self.i += 1
        if self.open:
            raise self.fail(f'Can\'t find end tag corresponding to start tag "{self.open[-1]}"')
        return "".join(self.out)

    def ampersand(self) -> None:
        decoded = _entity(self.text, self.i)
        if decoded is not None:
            self.out.append(decoded[0])
            self.i = decoded[1]
            return
        if self.strict:
            raise self.fail("Character '&' must be escaped as \"&amp;\"", self.i)
        self.out.append("&")
        self.i += 1

    def tag(self) -> None:
        text, begin = self.text, self.i
        self.i += 1
        if self.i >= len(text):
            raise self.fail("Unclosed start tag", begin)
        if text[self.i] == "/":
            self.end_tag(begin)
            return
        end = self.i
        while end < len(text) and not text[end].isspace() and text[end] != ">":
            end += 1
        if end == len(text):
            raise self.fail("Unclosed start tag", begin)
        name = text[self.i : end].lower()
        if name not in _TAGS:
            raise self.fail(f'Unsupported start tag "{name}"', begin)
        self.i = end
        attributes = self.attributes(name, begin)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise self.fail('Tag "span" must have class "tg-spoiler"', begin)
        if name == "tg-emoji" and "emoji-id" not in attributes:
            raise self.fail('Tag "tg-emoji" must have attribute "emoji-id"', begin)
        self.open.append(name)

    def end_tag(self, begin: int) -> None:
        end = self.text.find(">", self.i)
        if end < 0:
            raise self.fail("Unclosed end tag", begin)
        if not self.open:
            raise self.fail("Unexpected end tag", begin)
        name = self.text[self.i + 1 : end].strip().lower()
        if name != self.open[-1]:
            expected = self.open[-1]
            raise self.fail(
                f"Unmatched end tag at byte offset {len(self.text[:begin].encode())}, "
                f'expected "</{expected}>", found "</{name}>"'
            )
        self.open.pop()
        self.i = end + 1

    def attributes(self, tag: str, begin: int) -> dict[str, str]:
        text, found = self.text, dict[str, str]()
        while True:
            self.skip_spaces(begin)
            if text[self.i] == ">":
                self.i += 1
                return found
            start = self.i
            while not text[self.i].isspace() and text[self.i] not in "=>":
                self.i += 1
                self.check_open(begin)
            name = text[start : self.i].lower()
            if not name:
                raise self.fail(f'Empty attribute name in the tag "{tag}"', begin)
            self.skip_spaces(begin)
            if text[self.i] != "=":
                found[name] = ""
                continue
            self.i += 1
            self.skip_spaces(begin)
            found[name] = self.attribute_value(begin)

    def attribute_value(self, begin: int) -> str:
        text, quote = self.text, self.text[self.i]
        if quote in "'\"":
            end = text.find(quote, self.i + 1)
            if end < 0:
                raise self.fail("Unclosed start tag", begin)
            value = _decode_lenient(text[self.i + 1 : end])
            self.i = end + 1
            return value
        start = self.i
        while self.i < len(text) and (text[self.i].isalnum() or text[self.i] in ".-"):
            self.i += 1
        self.check_open(begin)
        if not text[self.i].isspace() and text[self.i] != ">":
            raise self.fail("Unexpected end of name token", start)
        return text[start : self.i].lower()

    def skip_spaces(self, begin: int) -> None:
        self.check_open(begin)
        while self.text[self.i].isspace():
            self.i += 1
            self.check_open(begin)

    def check_open(self, begin: int) -> None:
        if self.i >= len(self.text):
            raise self.fail("Unclosed start tag", begin)


def _decode_lenient(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        decoded = _entity(value, i) if value[i] == "&" else None
        out.append(decoded[0] if decoded else value[i])
        i = decoded[1] if decoded else i + 1
    return "".join(out)


def parse_text(raw: str, parse_mode: str | None, *, strict_ampersand: bool = True) -> str:
    """Return the text a user sees for ``raw`` in ``parse_mode``; ``ApiError`` 400 if invalid."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _HtmlParser(raw, strict_ampersand=strict_ampersand).parse()
    if mode not in {"", "markdown", "markdownv2"}:
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    return raw


# -- records --------------------------------------------------------------------------------
