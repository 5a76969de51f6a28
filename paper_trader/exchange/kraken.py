"""Kraken spot WebSocket v2 ``ohlc``: per-symbol acks, no closed flag, REST ``/0/public/OHLC``.

Protocol facts (docs.kraken.com WS v2, krakenfx/api-specs): the server greets with a ``status``
frame; a subscribe is acknowledged once *per symbol*, and refused the same way
(``success: false`` with the venue's ``error``). Candles arrive as a ``snapshot`` and then as
``update`` frames on each trade, re-emitting the same ``interval_begin`` with cumulative values;
there is no closed flag. Prices are JSON numbers with the engine's precision, so they are
decoded straight into ``Decimal``. A candle is keyed on ``interval_begin`` (RFC3339 with up to
nine fractional digits), never on the deprecated per-candle ``timestamp``, which is the interval
*end*. ``heartbeat`` frames flow about once a second when nothing else does; they prove the
transport, not the subscription. The application ping ``{"method":"ping"}`` is answered by
``{"method":"pong"}``. REST OHLC serves only the last 720 rows, and its last row is the current,
uncommitted candle; errors come as a non-empty ``error`` list with HTTP 200, throttling too
(docs "REST rate limits"): ``EAPI:Rate limit exceeded`` (the call counter is full; it decays in
seconds), ``EService:Throttled: <unix s>`` (too many concurrent requests: retry after then) and
``EGeneral:Too many requests`` (public endpoints): refusals for rate, never the venue refusing.

Sample frames::

    {"channel":"ohlc","type":"update","timestamp":"2026-10-06T18:06:02.264627814Z",
     "data":[{"symbol":"BTC/USD","open":85754.8,"high":85754.8,"low":85754.7,
              "close":85754.8,"trades":5,"volume":0.00126522,"vwap":85754.7,
              "interval_begin":"2026-10-06T18:06:00.000000000Z","interval":1,
              "timestamp":"2026-10-06T18:07:00.000000Z"}]}
    {"method":"subscribe","result":{"channel":"ohlc","interval":1,"snapshot":true,
     "symbol":"BTC/USD"},"success":true,"time_in":"…","time_out":"…"}
    {"error":"Currency pair not supported XBT/USD","method":"subscribe","success":false,
     "symbol":"XBT/USD","time_in":"…","time_out":"…"}
"""

import itertools
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import msgspec

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.domain.symbols import parse_pair
from paper_trader.errors import RateLimited, TransientError
from paper_trader.exchange.adapter_base import AdapterBase, decode_object, decode_typed
from paper_trader.exchange.symbols import kraken_rest_pair, kraken_ws_symbol
from paper_trader.exchange.wire import (
    Control,
    ControlKind,
    Frame,
    KlinePage,
    KlineUpdate,
    MalformedFrame,
    RateSignal,
    RestAnswer,
    RestClient,
    Subscription,
    VenueError,
)

MAX_ROWS = 720
OHLC_WEIGHT = 1
SUPPORTED = frozenset(
    {Interval.M1, Interval.M5, Interval.M15, Interval.M30, Interval.H1, Interval.H4, Interval.D1}
)
RATE_LIMIT_ERRORS = (
    "EAPI:Rate limit exceeded",
    "EGeneral:Too many requests",
    "EGeneral:Temporary",  # "Temporary lockout"
    "EService:Throttled",
    "EService: Throttled",  # the docs' spelling
)
TRANSIENT_ERRORS = ("EService:", "EDatabase:", "EGeneral:Internal error")
_THROTTLED_UNTIL = re.compile(r"EService: ?Throttled: ?(\d{9,12})", re.ASCII)

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:[Zz]|\+00:00)", re.ASCII
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


# Frames off the fast path: JSON numbers become Decimal, so no value loses precision.


class _Ohlc(msgspec.Struct):
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    interval_begin: str
    interval: int


class _OhlcFrame(msgspec.Struct, tag_field="channel", tag="ohlc"):
    data: list[_Ohlc]
    # The publish time, parsed in C (to the microsecond, rounded: fine for a lag metric).
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class _Heartbeat(msgspec.Struct, tag_field="channel", tag="heartbeat"):
    pass


_HEARTBEAT = Control(kind=ControlKind.HEARTBEAT)


class KrakenAdapter(AdapterBase):
    """Kraken spot public market data over WebSocket v2."""

    venue = Venue.KRAKEN
    supported = SUPPORTED
    closes_candles = False
    ping_interval_s = 20.0

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        ws_base: str,
        rest_base: str,
        rest_weight_per_minute: int = 60,
    ) -> None:
        super().__init__(
            subscriptions,
            ws_base=ws_base,
            rest_base=rest_base,
            rest_weight_per_minute=rest_weight_per_minute,
        )
        self._by_wire = {(kraken_ws_symbol(s.pair), _minutes(s.interval)): s for s in self._subs}
        self._symbols = {kraken_ws_symbol(s.pair): s.symbol for s in self._subs}
        self._req_ids = itertools.count(1)
        self._begin_ms: dict[str, int] = {}
        self._decode = msgspec.json.Decoder(_OhlcFrame | _Heartbeat).decode
        self._methods: dict[str, Callable[[dict[str, object]], Control]] = {
            "subscribe": self._subscribe_answer,
            "pong": _pong,
        }

    def ws_url(self) -> str:
        """Return the WebSocket URL as configured (``wss://ws.kraken.com/v2``)."""
        return self._ws_base

    def subscribe_messages(self) -> list[str]:
        """Return one ``ohlc`` subscribe per interval, all its symbols in it, with a snapshot."""
        by_interval: dict[int, list[str]] = {}
        for sub in self._subs:
            by_interval.setdefault(_minutes(sub.interval), []).append(kraken_ws_symbol(sub.pair))
        return [
            msgspec.json.encode(
                {
                    "method": "subscribe",
                    "params": {
                        "channel": "ohlc",
                        "symbol": symbols,
                        "interval": minutes,
                        "snapshot": True,
                    },
                    "req_id": next(self._req_ids),
                }
            ).decode()
            for minutes, symbols in by_interval.items()
        ]

    def expected_acks(self) -> int:
        """Return the number of subscriptions: Kraken acknowledges each symbol separately."""
        return len(self._subs)

    def ping_message(self) -> str | None:
        """Return an application ping with a fresh ``req_id``."""
        return f'{{"method":"ping","req_id":{next(self._req_ids)}}}'

    def parse(self, raw: str | bytes) -> Frame:
        """Parse one frame; ``ohlc`` and ``heartbeat`` frames take the fast path."""
        frame = decode_typed(self._decode, raw)
        if frame is None:
            return self._parse_other(raw)
        if type(frame) is _Heartbeat:
            return _HEARTBEAT
        assert isinstance(frame, _OhlcFrame)
        return self._updates(frame)

    def _updates(self, frame: _OhlcFrame) -> Frame:
        event_ms = None if frame.timestamp is None else (frame.timestamp - _EPOCH) // _MS
        updates = []
        for row in frame.data:
            sub = self._by_wire.get((row.symbol, row.interval))
            if sub is None:
                continue
            begin = self._begin_ms.get(row.interval_begin)
            if begin is None:
                begin = self._remember_begin(row.interval_begin)
            updates.append(
                KlineUpdate(
                    sub.symbol,
                    sub.interval,
                    begin,
                    None,
                    event_ms,
                    row.open,
                    row.high,
                    row.low,
                    row.close,
                    row.volume,
                )
            )
        if frame.data and not updates:
            row = frame.data[0]
            return Control(
                kind=ControlKind.UNKNOWN, message=f"unsubscribed ohlc {row.symbol} {row.interval}"
            )
        return tuple(updates)

    def _remember_begin(self, text: str) -> int:
        """Parse an ``interval_begin``; cache it, as updates repeat the same few values."""
        try:
            begin = parse_rfc3339_ms(text)
        except ValueError as exc:
            raise MalformedFrame(f"interval_begin {text[:40]!r}: {exc}") from None
        if len(self._begin_ms) >= 256:
            self._begin_ms.clear()
        self._begin_ms[text] = begin
        return begin

    def _parse_other(self, raw: str | bytes) -> Control:
        message = decode_object(raw)
        channel, method = message.get("channel"), message.get("method")
        if channel == "ohlc":
            raise MalformedFrame("ohlc frame with missing or mistyped fields")
        if channel == "status":
            return _status(message)
        handler = self._methods.get(method) if isinstance(method, str) else None
        if handler is not None:
            return handler(message)
        error = message.get("error", message.get("Error"))
        if error is not None or message.get("success") is False:
            return Control(kind=ControlKind.ERROR, message=f"{method or 'kraken'}: {error}")
        return Control(kind=ControlKind.UNKNOWN, message=str(message)[:120])

    def _subscribe_answer(self, message: dict[str, object]) -> Control:
        """Turn one per-symbol subscribe answer into ``ACK`` or ``REJECTED``."""
        result = message.get("result")
        wire = message.get("symbol")
        if isinstance(result, dict):
            wire = result.get("symbol", wire)
        symbol = self._internal_symbol(wire)
        if message.get("success") is True:
            if symbol is None or wire not in self._symbols:
                return Control(kind=ControlKind.UNKNOWN, message=f"ack for unsubscribed {wire}")
            return Control(kind=ControlKind.ACK, symbol=symbol, message=f"ohlc {wire}")
        return Control(
            kind=ControlKind.REJECTED, symbol=symbol, message=str(message.get("error", message))
        )

    def _internal_symbol(self, wire: object) -> str | None:
        if not isinstance(wire, str):
            return None
        known = self._symbols.get(wire)
        if known is not None:
            return known
        try:
            return str(parse_pair(wire))
        except ValueError:
            return wire[:40]

    def rate_signal(self, answer: RestAnswer) -> RateSignal:
        """Read Kraken's throttling errors (HTTP 200); ``EService:Throttled`` names its end."""
        texts = _error_texts(answer.body)
        if not any(t.startswith(RATE_LIMIT_ERRORS) for t in texts):
            return RateSignal()
        for text in texts:
            until = _THROTTLED_UNTIL.match(text)
            if until is not None:
                return RateSignal(limited=True, retry_at_ms=int(until[1]) * 1000)
        return RateSignal(limited=True)

    async def server_time_ms(self, rest: RestClient) -> int:
        """Return ``GET /0/public/Time`` ``unixtime`` in milliseconds."""
        result = _result(await rest.get_json("/0/public/Time", {}, weight=1), "Time")
        unixtime = result.get("unixtime")
        if type(unixtime) is not int:
            raise VenueError(f"kraken Time: unexpected result {str(result)[:80]}", status=200)
        return unixtime * 1000

    async def fetch_klines(
        self, rest: RestClient, subscription: Subscription, start_ms: int, end_ms: int
    ) -> KlinePage:
        """Return the committed candles of ``[start_ms, end_ms)`` that Kraken still serves.

        Kraken answers at most its last 720 rows whatever ``since`` says, so one call covers
        the range; if those rows no longer reach back to ``start_ms``, ``history_start_ms``
        says where the venue's memory begins.
        """
        pair = kraken_rest_pair(subscription.pair)
        params = {
            "pair": pair,
            "interval": str(_minutes(subscription.interval)),
            "since": str(max(0, start_ms // 1000 - 1)),
        }
        result = _result(await rest.get_json("/0/public/OHLC", params, weight=OHLC_WEIGHT), "OHLC")
        rows = _pair_rows(result, pair)
        committed = [self._row_candle(subscription, row) for row in rows[:-1]]
        candles = tuple(c for c in committed if start_ms <= c.open_time_ms < end_ms)
        history_start = None
        if len(rows) >= MAX_ROWS and committed and committed[0].open_time_ms > start_ms:
            history_start = min(committed[0].open_time_ms, end_ms)
        return KlinePage(candles=candles, next_start_ms=end_ms, history_start_ms=history_start)

    def _row_candle(self, sub: Subscription, row: object) -> Candle:
        """Read ``[time_s, open, high, low, close, vwap, volume, count]``; prices are strings."""
        malformed = VenueError(f"kraken OHLC: malformed row {str(row)[:80]}", status=200)
        if not isinstance(row, list) or len(row) < 7 or type(row[0]) is not int:
            raise malformed
        if not all(isinstance(v, str) for v in row[1:7]):
            raise malformed
        try:
            values = [Decimal(v) for v in row[1:7]]
        except ArithmeticError as exc:
            raise malformed from exc
        return Candle(
            venue=self.venue,
            symbol=sub.symbol,
            interval=sub.interval,
            open_time_ms=row[0] * 1000,
            open=values[0],
            high=values[1],
            low=values[2],
            close=values[3],
            volume=values[5],
        )


def parse_rfc3339_ms(text: str) -> int:
    """Return a UTC RFC3339 time (``2023-10-04T15:25:00.000000000Z``) as Unix ms, truncated.

    Raise ``ValueError`` unless it is ``YYYY-MM-DDTHH:MM:SS[.f…]`` with at most nine fraction
    digits and a ``Z`` (or ``+00:00``) zone.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("not an RFC3339 UTC time")
    year, month, day, hour, minute, second, fraction = match.groups()
    h, m, s = int(hour), int(minute), int(second)
    if h > 23 or m > 59 or s > 59:
        raise ValueError("time of day out of range")
    days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    millis = int(fraction[:3].ljust(3, "0")) if fraction else 0
    return (((days * 24 + h) * 60 + m) * 60 + s) * 1000 + millis


def _minutes(interval: Interval) -> int:
    return interval.ms // 60_000


def _pong(message: dict[str, object]) -> Control:
    return Control(kind=ControlKind.PONG, message=f"req_id {message.get('req_id')}")


def _status(message: dict[str, object]) -> Control:
    data = message.get("data")
    first = data[0] if isinstance(data, list) and data else {}
    if not isinstance(first, dict):
        return Control(kind=ControlKind.STATUS, message="status")
    return Control(
        kind=ControlKind.STATUS,
        message=f"system {first.get('system')} version {first.get('version')}",
    )


def _result(body: object, endpoint: str) -> dict[str, object]:
    """Return a REST body's ``result``; turn its ``error`` list into the matching exception."""
    if not isinstance(body, dict):
        raise VenueError(f"kraken {endpoint}: unexpected body {str(body)[:80]}", status=200)
    texts = _error_texts(body)
    if texts:
        message = f"kraken {endpoint}: {'; '.join(texts)}"
        if any(t.startswith(RATE_LIMIT_ERRORS) for t in texts):
            raise RateLimited(message, retry_after_s=0.0)  # a client that skips rate_signal
        if any(t.startswith(TRANSIENT_ERRORS) for t in texts):
            raise TransientError(message)
        raise VenueError(message, status=200, code=texts[0].partition(":")[0])
    result = body.get("result")
    if not isinstance(result, dict):
        raise VenueError(f"kraken {endpoint}: unexpected body {str(body)[:80]}", status=200)
    return result


def _error_texts(body: object) -> list[str]:
    """Return a REST body's ``error`` list as text (empty when there is none)."""
    errors = body.get("error") if isinstance(body, dict) else None
    return [str(e) for e in errors] if isinstance(errors, list) else []


def _pair_rows(result: dict[str, object], pair: str) -> list[object]:
    """Return the rows under Kraken's own pair name: the one key that is not ``last``."""
    keys = [key for key in result if key != "last"]
    rows = result.get(keys[0]) if len(keys) == 1 else None
    if not isinstance(rows, list):
        raise VenueError(f"kraken OHLC {pair}: unexpected result keys {keys[:4]}", status=200)
    return rows
