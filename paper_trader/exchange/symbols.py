"""Each venue's spelling of a pair (the internal form is `paper_trader.domain.symbols`)."""

from paper_trader.domain.symbols import ASSET_ALIASES, Pair

_KRAKEN_CODES = {common: legacy for legacy, common in ASSET_ALIASES.items()}


def binance_symbol(pair: Pair) -> str:
    """Return Binance's spelling (``BTCUSDT``)."""
    return pair.base + pair.quote


def bitvavo_market(pair: Pair) -> str:
    """Return Bitvavo's market name (``BTC-EUR``)."""
    return f"{pair.base}-{pair.quote}"


def kraken_ws_symbol(pair: Pair) -> str:
    """Return Kraken WS v2's spelling (``BTC/USD``; v2 rejects the legacy ``XBT/USD``)."""
    return f"{pair.base}/{pair.quote}"


def kraken_rest_pair(pair: Pair) -> str:
    """Return Kraken REST's altname (``XBTUSD``)."""
    return _KRAKEN_CODES.get(pair.base, pair.base) + _KRAKEN_CODES.get(pair.quote, pair.quote)
