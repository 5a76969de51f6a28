"""Bitvavo adapter: subscribe messages, frame parsing, REST answers, intervals (no network)."""

import json
from decimal import Decimal

import pytest
from fakes.adapter_checks import CannedRest, control, sub, updates
from fakes.adapter_checks import bitvavo_adapter as adapter

from paper_trader.domain import Interval
from paper_trader.errors import ConfigError
from paper_trader.exchange.bitvavo import BAN_UNKNOWN_S, WS_WEIGHT_RESERVE
from paper_trader.exchange.wire import (
    ControlKind,
    KlinePage,
    KlineUpdate,
    MalformedFrame,
    RateSignal,
    RestAnswer,
    VenueError,
)

# Frames written from docs.bitvavo.com and the official SDK READMEs.
SDK_CANDLE = (
    '{"event":"candle","market":"BTC-EUR","interval":"1m",'
    '"candle":[[1548676800000,"2999.3","2999.3","2990.5","2999.3","11.15058838"]]}'
)
DOCS_CANDLE = (
    '{"event":"candles","market":"BTC-EUR","interval":"1m",'
    '"candle":[["1538784000000","4999","5012","4999","5012","0.45"]]}'
)


def test_subscribe_is_one_message_grouped_by_interval() -> None:
    """One subscribe message carries a candles channel per interval with its markets."""
    bitvavo = adapter(sub("BTC-EUR"), sub("ETH-EUR"), sub("BTC-EUR", Interval.H1))
    [message] = bitvavo.subscribe_messages()
    assert json.loads(message) == {
        "action": "subscribe",
        "channels": [
            {"name": "candles", "markets": ["BTC-EUR", "ETH-EUR"], "interval": ["1m"]},
            {"name": "candles", "markets": ["BTC-EUR"], "interval": ["1h"]},
        ],
    }
    assert bitvavo.expected_acks() == 1
    assert bitvavo.ws_url() == "wss://ws.bitvavo.com/v2/"
    assert bitvavo.ping_message() is None
    assert (bitvavo.closes_candles, bitvavo.ping_interval_s) == (False, None)


def test_sdk_candle_event_with_integer_timestamp_parses() -> None:
    """The SDK form (``candle``, integer ms) becomes an update without a closed flag."""
    assert adapter().parse(SDK_CANDLE) == (
        KlineUpdate(
            "BTC-EUR", Interval.M1, 1548676800000, None, None,
            "2999.3", "2999.3", "2990.5", "2999.3", "11.15058838",
        ),
    )  # fmt: skip


def test_docs_candles_event_with_string_timestamp_parses() -> None:
    """The docs form (``candles``, string ms) parses the same way, from bytes too."""
    [update] = updates(adapter().parse(DOCS_CANDLE.encode()))
    assert (update.open_time_ms, update.close, update.volume) == (1538784000000, "5012", "0.45")


def test_several_rows_give_several_updates() -> None:
    """Every row of ``candle`` is one update, in order."""
    frame = json.loads(SDK_CANDLE)
    frame["candle"].append([1548676860000, "1", "2", "0.5", "1.5", "3"])
    parsed = updates(adapter().parse(json.dumps(frame)))
    assert [u.open_time_ms for u in parsed] == [1548676800000, 1548676860000]


def test_numeric_prices_and_extra_row_fields_take_the_lenient_path() -> None:
    """Numbers instead of strings and longer rows still parse, exactly, as Decimal."""
    raw = (
        '{"event":"candle","market":"BTC-EUR","interval":"1m",'
        '"candle":[[1548676800000,2999.3,3000,2990.5,2999.3,0.10000000000000001,"x"]]}'
    )
    [update] = updates(adapter().parse(raw))
    assert update.to_candle(adapter().venue).volume == Decimal("0.10000000000000001")
    assert update.high == Decimal(3000)


def test_unsubscribed_market_is_unknown() -> None:
    """A candle for a market or interval not subscribed is reported, not emitted."""
    frame = control(adapter().parse(SDK_CANDLE.replace("BTC-EUR", "ETH-EUR")))
    assert frame.kind is ControlKind.UNKNOWN
    assert "ETH-EUR" in frame.message


def test_cumulative_ack_listing_every_market_is_ack() -> None:
    """The ``subscribed`` event listing every subscription acknowledges them all."""
    ack = '{"event":"subscribed","subscriptions":{"candles":{"1m":["BTC-EUR","ETH-EUR"]}}}'
    frame = control(adapter(sub("BTC-EUR"), sub("ETH-EUR")).parse(ack))
    assert frame.kind is ControlKind.ACK


def test_market_missing_from_the_ack_is_rejected_by_name() -> None:
    """A subscribed market the ack leaves out was refused: REJECTED naming it."""
    ack = '{"event":"subscribed","subscriptions":{"candles":{"1m":["BTC-EUR"]}}}'
    frame = control(adapter(sub("BTC-EUR"), sub("FOO-EUR")).parse(ack))
    assert (frame.kind, frame.symbol) == (ControlKind.REJECTED, "FOO-EUR")
    assert "FOO-EUR 1m" in frame.message


def test_empty_ack_rejects() -> None:
    """An ack with no candles subscriptions at all rejects the first subscription."""
    frame = control(adapter().parse('{"event":"subscribed","subscriptions":{}}'))
    assert (frame.kind, frame.symbol) == (ControlKind.REJECTED, "BTC-EUR")


@pytest.mark.parametrize(
    ("raw", "kind", "symbol"),
    [
        ('{"event":"error","errorCode":205,"error":"Invalid parameter: market FOO-EUR"}',
         ControlKind.REJECTED, "FOO-EUR"),
        ('{"action":"subscribe","errorCode":203,"error":"markets parameter is required."}',
         ControlKind.REJECTED, None),
        ('{"action":"subscribe","market":"FOO-EUR","errorCode":219,"error":"no longer listed"}',
         ControlKind.REJECTED, "FOO-EUR"),
        ('{"event":"error","errorCode":110,"error":"Rate limit exceeded"}',
         ControlKind.ERROR, None),
        ('{"action":"privateCreateOrder","errorCode":205,"error":"Invalid parameter: price"}',
         ControlKind.ERROR, None),
        ('{"errorCode":101,"error":"Unknown error"}', ControlKind.ERROR, None),
    ],
)  # fmt: skip
def test_error_frames_are_classified(raw: str, kind: ControlKind, symbol: str | None) -> None:
    """Parameter errors on the subscribe reject it; anything else is an ERROR, with the text."""
    frame = control(adapter(sub("BTC-EUR"), sub("FOO-EUR")).parse(raw))
    assert (frame.kind, frame.symbol) == (kind, symbol)
    assert json.loads(raw)["error"] in frame.message


def test_unknown_shapes_are_unknown_and_unsubscribed_is_status() -> None:
    """Valid JSON of an unknown shape is UNKNOWN; ``unsubscribed`` is a STATUS."""
    bitvavo = adapter()
    assert (
        control(bitvavo.parse('{"event":"trade","market":"BTC-EUR"}')).kind is ControlKind.UNKNOWN
    )
    assert control(bitvavo.parse("{}")).kind is ControlKind.UNKNOWN
    unsubscribed = '{"event":"unsubscribed","subscriptions":{}}'
    assert control(bitvavo.parse(unsubscribed)).kind is ControlKind.STATUS


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "",
        "[1, 2]",
        '"candle"',
        '{"event":"candle","market":"BTC-EUR","interval":"1m","candle":[[1,"1","1"]]}',
        '{"event":"candle","market":"BTC-EUR","interval":"1m","candle":[["1e3","1","1","1","1","1"]]}',
        '{"event":"candle","market":"BTC-EUR","interval":"1m","candle":[[-60000,"1","1","1","1","1"]]}',
        '{"event":"candle","market":"BTC-EUR","interval":"1m","candle":[[1,"1",true,"1","1","1"]]}',
        '{"event":"candle","market":"BTC-EUR","interval":"1m","candle":"x"}',
        '{"event":"subscribed"}',
    ],
)
def test_malformed_frames_raise(raw: str) -> None:
    """Broken JSON, non-objects and candle events of the wrong shape raise MalformedFrame."""
    with pytest.raises(MalformedFrame):
        adapter().parse(raw)


@pytest.mark.parametrize("interval", [Interval.M3])
def test_unstreamed_interval_is_a_config_error(interval: Interval) -> None:
    """An interval Bitvavo does not stream is refused at construction, naming INTERVAL."""
    with pytest.raises(ConfigError, match="INTERVAL"):
        adapter(sub("BTC-EUR", interval))


async def test_rest_rows_with_string_timestamps_are_sorted_ascending() -> None:
    """Docs-style rows (string times, newest first) come back ascending and in range only."""
    rows = [
        ["1704067380000", "4", "4", "4", "4", "1"],  # at end_ms: outside the range
        ["1704067320000", "3", "3", "3", "3", "1"],
        [1704067200000, "1", "1", "1", "1", "0.5"],
    ]
    rest = CannedRest(rows)
    bitvavo = adapter()
    page = await bitvavo.fetch_klines(rest, sub("BTC-EUR"), 1704067200000, 1704067380000)
    assert [c.open_time_ms for c in page.candles] == [1704067200000, 1704067320000]
    assert page.next_start_ms == 1704067380000
    assert rest.requests == [
        (
            "/BTC-EUR/candles",
            {"interval": "1m", "limit": "1440", "start": "1704067200000", "end": "1704067380000"},
        )
    ]


async def test_rest_window_is_aligned_to_the_interval_grid() -> None:
    """A start inside an interval is sent aligned down, an end inside one aligned up."""
    rest = CannedRest([])
    page = await adapter().fetch_klines(rest, sub("BTC-EUR"), 1704067200001, 1704067230000)
    assert rest.requests[0][1]["start"] == "1704067200000"
    assert rest.requests[0][1]["end"] == "1704067260000"
    assert page == KlinePage(candles=(), next_start_ms=1704067230000)


@pytest.mark.parametrize(
    "body",
    [
        {"errorCode": 205},
        [["x", "1", "1", "1", "1", "1"]],
        [[1, "1", "1", "1", "1"]],
        [[1, "1", "1", "nope", "1", "1"]],
        [[1, 1.5, "1", "1", "1", "1"]],
    ],
)
async def test_unexpected_rest_bodies_are_venue_errors(body: object) -> None:
    """A body or row of the wrong shape is a VenueError, never a crash."""
    with pytest.raises(VenueError):
        await adapter().fetch_klines(CannedRest(body), sub("BTC-EUR"), 0, 60_000)


async def test_server_time_needs_an_integer_time() -> None:
    """``{"time": ms}`` is read; anything else is a VenueError."""
    assert await adapter().server_time_ms(CannedRest({"time": 1704067200123})) == 1704067200123
    with pytest.raises(VenueError):
        await adapter().server_time_ms(CannedRest({"time": "soon"}))


# Rate-limit signals (docs "Rate limits"; the 105 text as the official SDKs parse it)

WINDOW = {
    "bitvavo-ratelimit-limit": "1000",
    "bitvavo-ratelimit-remaining": "998",
    "bitvavo-ratelimit-resetat": "1704153660000",
}


def signal(status: int, body: object, headers: dict[str, str] | None = None) -> RateSignal:
    return adapter().rate_signal(RestAnswer(status, WINDOW if headers is None else headers, body))


def test_every_answer_reports_the_window_less_the_websocket_reserve() -> None:
    """A plain answer is not limited and carries remaining (less the reserve) and resetat."""
    assert signal(200, {"time": 1}) == RateSignal(
        remaining=998 - WS_WEIGHT_RESERVE, reset_at_ms=1_704_153_660_000
    )
    nearly_spent = {**WINDOW, "bitvavo-ratelimit-remaining": "1"}
    assert signal(200, [], nearly_spent).remaining == 0


def test_429_code_110_comes_back_at_resetat() -> None:
    """HTTP 429 ``errorCode`` 110 (no Retry-After) names resetat as the time to retry."""
    body = {"errorCode": 110, "error": "Rate limit exceeded."}
    limited = signal(429, body, {**WINDOW, "bitvavo-ratelimit-remaining": "0"})
    assert (limited.limited, limited.retry_at_ms, limited.remaining) == (
        True,
        1_704_153_660_000,
        0,
    )


def test_code_110_without_429_is_the_older_invalid_endpoint_not_a_rate_limit() -> None:
    """The older map's 110 ("Invalid endpoint", HTTP 404) is the venue refusing, not a limit."""
    assert not signal(404, {"errorCode": 110, "error": "Invalid endpoint."}).limited


def test_code_103_prefers_the_allowat_header() -> None:
    """103 "rate limited" points at ``Bitvavo-Ratelimit-AllowAt`` where it is sent."""
    headers = {**WINDOW, "Bitvavo-Ratelimit-AllowAt".lower(): "1704153605000"}
    assert signal(429, {"errorCode": 103, "error": "rate limited"}, headers).retry_at_ms == (
        1_704_153_605_000
    )


def test_code_105_comes_back_when_the_ban_its_text_names_expires() -> None:
    """105 "... The ban expires at <ms>." names the ban's end, whatever the HTTP status."""
    text = (
        "Your IP or API key has been banned for not respecting the rate limit. "
        "The ban expires at 1704154500000."
    )
    banned = signal(403, {"errorCode": 105, "error": text}, {})
    assert (banned.limited, banned.retry_at_ms) == (True, 1_704_154_500_000)


def test_code_105_without_a_readable_end_waits_the_documented_block() -> None:
    """A 105 whose text names no time waits Bitvavo's 15-minute IP block."""
    banned = signal(403, {"errorCode": 105, "error": "banned"}, {})
    assert (banned.limited, banned.retry_at_ms, banned.retry_after_s) == (
        True,
        None,
        BAN_UNKNOWN_S,
    )


@pytest.mark.parametrize("value", ["", "soon", "-5", "1.5e3", "٣", "9" * 40])
def test_garbled_ratelimit_headers_are_ignored(value: str) -> None:
    """A header that is not a plain integer is no signal at all, never a crash."""
    headers = {"bitvavo-ratelimit-remaining": value, "bitvavo-ratelimit-resetat": value}
    assert signal(429, None, headers) == RateSignal(limited=True)
