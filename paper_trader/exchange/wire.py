"""What a venue adapter turns wire frames into, and the contract every adapter keeps.

An adapter (``exchange/<venue>.py``) knows one venue's URLs, subscribe messages, frame shapes
and REST paging. It is synchronous except for its two REST calls, keeps no connection state,
and never decides what is emitted: the feed (``exchange/feed.py``) owns connections and the
sequencer (``exchange/sequencer.py``) owns exactly-once emission.
"""

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple, Protocol

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.domain.symbols import Pair
from paper_trader.errors import ConfigError, DataIntegrityError, PaperTraderError


@dataclass(frozen=True, slots=True)
class Subscription:
    """One series the feed follows: a pair at an interval."""

    pair: Pair
    interval: Interval

    @property
    def symbol(self) -> str:
        """Return the internal symbol (``BTC-USDT``)."""
        return str(self.pair)


class KlineUpdate(NamedTuple):
    """One candle as a frame reported it (a tuple: frames are parsed on the hot path).

    ``closed`` is the venue's own "this candle is final" flag, or ``None`` for venues that
    have none (Bitvavo, Kraken): the sequencer infers closure for those. Prices stay as the
    venue sent them (text or ``Decimal``) until a candle is emitted.
    """

    symbol: str
    interval: Interval
    open_time_ms: int
    closed: bool | None
    event_time_ms: int | None
    open: str | Decimal
    high: str | Decimal
    low: str | Decimal
    close: str | Decimal
    volume: str | Decimal

    def to_candle(self, venue: Venue) -> Candle:
        """Return the domain candle; raise ``MalformedFrame`` if a value is not a number."""
        try:
            return Candle(
                venue=venue,
                symbol=self.symbol,
                interval=self.interval,
                open_time_ms=self.open_time_ms,
                open=Decimal(self.open),
                high=Decimal(self.high),
                low=Decimal(self.low),
                close=Decimal(self.close),
                volume=Decimal(self.volume),
            )
        except ArithmeticError as exc:  # decimal.InvalidOperation
            raise MalformedFrame(f"{self.symbol} {self.open_time_ms}: not a number") from exc


class ControlKind(enum.StrEnum):
    """Frames that carry no candle."""

    ACK = "ack"  # a subscription confirmed (per symbol where the venue acks per symbol)
    REJECTED = "rejected"  # the venue refused a subscription: bad symbol or interval
    ERROR = "error"  # an error frame, with the venue's own message
    HEARTBEAT = "heartbeat"  # the transport is alive; says nothing about data
    PONG = "pong"  # the answer to our application-level ping
    SHUTDOWN = "shutdown"  # the venue will close this connection soon: reconnect now
    STATUS = "status"  # venue status or information, nothing to do
    UNKNOWN = "unknown"  # valid JSON of a shape we do not know


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """A frame that carries no candle."""

    kind: ControlKind
    message: str = ""
    symbol: str | None = None
    event_time_ms: int | None = None


Frame = tuple[KlineUpdate, ...] | Control


@dataclass(frozen=True, slots=True, kw_only=True)
class KlinePage:
    """One REST answer: closed candles, ascending, open times in ``[start_ms, end_ms)``.

    ``next_start_ms`` is where the following page starts (``end_ms`` once the range is
    covered): a candle missing between the request's start and ``next_start_ms`` does not
    exist at the venue. ``history_start_ms`` is set when the venue no longer serves the
    beginning of the range (Kraken keeps only its last 720 candles): the gap before it
    cannot be filled.
    """

    candles: tuple[Candle, ...]
    next_start_ms: int
    history_start_ms: int | None = None


class MalformedFrame(DataIntegrityError):
    """A frame that is not valid JSON or not the shape its type promises."""


class VenueError(PaperTraderError):
    """The venue refused a request (HTTP 4xx or an error body), with its own message."""

    def __init__(self, message: str, *, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """One REST answer as it came, for its rate-limit signals: ``body`` is None if not JSON."""

    status: int
    headers: Mapping[str, str]
    body: object


@dataclass(frozen=True, slots=True, kw_only=True)
class RateSignal:
    """What one REST answer says about the venue's rate limit; None where it says nothing.

    ``limited``: the answer refuses us for rate, whatever its HTTP status (Kraken says so with
    HTTP 200). ``retry_at_ms`` (a time on the venue's clock) or ``retry_after_s`` (a delay):
    when the venue says to come back. ``remaining`` and ``reset_at_ms``: the weight left in the
    venue's own window and when that window resets (Bitvavo). ``used``: the weight the venue
    counts as used in its current minute, other clients on our IP included (Binance).
    """

    limited: bool = False
    retry_at_ms: int | None = None
    retry_after_s: float | None = None
    remaining: int | None = None
    reset_at_ms: int | None = None
    used: int | None = None


NO_SIGNAL = RateSignal()


class RestClient(Protocol):
    """A rate-limited JSON GET against one venue's REST base URL."""

    async def get_json(self, path: str, params: dict[str, str], *, weight: int) -> object:
        """Return the decoded body; raise ``RateLimited``, ``TransientError`` or ``VenueError``."""
        ...


class VenueAdapter(Protocol):
    """One venue's public market-data protocol."""

    @property
    def venue(self) -> Venue:
        """Return the venue."""
        ...

    @property
    def rest_base(self) -> str:
        """Return the REST base URL (``https://api.binance.com``, or a loopback stand-in)."""
        ...

    @property
    def closes_candles(self) -> bool:
        """Return whether frames say when a candle is final (Binance's ``k.x``)."""
        ...

    @property
    def rest_weight_per_minute(self) -> int:
        """Return the REST weight this daemon allows itself per minute."""
        ...

    @property
    def ping_interval_s(self) -> float | None:
        """Return how often to send ``ping_message()``, or None if the venue needs no ping."""
        ...

    def rate_signal(self, answer: RestAnswer) -> RateSignal:
        """Return what one REST answer says about the venue's rate limit (headers, codes)."""
        ...

    def ws_url(self) -> str:
        """Return the WebSocket URL to connect to (streams in the URL where the venue allows)."""
        ...

    def subscribe_messages(self) -> list[str]:
        """Return the messages to send once connected (none when the URL subscribes)."""
        ...

    def expected_acks(self) -> int:
        """Return how many ``ACK`` frames confirm the subscriptions (0: no acks to wait for)."""
        ...

    def ping_message(self) -> str | None:
        """Return the application-level ping to send, or None."""
        ...

    def parse(self, raw: str | bytes) -> Frame:
        """Turn one frame into candle updates or a control; raise ``MalformedFrame``."""
        ...

    async def server_time_ms(self, rest: RestClient) -> int:
        """Return the venue's clock (Unix ms) from its REST time endpoint."""
        ...

    async def fetch_klines(
        self, rest: RestClient, subscription: Subscription, start_ms: int, end_ms: int
    ) -> KlinePage:
        """Return one page of closed candles from ``start_ms`` (aligned) before ``end_ms``."""
        ...


def check_intervals(
    venue: Venue, subscriptions: Sequence[Subscription], supported: frozenset[Interval]
) -> None:
    """Raise ``ConfigError`` naming ``INTERVAL`` if the venue does not stream an interval."""
    for sub in subscriptions:
        if sub.interval not in supported:
            names = ", ".join(sorted((i.value for i in supported), key=lambda v: Interval(v).ms))
            raise ConfigError(
                f"INTERVAL={sub.interval.value!r}: {venue.value} does not stream it "
                f"(expected one of {names})"
            )
