"""Bitvavo: one ``candles`` subscription, no closed flag, REST ``/{market}/candles`` newest-first.

Protocol facts (docs.bitvavo.com, official SDKs): one subscribe message covers every market and
interval; the answer ``{"event":"subscribed","subscriptions":{…}}`` lists *all* active
subscriptions (cumulative), so a market missing from it was refused. A candle update is sent
after each trade, never for an interval without trades, and says nothing about closure. The
docs name the event ``candles`` with a string timestamp; the SDKs and ccxt expect ``candle``
with an integer one: both are accepted. REST candles are newest-first, at most 1440 per call,
weight 1; ``start`` must be an interval start and ``end`` an interval end, and ``end`` drives
paging (with only ``start`` Bitvavo answers the *latest* candles).

Rate limits (docs "Rate limits", "Handle errors"; Bitvavo's older error map): 1000 weight per
minute per IP, REST and WebSocket actions alike. Every REST answer carries
``bitvavo-ratelimit-limit``, ``-remaining`` and ``-resetat`` (Unix ms on Bitvavo's clock, when
the count resets). Going over answers HTTP 429 with ``errorCode`` 110 and no ``Retry-After``,
and blocks an unauthenticated IP for 15 minutes, so the REST client paces on ``remaining``
and waits for ``resetat``. The older codes say the same in their own words: 103 "rate
limited" (see ``Bitvavo-Ratelimit-AllowAt``) and 105 "Your IP or API key has been banned for
not respecting the rate limit. The ban expires at ${expiryInMs}".

Sample frames::

    {"event":"candle","market":"BTC-EUR","interval":"1m",
     "candle":[[1548676800000,"2999.3","2999.3","2990.5","2999.3","11.15058838"]]}
    {"event":"subscribed","subscriptions":{"candles":{"1m":["BTC-EUR"]}}}
    {"event":"error","errorCode":205,"error":"Invalid parameter: market"}
"""

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import msgspec

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.exchange.adapter_base import AdapterBase, decode_object, decode_typed
from paper_trader.exchange.symbols import bitvavo_market
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

PAGE_LIMIT = 1440
CANDLES_WEIGHT = 1
SUPPORTED = frozenset(
    {
        Interval.M1,
        Interval.M5,
        Interval.M15,
        Interval.M30,
        Interval.H1,
        Interval.H2,
        Interval.H4,
        Interval.H6,
        Interval.H8,
        Interval.H12,
        Interval.D1,
    }
)
# Parameter errors (docs "Handle errors"): 203 missing/incompatible, 204 not valid for this
# endpoint, 205 invalid value, 206 incompatible, 219 market no longer listed. The adapter only
# ever sends its subscribe on this connection, so these can only be about a market or interval
# of that subscribe: the feed must not retry them.
REJECT_CODES = frozenset({203, 204, 205, 206, 219})
REMAINING_HEADER = "bitvavo-ratelimit-remaining"
RESET_AT_HEADER = "bitvavo-ratelimit-resetat"
ALLOW_AT_HEADER = "bitvavo-ratelimit-allowat"
RATE_LIMITED_CODE = 103
BANNED_CODE = 105
BAN_UNKNOWN_S = 900.0  # a ban that names no end: the documented 15-minute IP block
# Weight kept back from REST: the feed's WebSocket subscribe may be charged to the same IP.
WS_WEIGHT_RESERVE = 2
_BAN_END = re.compile(r"expires at (\d{10,16})", re.ASCII)

_Row = tuple[int | str, str, str, str, str, str]


# Frames off the fast path: JSON numbers become Decimal, so no value loses precision.


class _CandleEvent(msgspec.Struct, tag_field="event", tag="candle"):
    market: str
    interval: str
    candle: list[_Row]


class _CandlesEvent(_CandleEvent, tag="candles"):
    """The docs' spelling of the same event."""


class BitvavoAdapter(AdapterBase):
    """Bitvavo public market data."""

    venue = Venue.BITVAVO
    supported = SUPPORTED
    closes_candles = False

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        ws_base: str,
        rest_base: str,
        rest_weight_per_minute: int = 600,
    ) -> None:
        super().__init__(
            subscriptions,
            ws_base=ws_base,
            rest_base=rest_base,
            rest_weight_per_minute=rest_weight_per_minute,
        )
        self._by_wire = {(bitvavo_market(s.pair), s.interval.value): s for s in self._subs}
        self._decode = msgspec.json.Decoder(_CandleEvent | _CandlesEvent).decode
        self._events: dict[str, Callable[[dict[str, object]], Frame]] = {
            "candle": self._lenient_candles,
            "candles": self._lenient_candles,
            "subscribed": self._ack,
            "unsubscribed": _status,
            "error": self._error,
        }

    def ws_url(self) -> str:
        """Return the WebSocket URL as configured (``wss://ws.bitvavo.com/v2/``)."""
        return self._ws_base

    def subscribe_messages(self) -> list[str]:
        """Return one subscribe message with a ``candles`` channel entry per interval."""
        by_interval: dict[str, list[str]] = {}
        for sub in self._subs:
            by_interval.setdefault(sub.interval.value, []).append(bitvavo_market(sub.pair))
        channels = [
            {"name": "candles", "markets": markets, "interval": [interval]}
            for interval, markets in by_interval.items()
        ]
        return [msgspec.json.encode({"action": "subscribe", "channels": channels}).decode()]

    def expected_acks(self) -> int:
        """Return 1: one cumulative ``subscribed`` event answers the subscribe."""
        return 1

    def parse(self, raw: str | bytes) -> Frame:
        """Parse one frame; candle events take the fast path."""
        event = decode_typed(self._decode, raw)
        if event is None:
            return self._parse_other(raw)
        sub = self._by_wire.get((event.market, event.interval))
        if sub is None:
            return Control(
                kind=ControlKind.UNKNOWN,
                message=f"unsubscribed candles {event.market} {event.interval}",
            )
        symbol, interval = sub.symbol, sub.interval
        return tuple(
            KlineUpdate(symbol, interval, _open_ms(t), None, None, o, h, low, c, v)
            for t, o, h, low, c, v in event.candle
        )

    def _parse_other(self, raw: str | bytes) -> Frame:
        message = decode_object(raw)
        event = message.get("event")
        handler = self._events.get(event) if isinstance(event, str) else None
        if handler is not None:
            return handler(message)
        if "errorCode" in message:
            return self._error(message)
        return Control(kind=ControlKind.UNKNOWN, message=str(message)[:120])

    def _lenient_candles(self, message: dict[str, object]) -> Frame:
        """Parse a candle event the fast path refused: numbers as prices, extra row fields."""
        market, interval = message.get("market"), message.get("interval")
        rows = message.get("candle")
        if not (isinstance(market, str) and isinstance(interval, str) and isinstance(rows, list)):
            raise MalformedFrame("candle event with missing or mistyped fields")
        sub = self._by_wire.get((market, interval))
        if sub is None:
            return Control(
                kind=ControlKind.UNKNOWN, message=f"unsubscribed candles {market} {interval}"
            )
        updates = []
        for row in rows:
            if not isinstance(row, list) or len(row) < 6:
                raise MalformedFrame(f"candle row is not [time, o, h, l, c, v]: {str(row)[:80]}")
            prices = [_price(v) for v in row[1:6]]
            updates.append(
                KlineUpdate(sub.symbol, sub.interval, _open_ms(row[0]), None, None, *prices)
            )
        return tuple(updates)

    def _ack(self, message: dict[str, object]) -> Control:
        """Check the cumulative ack for every subscribed market; a missing one was refused."""
        subscriptions = message.get("subscriptions")
        if not isinstance(subscriptions, dict):
            raise MalformedFrame("subscribed event without subscriptions")
        candles = subscriptions.get("candles")
        active = candles if isinstance(candles, dict) else {}
        missing = [
            sub
            for (market, interval), sub in self._by_wire.items()
            if not _lists(active.get(interval), market)
        ]
        if missing:
            names = ", ".join(f"{s.symbol} {s.interval.value}" for s in missing)
            return Control(
                kind=ControlKind.REJECTED,
                symbol=missing[0].symbol,
                message=f"bitvavo did not subscribe candles for {names}",
            )
        return Control(kind=ControlKind.ACK, message="candles subscribed")

    def _error(self, message: dict[str, object]) -> Control:
        """Classify an error event or an action error: parameter errors refuse the subscribe."""
        code, text, action = message.get("errorCode"), message.get("error"), message.get("action")
        rejected = type(code) is int and code in REJECT_CODES and action in (None, "subscribe")
        return Control(
            kind=ControlKind.REJECTED if rejected else ControlKind.ERROR,
            message=f"{code}: {text}",
            symbol=self._symbol_named(message.get("market"), text) if rejected else None,
        )

    def _symbol_named(self, market: object, text: object) -> str | None:
        """Return the subscribed symbol an error names, in its ``market`` field or its text."""
        for (wire, _), sub in self._by_wire.items():
            if wire == market or (isinstance(text, str) and wire in text):
                return sub.symbol
        return None

    def rate_signal(self, answer: RestAnswer) -> RateSignal:
        """Read the ``bitvavo-ratelimit-*`` headers and the rate-limit error codes.

        A 429 (``errorCode`` 110) or a 103 says to come back at ``resetat`` (``allowat`` where
        sent); a 105 at the ban's end, named in its text.
        """
        headers = answer.headers
        remaining = _header_ms(headers, REMAINING_HEADER)
        reset_at = _header_ms(headers, RESET_AT_HEADER)
        left = None if remaining is None else max(0, remaining - WS_WEIGHT_RESERVE)
        body = answer.body if isinstance(answer.body, dict) else {}
        code, text = body.get("errorCode"), body.get("error")
        retry_at, retry_after = None, None
        if code == BANNED_CODE:
            ban_end = _BAN_END.search(text) if isinstance(text, str) else None
            retry_at = None if ban_end is None else int(ban_end[1])
            retry_after = BAN_UNKNOWN_S if ban_end is None else None
        elif answer.status == 429 or code == RATE_LIMITED_CODE:
            allow_at = _header_ms(headers, ALLOW_AT_HEADER)
            retry_at = reset_at if allow_at is None else allow_at
        else:
            return RateSignal(remaining=left, reset_at_ms=reset_at)
        return RateSignal(
            limited=True,
            retry_at_ms=retry_at,
            retry_after_s=retry_after,
            remaining=left,
            reset_at_ms=reset_at,
        )

    async def server_time_ms(self, rest: RestClient) -> int:
        """Return ``GET /time`` ``time``."""
        body = await rest.get_json("/time", {}, weight=1)
        if isinstance(body, dict) and type(body.get("time")) is int:
            return int(body["time"])
        raise VenueError(f"bitvavo /time: unexpected body {str(body)[:80]}", status=200)

    async def fetch_klines(
        self, rest: RestClient, subscription: Subscription, start_ms: int, end_ms: int
    ) -> KlinePage:
        """Return the candles of ``[start_ms, end_ms)`` within one 1440-candle window, ascending.

        ``end`` is sent as the window's end, aligned up to an interval end: it is what pages.
        """
        step = subscription.interval.ms
        start = start_ms - start_ms % step
        window_end = min(end_ms, start + PAGE_LIMIT * step)
        request_end = -(-window_end // step) * step
        market = bitvavo_market(subscription.pair)
        params = {
            "interval": subscription.interval.value,
            "limit": str(PAGE_LIMIT),
            "start": str(start),
            "end": str(request_end),
        }
        body = await rest.get_json(f"/{market}/candles", params, weight=CANDLES_WEIGHT)
        if not isinstance(body, list):
            raise VenueError(f"bitvavo candles: unexpected body {str(body)[:80]}", status=200)
        rows = (self._row_candle(subscription, row) for row in body)
        candles = sorted(
            (c for c in rows if start_ms <= c.open_time_ms < window_end),
            key=lambda c: c.open_time_ms,
        )
        return KlinePage(candles=tuple(candles), next_start_ms=window_end)

    def _row_candle(self, sub: Subscription, row: object) -> Candle:
        if not isinstance(row, list) or len(row) < 6:
            raise VenueError(f"bitvavo candles: malformed row {str(row)[:80]}", status=200)
        try:
            prices = [Decimal(_price(v)) for v in row[1:6]]
            open_time = _open_ms(row[0])
        except (ArithmeticError, MalformedFrame) as exc:
            raise VenueError(f"bitvavo candles: malformed row {str(row)[:80]}", status=200) from exc
        return Candle(
            venue=self.venue,
            symbol=sub.symbol,
            interval=sub.interval,
            open_time_ms=open_time,
            open=prices[0],
            high=prices[1],
            low=prices[2],
            close=prices[3],
            volume=prices[4],
        )


def _open_ms(value: object) -> int:
    """Return a timestamp sent as an integer or as a string of digits."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        return int(value)
    raise MalformedFrame(f"candle timestamp is not Unix ms: {str(value)[:40]}")


def _price(value: object) -> str | Decimal:
    """Return a price sent as a string or (leniently) as a JSON number."""
    if isinstance(value, str | Decimal):
        return value
    if type(value) is int:
        return Decimal(value)
    raise MalformedFrame(f"candle value is not a number: {str(value)[:40]}")


def _header_ms(headers: Mapping[str, str], name: str) -> int | None:
    """Return a header holding a non-negative integer, None if absent or anything else."""
    value = headers.get(name, "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 16 else None


def _lists(markets: object, market: str) -> bool:
    return isinstance(markets, list) and market in markets


def _status(message: dict[str, object]) -> Control:
    return Control(kind=ControlKind.STATUS, message=str(message.get("event")))
