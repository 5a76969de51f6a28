"""Kraken WS v2 adapter: messages, frame parsing, RFC3339 times, REST answers (no network)."""

import json
from decimal import Decimal

import pytest
from fakes.adapter_checks import CannedRest, control, sub, updates
from fakes.adapter_checks import kraken_adapter as adapter

from paper_trader.domain import Interval
from paper_trader.errors import ConfigError, RateLimited, TransientError
from paper_trader.exchange.kraken import parse_rfc3339_ms
from paper_trader.exchange.wire import (
    Control,
    ControlKind,
    KlineUpdate,
    MalformedFrame,
    RateSignal,
    RestAnswer,
    VenueError,
)

# Frames written from docs.kraken.com (WS v2 ohlc, status, heartbeat, ping) and the captured
# acknowledgements quoted in exchange-protocols.md.
SNAPSHOT = """{"channel":"ohlc","type":"snapshot","timestamp":"2023-10-04T16:26:01.806315597Z",
 "data":[
  {"symbol":"ALGO/USD","open":0.09875,"high":0.09875,"low":0.09875,"close":0.09875,"trades":1,
   "volume":201.86015,"vwap":0.09875,"interval_begin":"2023-10-04T15:25:00.000000000Z",
   "interval":5,"timestamp":"2023-10-04T15:30:00.000000Z"},
  {"symbol":"ALGO/USD","open":0.09875,"high":0.0988,"low":0.09875,"close":0.09875,"trades":13,
   "volume":16255.46368,"vwap":0.09879,"interval_begin":"2023-10-04T15:30:00.000000000Z",
   "interval":5,"timestamp":"2023-10-04T15:35:00.000000Z"}]}"""
UPDATE = """{"channel":"ohlc","type":"update","timestamp":"2026-10-06T18:06:02.264627814Z",
 "data":[{"symbol":"BTC/USD","open":85754.8,"high":85754.8,"low":85754.7,"close":85754.8,
  "trades":5,"volume":0.00126522,"vwap":85754.7,"interval_begin":"2026-10-06T18:06:00.000000000Z",
  "interval":1,"timestamp":"2026-10-06T18:07:00.000000Z"}]}"""
REEMITTED = UPDATE.replace('"close":85754.8', '"close":85754.7').replace("0.00126522", "0.51707722")
ACCEPTED = """{"method":"subscribe","result":{"channel":"ohlc","interval":1,"snapshot":true,
 "symbol":"BTC/USD","warnings":["timestamp is deprecated, use interval_begin"]},"success":true,
 "time_in":"2026-10-06T18:06:01.981684Z","time_out":"2026-10-06T18:06:01.981723Z"}"""
REJECTED = """{"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,
 "symbol":"XBT/USD","time_in":"2026-10-06T17:39:49.588049Z","time_out":"2026-10-06T17:39:49.588083Z"}"""
STATUS = """{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online",
 "api_version":"v2","connection_id":13834774380200032777,"upcoming_maintenance":[],"emergency":[]}]}"""
BEGIN_1806 = 1_791_309_960_000  # 2026-10-06T18:06:00Z


def test_subscribe_is_one_message_per_interval_with_snapshot() -> None:
    """Each interval gets one ohlc subscribe naming its v2 symbols; acks come per symbol."""
    kraken = adapter(sub("BTC-USD"), sub("ETH-USD"), sub("BTC-USD", Interval.H1))
    assert [json.loads(m) for m in kraken.subscribe_messages()] == [
        {
            "method": "subscribe",
            "params": {"channel": "ohlc", "symbol": ["BTC/USD", "ETH/USD"], "interval": 1,
                       "snapshot": True},
            "req_id": 1,
        },
        {
            "method": "subscribe",
            "params": {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 60, "snapshot": True},
            "req_id": 2,
        },
    ]  # fmt: skip
    assert kraken.expected_acks() == 3
    assert kraken.ws_url() == "wss://ws.kraken.com/v2"
    assert (kraken.closes_candles, kraken.ping_interval_s) == (False, 20.0)


def test_ping_messages_carry_increasing_req_ids_and_pong_parses() -> None:
    """Application pings number themselves; the ``pong`` answer is PONG."""
    kraken = adapter()
    first, second = (json.loads(kraken.ping_message() or "") for _ in range(2))
    assert first["method"] == second["method"] == "ping"
    assert second["req_id"] > first["req_id"]
    pong = '{"method":"pong","req_id":101,"time_in":"2023-09-24T14:10:23.799685Z","time_out":"x"}'
    assert control(kraken.parse(pong)).kind is ControlKind.PONG


def test_snapshot_rows_key_on_interval_begin_with_exact_decimals() -> None:
    """Snapshot rows become updates keyed on interval_begin, prices exact, no closed flag."""
    updates = adapter(sub("ALGO-USD", Interval.M5)).parse(SNAPSHOT)
    assert updates == (
        KlineUpdate(
            "ALGO-USD", Interval.M5, 1_696_433_100_000, None, 1_696_436_761_806,
            Decimal("0.09875"), Decimal("0.09875"), Decimal("0.09875"), Decimal("0.09875"),
            Decimal("201.86015"),
        ),
        KlineUpdate(
            "ALGO-USD", Interval.M5, 1_696_433_400_000, None, 1_696_436_761_806,
            Decimal("0.09875"), Decimal("0.0988"), Decimal("0.09875"), Decimal("0.09875"),
            Decimal("16255.46368"),
        ),
    )  # fmt: skip


def test_reemitted_update_keeps_the_open_time_with_new_values() -> None:
    """A re-emission of the same window is the same key with cumulative values."""
    kraken = adapter()
    [first] = updates(kraken.parse(UPDATE))
    [again] = updates(kraken.parse(REEMITTED))
    assert first.open_time_ms == again.open_time_ms == BEGIN_1806
    assert (first.volume, again.volume) == (Decimal("0.00126522"), Decimal("0.51707722"))
    assert again.close == Decimal("85754.7")


def test_deprecated_row_timestamp_is_never_the_key() -> None:
    """The per-candle ``timestamp`` (the interval END) is ignored, even if absent."""
    without = json.loads(UPDATE)
    del without["data"][0]["timestamp"], without["timestamp"]
    [update] = updates(adapter().parse(json.dumps(without)))
    assert update.open_time_ms == BEGIN_1806
    assert update.event_time_ms is None


def test_rows_of_unsubscribed_series_are_skipped_or_unknown() -> None:
    """Rows for another symbol or interval are dropped; a frame of only those is UNKNOWN."""
    frame = control(adapter(sub("ETH-USD")).parse(UPDATE))
    assert frame.kind is ControlKind.UNKNOWN
    assert "BTC/USD" in frame.message
    assert control(adapter(sub("BTC-USD", Interval.M5)).parse(UPDATE)).kind is ControlKind.UNKNOWN
    empty = '{"channel":"ohlc","type":"snapshot","data":[]}'
    assert adapter().parse(empty) == ()


def test_per_symbol_ack_and_rejection() -> None:
    """Each ack names its symbol in internal form; a refusal carries the venue's message."""
    kraken = adapter()
    ack = control(kraken.parse(ACCEPTED))
    assert (ack.kind, ack.symbol) == (ControlKind.ACK, "BTC-USD")
    refusal = control(kraken.parse(REJECTED))
    assert (refusal.kind, refusal.symbol) == (ControlKind.REJECTED, "BTC-USD")
    assert refusal.message == "Currency pair not supported XBT/USD"
    no_symbol = '{"method":"subscribe","success":false,"error":"EGeneral:Invalid arguments"}'
    assert control(kraken.parse(no_symbol)) == Control(
        kind=ControlKind.REJECTED, message="EGeneral:Invalid arguments"
    )
    other = control(kraken.parse(ACCEPTED.replace("BTC/USD", "ETH/USD")))
    assert other.kind is ControlKind.UNKNOWN


def test_status_and_heartbeat_frames() -> None:
    """The greeting is STATUS (big connection ids included); heartbeats are HEARTBEAT."""
    kraken = adapter()
    status = control(kraken.parse(STATUS))
    assert status.kind is ControlKind.STATUS
    assert "online" in status.message
    assert control(kraken.parse('{"channel":"heartbeat"}')).kind is ControlKind.HEARTBEAT


@pytest.mark.parametrize(
    "raw",
    [
        '{"error":"Exceeded msg rate"}',
        '{"Error":"Exceeded msg rate"}',
        '{"method":"unsubscribe","success":false,"error":"Subscription not found"}',
    ],
)
def test_error_frames_are_errors_with_the_venue_text(raw: str) -> None:
    """Venue errors are ERROR controls carrying the venue's message."""
    frame = control(adapter().parse(raw))
    assert frame.kind is ControlKind.ERROR
    assert "not found" in frame.message or "Exceeded msg rate" in frame.message


def test_unknown_shapes_are_unknown() -> None:
    """Valid JSON objects of unknown shape are UNKNOWN."""
    kraken = adapter()
    for raw in ('{"channel":"book","data":[]}', "{}", '{"method":"unsubscribe","success":true}'):
        assert control(kraken.parse(raw)).kind is ControlKind.UNKNOWN


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "",
        "[]",
        "1",
        '{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD"}]}',
        UPDATE.replace('"interval":1,', '"interval":"1",'),
        UPDATE.replace("2026-10-06T18:06:00.000000000Z", "2026-10-06 18:06"),
        UPDATE.replace("2026-10-06T18:06:00.000000000Z", "2026-10-06T18:06:00"),
        UPDATE.replace("2026-10-06T18:06:02.264627814Z", "yesterday"),
        UPDATE.replace("85754.8", "true", 1),
    ],
)
def test_malformed_frames_raise(raw: str) -> None:
    """Broken JSON, non-objects and ohlc frames of the wrong shape raise MalformedFrame."""
    with pytest.raises(MalformedFrame):
        adapter().parse(raw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-10-04T15:25:00.000000000Z", 1_696_433_100_000),
        ("2023-10-04T15:25:00Z", 1_696_433_100_000),
        ("2023-10-04T15:25:00.123456789Z", 1_696_433_100_123),
        ("2023-10-04T15:25:00.999999999Z", 1_696_433_100_999),
        ("2023-10-04T15:25:00.5Z", 1_696_433_100_500),
        ("2023-10-04T15:25:00.12+00:00", 1_696_433_100_120),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T23:59:59.001Z", 1_709_251_199_001),
    ],
)
def test_rfc3339_parses_exactly_to_the_millisecond(text: str, expected: int) -> None:
    """Up to nine fraction digits are read exactly and truncated to milliseconds."""
    assert parse_rfc3339_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2023-10-04T15:25:00",
        "2023-10-04T15:25:00+01:00",
        "2023-10-04T15:25:00.Z",
        "2023-10-04T15:25:00.1234567890Z",
        "2023-02-30T15:25:00Z",
        "2023-10-04T24:00:00Z",
        "2023-10-04T15:25:60Z",
        "2023-10-04 15:25:00Z",
        "२०२३-10-04T15:25:00Z",
        "",
    ],
)
def test_rfc3339_refuses_other_forms(text: str) -> None:
    """Local times, bad dates and more than nine fraction digits are refused."""
    with pytest.raises(ValueError):
        parse_rfc3339_ms(text)


@pytest.mark.parametrize("interval", [Interval.M3, Interval.H2, Interval.H12])
def test_unstreamed_interval_is_a_config_error(interval: Interval) -> None:
    """An interval Kraken does not stream is refused at construction, naming INTERVAL."""
    with pytest.raises(ConfigError, match="INTERVAL"):
        adapter(sub("BTC-USD", interval))


def ohlc_body(first_s: int, count: int, *, key: str = "XXBTZUSD") -> dict[str, object]:
    rows = [[first_s + 60 * i, "1.5", "2.0", "1.0", "1.75", "1.6", "0.25", 3] for i in range(count)]
    return {"error": [], "result": {key: rows, "last": first_s + 60 * (count - 2)}}


async def test_ohlc_rows_are_read_by_the_one_pair_key_and_the_open_row_dropped() -> None:
    """Rows under Kraken's own pair name become candles; the last (open) row never does."""
    rest = CannedRest(ohlc_body(1_704_067_200, 4, key="XBTUSD_ANY_NAME"))
    page = await adapter().fetch_klines(rest, sub("BTC-USD"), 1_704_067_200_000, 1_704_068_000_000)
    assert [c.open_time_ms for c in page.candles] == [
        1_704_067_200_000,
        1_704_067_260_000,
        1_704_067_320_000,
    ]
    candle = page.candles[0]
    assert (candle.symbol, candle.close, candle.volume) == (
        "BTC-USD",
        Decimal("1.75"),
        Decimal("0.25"),
    )
    assert (page.next_start_ms, page.history_start_ms) == (1_704_068_000_000, None)
    assert rest.requests == [
        ("/0/public/OHLC", {"pair": "XBTUSD", "interval": "1", "since": "1704067199"})
    ]


async def test_full_answer_starting_late_sets_history_start_clamped_to_the_range() -> None:
    """720 rows that begin after ``start_ms`` mean the venue forgot the rest."""
    rest = CannedRest(ohlc_body(1_704_067_200, 720))
    page = await adapter().fetch_klines(rest, sub("BTC-USD"), 0, 1_704_067_200_000 + 60_000)
    assert page.history_start_ms == 1_704_067_200_000
    assert len(page.candles) == 1
    later = await adapter().fetch_klines(rest, sub("BTC-USD"), 0, 60_000)
    assert (later.candles, later.history_start_ms) == ((), 60_000)


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (["EQuery:Unknown asset pair"], VenueError),
        (["EGeneral:Invalid arguments"], VenueError),
        (["EGeneral:Too many requests"], RateLimited),
        (["EAPI:Rate limit exceeded"], RateLimited),
        (["EService:Throttled: 1704153603"], RateLimited),
        (["EService: Throttled: 1704153603"], RateLimited),
        (["EService:Unavailable"], TransientError),
        (["EService:Busy"], TransientError),
    ],
)
async def test_ohlc_error_lists_are_classified(
    errors: list[str], expected: type[Exception]
) -> None:
    """Kraken's HTTP-200 error list becomes the exception its handler needs."""
    with pytest.raises(expected, match=errors[0]):
        await adapter().fetch_klines(CannedRest({"error": errors}), sub("BTC-USD"), 0, 60_000)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"error": [], "result": []},
        {"error": [], "result": {"A": [], "B": [], "last": 1}},
        {"error": [], "result": {"XXBTZUSD": [[1.5, "1", "1", "1", "1", "1", "1", 1], []]}},
        {"error": [], "result": {"XXBTZUSD": [[60, "1", "1", "x", "1", "1", "1", 1], []]}},
        {"error": [], "result": {"XXBTZUSD": [[60, "1", "1", 1.5, "1", "1", "1", 1], []]}},
    ],
)
async def test_unexpected_ohlc_bodies_are_venue_errors(body: object) -> None:
    """A body or row of the wrong shape is a VenueError, never a crash."""
    with pytest.raises(VenueError):
        await adapter().fetch_klines(CannedRest(body), sub("BTC-USD"), 0, 60_000)


async def test_server_time_reads_unixtime_in_seconds() -> None:
    """``unixtime`` seconds become milliseconds; an error list is a VenueError."""
    body = {"error": [], "result": {"unixtime": 1_704_067_200, "rfc1123": "Mon, 01 Jan 24"}}
    assert await adapter().server_time_ms(CannedRest(body)) == 1_704_067_200_000
    with pytest.raises(VenueError, match="EGeneral:Unknown method"):
        await adapter().server_time_ms(CannedRest({"error": ["EGeneral:Unknown method"]}))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": [], "result": {}}, RateSignal()),
        ({"error": ["EQuery:Unknown asset pair"]}, RateSignal()),
        ({"error": ["EService:Unavailable"]}, RateSignal()),
        ({"error": ["EAPI:Rate limit exceeded"]}, RateSignal(limited=True)),
        ({"error": ["EGeneral:Too many requests"]}, RateSignal(limited=True)),
        (
            {"error": ["EService:Throttled: 1704153603"]},
            RateSignal(limited=True, retry_at_ms=1_704_153_603_000),
        ),
        (  # the docs' spelling, with spaces
            {"error": ["EService: Throttled: 1704153603"]},
            RateSignal(limited=True, retry_at_ms=1_704_153_603_000),
        ),
        ({"error": ["EService:Throttled: soon"]}, RateSignal(limited=True)),
        ({"error": "EAPI:Rate limit exceeded"}, RateSignal()),  # not a list: not Kraken's shape
        (None, RateSignal()),
        ([1, 2], RateSignal()),
    ],
)
def test_rate_signal_reads_throttling_from_the_http_200_error_list(
    body: object, expected: RateSignal
) -> None:
    """Throttling errors are a refusal for rate; ``EService:Throttled`` names when it ends."""
    assert adapter().rate_signal(RestAnswer(200, {}, body)) == expected
