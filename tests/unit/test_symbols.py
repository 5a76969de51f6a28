"""Tests for symbol spellings: every venue's form maps to one internal form and back."""

import pytest

from paper_trader.domain.symbols import normalise_symbol, parse_pair
from paper_trader.exchange.symbols import (
    binance_symbol,
    bitvavo_market,
    kraken_rest_pair,
    kraken_ws_symbol,
)


@pytest.mark.parametrize(
    ("text", "internal"),
    [
        ("BTCUSDT", "BTC-USDT"),
        ("btcusdt", "BTC-USDT"),
        ("ETHBTC", "ETH-BTC"),
        ("BNBFDUSD", "BNB-FDUSD"),
        ("BTC-EUR", "BTC-EUR"),
        ("BTC/USD", "BTC-USD"),
        ("XBT/USD", "BTC-USD"),
        ("XBTUSD", "BTC-USD"),
        ("XDGUSD", "DOGE-USD"),
        ("OPUSDT", "OP-USDT"),
    ],
)
def test_venue_spellings_normalise_to_one_form(text: str, internal: str) -> None:
    """Binance, Bitvavo and Kraken spellings all read as BASE-QUOTE."""
    assert normalise_symbol(text) == internal


@pytest.mark.parametrize(
    "text", ["", "BTC", "BTC-", "BTC/USD/EUR", "BTC USDT", "BTCXYZ", "BTC-BTC"]
)
def test_non_symbols_are_refused_with_the_text(text: str) -> None:
    """Text that is not a pair raises ValueError quoting it."""
    with pytest.raises(ValueError, match=r"symbol|quote"):
        parse_pair(text)


def test_each_venue_gets_its_own_spelling_back() -> None:
    """The internal pair is spelled the venue's way on the wire (Kraken REST uses XBT)."""
    pair = parse_pair("BTC-USD")
    assert binance_symbol(pair) == "BTCUSD"
    assert bitvavo_market(pair) == "BTC-USD"
    assert kraken_ws_symbol(pair) == "BTC/USD"
    assert kraken_rest_pair(pair) == "XBTUSD"
