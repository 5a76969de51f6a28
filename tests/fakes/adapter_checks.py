"""Shared checks for venue adapters: the adapters under test, a canned REST client and frame
narrowing (the fuzzing of their parsers is ``fakes/fuzz_targets.py``)."""

from paper_trader.domain import Interval
from paper_trader.domain.symbols import parse_pair
from paper_trader.exchange.bitvavo import BitvavoAdapter
from paper_trader.exchange.kraken import KrakenAdapter
from paper_trader.exchange.wire import (
    Control,
    Frame,
    KlineUpdate,
    Subscription,
)


def sub(symbol: str, interval: Interval = Interval.M1) -> Subscription:
    """Return the subscription to ``symbol`` (internal spelling) at ``interval``."""
    return Subscription(parse_pair(symbol), interval)


def bitvavo_adapter(*subs: Subscription) -> BitvavoAdapter:
    """Return a Bitvavo adapter for ``subs`` (BTC-EUR 1m if none) that never reaches REST."""
    return BitvavoAdapter(
        subs or (sub("BTC-EUR"),), ws_base="wss://ws.bitvavo.com/v2/", rest_base="https://x"
    )


def kraken_adapter(*subs: Subscription) -> KrakenAdapter:
    """Return a Kraken adapter for ``subs`` (BTC-USD 1m if none) that never reaches REST."""
    return KrakenAdapter(
        subs or (sub("BTC-USD"),), ws_base="wss://ws.kraken.com/v2", rest_base="https://x"
    )


def control(frame: Frame) -> Control:
    """Return ``frame``, failing the test unless it is a Control."""
    assert isinstance(frame, Control), frame
    return frame


def updates(frame: Frame) -> tuple[KlineUpdate, ...]:
    """Return ``frame``, failing the test unless it is a tuple of updates."""
    assert isinstance(frame, tuple), frame
    return frame


class CannedRest:
    """A RestClient answering every GET with one canned body, recording the requests."""

    def __init__(self, body: object) -> None:
        self.body = body
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def get_json(self, path: str, params: dict[str, str], *, weight: int) -> object:
        self.requests.append((path, params))
        return self.body
