"""The values that break decoders, and arbitrary JSON, as hypothesis strategies and as plain
tuples (the mutation fuzzer of ``fakes/fuzz_mutate.py`` draws from the same tuples).

Every shape of ``fakes/fuzz_venues.py`` and ``fakes/fuzz_local.py`` mixes these into values
close to the real formats: digits ``int()`` refuses (``²``, 4,301 of them), numbers past
int64, text that is not a number, nesting past the recursion limit, bytes that are not UTF-8.
"""

import json
from typing import Any

from hypothesis import strategies as st

# Text that decoders of numbers, symbols and times get wrong.
TRICKY_TEXT: tuple[str, ...] = (
    "", " ", "0", "00", "007", "-0", "-1", "1", "+1", "1.5", "1e5", "1E-7", "1_000", " 1 ",
    "NaN", "nan", "sNaN", "-Infinity", "inf", "0x1f", "\x00", "\t",
    # Digits to str.isdigit() that int() refuses or reads: superscript two, Arabic-Indic
    # digits, a mathematical bold nine, a fraction.
    "\u00b2", "\u0661\u0662\u0663", "\u0663", "\U0001d7d7", "\u00bd",
    "\u00a0", "\ufffd", "é", "all", "ALL", "*", "BTC-USDT", "BTC/USD", "XBT/USD",
    "BTC-EUR", "BTCUSDT", "9" * 19, "9" * 4301, "1" + "0" * 40, "[", "{", '"', ",", "\n",
    "\r\n", "null", "true",
)  # fmt: skip
# Integers at the edges of the types they end up in (JSON, int64, uint64, SQLite).
TRICKY_INTS: tuple[int, ...] = (
    0, 1, -1, 59_999, 60_000, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
    -(2**63), -(2**63) - 1, 10**30,
)  # fmt: skip
TRICKY_FLOATS: tuple[float, ...] = (0.0, -0.0, 1e-320, 1.5, 1e308, float("inf"), -1e16)
# Snippets that break JSON decoders when spliced into a frame: nesting around the recursion
# limit (msgspec and json refuse at about 1,000 levels, less what the stack already holds).
DEEP_TEXT: tuple[str, ...] = tuple(
    opener * depth + closer * depth
    for depth in (50, 500, 980, 990, 995, 998, 1000, 1010, 3000)
    for opener, closer in (("[", "]"), ('{"a":', "}"))
)


def pick(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Return ``sampled_from(values)`` whose repr is short (a failing example's report shows
    the strategies it drew from: 4,301 nines would fill it)."""
    return st.sampled_from(range(len(values))).map(values.__getitem__)


tricky = pick(TRICKY_TEXT)
texts = st.text(max_size=12) | tricky
ints = st.integers() | st.sampled_from(TRICKY_INTS)
floats = st.floats(allow_nan=False) | st.sampled_from(TRICKY_FLOATS)
digits = st.integers(0, 10**16).map(str) | pick(("\u00b2", "\u0663", "9" * 4301, "0" * 30))

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | ints | floats | texts,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)
deep = pick(DEEP_TEXT)


def dumps(value: object) -> str:
    """Return ``value`` as JSON text (``Infinity`` where a float is infinite: not JSON, a
    frame a decoder must refuse)."""
    return json.dumps(value, separators=(",", ":"))


def wire(frames: st.SearchStrategy[Any]) -> st.SearchStrategy[str | bytes]:
    """Return frames as a WebSocket delivers them: JSON text, or its UTF-8 bytes."""
    text = frames.map(dumps)
    return text | text.map(str.encode)


def embedded(frames: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[str]:
    """Return frames with one value replaced by a snippet of ``DEEP_TEXT`` or raw text."""

    def splice(frame: dict[str, Any], key: str, snippet: str) -> str:
        marker = "\x00splice\x00"
        return dumps({**frame, key: marker}).replace(dumps(marker), snippet)

    keys = st.sampled_from(("data", "candle", "result", "error", "topics", "k", "x"))
    snippets = deep | tricky | st.text(max_size=12)
    return st.builds(splice, frames, keys, snippets)


def raw_input() -> st.SearchStrategy[str | bytes]:
    """Return arbitrary bytes, arbitrary text, arbitrary JSON and deep nesting."""
    return st.binary(max_size=200) | st.text(max_size=200) | wire(JSON_VALUES) | deep | tricky


def mostly(good: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Return objects with every key of ``good`` well typed, or any of them missing or of
    any JSON type: the first get past a typed decoder, the second test its fallback."""
    loose = {key: value | JSON_VALUES for key, value in good.items()}
    return st.fixed_dictionaries(good) | st.fixed_dictionaries({}, optional=loose)
