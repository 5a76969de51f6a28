"""What every venue adapter shares: its series, endpoints and REST budget, and frame decoding.

Frames are decoded in two steps: a typed msgspec decoder for the frames that matter (candle
updates), and, only when that refuses the frame, a generic decode into a JSON object for the
rarer control and error frames. Bitvavo's and Kraken's numbers become ``Decimal``, never float.
"""

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import ClassVar, TypeVar

import msgspec

from paper_trader.domain import Interval, Venue
from paper_trader.exchange.wire import MalformedFrame, Subscription, check_intervals

T = TypeVar("T")
_GENERIC = msgspec.json.Decoder(float_hook=Decimal)
# What else msgspec raises for a frame that is not JSON it can decode: a string that is not
# UTF-8 (UnicodeDecodeError), a number Decimal refuses (1e999999999999999999999: decimal's
# InvalidOperation), nesting past the recursion limit (about 1,000 levels).
_UNDECODABLE = (msgspec.DecodeError, ValueError, ArithmeticError, RecursionError)


class AdapterBase:
    """The state every adapter keeps; subclasses add their venue's wire knowledge."""

    venue: ClassVar[Venue]
    supported: ClassVar[frozenset[Interval]]
    ping_interval_s: ClassVar[float | None] = None  # no application-level ping by default

    def __init__(
        self,
        subscriptions: Sequence[Subscription],
        *,
        ws_base: str,
        rest_base: str,
        rest_weight_per_minute: int,
    ) -> None:
        check_intervals(self.venue, subscriptions, self.supported)
        self._subs = tuple(subscriptions)
        self._ws_base = ws_base
        self.rest_base = rest_base
        self.rest_weight_per_minute = rest_weight_per_minute

    def ping_message(self) -> str | None:
        """Return None: protocol-level pings (the WebSocket library's) are enough."""
        return None


def decode_typed(decode: Callable[[str | bytes], T], raw: str | bytes) -> T | None:
    """Return the typed frame, or None for another shape; ``MalformedFrame`` if not JSON."""
    try:
        return decode(raw)
    except msgspec.ValidationError:
        return None
    except _UNDECODABLE as exc:
        raise MalformedFrame(f"not JSON: {_reason(exc)}") from None


def decode_object(raw: str | bytes) -> dict[str, object]:
    """Return the frame as a JSON object; raise ``MalformedFrame`` for anything else."""
    try:
        message = _GENERIC.decode(raw)
    except _UNDECODABLE as exc:
        raise MalformedFrame(f"not JSON: {_reason(exc)}") from None
    if not isinstance(message, dict):
        raise MalformedFrame(f"not a JSON object: {str(message)[:80]}")
    return message


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deep"
    if isinstance(exc, ArithmeticError):
        return "a number out of Decimal's range"
    return str(exc)[:200]
