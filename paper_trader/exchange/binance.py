"""Binance spot: combined kline streams, ``k.x`` closes a candle, REST ``/api/v3/klines``.

Protocol facts (Binance spot API docs): streams go in the URL
(``/stream?streams=btcusdt@kline_1m/…``, lower case) so there is nothing to subscribe and no
ack; an unknown stream is silently empty, which is why the symbols are checked over REST at
start-up. The server pings every 20 s (the ``websockets`` client answers); a connection lives at
most 24 h and ``serverShutdown`` announces an early close. REST klines are ascending, at most
1000 per call, weight 2; the newest row can still be open. Every REST answer reports the
weight this IP used in the current minute (``X-MBX-USED-WEIGHT-1M``); a 429 (limit hit) or 418
(banned for going on after 429s) carries ``Retry-After`` in seconds, which the REST client
honours as it stands.

Sample combined frame::

    {"stream":"btcusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"BTCUSDT",
     "k":{"t":1633998480000,"T":1633998539999,"s":"BTCUSDT","i":"1m","o":"0.3527",
          "c":"0.3528","h":"0.3528","l":"0.3522","v":"25877.0","n":30,"x":false,…}}}
"""

from collections.abc import Sequence
from decimal import Decimal

import msgspec

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.exchange.adapter_base import AdapterBase, decode_object, decode_typed
from paper_trader.exchange.symbols import binance_symbol
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

PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
SUPPORTED = frozenset(Interval)


class _Kline(msgspec.Struct):
    t: int
    i: str
    o: str
    h: str
    low: str = msgspec.field(name="l")
    c: str
    v: str
    x: bool


class _KlineEvent(msgspec.Struct):
    e: str
    E: int
    s: str
    k: _Kline


class _Combined(msgspec.Struct):
    stream: str
    data: _KlineEvent


class BinanceAdapter(AdapterBase):
    """Binance spot public market data."""

    venue = Venue.BINANCE
    supported = SUPPORTED
    closes_candles = True

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        ws_base: str,
        rest_base: str,
        rest_weight_per_minute: int = 1200,
    ) -> None:
        super().__init__(
            subscriptions,
            ws_base=ws_base.rstrip("/"),
            rest_base=rest_base,
            rest_weight_per_minute=rest_weight_per_minute,
        )
        self._by_wire = {(binance_symbol(s.pair), s.interval.value): s for s in self._subs}
        self._decode = msgspec.json.Decoder(_Combined).decode

    def ws_url(self) -> str:
        """Return the combined-stream URL with every subscription in it."""
        names = "/".join(_stream_name(s) for s in self._subs)
        return f"{self._ws_base}/stream?streams={names}"

    def subscribe_messages(self) -> list[str]:
        """Return nothing: the URL subscribes."""
        return []

    def expected_acks(self) -> int:
        """Return 0: URL subscriptions are not acknowledged."""
        return 0

    def parse(self, raw: str | bytes) -> Frame:
        """Parse a combined-stream frame; kline frames take the fast path."""
        frame = decode_typed(self._decode, raw)
        if frame is None:
            return self._parse_other(raw)
        event = frame.data
        k = event.k
        sub = self._by_wire.get((event.s, k.i))
        if sub is None:
            return Control(kind=ControlKind.UNKNOWN, message=f"unsubscribed stream {frame.stream}")
        update = KlineUpdate(sub.symbol, sub.interval, k.t, k.x, event.E, k.o, k.h, k.low, k.c, k.v)
        return (update,)

    def _parse_other(self, raw: str | bytes) -> Control:
        message = decode_object(raw)
        data = message.get("data", message)
        if isinstance(data, dict) and data.get("e") == "serverShutdown":
            event_time = data.get("E")
            return Control(
                kind=ControlKind.SHUTDOWN,
                message="serverShutdown",
                event_time_ms=event_time if isinstance(event_time, int) else None,
            )
        error = message.get("error", message if "code" in message else None)
        if isinstance(error, dict):
            text = f"{error.get('code')}: {error.get('msg')}"
            return Control(kind=ControlKind.ERROR, message=text)
        if "result" in message and "id" in message:
            return Control(kind=ControlKind.ACK, message=f"id {message['id']}")
        if isinstance(data, dict) and data.get("e") == "kline":
            raise MalformedFrame("kline frame with missing or mistyped fields")
        return Control(kind=ControlKind.UNKNOWN, message=str(message)[:120])

    def rate_signal(self, answer: RestAnswer) -> RateSignal:
        """Return the weight used this minute; 429/418 and ``Retry-After`` are plain HTTP."""
        used = answer.headers.get(USED_WEIGHT_HEADER, "")
        readable = used.isascii() and used.isdigit() and len(used) <= 16
        return RateSignal(used=int(used) if readable else None)

    async def server_time_ms(self, rest: RestClient) -> int:
        """Return ``GET /api/v3/time`` ``serverTime``."""
        body = await rest.get_json("/api/v3/time", {}, weight=1)
        if isinstance(body, dict) and isinstance(body.get("serverTime"), int):
            return int(body["serverTime"])
        raise VenueError(f"binance /api/v3/time: unexpected body {str(body)[:80]}", status=200)

    async def fetch_klines(
        self, rest: RestClient, subscription: Subscription, start_ms: int, end_ms: int
    ) -> KlinePage:
        """Return up to 1000 closed candles from ``start_ms``, ascending, before ``end_ms``."""
        params = {
            "symbol": binance_symbol(subscription.pair),
            "interval": subscription.interval.value,
            "startTime": str(start_ms),
            "endTime": str(end_ms - 1),
            "limit": str(PAGE_LIMIT),
        }
        body = await rest.get_json("/api/v3/klines", params, weight=KLINES_WEIGHT)
        if not isinstance(body, list):
            raise VenueError(f"binance klines: unexpected body {str(body)[:80]}", status=200)
        candles = tuple(
            c
            for c in (self._row_candle(subscription, row) for row in body)
            if start_ms <= c.open_time_ms < end_ms
        )
        full = len(body) >= PAGE_LIMIT and candles
        next_start = candles[-1].open_time_ms + subscription.interval.ms if full else end_ms
        return KlinePage(candles=candles, next_start_ms=next_start)

    def _row_candle(self, sub: Subscription, row: object) -> Candle:
        if not isinstance(row, list) or len(row) < 6 or not isinstance(row[0], int):
            raise VenueError(f"binance klines: malformed row {str(row)[:80]}", status=200)
        try:
            prices = [Decimal(str(v)) for v in row[1:6]]
        except ArithmeticError as exc:
            raise VenueError(f"binance klines: malformed row {str(row)[:80]}", status=200) from exc
        return Candle(
            venue=self.venue,
            symbol=sub.symbol,
            interval=sub.interval,
            open_time_ms=row[0],
            open=prices[0],
            high=prices[1],
            low=prices[2],
            close=prices[3],
            volume=prices[4],
        )


def _stream_name(sub: Subscription) -> str:
    return f"{binance_symbol(sub.pair).lower()}@kline_{sub.interval.value}"
