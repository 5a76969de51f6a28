"""Shared checks for venue adapters: a canned REST client and the fuzzing oracle."""

from paper_trader.exchange.wire import Control, MalformedFrame, VenueAdapter


class CannedRest:
    """A RestClient answering every GET with one canned body, recording the requests."""

    def __init__(self, body: object) -> None:
        self.body = body
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def get_json(self, path: str, params: dict[str, str], *, weight: int) -> object:
        self.requests.append((path, params))
        return self.body


def assert_parses_or_is_malformed(adapter: VenueAdapter, raw: str | bytes) -> None:
    """Parsing either yields a frame or raises MalformedFrame, never anything else."""
    try:
        frame = adapter.parse(raw)
    except MalformedFrame:
        return
    assert isinstance(frame, Control | tuple)
