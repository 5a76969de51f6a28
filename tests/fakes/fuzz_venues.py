"""The venues' WebSocket frames and REST answers as hypothesis strategies, shaped after the
frames of the venues' docs and captures (the samples quoted in each adapter's docstring).

``*_FRAMES``: what a venue's WebSocket may deliver (candles, acks, errors, heartbeats,
shutdowns, near-misses of each, deep nesting, arbitrary bytes). ``*_ANSWERS``: one REST
answer as the REST client hands it on, ``(endpoint, status, headers, body)``: ``endpoint`` is
``klines`` or ``time``, the body is already decoded JSON. ``REST_RAW``: an answer's raw bytes
and headers, before the REST client decodes them.
"""

import email.utils
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fakes.fuzz_atoms import (
    JSON_VALUES,
    digits,
    dumps,
    embedded,
    floats,
    ints,
    mostly,
    raw_input,
    texts,
    wire,
)
from hypothesis import strategies as st
from multidict import CIMultiDict

from paper_trader.domain import Interval

_OPEN = 1_633_998_480_000  # the open time of binance_ws_combined_kline_captured
open_ms = st.integers(-2, 1500).map(lambda k: _OPEN + k * 60_000) | st.integers(0, 1440).map(
    lambda k: k * 60_000
)
open_times = open_ms | ints
intervals = st.sampled_from([i.value for i in Interval] + ["1M", "1s", "", "1H"])
price_text = (
    st.sampled_from(("0.35270000", "25877.00000000", "30306.1", "0", "1e5", "-1", "NaN", "abc"))
    | st.decimals(allow_nan=True).map(str)
    | texts
)
prices = price_text | ints | floats
# Values a candle decodes from: what the fast paths see, and to_candle turns into a Candle.
good_price = st.decimals(min_value=0, max_value=10**9, places=8).map(str) | st.sampled_from(
    ("0.35270000", "30306.1", "0")
)
good_number = st.floats(min_value=0, max_value=1e9) | st.integers(0, 10**9)
statuses = st.sampled_from((200, 200, 200, 400, 403, 418, 429, 500, 503))
endpoints = st.sampled_from(("klines", "time"))

# Binance spot: combined kline streams (binance_ws_combined_kline_captured).
_BINANCE_KLINE = mostly(
    {
        "t": open_times,
        "T": open_times,
        "s": st.sampled_from(("BTCUSDT", "ETHUSDT", "NKNUSDT")) | texts,
        "i": intervals,
        "f": ints,
        "L": ints,
        "o": price_text,
        "c": price_text,
        "h": price_text,
        "l": price_text,
        "v": price_text,
        "n": ints,
        "x": st.booleans(),
        "q": price_text,
    }
)
_BINANCE_EVENT = mostly(
    {
        "e": st.sampled_from(("kline", "serverShutdown")) | texts,
        "E": ints,
        "s": st.sampled_from(("BTCUSDT", "ETHUSDT")) | texts,
        "k": _BINANCE_KLINE,
    }
)
_BINANCE_OTHER = (
    st.fixed_dictionaries({"e": st.just("serverShutdown"), "E": ints | JSON_VALUES})
    | mostly({"code": ints, "msg": texts})
    | mostly({"error": mostly({"code": ints, "msg": texts}), "id": ints})
    | mostly({"result": JSON_VALUES, "id": ints})
)
_BINANCE = mostly(
    {
        "stream": st.sampled_from(("btcusdt@kline_1m", "ethusdt@kline_5m", "!serverShutdown"))
        | texts,
        "data": _BINANCE_EVENT | _BINANCE_OTHER,
    }
)
_BINANCE_CANDLE = st.builds(
    lambda series, t, closed, values: {
        "stream": f"{series[0].lower()}@kline_{series[1]}",
        "data": {
            "e": "kline",
            "E": t + 59_999,
            "s": series[0],
            "k": dict(zip("tisohlcvx", (t, series[1], series[0], *values, closed), strict=True)),
        },
    },
    st.sampled_from((("BTCUSDT", "1m"), ("ETHUSDT", "5m"))),
    open_ms,
    st.booleans(),
    st.tuples(*(good_price,) * 5),
)
BINANCE_FRAMES = (
    wire(_BINANCE_CANDLE) | wire(_BINANCE | _BINANCE_OTHER) | embedded(_BINANCE) | raw_input()
)

# Bitvavo: candle events (both spellings), the cumulative ack, error events.
markets = st.sampled_from(("BTC-EUR", "ETH-EUR", "XRP-EUR")) | texts
_BITVAVO_ROW = st.tuples(
    open_ms | open_ms.map(str) | digits | ints, prices, prices, prices, prices, prices
).map(list) | st.lists(prices | JSON_VALUES, max_size=8)
_BITVAVO_CANDLE = mostly(
    {
        "event": st.sampled_from(("candle", "candles")),
        "market": markets,
        "interval": intervals,
        "candle": st.lists(_BITVAVO_ROW, max_size=3),
    }
)
_BITVAVO_ACK = mostly(
    {
        "event": st.just("subscribed"),
        "subscriptions": mostly(
            {"candles": st.dictionaries(intervals, st.lists(markets, max_size=3), max_size=3)}
        ),
    }
)
_BITVAVO_ERROR = mostly(
    {
        "event": st.sampled_from(("error", "unsubscribed")) | texts,
        "errorCode": st.sampled_from((103, 105, 110, 203, 204, 205, 206, 219, 233)) | ints,
        "error": texts,
        "action": st.sampled_from(("subscribe", "getCandles")) | st.none() | texts,
        "market": markets,
    }
)
_BITVAVO_GOOD_ROW = st.tuples(open_ms | open_ms.map(str), *(good_price | good_number,) * 5)
_BITVAVO_GOOD = st.builds(
    lambda series, event, rows: {
        "event": event,
        "market": series[0],
        "interval": series[1],
        "candle": [list(r) for r in rows],
    },
    st.sampled_from((("BTC-EUR", "1m"), ("ETH-EUR", "1h"))),
    st.sampled_from(("candle", "candles")),
    st.lists(_BITVAVO_GOOD_ROW, min_size=1, max_size=3),
)
_BITVAVO = _BITVAVO_CANDLE | _BITVAVO_ACK | _BITVAVO_ERROR
BITVAVO_FRAMES = wire(_BITVAVO_GOOD) | wire(_BITVAVO) | embedded(_BITVAVO_CANDLE) | raw_input()


def _rfc3339(
    year: int, month: int, day: int, clock: tuple[int, int, int], fraction: str, zone: str
) -> str:
    hour, minute, second = clock
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


rfc3339 = st.builds(
    _rfc3339,
    st.integers(0, 10_000),
    st.integers(0, 13),
    st.integers(0, 32),
    st.tuples(st.integers(0, 24), st.integers(0, 60), st.integers(0, 61)),
    st.sampled_from(("", ".0", ".000000000", ".123456789", ".1234567890123", ".")),
    st.sampled_from(("Z", "z", "+00:00", "+01:00", "", "-00:00")),
) | st.just("2023-10-04T15:25:00.000000000Z")

# Kraken WS v2: ohlc snapshots and updates, heartbeats, status, per-symbol subscribe answers.
_KRAKEN_ROW = mostly(
    {
        "symbol": st.sampled_from(("BTC/USD", "ETH/USD", "XBT/USD")) | texts,
        "open": prices,
        "high": prices,
        "low": prices,
        "close": prices,
        "volume": prices,
        "interval_begin": rfc3339 | texts,
        "interval": st.sampled_from((1, 5, 60)) | ints,
    }
)
_KRAKEN_OHLC = mostly(
    {
        "channel": st.just("ohlc"),
        "type": st.sampled_from(("snapshot", "update")),
        "timestamp": rfc3339,
        "data": st.lists(_KRAKEN_ROW, max_size=3),
    }
)
_KRAKEN_SYMBOL = st.sampled_from(("BTC/USD", "ETH/USD", "XBT/USD", "BTCUSD")) | texts
_KRAKEN_OTHER = mostly(
    {"channel": st.sampled_from(("heartbeat", "status")) | texts, "data": JSON_VALUES}
) | mostly(
    {
        "method": st.sampled_from(("subscribe", "pong", "unsubscribe")) | texts,
        "result": mostly({"channel": st.just("ohlc"), "symbol": _KRAKEN_SYMBOL}),
        "success": st.booleans(),
        "symbol": _KRAKEN_SYMBOL,
        "error": texts,
        "req_id": ints,
    }
)
_KRAKEN_GOOD_ROW = st.builds(
    lambda series, begin, values: {
        "symbol": series[0],
        **dict(zip(("open", "high", "low", "close", "volume"), values, strict=True)),
        "interval_begin": begin,
        "interval": series[1],
    },
    st.sampled_from((("BTC/USD", 1), ("ETH/USD", 5))),
    rfc3339,
    st.tuples(*(good_number | good_price,) * 5),
)
_KRAKEN_GOOD = st.fixed_dictionaries(
    {
        "channel": st.just("ohlc"),
        "type": st.sampled_from(("snapshot", "update")),
        "data": st.lists(_KRAKEN_GOOD_ROW, min_size=1, max_size=3),
    },
    optional={"timestamp": rfc3339},
)
KRAKEN_FRAMES = (
    wire(_KRAKEN_GOOD) | wire(_KRAKEN_OHLC | _KRAKEN_OTHER) | embedded(_KRAKEN_OHLC) | raw_input()
)


def _headers(names: tuple[str, ...]) -> st.SearchStrategy[CIMultiDict[str]]:
    values = digits | texts | st.sampled_from(("5", " 7 ", "1700000000000", "-3", "1e3"))
    return st.dictionaries(st.sampled_from(names), values, max_size=len(names)).map(CIMultiDict)


def _answers(
    headers: tuple[str, ...], bodies: st.SearchStrategy[Any]
) -> st.SearchStrategy[tuple[str, int, CIMultiDict[str], Any]]:
    return st.tuples(endpoints, statuses, _headers(headers), bodies | JSON_VALUES)


_BINANCE_ROW = st.tuples(
    open_times, price_text, price_text, price_text, price_text, price_text, ints, price_text
).map(list) | st.lists(prices | JSON_VALUES, max_size=13)
BINANCE_ANSWERS = _answers(
    ("X-MBX-USED-WEIGHT-1M", "Retry-After"),
    st.lists(_BINANCE_ROW, max_size=4)
    | mostly({"serverTime": ints})
    | mostly({"code": ints, "msg": texts}),
)
BITVAVO_ANSWERS = _answers(
    (
        "bitvavo-ratelimit-remaining",
        "bitvavo-ratelimit-resetat",
        "bitvavo-ratelimit-allowat",
        "bitvavo-ratelimit-limit",
    ),
    st.lists(_BITVAVO_ROW, max_size=4)
    | mostly({"time": ints})
    | mostly(
        {
            "errorCode": st.sampled_from((103, 105, 110, 205)) | ints,
            "error": st.sampled_from(("The ban expires at 1700000000000", "rate limited")) | texts,
        }
    ),
)
_KRAKEN_ERRORS = st.lists(
    st.sampled_from(
        (
            "EAPI:Rate limit exceeded",
            "EService:Throttled: 1700000000",
            "EService: Throttled: 99",
            "EGeneral:Too many requests",
            "EGeneral:Temporary lockout",
            "EGeneral:Internal error",
            "EDatabase:Internal error",
            "EQuery:Unknown asset pair",
            "EService:Unavailable",
        )
    )
    | JSON_VALUES,
    max_size=2,
)
_KRAKEN_REST_ROW = st.tuples(open_times.map(lambda ms: ms // 1000), *(price_text,) * 6, ints).map(
    list
) | st.lists(prices | JSON_VALUES, max_size=9)
KRAKEN_ANSWERS = _answers(
    ("Retry-After",),
    mostly(
        {
            "error": _KRAKEN_ERRORS,
            "result": mostly({"XXBTZUSD": st.lists(_KRAKEN_REST_ROW, max_size=4), "last": ints})
            | mostly({"unixtime": ints, "rfc1123": texts}),
        }
    ),
)


def _http_date(moment: datetime, offset_minutes: int) -> str:
    return email.utils.format_datetime(
        moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    )


_DATES = st.builds(_http_date, st.datetimes(), st.integers(-1439, 1439)) | st.datetimes(
    timezones=st.just(UTC)
).map(lambda moment: email.utils.format_datetime(moment, usegmt=True))
_RAW_HEADERS = st.fixed_dictionaries(
    {}, optional={"Retry-After": digits | texts | floats.map(str), "Date": _DATES | texts}
).map(CIMultiDict)
_RAW_BODIES = (
    st.one_of(BINANCE_ANSWERS, BITVAVO_ANSWERS, KRAKEN_ANSWERS).map(lambda a: dumps(a[3]))
    | raw_input()
).map(lambda raw: raw.encode() if isinstance(raw, str) else raw)
REST_RAW = st.tuples(_RAW_BODIES, _RAW_HEADERS)
