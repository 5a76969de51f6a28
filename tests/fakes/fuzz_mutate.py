"""Mutations of fuzz inputs, by the kind of input (``Target.kind``), from one seeded rng.

JSON-aware: a value of the decoded tree replaced, deleted, duplicated, retyped or wrapped, a
key added (the root keeps its shape). CSV-aware: a field swapped for a token, a line dropped,
repeated or moved. Byte- and character-level: tokens inserted, ranges deleted or repeated,
digit runs swapped for numbers at the edges of their types, splices of two seeds. Header and
query maps: an entry changed, added or dropped. Tokens are the atoms of ``fakes/fuzz_atoms.py``
plus every key and short string found in the seeds.
"""

import json
import random
import re
from collections.abc import Sequence
from typing import Any

from fakes.fuzz_atoms import DEEP_TEXT, TRICKY_FLOATS, TRICKY_INTS, TRICKY_TEXT

_NUMBERS = re.compile(r"\d+")
_WORDS = re.compile(r"[^\s,&=?/:;\"'{}\[\]]{1,40}")


def _words(value: Any, into: set[str]) -> None:
    """Add the keys and short strings of ``value`` (decoded as JSON where it is JSON)."""
    if isinstance(value, bytes | str):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        try:
            _words(json.loads(text), into)
        except (ValueError, RecursionError):
            into.update(_WORDS.findall(text[:400]))
    elif isinstance(value, dict) or hasattr(value, "items"):
        for key, item in value.items():
            into.add(str(key))
            _words(item, into)
    elif isinstance(value, list | tuple):
        for item in value:
            _words(item, into)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        into.add(str(value))


class Mutator:
    """Mutations of fuzz inputs by kind (see the module docstring), from one seeded ``rng``."""

    def __init__(self, rng: random.Random, seeds: Sequence[Any]) -> None:
        self._rng = rng
        self._seeds = list(seeds)
        found: set[str] = set()
        for seed in self._seeds[:500]:
            _words(seed, found)
        words = sorted(found)
        self._found = rng.sample(words, 2000) if len(words) > 2000 else words
        self._tokens = (*TRICKY_TEXT, *DEEP_TEXT, *self._found)
        self._atoms: tuple[Any, ...] = (
            *TRICKY_INTS, *TRICKY_FLOATS, *TRICKY_TEXT, None, True, False, [], {},
        )  # fmt: skip

    def mutate(self, value: Any, kind: str | tuple[str, ...]) -> Any:
        """Return a mutant of ``value``: of one part of it if ``kind`` names each part."""
        if isinstance(kind, str):
            return self._one(value, kind, None)
        parts = list(value)
        index = self._rng.choice([i for i, k in enumerate(kind) if k != "keep"])
        parts[index] = self._one(parts[index], kind[index], index)
        return tuple(parts)

    def _one(self, value: Any, kind: str, part: int | None) -> Any:
        rng = self._rng
        if kind == "bool":
            return not value
        if kind == "int":
            return rng.choice((200, 200, 404, 418, 429, 500, *TRICKY_INTS))
        if kind == "json":
            return self._tree(value, 0)
        if kind == "strmap":
            return self._strmap(value)
        if kind == "wire" and rng.random() < 0.6:
            tree = _decoded(value)
            if tree is not _NOT_JSON:  # the line end stays: the control socket needs it
                text = json.dumps(self._tree(tree, 0)) + _as_text(value[len(value.rstrip()) :])
                return text.encode() if isinstance(value, bytes) else text
        if kind == "csv" and rng.random() < 0.4:
            return self._csv(value)
        return self._text(value, part)

    def _text(self, value: str | bytes, part: int | None) -> str | bytes:
        """Mutate text or bytes: insert, replace, delete, repeat, splice, swap a number."""
        rng, size = self._rng, len(value)
        start = rng.randrange(size + 1)
        end = min(size, start + rng.choice((1, 1, 2, 4, 8, 32)))
        op = rng.randrange(8)
        if op <= 1:
            piece = self._token()
        elif op == 2:
            piece = ""
        elif op == 3:
            piece = str(_as_text(value[start:end])) * rng.choice((2, 3, 100))
        elif op == 4:
            piece = chr(rng.randrange(32, 127)) if rng.random() < 0.7 else _char(rng)
        elif op == 5:
            return _splice(value, self._like(value, part), rng)
        elif op == 6:
            return _renumber(value, rng)
        else:
            return value[:start]
        if op == 0:
            end = start
        if isinstance(value, bytes):
            raw = piece.encode() if rng.random() < 0.9 else bytes([rng.randrange(128, 256)])
            return value[:start] + raw + value[end:]
        return value[:start] + piece + value[end:]

    def _like(self, value: Any, part: int | None) -> Any:
        other = self._rng.choice(self._seeds)
        other = other if part is None else other[part]
        return other if type(other) is type(value) else value

    def _token(self) -> str:
        return self._rng.choice(self._tokens)

    def _tree(self, node: Any, depth: int) -> Any:
        """Return ``node`` with one value inside it changed, deleted, repeated or added."""
        rng = self._rng
        inside = depth == 0 or rng.random() < 0.75  # the root stays: its shape is the frame's
        if isinstance(node, dict) and node and depth < 40 and inside:
            new = dict(node)
            key = rng.choice(list(new))
            op = rng.randrange(6)
            if op <= 2:
                new[key] = self._tree(new[key], depth + 1)
            elif op == 3:
                del new[key]
            else:
                new[self._token() if op == 4 else key] = self._atom(new[key], depth)
            return new
        if isinstance(node, list) and node and depth < 40 and inside:
            new = list(node)
            index = rng.randrange(len(new))
            op = rng.randrange(6)
            if op <= 2:
                new[index] = self._tree(new[index], depth + 1)
            elif op == 3:
                del new[index]
            elif op == 4:
                new.insert(index, new[index] if rng.random() < 0.5 else self._atom(None, depth))
            else:
                new[index] = self._atom(new[index], depth)
            return new
        return self._atom(node, depth)

    def _atom(self, node: Any, depth: int) -> Any:
        """Return a replacement for ``node``: an edge value, a token, or ``node`` retyped."""
        rng = self._rng
        choice = rng.randrange(6)
        if choice == 0 and isinstance(node, int | float) and not isinstance(node, bool):
            return str(node)
        if choice == 1 and isinstance(node, str) and node.isascii() and node.isdigit():
            return int(node[:4000])
        if choice == 2:
            return self._token()
        if choice == 3 and depth < 30 and not isinstance(node, list | dict):
            return [node] if rng.random() < 0.5 else {self._token(): node}
        return rng.choice(self._atoms)

    def _strmap(self, mapping: Any) -> Any:
        """Change, add or drop one entry of a header or query map (of the same class)."""
        rng = self._rng
        items = list(mapping.items())
        op = rng.randrange(4)
        if op <= 1 and items:
            index = rng.randrange(len(items))
            key, text = items[index]
            items[index] = (key, self._text(text, None) if op == 0 else self._token())
        elif op == 2 or not items:
            items.append((rng.choice(self._found) if self._found else self._token(), self._token()))
        else:
            del items[rng.randrange(len(items))]
        return type(mapping)(items)

    def _csv(self, data: bytes) -> bytes:
        """Change one line of a CSV: a field swapped for a token, or the line dropped,
        repeated or moved."""
        rng = self._rng
        lines = data.split(b"\n")
        index = rng.randrange(len(lines))
        op = rng.randrange(4)
        if op == 0:
            fields = lines[index].split(b",")
            fields[rng.randrange(len(fields))] = self._token().encode()
            lines[index] = b",".join(fields)
        elif op == 1:
            del lines[index]
        elif op == 2:
            lines.insert(index, lines[index])
        else:
            lines.insert(rng.randrange(len(lines)), lines.pop(index))
        return b"\n".join(lines)


_NOT_JSON = object()


def _decoded(value: str | bytes) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _as_text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _char(rng: random.Random) -> str:
    code = rng.randrange(0x110000)
    return chr(code) if not 0xD800 <= code < 0xE000 else "\ufffd"


def _splice(value: str | bytes, other: str | bytes, rng: random.Random) -> str | bytes:
    cut, other_cut = rng.randrange(len(value) + 1), rng.randrange(len(other) + 1)
    return value[:cut] + other[other_cut:]  # type: ignore[operator]


def _renumber(value: str | bytes, rng: random.Random) -> str | bytes:
    """Swap one run of digits for a number at the edge of its type."""
    text = _as_text(value)
    runs = list(_NUMBERS.finditer(text))
    if not runs:
        return value
    run = rng.choice(runs)
    number = str(rng.choice(TRICKY_INTS)) if rng.random() < 0.7 else rng.choice(TRICKY_TEXT)
    new = text[: run.start()] + number + text[run.end() :]
    return new.encode() if isinstance(value, bytes) else new
