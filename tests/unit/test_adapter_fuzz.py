"""Fuzzing the venues' frame parsers: arbitrary bytes, arbitrary JSON and shapes close to
each venue's own frames never raise anything but MalformedFrame (no network)."""

import json

import pytest
from fakes.adapter_checks import (
    JSON_VALUES,
    assert_parses_or_is_malformed,
    bitvavo_adapter,
    kraken_adapter,
)
from hypothesis import given
from hypothesis import strategies as st

from paper_trader.exchange.wire import VenueAdapter

_cell = st.one_of(st.integers(), st.text(max_size=6), st.floats(allow_nan=False), st.none())
BITVAVO_CANDLE_LIKE = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["candle", "candles", "subscribed", "error"]),
        "market": st.sampled_from(["BTC-EUR", "ETH-EUR", 1]),
        "interval": st.sampled_from(["1m", "5m", None]),
        "candle": st.lists(st.lists(_cell, max_size=7), max_size=3) | JSON_VALUES,
        "subscriptions": JSON_VALUES,
        "errorCode": st.integers(100, 300) | JSON_VALUES,
    }
)
_row = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(["BTC/USD", "XBT/USD"]) | JSON_VALUES,
        "open": st.floats(allow_nan=False) | st.text(max_size=6) | st.integers(),
        "high": st.just(1.5),
        "low": st.just(1.0),
        "close": st.just(1.25),
        "volume": st.floats(allow_nan=False) | JSON_VALUES,
        "interval_begin": st.text(max_size=32) | st.just("2023-10-04T15:25:00.000000000Z"),
        "interval": st.sampled_from([1, 5]) | JSON_VALUES,
    }
)
KRAKEN_OHLC_LIKE = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["ohlc", "heartbeat", "status"]),
        "method": st.sampled_from(["subscribe", "pong"]) | JSON_VALUES,
        "success": JSON_VALUES,
        "result": JSON_VALUES | st.fixed_dictionaries({"symbol": JSON_VALUES}),
        "symbol": JSON_VALUES,
        "data": st.lists(_row, max_size=3) | JSON_VALUES,
        "timestamp": st.text(max_size=32) | JSON_VALUES,
    }
)
ADAPTERS: dict[str, VenueAdapter] = {"bitvavo": bitvavo_adapter(), "kraken": kraken_adapter()}
NEAR_FRAMES = {"bitvavo": BITVAVO_CANDLE_LIKE, "kraken": KRAKEN_OHLC_LIKE}
VENUES = pytest.mark.parametrize("venue", sorted(ADAPTERS))


@VENUES
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_fuzz_arbitrary_input_raises_only_malformed_frame(venue: str, raw: bytes | str) -> None:
    """Arbitrary bytes never raise anything but MalformedFrame."""
    assert_parses_or_is_malformed(ADAPTERS[venue], raw)


@VENUES
@given(data=st.data())
def test_fuzz_arbitrary_json_raises_only_malformed_frame(venue: str, data: st.DataObject) -> None:
    """Arbitrary JSON, and near-candle (Bitvavo) or near-ohlc (Kraken) shapes, never raise
    anything but MalformedFrame."""
    value = data.draw(JSON_VALUES | NEAR_FRAMES[venue])
    assert_parses_or_is_malformed(ADAPTERS[venue], json.dumps(value))
