"""Symbols: a pair in any venue's spelling read into the one internal form (``BTC-USDT``).

Users write symbols the way their venue does (``BTCUSDT`` on Binance, ``BTC-EUR`` on Bitvavo,
``BTC/USD`` or ``XBTUSD`` on Kraken); the daemon stores and reports ``BASE-QUOTE`` with the
common asset codes, so the same pair reads the same everywhere.
"""

import re
from dataclasses import dataclass

# Quote assets, longest first, to split concatenated symbols such as ``BTCUSDT``.
_QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "DAI",
    "EUR",
    "USD",
    "GBP",
    "TRY",
    "BRL",
    "JPY",
    "AUD",
    "CAD",
    "CHF",
    "BTC",
    "ETH",
    "BNB",
)
# Kraken's legacy asset codes and the common ones they stand for.
ASSET_ALIASES: dict[str, str] = {"XBT": "BTC", "XDG": "DOGE"}
_ASSET = re.compile(r"^[A-Z0-9]{2,12}$")


@dataclass(frozen=True, slots=True)
class Pair:
    """A base and quote asset in their common codes."""

    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.base}-{self.quote}"


def parse_pair(text: str) -> Pair:
    """Read a pair in any venue's spelling; raise ``ValueError`` if it is not one."""
    cleaned = text.strip().upper()
    parts = re.split(r"[-/_]", cleaned)
    if len(parts) == 2:
        base, quote = parts
    elif len(parts) == 1:
        base, quote = _split_concatenated(cleaned)
    else:
        raise ValueError(f"{text!r} is not a symbol")
    base, quote = ASSET_ALIASES.get(base, base), ASSET_ALIASES.get(quote, quote)
    if not (_ASSET.match(base) and _ASSET.match(quote)) or base == quote:
        raise ValueError(f"{text!r} is not a symbol")
    return Pair(base, quote)


def normalise_symbol(text: str) -> str:
    """Return the internal form (``BTC-USDT``) of a symbol in any venue's spelling."""
    return str(parse_pair(text))


def _split_concatenated(text: str) -> tuple[str, str]:
    """Split ``BTCUSDT``: prefer Kraken's legacy bases (``XBTUSD``), then bases of 3+ letters."""
    splits = [
        (text[: -len(quote)], quote)
        for quote in _QUOTES
        if text.endswith(quote) and len(text) > len(quote) + 1
    ]
    if not splits:
        raise ValueError(
            f"{text!r} has no known quote asset; write it as BASE-QUOTE, e.g. BTC-USDT"
        )
    for base, quote in splits:
        if base in ASSET_ALIASES:
            return base, quote
    return next(((b, q) for b, q in splits if len(b) >= 3), splits[0])
